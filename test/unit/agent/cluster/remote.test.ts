import t from 'tap';
import { createRemoteReads, managerCandidates, REMOTE_TTL_MS, SERVICES_KEEP_MS, type RemoteReadsDeps } from '../../../../agent/cluster/remote.js';
import type { PeerReadClient } from '../../../../agent/peers/client.js';
import { PiswarmError } from '../../../../shared/errors.js';
import type { ClusterDocument, ClusterNode, GossipState } from '../../../../shared/wire/cluster.js';
import type { PeerChecksResponse, PeerServicesResponse } from '../../../../shared/wire/peer.js';

const id = (c: string) => c.repeat(24);
const node = (c: string, o: { self?: boolean; state?: GossipState | null; role?: 'manager' | 'worker' } = {}): ClusterNode => ({
  id: id(c), hostname: `pi-${c}`, addr: `10.0.0.${c.charCodeAt(0) - 96}`, self: o.self ?? false,
  gossip: o.state === null ? null : { state: o.state ?? 'alive', sinceS: 1 },
  swarm: { nodeId: null, role: o.role ?? 'worker', state: null, availability: null, managerStatus: null },
  health: { status: 'warn', checks: ['disk:free'] },
  facts: { version: null, cpuPct: null, memPct: null, load1: null, tempC: null, undervoltage: null, throttledNow: null, rootFreePct: null, diskReadMBps: null, uptimeS: null, model: null, arch: null, ageS: null, stale: true },
});
const doc = (nodes: ClusterNode[]): ClusterDocument => ({
  generatedAt: '', servedBy: { id: id('a'), hostname: 'pi-a' },
  cluster: { name: 'c', swarmId: null, source: 'gossip', engineListAgeS: null, managers: 0, managersReachable: null, managerTarget: null, quorumMargin: null, members: { alive: 0, suspect: 0, dead: 0, left: 0 }, election: null, autopilot: null },
  nodes, services: null,
});

/** A peer client modelling only what a test gives it; anything else throws. */
function fakeClient(m: Partial<PeerReadClient>): PeerReadClient & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    checks: async (target, signal) => {
      calls.push(`checks ${target.addr}:${target.port} ${target.nodeId}`);
      if (!m.checks) throw new Error('Not implemented: checks');
      return m.checks(target, signal);
    },
    services: async (target, signal) => {
      calls.push(`services ${target.addr}:${target.port} ${target.nodeId}`);
      if (!m.services) throw new Error('Not implemented: services');
      return m.services(target, signal);
    },
  };
}

function setup(client: PeerReadClient | null) {
  let now = Date.UTC(2026, 11, 5, 8);
  const errors: string[] = [];
  const deps: RemoteReadsDeps = {
    client,
    port: 7070,
    localChecks: () => ({ status: 'warn', checks: [{ name: 'disk:free', status: 'warn', component: null, output: 'local', observedAt: null }], omitted: 0 }),
    now: () => now,
    onError: (what, err) => errors.push(`${what}: ${(err as Error).message}`),
  };
  return { reads: createRemoteReads(deps), advance: (ms: number) => (now += ms), errors };
}

const checksOf = (c: string): PeerChecksResponse => ({ v: 1, nodeId: id(c), status: 'warn', checks: [{ name: 'disk:free', status: 'warn', component: '/', output: `from ${c}`, observedAt: null }], omitted: 0 });
const flush = () => new Promise((r) => setImmediate(r));

t.test('checks: self locally, a member over the peer client (cached), the dead and the unknown not asked', async (t) => {
  const client = fakeClient({ checks: async (target) => checksOf(target.nodeId[0]!) });
  const { reads, advance } = setup(client);
  const d = doc([node('a', { self: true }), node('b'), node('c', { state: 'dead' }), node('d', { state: null })]);
  const self = await reads.nodeChecks(d, 'pi-a');
  t.match(self, { node: 'pi-a', source: 'local', checks: [{ output: 'local' }] });
  const b = await reads.nodeChecks(d, 'pi-b');
  t.match(b, { node: 'pi-b', id: id('b'), source: 'peer', status: 'warn', checks: [{ output: 'from b' }] });
  t.same(client.calls, [`checks 10.0.0.2:7070 ${id('b')}`], 'addressed to the member by node id, on the HTTP port');
  await reads.nodeChecks(d, id('b'));
  advance(REMOTE_TTL_MS - 1);
  await reads.nodeChecks(d, 'pi-b');
  t.equal(client.calls.length, 1, 'by name or id, one fetch per ttl');
  advance(1);
  await reads.nodeChecks(d, 'pi-b');
  t.equal(client.calls.length, 2);
  await t.rejects(reads.nodeChecks(d, 'pi-c'), { code: 'PISWARM_ERR_PEER_UNREACHABLE', statusCode: 504 });
  await t.rejects(reads.nodeChecks(d, 'pi-d'), { code: 'PISWARM_ERR_UNAVAILABLE' });
  await t.rejects(reads.nodeChecks(d, 'pi-z'), { code: 'PISWARM_ERR_NOT_FOUND', statusCode: 404 });
  t.equal(client.calls.length, 2, 'none of those asked anyone');
});

t.test('checks: a member that does not answer is 504, and not asked again within the ttl', async (t) => {
  const client = fakeClient({ checks: async () => { throw new PiswarmError('PISWARM_ERR_PEER_UNREACHABLE', 'timeout'); } });
  const { reads } = setup(client);
  const d = doc([node('a', { self: true }), node('b')]);
  await t.rejects(reads.nodeChecks(d, 'pi-b'), { code: 'PISWARM_ERR_PEER_UNREACHABLE' });
  await t.rejects(reads.nodeChecks(d, 'pi-b'), { code: 'PISWARM_ERR_PEER_UNREACHABLE' });
  t.equal(client.calls.length, 1);
  const none = setup(null);
  await t.rejects(none.reads.nodeChecks(d, 'pi-b'), { code: 'PISWARM_ERR_NO_CLUSTER_KEY' });
  t.match(await none.reads.nodeChecks(d, 'pi-a'), { source: 'local' }, 'self still answers without a key');
});

t.test('checks: at most CHECKS_IN_FLIGHT members asked at once', async (t) => {
  const pending: Array<() => void> = [];
  const client = fakeClient({ checks: (target) => new Promise((res) => pending.push(() => res(checksOf(target.nodeId[0]!)))) });
  const { reads } = setup(client);
  const d = doc([node('a', { self: true }), ...['b', 'c', 'd', 'e', 'f'].map((c) => node(c))]);
  const running = ['pi-b', 'pi-c', 'pi-d', 'pi-e'].map((n) => reads.nodeChecks(d, n));
  await t.rejects(reads.nodeChecks(d, 'pi-f'), { code: 'PISWARM_ERR_UNAVAILABLE', statusCode: 503 });
  await flush();
  for (const p of pending) p();
  t.equal((await Promise.all(running)).length, 4);
  const f = reads.nodeChecks(d, 'pi-f');
  await flush();
  t.equal(pending.length, 5, 'room again once they finished');
  pending.at(-1)!();
  t.match(await f, { node: 'pi-f', checks: [{ output: 'from f' }] });
});

const servicesOf = (c: string, name: string): PeerServicesResponse => ({ v: 1, nodeId: id(c), services: [{ name, image: 'nginx:alpine', mode: 'replicated', desired: 1, running: 1, ports: [], nodes: ['pi-b'] }], omitted: 0 });

t.test("worker's services: asked of an alive manager, one fetch per ttl, the next manager after a failure, forgotten when old", async (t) => {
  let bDown = true;
  const client = fakeClient({
    services: async (target) => {
      if (target.nodeId === id('b') && bDown) throw new PiswarmError('PISWARM_ERR_PEER_UNREACHABLE', 'timeout');
      return servicesOf(target.nodeId[0]!, `web-from-${target.nodeId[0]}`);
    },
  });
  const { reads, advance, errors } = setup(client);
  const d = doc([node('a', { self: true }), node('b', { role: 'manager' }), node('c', { role: 'manager' }), node('d', { role: 'manager', state: 'suspect' }), node('e')]);
  t.same(managerCandidates(d).map((n) => n.hostname), ['pi-b', 'pi-c'], 'alive managers only, not self, not workers');
  t.equal(reads.workerServices(d), null, 'nothing yet: the first read starts a fetch');
  t.equal(reads.workerServices(d), null);
  await flush();
  t.same(client.calls, [`services 10.0.0.2:7070 ${id('b')}`], 'one fetch, however often the view is read');
  t.same(errors, ['services: timeout']);
  t.equal(reads.workerServices(d), null, 'a failure is not retried within the ttl');
  advance(REMOTE_TTL_MS);
  reads.workerServices(d);
  await flush();
  t.equal(client.calls.at(-1), `services 10.0.0.3:7070 ${id('c')}`, 'the next manager');
  t.same(reads.workerServices(d)?.map((s) => s.name), ['web-from-c']);
  t.same(reads.lastWorkerServices()?.map((s) => s.name), ['web-from-c']);
  t.equal(client.calls.length, 2);
  advance(SERVICES_KEEP_MS + 1);
  t.equal(reads.lastWorkerServices(), null, 'too old to show');
  t.same(reads.workerServices(doc([node('a', { self: true })])), null, 'no manager: nobody asked');
  t.equal(client.calls.length, 2);
});
