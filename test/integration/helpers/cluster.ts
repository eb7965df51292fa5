/**
 * Shared harness for integration tests on real Docker: bring up simulated
 * Pis, wait for conditions under deadlines, print each node's journal when
 * something failed, and always tear the cluster down.
 */
import { randomBytes } from 'node:crypto';
import * as sim from '../../../scripts/sim/cluster.js';
import { engineAnswers, run } from '../../../scripts/sim/run.js';

export { sim };

/** Minimal view of a tap test, so helpers need not import tap's types. */
export interface TapLike {
  teardown(fn: () => unknown): void;
  comment(...args: unknown[]): void;
  passing(): boolean;
  /** tap's record of this test's failed points (tap >= 18). */
  lists?: { fail: ReadonlyArray<{ name: string }> };
}

/**
 * The failed points again, one line each, after the journals: CI keeps only
 * the tail of a long log, and the journals would push the failure itself out.
 */
function repeatFailures(t: TapLike): void {
  // A thrown error's point is named by its message, so the name says enough.
  for (const f of t.lists?.fail ?? []) t.comment(`FAILED: ${f.name}`);
}

/**
 * Why integration tests cannot run here, or false when they can. Without an
 * engine and outside CI they are skipped with this reason; in CI (CI set) a
 * missing engine is never a reason: `up` starts one with setup-host.sh, and
 * if that fails the tests fail.
 */
export async function skipReason(): Promise<string | false> {
  if (process.env.CI) return false;
  if (!(await engineAnswers())) return 'no Docker engine answers (start one with `sudo scripts/setup-host.sh`; in CI the tests start it themselves)';
  return false;
}

/** A cluster name no other test run uses: [a-z0-9-], short enough for hostnames. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

/** Prints each node's last journal lines (agent, then everything) as test comments. */
export async function dumpJournals(t: TapLike, ref: sim.ClusterRef, lines = 40): Promise<void> {
  let nodes: sim.NodeStatus[] = [];
  try {
    nodes = await sim.status(ref);
  } catch (err) {
    t.comment(`cannot list nodes of ${ref.name}: ${(err as Error).message}`);
  }
  for (const n of nodes) {
    if (!n.running) {
      t.comment(`--- ${n.name}: not running`);
      continue;
    }
    const unit = await run('docker', ['exec', n.name, 'journalctl', '-u', 'piswarm', '--no-pager', '-n', String(lines)]);
    const state = await run('docker', ['exec', n.name, 'systemctl', '--no-pager', '--failed']);
    t.comment(`--- ${n.name} (${n.ip}) journalctl -u piswarm -n ${lines}:\n${unit.stdout}${unit.stderr}\n--- failed units:\n${state.stdout}`);
  }
}

export interface StartedCluster {
  ref: sim.ClusterRef & { name: string };
  up: sim.UpResult;
  nodes: sim.NodeStatus[];
}

/**
 * Brings up `nodes` simulated Pis and registers their teardown on `t`: on a
 * failure (of `up` or of any assertion) every node's journal is printed
 * first, then everything the cluster created is removed.
 */
export async function startCluster(
  t: TapLike,
  opts: { prefix: string; nodes: number; env?: Record<string, string>; clusterKey?: string; timeoutMs?: number; /** default: uniqueName(prefix) */ name?: string },
): Promise<StartedCluster> {
  const ref = { name: opts.name ?? uniqueName(opts.prefix), log: (m: string) => t.comment(`sim: ${m}`) };
  t.teardown(async () => {
    if (!t.passing()) {
      await dumpJournals(t, ref);
      repeatFailures(t);
    }
    await sim.down(ref);
  });
  try {
    const up = await sim.up({ ...ref, nodes: opts.nodes, env: opts.env, clusterKey: opts.clusterKey, timeoutMs: opts.timeoutMs ?? 120_000 });
    return { ref, up, nodes: up.nodes };
  } catch (err) {
    await dumpJournals(t, ref);
    throw err;
  }
}

/** GET from the host over the bridge; never throws (a failed request has status 0 and the error as text). */
export async function httpGet(url: string, timeoutMs = 3000): Promise<{ status: number; contentType: string; text: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() };
  } catch (err) {
    return { status: 0, contentType: '', text: (err as Error).message };
  }
}

/** `systemctl show UNIT -p ...` inside a node, as a record. */
export async function unitProps(ref: sim.ClusterRef, node: string, unit: string, props: string[]): Promise<Record<string, string>> {
  const r = await sim.exec(ref, node, ['systemctl', 'show', unit, ...props.flatMap((p) => ['-p', p])]);
  return Object.fromEntries(r.stdout.trim().split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Polls `fn` every half second until it returns something truthy; throws naming `what` after `ms`. */
export async function until<T>(what: string, fn: () => Promise<T | null | false | undefined>, ms: number): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
