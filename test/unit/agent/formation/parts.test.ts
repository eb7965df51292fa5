import t from 'tap';
import type { DockerEngine, SwarmNode } from '../../../../agent/docker/engine.js';
import { createFormationContext } from '../../../../agent/formation/controller.js';
import { listing, readEngine, refreshListedIds } from '../../../../agent/formation/engine-view.js';
import type { EngineInfo } from '../../../../agent/docker/engine.js';
import type { EngineSample } from '../../../../agent/docker/monitor.js';
import type { EngineSource, FormationDeps } from '../../../../agent/formation/types.js';
import { setPhase } from '../../../../agent/formation/state.js';
import { createMemoryFormationStore } from '../../../../agent/formation/store.js';
import { formationHealthChecks } from '../../../../agent/formation/telemetry.js';
import { VirtualClock } from '../../../../agent/membership/sim/virtual-clock.js';
import { fakeDocker, memoryLogger } from '../../../helpers/fakes.js';
import { KEY, testConfig } from './helpers.js';

/**
 * Formation's parts, each alone on the virtual clock: no timers run, no
 * socket opens, no whole fake world. A context is built as createFormation
 * builds it; the docker fake models only what the part under test calls.
 */
const noClient = { hello: async () => { throw new Error('Not implemented: hello'); }, grant: async () => { throw new Error('Not implemented: grant'); }, close: async () => undefined };

function context(docker: DockerEngine, engine?: (clock: VirtualClock) => EngineSource, recentNodes?: (clock: VirtualClock) => FormationDeps['recentNodes']) {
  const clock = new VirtualClock();
  const { log } = memoryLogger();
  const ctx = createFormationContext({
    config: testConfig({ clusterKey: KEY, nodeName: 'pi-1' }), log, docker, clock,
    identity: { nodeId: 'a'.repeat(24), name: 'pi-1', createdAt: '' }, discovery: null, peerClient: noClient,
    address: () => ({ address: '10.0.0.1', interface: 'eth0', reason: 'test' }), store: createMemoryFormationStore(),
    ...(engine ? { engine: engine(clock) } : {}),
    ...(recentNodes ? { recentNodes: recentNodes(clock) } : {}),
  });
  return { ctx, clock };
}

const node = (id: string): SwarmNode =>
  ({ id, hostname: id, role: 'worker', state: 'ready', availability: 'active', addr: '10.0.0.9', leader: false, reachability: null, labels: {}, createdAt: '', updatedAt: '', version: 1 });

t.test('engine view: a manager says "not listed" only from a node list read after the asker was first missed', async (t) => {
  let ids = ['self', 'w1'];
  let reads = 0;
  const { ctx, clock } = context(fakeDocker({ listNodes: async () => (reads++, ids.map(node)) }));
  await refreshListedIds(ctx, true);
  t.same(listing(ctx, 'w1'), { listsAsker: true }, 'a listed asker is told so');
  t.same(listing(ctx, 'gone'), {}, 'first miss: no answer yet (it may have joined a moment ago)');
  clock.runFor(1_000);
  await refreshListedIds(ctx, true);
  t.equal(reads, 2, 'a pending miss makes the next tick read the list again, before NODE_LIST_REFRESH_MS');
  t.same(listing(ctx, 'gone'), { listsAsker: false }, 'missed again in a list read after the first miss: "no"');
  ids = ['self', 'w1', 'gone'];
  clock.runFor(5_000);
  await refreshListedIds(ctx, true);
  t.same(listing(ctx, 'gone'), { listsAsker: true }, 'listed again: "yes"');
  clock.runFor(16_000);
  t.same(listing(ctx, 'w1'), {}, 'a list older than NODE_LIST_FRESH_MS answers nothing');
  await refreshListedIds(ctx, false);
  t.same(listing(ctx, 'w1'), {}, 'a worker never answers');
});

t.test('engine view: a manager takes the autopilot\'s newer node list for hello answers, and lists afresh after a miss', async (t) => {
  let reads = 0;
  let recent: { at: number; nodes: SwarmNode[] } | null = null;
  const { ctx, clock } = context(fakeDocker({ listNodes: async () => (reads++, ['self', 'w1'].map(node)) }), undefined, () => () => recent);
  recent = { at: clock.now(), nodes: ['self', 'w1', 'w2'].map(node) };
  await refreshListedIds(ctx, true);
  t.equal(reads, 0, 'the autopilot listed this instant: no listing of its own');
  t.same(listing(ctx, 'w2'), { listsAsker: true });
  clock.runFor(6_000);
  await refreshListedIds(ctx, true);
  t.equal(reads, 1, 'the autopilot\'s list is not newer than ours (and 6 s old): listed');
  t.same(listing(ctx, 'w2'), {}, 'first miss');
  recent = { at: clock.now(), nodes: ['self', 'w1'].map(node) };
  clock.runFor(500);
  await refreshListedIds(ctx, true);
  t.equal(reads, 2, 'a pending miss lists afresh even with a newer autopilot list: only a list read after the miss may say "no"');
  t.same(listing(ctx, 'w2'), { listsAsker: false });
});

t.test('telemetry reads the state only: swarm:formation warns once forming takes over 120 s, passes as a member', async (t) => {
  const { ctx, clock } = context(fakeDocker({}));
  const check = formationHealthChecks(ctx).find((c) => c.name === 'swarm:formation')!;
  setPhase(ctx, 'waiting', 'waiting for pi-2 (rank 0) to create the swarm');
  t.match(check.run(), [{ status: 'pass', output: /waiting for pi-2/ }]);
  clock.runFor(121_000);
  t.match(check.run(), [{ status: 'warn', output: /^still waiting after 121 s: waiting for pi-2/ }]);
  setPhase(ctx, 'member', 'in swarm x');
  t.match(check.run(), [{ status: 'pass', observedValue: 'member' }]);
  t.equal(ctx.s.timeline.length, 2, 'each phase change is on the timeline');
});

t.test('engine view: each tick reads the engine monitor\'s sample, asks it for a new one only when that is half a tick old or after a step', async (t) => {
  const inactive: EngineInfo = { serverVersion: '26.1.5', swarm: { state: 'inactive', nodeId: null, nodeAddr: null, clusterId: null, isManager: false, managers: 0, nodes: 0, remoteManagers: [], error: null } };
  let answer: EngineInfo | null = inactive;
  let refreshes = 0;
  let sample: EngineSample = { at: 0, info: null, errorCode: 'PISWARM_ERR_DOCKER_UNREACHABLE', latencySeconds: 0 };
  // docker.info is not modelled: formation must not call it when it has the monitor.
  const { ctx, clock } = context(fakeDocker({}), (c) => ({
    last: () => sample,
    refresh: async () => {
      refreshes++;
      sample = { at: c.now(), info: answer, errorCode: answer ? null : 'PISWARM_ERR_DOCKER_UNREACHABLE', latencySeconds: 0 };
    },
  }));
  clock.runFor(10_000);
  await readEngine(ctx);
  t.equal(refreshes, 1, 'a sample older than half a tick (1000 ms) is renewed');
  t.equal(ctx.s.info?.swarm.state, 'inactive');
  t.equal(ctx.s.engineError, null);
  clock.runFor(400);
  await readEngine(ctx);
  t.equal(refreshes, 1, 'a sample 400 ms old is used as it is: one docker info per tick for the agent');
  await readEngine(ctx, true);
  t.equal(refreshes, 2, 'after init or join the sample is renewed whatever its age');
  answer = null;
  clock.runFor(600);
  await readEngine(ctx);
  t.equal(refreshes, 3);
  t.equal(ctx.s.info, null, 'an engine that does not answer: no info');
  t.equal(ctx.s.engineError, 'PISWARM_ERR_DOCKER_UNREACHABLE', 'and the monitor\'s error code');
  t.equal(ctx.s.selfSwarm, null);
});

t.test('engine view: without a monitor, formation reads docker info itself', async (t) => {
  let calls = 0;
  const { ctx } = context(fakeDocker({ info: async () => { calls++; throw Object.assign(new Error('down'), { code: 'PISWARM_ERR_DOCKER_UNREACHABLE' }); } }));
  await readEngine(ctx);
  t.equal(calls, 1);
  t.equal(ctx.s.info, null);
  t.equal(ctx.s.engineError, 'error', 'an error that is not a PiswarmError is reported as "error"');
});
