/** Helpers the benchmarks share: the unit's node flags, a process's memory and CPU, waiting for a server. */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/** The node flags between `node` and the script on the unit's ExecStart line. */
export function unitNodeFlags(unit: string): string[] {
  const line = /^ExecStart=(\S*node)\s+(.*)$/m.exec(unit);
  if (!line) throw new Error('no ExecStart=node line in systemd/piswarm.service');
  return line[2]!.split(/\s+/).filter((w) => w.startsWith('--'));
}

/** The unit's Environment= settings (not EnvironmentFile=), as the agent gets them. */
export function unitEnvironment(unit: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=(.*)$/gm)) {
    for (const pair of m[1]!.trim().split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1).replace(/^"(.*)"$/, '$1');
    }
  }
  return env;
}

/** Resident and peak resident memory of a process, in KiB. */
export function rssKiB(pid: number): { rss: number; hwm: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/** User + system CPU seconds a process has used so far (its own threads, not reaped children). */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime, stime, cutime, cstime are fields 14-17 (1-based): indexes 11-14 here. Children
  // the process spawned and reaped (timedatectl) count too: they are its cost.
  const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  return ticks / 100; // USER_HZ is 100 on Linux
}

export async function waitUp(url: string, child: ChildProcess, name: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    try {
      const r = await fetch(url);
      if (r.ok) {
        await r.arrayBuffer();
        return;
      }
    } catch {
      // not listening yet: retry until the deadline
    }
    if (Date.now() > deadline) throw new Error(`${name} did not answer ${url}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stops `children` when this benchmark is interrupted (Ctrl-C, a timeout's
 * SIGTERM) before its own finally block runs: otherwise an agent it started keeps
 * its ports and skews the next run. Returns a function that removes the handlers.
 */
export function stopChildrenOnSignal(children: ChildProcess[], cleanup: () => void = () => {}): () => void {
  const onSignal = (signal: NodeJS.Signals) => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    cleanup();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  };
}
