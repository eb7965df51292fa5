import t from 'tap';
import { buildApp } from '../../../../agent/http/app.js';
import type { HealthDocument } from '../../../../agent/health/aggregate.js';
import { clusterRoutes } from '../../../../agent/cluster/routes.js';
import { createRemoteReads } from '../../../../agent/cluster/remote.js';
import { PiswarmError } from '../../../../shared/errors.js';
import type { ClusterDocument, ClusterNode } from '../../../../shared/wire/cluster.js';
import { memoryLogger } from '../../../helpers/fakes.js';

const health: HealthDocument = { status: 'pass', version: '0', releaseId: '0', serviceId: 'x', description: 'x', checks: {} };
const node = (c: string, self = false, state: 'alive' | 'dead' = 'alive'): ClusterNode => ({
  id: c.repeat(24), hostname: `pi-${c}`, addr: '10.0.0.9', self, gossip: { state, sinceS: 1 },
  swarm: { nodeId: null, role: 'worker', state: null, availability: null, managerStatus: null }, health: { status: 'warn', checks: ['x:y'] },
  facts: { version: null, cpuPct: null, memPct: null, load1: null, tempC: null, undervoltage: null, throttledNow: null, rootFreePct: null, diskReadMBps: null, uptimeS: null, model: null, arch: null, ageS: null, stale: true },
});
const doc: ClusterDocument = {
  generatedAt: '', servedBy: { id: 'a'.repeat(24), hostname: 'pi-a' },
  cluster: { name: 'c', swarmId: null, source: 'gossip', engineListAgeS: null, managers: 0, managersReachable: null, managerTarget: null, quorumMargin: null, members: { alive: 2, suspect: 0, dead: 1, left: 0 }, election: null, autopilot: null },
  nodes: [node('a', true), node('b'), node('c', false, 'dead')], services: null,
};

t.test('GET /v1/cluster/nodes/:name/checks: 200 self and peer, 400 unknown query, 404 unknown node, 504 dead or silent member', async (t) => {
  const { log } = memoryLogger();
  let silent = false;
  const asked: string[] = [];
  const reads = createRemoteReads({
    client: {
      checks: async (target) => {
        asked.push(target.nodeId);
        if (silent) throw new PiswarmError('PISWARM_ERR_PEER_UNREACHABLE', 'peer 10.0.0.9:7070 did not answer: UND_ERR_CONNECT_TIMEOUT');
        return { v: 1, nodeId: target.nodeId, status: 'warn', checks: [{ name: 'x:y', status: 'warn', component: null, output: 'why', observedAt: null }], omitted: 0 };
      },
      services: async () => {
        throw new Error('Not implemented: services');
      },
    },
    port: 7070,
    localChecks: () => ({ status: 'pass', checks: [], omitted: 0 }),
    now: () => 0,
    onError: () => {
      throw new Error('Not implemented: onError');
    },
  });
  const app = await buildApp({ log, bodyLimit: 16384, version: '0', health: () => health, metrics: () => '', countError: () => undefined, plugins: [clusterRoutes({ view: () => doc, port: 7070, nodeChecks: (name) => reads.nodeChecks(doc, name) })] });
  t.teardown(() => app.close());

  const self = await app.inject('/v1/cluster/nodes/pi-a/checks');
  t.equal(self.statusCode, 200);
  t.match(self.json(), { node: 'pi-a', source: 'local', status: 'pass', checks: [] });
  t.equal(self.headers['cache-control'], 'no-store');
  const peer = await app.inject(`/v1/cluster/nodes/${'b'.repeat(24)}/checks`);
  t.equal(peer.statusCode, 200, 'by node id too');
  t.match(peer.json(), { node: 'pi-b', source: 'peer', checks: [{ name: 'x:y', output: 'why' }] });
  const cases: Array<[string, number, string]> = [
    ['/v1/cluster/nodes/pi-b/checks?verbose=1', 400, 'PISWARM_ERR_BAD_REQUEST'],
    ['/v1/cluster/nodes/no-such-pi/checks', 404, 'PISWARM_ERR_NOT_FOUND'],
    [`/v1/cluster/nodes/${'x'.repeat(254)}/checks`, 400, 'PISWARM_ERR_BAD_REQUEST'],
    ['/v1/cluster/nodes/pi-c/checks', 504, 'PISWARM_ERR_PEER_UNREACHABLE'],
  ];
  for (const [url, status, code] of cases) {
    const r = await app.inject(url);
    t.equal(r.statusCode, status, url.slice(0, 60));
    t.equal(r.json().code, code, url.slice(0, 60));
  }
  t.same(asked, ['b'.repeat(24)], 'the dead member was not asked');
  silent = true;
  await new Promise((r) => setTimeout(r, 1));
  const cached = await app.inject('/v1/cluster/nodes/pi-b/checks');
  t.equal(cached.statusCode, 200, 'within the ttl: the cached answer, the member not asked again');
  t.equal(asked.length, 1);
});

t.test('a member that does not answer: 504, nothing internal in the body', async (t) => {
  const { log } = memoryLogger();
  const reads = createRemoteReads({
    client: { checks: async () => { throw new PiswarmError('PISWARM_ERR_PEER_UNREACHABLE', 'peer 10.0.0.9:7070 did not answer: ECONNREFUSED'); }, services: async () => { throw new Error('Not implemented: services'); } },
    port: 7070,
    localChecks: () => { throw new Error('Not implemented: localChecks'); },
    now: () => 0,
    onError: () => { throw new Error('Not implemented: onError'); },
  });
  const app = await buildApp({ log, bodyLimit: 16384, version: '0', health: () => health, metrics: () => '', countError: () => undefined, plugins: [clusterRoutes({ view: () => doc, port: 7070, nodeChecks: (name) => reads.nodeChecks(doc, name) })] });
  t.teardown(() => app.close());
  const r = await app.inject('/v1/cluster/nodes/pi-b/checks');
  t.equal(r.statusCode, 504);
  t.equal(r.json().code, 'PISWARM_ERR_PEER_UNREACHABLE');
  t.notOk(r.body.includes('10.0.0.9'), 'a 5xx says nothing internal');
});
