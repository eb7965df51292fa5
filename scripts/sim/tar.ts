/**
 * A minimal ustar writer: enough to hand `docker cp -` a few small files with
 * exact modes and numeric owners (the host has no `piswarm` group to name).
 */
export interface TarEntry {
  name: string;
  content: string | Buffer;
  mode: number;
  uid: number;
  gid: number;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

export function tar(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content);
    if (Buffer.byteLength(e.name) > 100) throw new RangeError(`tar entry name too long: ${e.name}`);
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100);
    h.write(octal(e.mode, 8), 100);
    h.write(octal(e.uid, 8), 108);
    h.write(octal(e.gid, 8), 116);
    h.write(octal(body.length, 12), 124);
    h.write(octal(Math.floor(Date.now() / 1000), 12), 136);
    h.write('        ', 148); // checksum is computed over spaces in its own field
    h.write('0', 156); // regular file
    h.write('ustar\0' + '00', 257);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
