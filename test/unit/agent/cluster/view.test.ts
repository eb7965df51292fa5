import t from 'tap';
import Fastify from 'fastify';
import { fitFacts, type NodeFacts } from '../../../../agent/cluster/facts.js';
import { FactsLedger } from '../../../../agent/cluster/ledger.js';
import { clusterRoutes } from '../../../../agent/cluster/routes.js';
import { prometheusTargets } from '../../../../agent/cluster/sd.js';
import { buildClusterView, STEPS_SHOWN, type ClusterInputs, type StepInput } from '../../../../agent/cluster/view.js';
import type { SwarmNode } from '../../../../agent/docker/engine.js';
import { SimCluster, SIM_CLUSTER_KEY } from '../../../../agent/membership/sim/cluster.js';
import { makeErrorHandler } from '../../../../agent/http/errors.js';
import { memoryLogger } from '../../../helpers/fakes.js';

const facts = (i: number, seq = 1): NodeFacts => ({
  seq, version: '0.1.0', health: i === 1 ? 'warn' : 'pass', checks: i === 1 ? ['docker:ipvs'] : [], cpuPct: 10 + i, memPct: 40, load1: 0.5,
  throttledNow: false, rootFreePct: 70, uptimeS: 1000, arch: 'arm64', model: 'Raspberry Pi 4 Model B Rev 1.4', rev: 'c03114', memMb: 3793, storage: 'sd',
});

const swarmNode = (id: string, hostname: string, role: 'manager' | 'worker', extra: Partial<SwarmNode> = {}): SwarmNode => ({
  id, hostname, role, availability: 'active', state: 'ready', addr: '', leader: false, reachability: role === 'manager' ? 'reachable' : null,
  labels: {}, createdAt: '', updatedAt: '', version: 1, ...extra,
});

/** Three real memberships (n0 manager, n1 n2 workers) publishing facts over simulated gossip. */
function cluster() {
  const sim = new SimCluster({ n: 3, seed: 7 });
  sim.nodes.forEach((n, i) => {
    const meta = { hostname: `pi-${i}`, role: i === 0 ? 'manager' : 'worker', swarmNodeId: `swarm${i}`, diskBps: 45_000_000, tempC: 50 + i, undervoltage: false };
    n.membership.updateMeta({ ...meta, ...fitFacts(facts(i), 200) });
  });
  sim.runFor(3000);
  return sim;
}

function inputs(sim: SimCluster, over: Partial<ClusterInputs> = {}): ClusterInputs {
  const members = sim.nodes[0]!.membership.members();
  const ledger = new FactsLedger();
  ledger.observe(members, sim.now - 4000);
  return {
    now: Date.parse('2026-12-04T12:00:00Z'),
    monoNow: sim.now,
    clusterName: 'farm',
    self: { id: 'n0', hostname: 'pi-0' },
    members,
    factsAgeMs: (id) => ledger.ageMs(id, sim.now),
    publishPeriodMs: 15_000,
    engine: { at: Date.parse('2026-12-04T11:59:58Z'), nodes: [swarmNode('swarm0', 'pi-0', 'manager', { leader: true }), swarmNode('swarm1', 'pi-1', 'worker'), swarmNode('swarm2', 'pi-2', 'worker', { availability: 'drain' })] },
    swarmId: 'sw1',
    election: { winner: 'n0', why: 'oldest identity', at: '2026-12-04T10:00:00Z' },
    autopilot: { role: 'leader', target: 1, steps: [] },
    ...over,
  };
}

t.test('a manager\'s view: every member with its gossip, swarm and facts', async (t) => {
  const sim = cluster();
  const doc = buildClusterView(inputs(sim));
  t.same(doc.nodes.map((n) => [n.hostname, n.gossip?.state, n.swarm.role, n.swarm.managerStatus, n.swarm.availability, n.self]), [
    ['pi-0', 'alive', 'manager', 'Leader', 'active', true],
    ['pi-1', 'alive', 'worker', null, 'active', false],
    ['pi-2', 'alive', 'worker', null, 'drain', false],
  ]);
  const pi1 = doc.nodes[1]!;
  t.same(pi1.health, { status: 'warn', checks: ['docker:ipvs'] });
  t.same(pi1.facts, { version: '0.1.0', cpuPct: 11, memPct: 40, load1: 0.5, tempC: 51, undervoltage: false, throttledNow: false, rootFreePct: 70, diskReadMBps: 45, uptimeS: 1000, model: 'Raspberry Pi 4 Model B Rev 1.4', arch: 'arm64', ageS: 4, stale: false });
  t.same(doc.cluster, {
    name: 'farm', swarmId: 'sw1', source: 'engine', engineListAgeS: 2, managers: 1, managersReachable: 1, managerTarget: 1, quorumMargin: 0,
    members: { alive: 3, suspect: 0, dead: 0, left: 0 }, election: { winner: 'n0', why: 'oldest identity', at: '2026-12-04T10:00:00Z' }, autopilot: { role: 'leader', steps: [] },
  });
  t.same(doc.servedBy, { id: 'n0', hostname: 'pi-0' });
  t.equal(doc.generatedAt, '2026-12-04T12:00:00.000Z');
});

t.test('a powered-off member is shown dead with stale facts, never dropped; a node only the engine lists is shown too', async (t) => {
  const sim = cluster();
  sim.crash(2);
  t.ok(sim.runUntil(() => sim.nodes[0]!.membership.member('n2')?.state === 'dead', 60_000) !== null, 'n2 declared dead');
  const base = inputs(sim);
  const doc = buildClusterView({ ...base, engine: { at: base.engine!.at, nodes: [...base.engine!.nodes, swarmNode('swarm9', 'pi-9', 'worker', { state: 'down' })] } });
  const pi2 = doc.nodes.find((n) => n.hostname === 'pi-2')!;
  t.equal(pi2.gossip?.state, 'dead');
  t.equal(pi2.facts.stale, true);
  t.equal(pi2.facts.cpuPct, 12, 'the last figures stay, marked stale');
  const pi9 = doc.nodes.find((n) => n.hostname === 'pi-9')!;
  t.same([pi9.gossip, pi9.swarm.state, pi9.facts.ageS, pi9.facts.stale], [null, 'down', null, true]);
  t.same(doc.cluster.members, { alive: 2, suspect: 0, dead: 1, left: 0 });
  t.same(prometheusTargets(doc, 7070).map((g) => g.labels.node), ['pi-0', 'pi-1'], 'dead and agent-less nodes drop out of discovery');
});

t.test('a worker\'s view (no engine list) takes roles from gossip; figures older than three periods are stale', async (t) => {
  const sim = cluster();
  const doc = buildClusterView({ ...inputs(sim), self: { id: 'n1', hostname: 'pi-1' }, engine: null, autopilot: null, factsAgeMs: () => 46_000 });
  t.same(doc.nodes.map((n) => [n.swarm.role, n.swarm.state, n.swarm.managerStatus, n.facts.ageS, n.facts.stale]), [
    ['manager', null, null, 46, true], ['worker', null, null, 46, true], ['worker', null, null, 46, true],
  ]);
  t.same([doc.cluster.source, doc.cluster.managers, doc.cluster.quorumMargin, doc.cluster.managersReachable, doc.cluster.engineListAgeS], ['gossip', 1, null, null, null]);
});

t.test('quorum margin and the last autopilot steps', async (t) => {
  const sim = cluster();
  const m = (id: string, extra: Partial<SwarmNode>) => swarmNode(id, id, 'manager', extra);
  const steps: StepInput[] = Array.from({ length: 15 }, (_, k) => ({ at: Date.UTC(2026, 11, 4, 11, k), step: { kind: 'promote', nodeId: `s${k}`, hostname: `h${k}`, reason: 'below-target', detail: '' }, outcome: k === 14 ? 'refused' : 'done', ...(k === 14 ? { refusal: 'quorum' } : {}) }));
  const doc = buildClusterView({ ...inputs(sim), engine: { at: 0, nodes: [m('a', { leader: true }), m('b', {}), m('c', { reachability: 'unreachable' }), m('d', {}), m('e', { reachability: 'unreachable' })] }, autopilot: { role: 'leader', target: 5, steps } });
  t.same([doc.cluster.managers, doc.cluster.managersReachable, doc.cluster.quorumMargin], [5, 3, 0]);
  t.equal(doc.cluster.autopilot!.steps.length, STEPS_SHOWN);
  t.same(doc.cluster.autopilot!.steps.at(-1), { at: '2026-12-04T11:14:00.000Z', kind: 'promote', node: 's14', hostname: 'h14', reason: 'below-target', detail: '', outcome: 'refused', refusal: 'quorum' });
  t.same(doc.nodes.filter((n) => n.gossip === null).map((n) => n.swarm.managerStatus), ['Leader', 'Reachable', 'Unreachable', 'Reachable', 'Unreachable']);
});

t.test('Prometheus SD: one group per live member with its labels', async (t) => {
  const sim = cluster();
  const groups = prometheusTargets(buildClusterView(inputs(sim)), 7070);
  t.same(groups[0], { targets: ['10.0.0.0:7070'], labels: { node: 'pi-0', role: 'manager', cluster: 'farm', model: 'Raspberry Pi 4 Model B Rev 1.4', arch: 'arm64' } });
  t.equal(groups.length, 3);
  const doc = buildClusterView(inputs(sim));
  doc.nodes[0]!.addr = 'fe80::1';
  t.same(prometheusTargets(doc, 7070)[0]!.targets, ['[fe80::1]:7070']);
});

t.test('routes: JSON answers without a secret, unknown query parameters 400', async (t) => {
  const sim = cluster();
  const { log } = memoryLogger();
  const app = Fastify({ ajv: { customOptions: { removeAdditional: false } } });
  app.setErrorHandler(makeErrorHandler(log, () => {}));
  const doc = buildClusterView(inputs(sim));
  await app.register(clusterRoutes({ view: () => doc, port: 7070 }));
  t.teardown(() => app.close());
  const c = await app.inject('/v1/cluster');
  t.equal(c.statusCode, 200);
  t.same(c.json(), JSON.parse(JSON.stringify(doc)));
  const sd = await app.inject('/v1/sd/prometheus');
  t.match(sd.headers['content-type'], /^application\/json/);
  t.equal(sd.json().length, 3);
  for (const r of [c, sd]) {
    t.notMatch(r.body, /SWMTKN/);
    t.notOk(r.body.includes(SIM_CLUSTER_KEY), 'no cluster key');
  }
  for (const url of ['/v1/cluster?verbose=1', '/v1/sd/prometheus?x=1']) {
    const r = await app.inject(url);
    t.equal(r.statusCode, 400, url);
    t.equal(r.json().code, 'PISWARM_ERR_BAD_REQUEST');
  }
});
