import { PiswarmError } from '../../shared/errors.js';

export const SECTOR_SIZE = 512;
/** FAT32 (CHS), FAT32 (LBA), FAT16 (LBA): what Raspberry Pi and Ubuntu images use for the boot partition. */
export const FAT_TYPES: ReadonlySet<number> = new Set([0x0b, 0x0c, 0x0e]);
const GPT_PROTECTIVE = 0xee;
const EXTENDED_TYPES = new Set([0x05, 0x0f, 0x85]);

export interface MbrPartition {
  /** 1-4, as Linux numbers primary partitions. */
  index: number;
  type: number;
  bootable: boolean;
  startLba: number;
  sectors: number;
  /** Byte offset of the partition, for `mcopy -i FILE@@OFFSET`. */
  offset: number;
  sizeBytes: number;
}

/**
 * Reads the four primary entries of a classic MBR (64 bytes at 446, signature
 * 0x55AA at 510). Refuses GPT (protective 0xEE entry): the Pi images piswarm
 * supports are MBR, and guessing on another layout could corrupt a card.
 */
export function parseMbr(sector: Uint8Array): MbrPartition[] {
  if (sector.length < SECTOR_SIZE) throw new PiswarmError('PISWARM_ERR_IMAGE_LAYOUT', `unknown image layout: only ${sector.length} bytes, shorter than one 512-byte sector`);
  const buf = Buffer.from(sector.buffer, sector.byteOffset, SECTOR_SIZE);
  if (buf[510] !== 0x55 || buf[511] !== 0xaa) throw new PiswarmError('PISWARM_ERR_IMAGE_LAYOUT', 'unknown image layout: no MBR partition table (boot signature 0x55AA missing at byte 510)');
  const parts: MbrPartition[] = [];
  for (let i = 0; i < 4; i++) {
    const e = 446 + i * 16;
    const type = buf[e + 4]!;
    const startLba = buf.readUInt32LE(e + 8);
    const sectors = buf.readUInt32LE(e + 12);
    if (type === 0 || sectors === 0) continue;
    if (type === GPT_PROTECTIVE) throw new PiswarmError('PISWARM_ERR_IMAGE_LAYOUT', 'unknown image layout: GPT partition table (protective MBR); piswarm supports MBR images such as Raspberry Pi OS and Ubuntu Server for Raspberry Pi');
    parts.push({ index: i + 1, type, bootable: buf[e] === 0x80, startLba, sectors, offset: startLba * SECTOR_SIZE, sizeBytes: sectors * SECTOR_SIZE });
  }
  if (parts.length === 0) throw new PiswarmError('PISWARM_ERR_IMAGE_LAYOUT', 'unknown image layout: the MBR lists no partitions');
  return parts;
}

/** The first FAT partition (primary entries only; Pi boot partitions are never logical). */
export function findBootPartition(parts: readonly MbrPartition[]): MbrPartition {
  const fat = parts.find((p) => FAT_TYPES.has(p.type));
  if (!fat) {
    const types = parts.map((p) => `0x${p.type.toString(16).padStart(2, '0')}${EXTENDED_TYPES.has(p.type) ? ' (extended)' : ''}`).join(', ');
    throw new PiswarmError('PISWARM_ERR_IMAGE_LAYOUT', `unknown image layout: no FAT boot partition (type 0x0b, 0x0c or 0x0e) among the partitions (${types})`);
  }
  return fat;
}

/** Bytes the image's partitions reach to: a target must hold at least this much. */
export function partitionsEnd(parts: readonly MbrPartition[]): number {
  return Math.max(...parts.map((p) => p.offset + p.sizeBytes));
}
