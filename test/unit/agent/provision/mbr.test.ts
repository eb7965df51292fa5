import t from 'tap';
import { findBootPartition, parseMbr, partitionsEnd } from '../../../../agent/provision/mbr.js';

function mbr(entries: { type: number; start: number; sectors: number; boot?: boolean }[]): Buffer {
  const b = Buffer.alloc(512);
  entries.forEach((e, i) => {
    const o = 446 + i * 16;
    b[o] = e.boot ? 0x80 : 0;
    b[o + 4] = e.type;
    b.writeUInt32LE(e.start, o + 8);
    b.writeUInt32LE(e.sectors, o + 12);
  });
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

t.test('a Raspberry Pi OS layout: FAT32 LBA boot + Linux root', async (t) => {
  const parts = parseMbr(mbr([{ type: 0x0c, start: 8192, sectors: 1048576, boot: true }, { type: 0x83, start: 1056768, sectors: 4194304 }]));
  t.equal(parts.length, 2);
  const boot = findBootPartition(parts);
  t.same(boot, { index: 1, type: 0x0c, bootable: true, startLba: 8192, sectors: 1048576, offset: 8192 * 512, sizeBytes: 1048576 * 512 });
  t.equal(partitionsEnd(parts), (1056768 + 4194304) * 512);
});

t.test('FAT in the second slot and a FAT16 0x0e are found', async (t) => {
  t.equal(findBootPartition(parseMbr(mbr([{ type: 0x83, start: 2048, sectors: 100 }, { type: 0x0e, start: 4096, sectors: 100 }]))).index, 2);
  t.equal(findBootPartition(parseMbr(mbr([{ type: 0x0b, start: 2048, sectors: 100 }]))).type, 0x0b);
});

t.test('refusals with the reason', async (t) => {
  const noSig = mbr([{ type: 0x0c, start: 2048, sectors: 100 }]);
  noSig[511] = 0;
  t.throws(() => parseMbr(noSig), { code: 'PISWARM_ERR_IMAGE_LAYOUT', message: /boot signature 0x55AA missing/ });
  t.throws(() => parseMbr(mbr([{ type: 0xee, start: 1, sectors: 0xffffffff }])), { message: /GPT partition table/ });
  t.throws(() => parseMbr(mbr([])), { message: /lists no partitions/ });
  t.throws(() => parseMbr(Buffer.alloc(100)), { message: /shorter than one 512-byte sector/ });
  t.throws(() => findBootPartition(parseMbr(mbr([{ type: 0x83, start: 2048, sectors: 100 }, { type: 0x05, start: 4096, sectors: 100 }]))), { message: /no FAT boot partition .*0x83, 0x05 \(extended\)/ });
});
