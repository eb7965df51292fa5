import { errCode, isPiswarmError } from '../../shared/errors.js';
import type { ClusterDocument } from '../../shared/wire/cluster.js';
import type { ReleaseSignature, ReleaseStatus } from '../../shared/wire/release.js';
import type { PeerTarget, ReleaseClient } from '../peers/client.js';
import { managerStepAllowed, rolloutPlan, type RolloutNode } from './rollout.js';
import { chunksOf } from './subsystem.js';

/**
 * A rollout as the operator's CLI drives it (`piswarm upgrade`): the CLI,
 * not an agent, because every agent restarts on the way, the one asked too.
 *   1. offer the signed release to every live node at once: each verifies
 *      the signature itself; one refusal and nothing is installed anywhere;
 *   2. send the bytes where they are missing (resumable: from what it holds);
 *   3. install node by node in rolloutPlan's order, a manager only when
 *      managerStepAllowed, each waited for until `installed`; the first
 *      `rolled-back` (or `refused`) stops the rollout;
 *   4. declare the cluster's version on every node (nodes that were off
 *      catch up to it).
 * Run again, it resumes: nodes already on the version are skipped.
 */
export interface RolloutDeps {
  client: ReleaseClient;
  port: number;
  /** GET /v1/cluster of the node the operator named (or another answering node). */
  cluster: () => Promise<ClusterDocument>;
  out: (line: string) => void;
  /** How long one node may take from install to a final state. */
  nodeTimeoutMs: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface RolloutNodeResult {
  hostname: string;
  result: 'current' | 'installed' | 'reverted' | 'rolled-back' | 'refused' | 'not-reached' | 'pending' | 'off' | 'timeout';
  seconds: number | null;
  detail: string;
}

export interface RolloutResult {
  version: string;
  outcome: 'done' | 'refused' | 'stopped';
  nodes: RolloutNodeResult[];
}

const msg = (err: unknown) => `${(err as Error).message}${isPiswarmError(err) ? ` [${errCode(err)}]` : ''}`;

const FINAL: ReadonlySet<string> = new Set(['installed', 'rolled-back', 'refused', 'reverted']);

/**
 * One node's install (or revert): a manager only through the gate, then
 * asked, then waited for until the root installer's final word; false when
 * the rollout must stop here (r says why).
 */
async function oneNode(d: RolloutDeps, n: RolloutNode, r: RolloutNodeResult, ask: () => Promise<ReleaseStatus>, success: 'installed' | 'reverted'): Promise<boolean> {
  const now = d.now ?? Date.now;
  const sleep = d.sleep ?? ((ms: number) => new Promise<void>((res) => setTimeout(res, ms)));
  const target: PeerTarget = { addr: n.addr, port: d.port, nodeId: n.id };
  if (n.manager) {
    const gateUntil = now() + 120_000;
    let gate = { ok: false, why: '' };
    while (now() < gateUntil) {
      gate = await d.cluster().then(managerStepAllowed, (err: unknown) => ({ ok: false, why: msg(err) }));
      if (gate.ok) break;
      await sleep(2000);
    }
    if (!gate.ok) {
      r.detail = `not started: ${gate.why}`;
      d.out(`stopped before ${n.hostname} (a manager): ${gate.why}`);
      return false;
    }
  }
  const started = now();
  let last: ReleaseStatus | null;
  try {
    last = await ask();
  } catch (err) {
    r.result = errCode(err) === 'PISWARM_ERR_RELEASE_REFUSED' ? 'refused' : 'not-reached';
    r.detail = msg(err);
    d.out(`stopped at ${n.hostname}: ${r.detail}`);
    return false;
  }
  const asked = last.upgrade;
  if (success === 'reverted' && asked?.state !== 'requested') {
    r.result = 'current';
    r.detail = `runs ${last.running}: nothing to take back`;
    d.out(`  ${n.hostname.padEnd(20)} ${r.detail}`);
    return true;
  }
  const sha = asked?.sha256;
  const until = started + d.nodeTimeoutMs;
  while (now() < until) {
    const u = last?.upgrade;
    if (u && u.sha256 === sha && FINAL.has(u.state)) break;
    await sleep(1000);
    // Unreachable while its agent restarts: keep asking.
    last = await d.client.releaseStatus(target).catch(() => last);
  }
  const u = last?.upgrade?.sha256 === sha ? last!.upgrade : null;
  r.seconds = Math.round((now() - started) / 100) / 10;
  r.detail = u?.state === 'requested' ? `the root installer never started (is piswarm-upgrade.path installed and active? it comes with install.sh of a release that has it): ${u.detail}` : (u?.detail ?? 'no answer');
  r.result = u && FINAL.has(u.state) ? (u.state as RolloutNodeResult['result']) : 'timeout';
  d.out(`  ${n.hostname.padEnd(20)} ${r.result.padEnd(12)} ${r.seconds.toFixed(1).padStart(6)} s  ${r.detail}`);
  return r.result === success;
}

export async function runRollout(d: RolloutDeps, sig: ReleaseSignature, bytes: Buffer): Promise<RolloutResult> {
  const doc = await d.cluster();
  const plan = rolloutPlan(doc.nodes);
  const target = (n: RolloutNode): PeerTarget => ({ addr: n.addr, port: d.port, nodeId: n.id });
  const results = new Map<string, RolloutNodeResult>(plan.order.map((n) => [n.hostname, { hostname: n.hostname, result: 'pending', seconds: null, detail: 'not started' }]));
  for (const h of plan.off) results.set(h, { hostname: h, result: 'off', seconds: null, detail: 'agent not alive in gossip: catches up when back' });
  const finish = (outcome: RolloutResult['outcome']): RolloutResult => ({ version: sig.version, outcome, nodes: [...results.values()] });
  d.out(`release ${sig.version} (${bytes.length} bytes, sha256 ${sig.sha256.slice(0, 12)}) to ${plan.order.length} nodes: ${plan.order.map((n) => n.hostname).join(', ')}${plan.off.length ? `; off: ${plan.off.join(', ')}` : ''}`);

  // 1-2: every live node verifies the signature before anything is installed anywhere.
  const offered = await Promise.allSettled(plan.order.map((n) => d.client.releaseOffer(target(n), sig)));
  let refused = false;
  offered.forEach((o, i) => {
    const r = results.get(plan.order[i]!.hostname)!;
    if (o.status === 'rejected') {
      const code = errCode(o.reason);
      r.result = code === 'PISWARM_ERR_RELEASE_REFUSED' ? 'refused' : 'not-reached';
      r.detail = msg(o.reason);
      refused = true;
    } else if (o.value.state === 'current') r.result = 'current';
  });
  if (refused) {
    d.out('nothing installed: a node refused the release or did not answer (each says why below)');
    return finish('refused');
  }
  // Sent to every node that lacks it, all of them even after a refusal, so each says (and counts) why.
  let missing = false;
  for (const [i, n] of plan.order.entries()) {
    const o = offered[i] as PromiseFulfilledResult<Awaited<ReturnType<ReleaseClient['releaseOffer']>>>;
    if (o.value.state !== 'receive') continue;
    const r = results.get(n.hostname)!;
    try {
      let have = o.value.have;
      for (const [offset, chunk] of chunksOf(bytes, o.value.have)) have = (await d.client.releaseChunk(target(n), sig.sha256, offset, chunk)).have;
      // Fewer bytes than signed (a truncated file): the node refuses to install it, and says so.
      if (have < sig.size) await d.client.releaseInstall(target(n), sig.sha256);
    } catch (err) {
      r.result = errCode(err) === 'PISWARM_ERR_RELEASE_REFUSED' ? 'refused' : 'not-reached';
      r.detail = `sending the release: ${msg(err)}`;
      missing = true;
    }
  }
  if (missing) {
    d.out('nothing installed: a node did not take the release (each says why below)');
    return finish('refused');
  }
  d.out(`every node holds the release and accepted its signature`);

  // 3: one node at a time.
  for (const n of plan.order) {
    const r = results.get(n.hostname)!;
    if (r.result === 'current') {
      d.out(`  ${n.hostname.padEnd(20)} already runs ${sig.version}`);
      continue;
    }
    const step = await oneNode(d, n, r, () => d.client.releaseInstall(target(n), sig.sha256), 'installed');
    if (!step) {
      d.out(`rollout stopped at ${n.hostname}: the nodes after it keep their version. Fix the release and run piswarm upgrade again (nodes on ${sig.version} are skipped), or take it back with --abort`);
      return finish('stopped');
    }
  }

  // 4: the cluster's version, for the nodes that were off.
  const declared = await Promise.allSettled(plan.order.map((n) => d.client.releaseTarget(target(n), sig)));
  const missed = declared.flatMap((x, i) => (x.status === 'rejected' ? [plan.order[i]!.hostname] : []));
  d.out(`the cluster's version is ${sig.version}${missed.length ? ` (not told: ${missed.join(', ')}; they learn it from their peers)` : ''}${plan.off.length ? `; ${plan.off.join(', ')} will catch up when back` : ''}`);
  return finish('done');
}

/**
 * `piswarm upgrade --abort`: takes `version` back, node by node in the same
 * order, where the root installer installed it and kept the release before
 * it; every node forgets it as the cluster's version (so nothing catches up
 * to it), and a node that reverted never catches up to it again by itself.
 */
export async function runAbort(d: RolloutDeps, version: string): Promise<RolloutResult> {
  const doc = await d.cluster();
  const plan = rolloutPlan(doc.nodes);
  const results = new Map<string, RolloutNodeResult>(plan.order.map((n) => [n.hostname, { hostname: n.hostname, result: 'pending', seconds: null, detail: 'not started' }]));
  for (const h of plan.off) results.set(h, { hostname: h, result: 'off', seconds: null, detail: 'agent not alive in gossip: run --abort again when it is back' });
  d.out(`taking ${version} back on ${plan.order.length} nodes: ${plan.order.map((n) => n.hostname).join(', ')}${plan.off.length ? `; off: ${plan.off.join(', ')}` : ''}`);
  for (const n of plan.order) {
    const r = results.get(n.hostname)!;
    if (!(await oneNode(d, n, r, () => d.client.releaseRevert({ addr: n.addr, port: d.port, nodeId: n.id }, version), 'reverted'))) {
      d.out(`abort stopped at ${n.hostname}`);
      return { version, outcome: 'stopped', nodes: [...results.values()] };
    }
  }
  return { version, outcome: 'done', nodes: [...results.values()] };
}
