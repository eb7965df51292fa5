import fs from 'node:fs';
import path from 'node:path';

/**
 * What the Prometheus client libraries' process collector reports about the
 * exporting process itself (client_golang's process_collector_procfsenabled.go,
 * through prometheus/procfs), read the same way: /proc/self/stat for the
 * virtual size, /proc/self/limits for the soft limits, /proc/self/fd for the
 * open descriptors. Always the real /proc: this is the agent, not the host
 * the agent may be pointed at (PISWARM_PROC_ROOT is for host statistics).
 */
export interface SelfProc {
  vsizeBytes: number | null;
  openFds: number | null;
  maxFds: number | null;
  maxAddressSpaceBytes: number | null;
}

/** procfs reads "unlimited" as the largest uint64; client_golang exports that as a float. */
const UNLIMITED = 18446744073709551615;

/** Field 23 of /proc/PID/stat (vsize, bytes). The command name (field 2) may hold spaces and parentheses: fields are counted after the last ')'. */
export function parseStatVsize(text: string): number | null {
  const end = text.lastIndexOf(')');
  if (end < 0) return null;
  const rest = text.slice(end + 1).trim().split(/\s+/);
  // rest[0] is field 3 (state), so field 23 is rest[20].
  const v = Number(rest[20]);
  return rest.length > 20 && Number.isFinite(v) ? v : null;
}

/** The soft limit of each row of /proc/PID/limits, by its name ("Max open files"); "unlimited" as UNLIMITED. */
export function parseLimits(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n').slice(1)) {
    // Columns are aligned with spaces: the name, then soft, hard and (maybe) units, each after 2+ spaces.
    const m = /^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)/i.exec(line);
    if (!m) continue;
    const soft = m[2] === 'unlimited' ? UNLIMITED : Number(m[2]);
    if (Number.isFinite(soft)) out.set(m[1]!, soft);
  }
  return out;
}

const attempt = <T>(fn: () => T): T | null => {
  try {
    return fn();
  } catch {
    return null;
  }
};

/** Reads this process's figures; a file that cannot be read gives null, never a throw. */
export function readSelfProc(procSelf = '/proc/self'): SelfProc {
  const limits = attempt(() => parseLimits(fs.readFileSync(path.join(procSelf, 'limits'), 'utf8')));
  return {
    vsizeBytes: attempt(() => parseStatVsize(fs.readFileSync(path.join(procSelf, 'stat'), 'utf8'))),
    openFds: attempt(() => fs.readdirSync(path.join(procSelf, 'fd')).length),
    maxFds: limits?.get('Max open files') ?? null,
    maxAddressSpaceBytes: limits?.get('Max address space') ?? null,
  };
}
