import t from 'tap';
import { clusterSubsystem, type ClusterDeps } from '../../../../agent/cluster/subsystem.js';
import type { HealthDocument } from '../../../../agent/health/aggregate.js';
import type { Member } from '../../../../agent/membership/types.js';
import type { PeerReadClient } from '../../../../agent/peers/client.js';
import type { SwarmNode } from '../../../../agent/docker/engine.js';
import { memoryLogger } from '../../../helpers/fakes.js';
import { testConfig } from '../formation/helpers.js';

const SELF = 'a'.repeat(24);
const MGR = 'b'.repeat(24);
const member = (id: string, hostname: string, role: string, self = false): Member => ({ id, addr: self ? '10.0.0.1' : '10.0.0.2', port: 7946, incarnation: 1, state: 'alive', meta: { hostname, role }, stateChangedAt: 0, self });
const health: HealthDocument = { status: 'warn', version: '1', releaseId: '1.0.0', serviceId: 'pi-1', description: 'x', checks: { 'disk:free': [{ status: 'warn', observedValue: 4, output: '4 % free' }], 'docker:engine': [{ status: 'pass' }] } };
const flush = () => new Promise((r) => setImmediate(r));
const notModelled = (what: string) => () => {
  throw new Error(`Not implemented: ${what}`);
};

function build(o: { engine: { at: number; nodes: SwarmNode[] } | null; client?: PeerReadClient; listServices?: ClusterDeps['listServices'] }) {
  const { log } = memoryLogger();
  return clusterSubsystem(testConfig({ clusterKey: 'unit-test cluster key: 32 characters or more', nodeName: 'pi-1' }), {
    log,
    version: '1.0.0',
    health: () => health,
    snapshot: () => null,
    members: () => [member(SELF, 'pi-1', o.engine ? 'manager' : 'worker', true), member(MGR, 'pi-2', 'manager')],
    formation: () => null,
    engineNodes: () => o.engine,
    autopilot: () => null,
    peerClient: o.client ?? { checks: notModelled('checks'), services: notModelled('services') },
    ...(o.listServices ? { listServices: o.listServices } : {}),
    model: async () => null,
  });
}

t.test("a worker: services from a manager only when /v1/cluster is read, peers asked for services get NOT_MANAGER", async (t) => {
  const asked: string[] = [];
  const c = build({
    engine: null,
    client: {
      checks: notModelled('checks'),
      services: async (target) => {
        asked.push(`${target.addr}:${target.port} ${target.nodeId}`);
        return { v: 1, nodeId: MGR, services: [{ name: 'web', image: 'nginx:alpine', mode: 'replicated', desired: 1, running: 1, ports: [], nodes: ['pi-2'] }], omitted: 0 };
      },
    },
  });
  t.equal(c.view().services, null);
  await flush();
  t.same(asked, [], 'the history sampler and SD do not ask (no fetch flag)');
  t.equal(c.view({ fetch: true }).services, null, 'the first read starts the fetch');
  await flush();
  t.same(asked, [`10.0.0.2:7070 ${MGR}`], 'the manager, on the HTTP port, by node id');
  t.same(c.view().services?.map((s) => s.name), ['web'], 'then shown');
  await t.rejects(c.peerReads.services(), { code: 'PISWARM_ERR_NOT_MANAGER' }, 'a worker never relays');
  t.same(c.peerReads.checks(), { status: 'warn', checks: [{ name: 'disk:free', status: 'warn', component: null, output: '4 % free', observedAt: null }], omitted: 0 });
});

t.test('a manager: its own listing, only when read and at most every SERVICES_EVERY_MS, bounded for peers; never asks a peer for services', async (t) => {
  const node: SwarmNode = { id: 'n1', hostname: 'pi-1', role: 'manager', availability: 'active', state: 'ready', addr: '10.0.0.1', leader: true, reachability: 'reachable', labels: {}, createdAt: '', updatedAt: '', version: 1 };
  const asked: string[] = [];
  let listings = 0;
  const c = build({
    engine: { at: Date.now(), nodes: [node] },
    client: { checks: notModelled('checks'), services: async (target) => { asked.push(target.nodeId); throw new Error('Not implemented: services'); } },
    listServices: async () => {
      listings++;
      return { services: [{ ID: 's1', Spec: { Name: 'web', Mode: { Replicated: { Replicas: 1 } }, TaskTemplate: { ContainerSpec: { Image: 'nginx:alpine', Env: ['SECRET=x'] } } } }], tasks: [{ ServiceID: 's1', NodeID: 'n1', Status: { State: 'running' } }] };
    },
  });
  await c.start!();
  t.teardown(() => c.stop!());
  await new Promise((r) => setTimeout(r, 50));
  t.equal(listings, 0, 'nobody read: the engine is not asked');
  const [r, again] = await Promise.all([c.peerReads.services(), c.peerReads.services()]);
  t.equal(listings, 1, 'two peers reading at once: one listing');
  t.same(r, { services: [{ name: 'web', image: 'nginx:alpine', mode: 'replicated', desired: 1, running: 1, ports: [], nodes: ['pi-1'] }], omitted: 0 });
  t.same(again, r);
  t.notOk(JSON.stringify(r).includes('SECRET'));
  t.same(c.view({ fetch: true }).services, r.services, 'the view shows the same');
  await c.peerReads.services();
  t.equal(listings, 1, 'a listing younger than SERVICES_EVERY_MS is reused');
  await flush();
  t.same(asked, [], 'no peer asked');
});

t.test('a manager whose engine cannot list services says so to the peer that asks', async (t) => {
  const node: SwarmNode = { id: 'n1', hostname: 'pi-1', role: 'manager', availability: 'active', state: 'ready', addr: '10.0.0.1', leader: true, reachability: 'reachable', labels: {}, createdAt: '', updatedAt: '', version: 1 };
  let listings = 0;
  const c = build({
    engine: { at: Date.now(), nodes: [node] },
    listServices: async () => {
      listings++;
      throw Object.assign(new Error('engine down'), { code: 'PISWARM_ERR_DOCKER_UNREACHABLE' });
    },
  });
  await t.rejects(c.peerReads.services(), { code: 'PISWARM_ERR_UNAVAILABLE' });
  await t.rejects(c.peerReads.services(), { code: 'PISWARM_ERR_UNAVAILABLE' });
  t.equal(listings, 2, 'a failed listing is not kept: the next read asks again');
});

t.test('facts are dated when the membership says it changed (no timer), a burst of changes observed once', async (t) => {
  const { fitFacts, factsFrom } = await import('../../../../agent/cluster/facts.js');
  let mono = 0;
  let seq = 1;
  let reads = 0;
  const peer = (): Member => ({
    ...member(MGR, 'pi-2', 'manager'),
    meta: { hostname: 'pi-2', role: 'manager', ...fitFacts(factsFrom({ seq, version: '1.0.0', health: null, snapshot: null, cpuPct: null, uptimeS: 1, arch: 'arm64', model: null }), 200) },
  });
  const { log } = memoryLogger();
  const c = clusterSubsystem(testConfig({ clusterKey: 'unit-test cluster key: 32 characters or more', nodeName: 'pi-1' }), {
    log,
    version: '1.0.0',
    health: () => health,
    snapshot: () => null,
    members: () => {
      reads++;
      return [member(SELF, 'pi-1', 'worker', true), peer()];
    },
    formation: () => null,
    engineNodes: () => null,
    autopilot: () => null,
    peerClient: { checks: notModelled('checks'), services: notModelled('services') },
    model: async () => null,
    monoNow: () => mono,
  });
  await c.start?.();
  t.teardown(() => c.stop?.());
  c.membersChanged();
  c.membersChanged();
  c.membersChanged();
  await flush();
  t.equal(reads, 1, 'three changes in one turn: the members are read once');
  mono = 12_000;
  const age = () => c.view().nodes.find((n) => n.hostname === 'pi-2')?.facts.ageS;
  t.equal(age(), 12, 'dated when the change was reported, not when the view was read');
  seq = 2;
  mono = 13_000;
  c.membersChanged();
  await flush();
  mono = 15_000;
  t.equal(age(), 2, 'a new seq is dated at its change');
  await new Promise((r) => setTimeout(r, 1200));
  const before = reads;
  await new Promise((r) => setTimeout(r, 1200));
  t.equal(reads, before, 'nothing reads the members on a timer');
});
