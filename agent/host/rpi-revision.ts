/**
 * Raspberry Pi board revision codes (raspberrypi.com documentation,
 * "Raspberry Pi revision codes"): which board and how much RAM, without
 * spawning anything. systeminformation decodes the same table for the
 * `piswarm_host_info` metric (agent/host/inventory.ts), but keeps neither the
 * raw code nor a short model name, and the raw code is what a peer can
 * decode again: six hex digits are cheaper to gossip than a model string.
 */

/** Short model names for node labels (`piswarm.model`): one per board family a placement would name. */
export type PiModel = 'pi1' | 'cm1' | 'pi2' | 'pi3' | 'cm3' | 'zero' | 'zero2w' | 'pi4' | 'pi400' | 'cm4' | 'pi5' | 'pi500' | 'cm5';

/** New-style type field (bits 4-11). 3B, 3B+ and 3A+ are all "pi3"; RAM tells them apart where it matters. */
const NEW_TYPES: Readonly<Record<number, PiModel>> = {
  0x00: 'pi1', 0x01: 'pi1', 0x02: 'pi1', 0x03: 'pi1', 0x04: 'pi2', 0x06: 'cm1', 0x08: 'pi3', 0x09: 'zero',
  0x0a: 'cm3', 0x0c: 'zero', 0x0d: 'pi3', 0x0e: 'pi3', 0x10: 'cm3', 0x11: 'pi4', 0x12: 'zero2w', 0x13: 'pi400',
  0x14: 'cm4', 0x15: 'cm4', 0x17: 'pi5', 0x18: 'cm5', 0x19: 'pi500', 0x1a: 'cm5',
};

/** Old-style codes (the first Model A/B boards): model and RAM in MB (0x15 shipped with either: unknown). */
const OLD_CODES: Readonly<Record<number, [PiModel, number | null]>> = {
  0x02: ['pi1', 256], 0x03: ['pi1', 256], 0x04: ['pi1', 256], 0x05: ['pi1', 256], 0x06: ['pi1', 256],
  0x07: ['pi1', 256], 0x08: ['pi1', 256], 0x09: ['pi1', 256], 0x0d: ['pi1', 512], 0x0e: ['pi1', 512],
  0x0f: ['pi1', 512], 0x10: ['pi1', 512], 0x11: ['cm1', 512], 0x12: ['pi1', 256], 0x13: ['pi1', 512],
  0x14: ['cm1', 512], 0x15: ['pi1', null],
};

const NEW_STYLE = 1 << 23;

export interface PiBoard {
  model: PiModel | null;
  /** The board's RAM as sold, MB (256 .. 16384); null when the code does not say. */
  memoryMb: number | null;
}

/** Pure: a revision code (hex, as /proc/cpuinfo prints it) -> board; null for anything that is not one. */
export function decodeRevision(code: string): PiBoard | null {
  if (!/^[0-9a-f]{1,8}$/i.test(code)) return null;
  const n = parseInt(code, 16);
  if ((n & NEW_STYLE) !== 0) {
    const mem = (n >>> 20) & 0x7;
    return { model: NEW_TYPES[(n >>> 4) & 0xff] ?? null, memoryMb: mem <= 6 ? 256 * 2 ** mem : null };
  }
  // Old-style codes carry the warranty bit as a leading 1 (e.g. 1000002).
  const old = OLD_CODES[n & 0xffffff];
  return old ? { model: old[0], memoryMb: old[1] } : null;
}

/**
 * The `Revision` line of /proc/cpuinfo (Raspberry Pi kernels print it; older
 * 32-bit kernels print "0000" on every ARM board, which says nothing).
 */
export function parseCpuinfoRevision(text: string): string | null {
  const m = /^Revision\s*:\s*([0-9a-f]{1,8})\s*$/im.exec(text);
  if (!m || parseInt(m[1]!, 16) === 0) return null;
  return m[1]!.toLowerCase();
}

/** The firmware's `/proc/device-tree/system/linux,revision`: one big-endian 32-bit cell (upstream kernels have no cpuinfo line). */
export function parseDtRevision(cell: Uint8Array): string | null {
  if (cell.length !== 4) return null;
  const n = ((cell[0]! << 24) | (cell[1]! << 16) | (cell[2]! << 8) | cell[3]!) >>> 0;
  return n === 0 ? null : n.toString(16);
}
