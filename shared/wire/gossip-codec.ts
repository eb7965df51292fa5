/**
 * The binary payload of a gossip datagram (layout in gossip.ts). Encoding
 * trusts its caller's types (the core builds every message) and throws on a
 * value it cannot represent; decoding trusts nothing and returns null.
 */

/** Growable byte writer for one payload. */
export class Writer {
  private buf = Buffer.allocUnsafe(128);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  u8(v: number): this {
    this.room(1);
    this.buf[this.length++] = v;
    return this;
  }

  u16(v: number): this {
    this.room(2);
    this.buf.writeUInt16BE(v, this.length);
    this.length += 2;
    return this;
  }

  /** Unsigned LEB128 of a safe integer (division, not bit operations: those stop at 2^32). */
  varint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`gossip varint out of range: ${v}`);
    do {
      const low = v % 128;
      v = Math.floor(v / 128);
      this.u8(v > 0 ? low | 0x80 : low);
    } while (v > 0);
    return this;
  }

  /** One length byte and ASCII (ids and addresses are checked ASCII of at most 64). */
  str(v: string): this {
    if (v.length > 255) throw new RangeError('gossip string longer than 255');
    this.u8(v.length);
    this.room(v.length);
    this.length += this.buf.write(v, this.length, 'latin1');
    return this;
  }

  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  /** A copy of the bytes written: queued updates are kept for many sends, and the buffer is oversized. */
  done(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }
}

/** Reader over one payload; every method throws ReadError past the end or on a bad value. */
export class ReadError extends Error {}

export class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  get left(): number {
    return this.buf.length - this.pos;
  }

  u8(): number {
    if (this.pos >= this.buf.length) throw new ReadError('truncated');
    return this.buf[this.pos++]!;
  }

  u16(): number {
    if (this.pos + 2 > this.buf.length) throw new ReadError('truncated');
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  varint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      v += (b & 0x7f) * scale;
      if (!Number.isSafeInteger(v)) throw new ReadError('varint too large');
      if ((b & 0x80) === 0) return v;
      scale *= 128;
    }
    throw new ReadError('varint too long');
  }

  str(): string {
    const n = this.u8();
    if (this.pos + n > this.buf.length) throw new ReadError('truncated');
    const v = this.buf.toString('latin1', this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  bytes(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new ReadError('truncated');
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
}
