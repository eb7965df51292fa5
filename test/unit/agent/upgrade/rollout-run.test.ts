import t from 'tap';
import { PiswarmError } from '../../../../shared/errors.js';
import type { ClusterDocument, ClusterNode } from '../../../../shared/wire/cluster.js';
import type { ReleaseStatus, UpgradeState } from '../../../../shared/wire/release.js';
import type { PeerTarget, ReleaseClient } from '../../../../agent/peers/client.js';
import { runAbort, runRollout } from '../../../../agent/upgrade/rollout-run.js';
import { generateReleaseKey, signRelease } from '../../../../agent/upgrade/signature.js';
import { RELEASE_CHUNK_BYTES } from '../../../../shared/wire/release.js';

const key = generateReleaseKey();
const bytes = Buffer.alloc(RELEASE_CHUNK_BYTES + 10, 1);
const sig = signRelease(key.privatePem, { version: '2.0.0', bytes });

const node = (hostname: string, i: number, role: 'manager' | 'worker', status: 'Leader' | 'Reachable' | null, gossip: 'alive' | 'dead' = 'alive'): ClusterNode => ({
  id: String(i).repeat(24), hostname, addr: `10.0.0.${i}`, self: false,
  gossip: { state: gossip, sinceS: 1 }, swarm: { nodeId: null, role, state: 'ready', availability: 'active', managerStatus: status },
  health: { status: 'pass', checks: [] }, facts: { version: '1.0.0' } as ClusterNode['facts'],
});
const NODES = [node('lead', 1, 'manager', 'Leader'), node('m2', 2, 'manager', 'Reachable'), node('w3', 3, 'worker', null), node('w4', 4, 'worker', null, 'dead')];
const doc = (reachable = 2): ClusterDocument => ({ cluster: { source: 'engine', managers: 2, managersReachable: reachable }, nodes: NODES }) as unknown as ClusterDocument;
const nameOf = (p: PeerTarget) => NODES.find((n) => n.addr === p.addr)!.hostname;
const status = (p: PeerTarget, upgrade: UpgradeState | null): ReleaseStatus => ({ v: 1, nodeId: p.nodeId!, running: '1.0.0', upgrade, target: null });
const state = (s: UpgradeState['state']): UpgradeState => ({ sha256: sig.sha256, version: '2.0.0', from: '1.0.0', state: s, at: '2026-12-07T00:00:00.000Z', detail: `${s} (fake)` });

/** A cluster of fake agents: only the calls a case names; anything else throws. */
function fake(impl: Partial<ReleaseClient>): { client: ReleaseClient; calls: string[] } {
  const calls: string[] = [];
  const client = new Proxy({} as ReleaseClient, {
    get(_t, prop: string) {
      const f = (impl as Record<string, unknown>)[prop] as ((...a: unknown[]) => unknown) | undefined;
      if (!f) throw new Error(`fake ReleaseClient: ${prop} is not modelled`);
      return (p: PeerTarget, ...rest: unknown[]) => {
        calls.push(`${prop} ${nameOf(p)}`);
        return f(p, ...rest);
      };
    },
  });
  return { client, calls };
}

function deps(client: ReleaseClient, cluster: () => Promise<ClusterDocument> = async () => doc()) {
  let clock = 0;
  const out: string[] = [];
  return { d: { client, port: 7070, cluster, out: (l: string) => out.push(l), nodeTimeoutMs: 60_000, now: () => clock, sleep: async (ms: number) => void (clock += ms) }, out };
}

t.test('workers first, the leader last, each waited for; the version declared at the end; a node off is left to catch up', async (t) => {
  const installed = new Set<string>();
  const { client, calls } = fake({
    releaseOffer: async (p) => ({ v: 1, nodeId: p.nodeId!, running: '1.0.0', state: 'receive', have: 0 }),
    releaseChunk: async (p, _sha, offset, data) => ({ v: 1, nodeId: p.nodeId!, have: offset + data.length, complete: offset + data.length === bytes.length }),
    releaseInstall: async (p) => status(p, state('requested')),
    releaseStatus: async (p) => {
      installed.add(nameOf(p));
      return status(p, state('installed'));
    },
    releaseTarget: async (p) => status(p, state('installed')),
  });
  const { d, out } = deps(client);
  const r = await runRollout(d, sig, bytes);
  t.equal(r.outcome, 'done');
  t.same(r.nodes.map((n) => [n.hostname, n.result]), [['w3', 'installed'], ['m2', 'installed'], ['lead', 'installed'], ['w4', 'off']]);
  t.same(calls.filter((c) => c.startsWith('releaseInstall')), ['releaseInstall w3', 'releaseInstall m2', 'releaseInstall lead']);
  t.equal(calls.filter((c) => c.startsWith('releaseChunk')).length, 6, 'two chunks to each of three nodes');
  t.ok(calls.indexOf('releaseInstall w3') > calls.lastIndexOf('releaseChunk lead'), 'nothing installed before every node holds it');
  t.same(calls.slice(-3), ['releaseTarget w3', 'releaseTarget m2', 'releaseTarget lead']);
  t.match(out.join('\n'), /w4 will catch up when back/);
});

t.test('one node refusing the signature: nothing installed anywhere', async (t) => {
  const { client, calls } = fake({
    releaseOffer: async (p) => {
      if (nameOf(p) === 'm2') throw new PiswarmError('PISWARM_ERR_RELEASE_REFUSED', 'the release signature does not verify');
      return { v: 1, nodeId: p.nodeId!, running: '1.0.0', state: 'ready', have: bytes.length };
    },
  });
  const r = await runRollout(deps(client).d, sig, bytes);
  t.equal(r.outcome, 'refused');
  t.same(r.nodes.find((n) => n.hostname === 'm2'), { hostname: 'm2', result: 'refused', seconds: null, detail: 'the release signature does not verify [PISWARM_ERR_RELEASE_REFUSED]' });
  t.notOk(calls.some((c) => c.startsWith('releaseInstall')), 'no install asked');
});

t.test('a truncated file: every node says so, and nothing is installed', async (t) => {
  const cut = bytes.subarray(0, 100);
  const { client, calls } = fake({
    releaseOffer: async (p) => ({ v: 1, nodeId: p.nodeId!, running: '1.0.0', state: 'receive', have: 0 }),
    releaseChunk: async (p, _s, offset, data) => ({ v: 1, nodeId: p.nodeId!, have: offset + data.length, complete: false }),
    releaseInstall: async () => {
      throw new PiswarmError('PISWARM_ERR_RELEASE_REFUSED', 'this node does not hold the whole release');
    },
  });
  const r = await runRollout(deps(client).d, sig, cut);
  t.equal(r.outcome, 'refused');
  t.same(r.nodes.filter((n) => n.result === 'refused').map((n) => n.hostname), ['w3', 'm2', 'lead'], 'each node was asked, and refused');
  t.same(calls.filter((c) => c.startsWith('releaseInstall')).length, 3);
});

t.test('the first rollback stops the rollout; nodes already on the version are skipped', async (t) => {
  const { client, calls } = fake({
    releaseOffer: async (p) => ({ v: 1, nodeId: p.nodeId!, running: '1.0.0', state: nameOf(p) === 'w3' ? 'current' : 'ready', have: bytes.length }),
    releaseInstall: async (p) => status(p, state('requested')),
    releaseStatus: async (p) => status(p, state('rolled-back')),
  });
  const r = await runRollout(deps(client).d, sig, bytes);
  t.equal(r.outcome, 'stopped');
  t.same(r.nodes.map((n) => n.result), ['current', 'rolled-back', 'pending', 'off']);
  t.notOk(calls.includes('releaseInstall lead'), 'the leader was never asked');
});

t.test('a manager waits for every manager to be reachable, and the rollout stops when that does not come', async (t) => {
  const { client, calls } = fake({
    releaseOffer: async (p) => ({ v: 1, nodeId: p.nodeId!, running: '1.0.0', state: 'ready', have: bytes.length }),
    releaseInstall: async (p) => status(p, state('requested')),
    releaseStatus: async (p) => status(p, state('installed')),
  });
  const { d, out } = deps(client, async () => doc(1));
  const r = await runRollout(d, sig, bytes);
  t.equal(r.outcome, 'stopped');
  t.same(calls.filter((c) => c.startsWith('releaseInstall')), ['releaseInstall w3'], 'the worker went; no manager');
  t.match(out.join('\n'), /stopped before m2 \(a manager\): 1 of 2 managers unreachable/);
});

t.test('an installer that never starts: a timeout that names the .path unit', async (t) => {
  const { client } = fake({
    releaseOffer: async (p) => ({ v: 1, nodeId: p.nodeId!, running: '1.0.0', state: 'ready', have: bytes.length }),
    releaseInstall: async (p) => status(p, state('requested')),
    releaseStatus: async (p) => status(p, state('requested')),
  });
  const r = await runRollout(deps(client).d, sig, bytes);
  t.equal(r.outcome, 'stopped');
  t.match(r.nodes[0], { hostname: 'w3', result: 'timeout', detail: /root installer never started .*piswarm-upgrade\.path/ });
});

t.test('--abort: each node that runs the version puts its previous release back, in the same order', async (t) => {
  const { client, calls } = fake({
    releaseRevert: async (p) => (nameOf(p) === 'm2' ? status(p, null) : status(p, { ...state('requested'), version: '1.0.0', from: '2.0.0' })),
    releaseStatus: async (p) => status(p, { ...state('reverted'), version: '1.0.0', from: '2.0.0' }),
  });
  const r = await runAbort(deps(client).d, '2.0.0');
  t.equal(r.outcome, 'done');
  t.same(r.nodes.map((n) => [n.hostname, n.result]), [['w3', 'reverted'], ['m2', 'current'], ['lead', 'reverted'], ['w4', 'off']]);
  t.same(calls.filter((c) => c.startsWith('releaseRevert')), ['releaseRevert w3', 'releaseRevert m2', 'releaseRevert lead']);
  const failing = fake({
    releaseRevert: async (p) => status(p, { ...state('requested'), version: '1.0.0', from: '2.0.0' }),
    releaseStatus: async (p) => status(p, { ...state('refused'), version: '1.0.0', from: '2.0.0', detail: 'no release 1.0.0 kept' }),
  });
  const f = await runAbort(deps(failing.client).d, '2.0.0');
  t.equal(f.outcome, 'stopped', 'a node that cannot put it back stops the abort');
  t.same(failing.calls.filter((c) => c.startsWith('releaseRevert')), ['releaseRevert w3']);
});
