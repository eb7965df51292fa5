import { readFacts } from '../cluster/facts.js';
import { decodeRevision } from '../host/rpi-revision.js';
import type { StorageKind } from '../host/storage.js';
import type { Member } from '../membership/types.js';

/**
 * The swarm node labels piswarm keeps, and their values. Swarm constraints
 * compare only with == and !=, so each value names what a placement asks for
 * in one constraint: `node.labels.piswarm.storage==nvme`,
 * `node.labels.piswarm.memory_gb==8`, `node.labels.piswarm.disk_speed!=slow`.
 * Other `piswarm.*` labels (the autopilot's) and a user's own are not these.
 */
export const LABEL_KEYS = ['piswarm.arch', 'piswarm.model', 'piswarm.memory_gb', 'piswarm.storage', 'piswarm.disk_speed'] as const;
export type LabelKey = (typeof LABEL_KEYS)[number];

/**
 * What a member has published about its hardware (gossip meta: the facts
 * array `x` and `diskBps`). Null: not published (an older agent, a fact that
 * did not fit the datagram, a disk never benchmarked) or unreadable.
 */
export interface HardwareFacts {
  /** Node's process.arch (arm64, x64, arm). */
  arch: string | null;
  /** Raspberry Pi revision code; '' when the member knows it is not a Pi. */
  rev: string | null;
  memMb: number | null;
  storage: StorageKind | null;
  /** Benchmarked sequential read of the boot disk, bytes/s. */
  diskBps: number | null;
}

/**
 * Disk speed classes by benchmarked sequential read (decimal MB/s): an SD card
 * reads 40-90, a USB 3 SSD 300-400, an NVMe drive on a Pi 5 450-900. So `slow`
 * is an SD card or a poor USB stick, `fast` an SSD.
 */
export const DISK_SPEED_MEDIUM_BPS = 50e6;
export const DISK_SPEED_FAST_BPS = 200e6;

/** Node's architecture names -> the image platform names a user writes (docker's, GOARCH). */
const ARCH: Readonly<Record<string, string>> = { arm64: 'arm64', x64: 'amd64', arm: 'arm', ia32: '386', riscv64: 'riscv64', s390x: 's390x' };

/**
 * Desired value per key: a string to set, null to remove (the fact is known
 * to be absent: `piswarm.model` on a machine that is not a Pi), no entry to
 * leave the key as it is (the fact is unknown). Pure.
 */
export type Desired = Partial<Record<LabelKey, string | null>>;

const gb = (mb: number): string => String(mb / 1024);

export function labelsFor(f: HardwareFacts): Desired {
  const out: Desired = {};
  const arch = f.arch === null ? undefined : ARCH[f.arch];
  if (arch) out['piswarm.arch'] = arch;
  const board = f.rev ? decodeRevision(f.rev) : null;
  if (f.rev === '') out['piswarm.model'] = null;
  else if (board?.model) out['piswarm.model'] = board.model;
  // A Pi's RAM as sold (MemTotal is less: the firmware keeps some); elsewhere the total in whole GiB.
  if (board?.memoryMb) out['piswarm.memory_gb'] = gb(board.memoryMb);
  else if (f.memMb !== null && Math.round(f.memMb / 1024) >= 1) out['piswarm.memory_gb'] = String(Math.round(f.memMb / 1024));
  if (f.storage) out['piswarm.storage'] = f.storage;
  if (f.diskBps !== null && f.diskBps > 0) {
    out['piswarm.disk_speed'] = f.diskBps < DISK_SPEED_MEDIUM_BPS ? 'slow' : f.diskBps < DISK_SPEED_FAST_BPS ? 'medium' : 'fast';
  }
  return out;
}

/**
 * Pure: the hardware facts of every member gossip knows alive (or suspect), by
 * the swarm node id it publishes. A node id claimed by two live members (a
 * reimaged Pi's old identity still suspect, a misconfigured clone) is left
 * out: which one is right cannot be told, and a wrong label is worse than none.
 */
export function factsBySwarmNode(members: readonly Member[]): Map<string, HardwareFacts> {
  const out = new Map<string, HardwareFacts>();
  const claimed = new Set<string>();
  for (const m of members) {
    if (m.state !== 'alive' && m.state !== 'suspect') continue;
    const id = m.meta.swarmNodeId;
    if (typeof id !== 'string' || id === '') continue;
    if (claimed.has(id)) {
      out.delete(id);
      continue;
    }
    claimed.add(id);
    const x = readFacts(m.meta);
    const bps = m.meta.diskBps;
    out.set(id, {
      arch: x?.arch ?? null,
      rev: x?.rev ?? null,
      memMb: x?.memMb ?? null,
      storage: x?.storage ?? null,
      diskBps: typeof bps === 'number' && Number.isFinite(bps) ? bps : null,
    });
  }
  return out;
}
