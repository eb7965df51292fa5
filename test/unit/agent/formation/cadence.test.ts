import t from 'tap';
import type { EngineInfo } from '../../../../agent/docker/engine.js';
import type { EngineSample } from '../../../../agent/docker/monitor.js';
import { QUIET_AFTER_MS, nextQuiet, unsettled } from '../../../../agent/formation/cadence.js';
import { createFormationContext } from '../../../../agent/formation/controller.js';
import { readEngine } from '../../../../agent/formation/engine-view.js';
import { setPhase } from '../../../../agent/formation/state.js';
import { createMemoryFormationStore } from '../../../../agent/formation/store.js';
import type { FormationContext } from '../../../../agent/formation/types.js';
import { VirtualClock } from '../../../../agent/membership/sim/virtual-clock.js';
import { fakeDocker, memoryLogger } from '../../../helpers/fakes.js';
import { KEY, testConfig } from './helpers.js';

/**
 * How often a member asks its engine: every tick while anything moves, the
 * engine monitor's own period once nothing has for QUIET_AFTER_MS. The
 * engine is the monitor's sample on the virtual clock; docker.info is not
 * modelled (formation must not call it when it has the monitor).
 */
const SELF = '10.0.0.1';
const PEER_ID = 'b'.repeat(24);
const noClient = { hello: async () => { throw new Error('Not implemented: hello'); }, grant: async () => { throw new Error('Not implemented: grant'); }, close: async () => undefined };

const worker = (managers: string[]): EngineInfo => ({
  serverVersion: '26.1.5',
  swarm: { state: 'active', nodeId: 'n1', nodeAddr: SELF, clusterId: null, isManager: false, managers: 0, nodes: 0, remoteManagers: managers.map((a, i) => ({ nodeId: `m${i}`, addr: `${a}:2377` })), error: null },
});

function world() {
  const clock = new VirtualClock();
  const { log } = memoryLogger();
  let info: EngineInfo = worker(['10.0.0.2']);
  let refreshes = 0;
  let sample: EngineSample = { at: 0, info: null, errorCode: 'PISWARM_ERR_DOCKER_UNREACHABLE', latencySeconds: 0 };
  const ctx: FormationContext = createFormationContext({
    config: testConfig({ clusterKey: KEY, nodeName: 'pi-1' }), log, docker: fakeDocker({}), clock,
    identity: { nodeId: 'a'.repeat(24), name: 'pi-1', createdAt: '' }, discovery: null, peerClient: noClient,
    address: () => ({ address: SELF, interface: 'eth0', reason: 'test' }), store: createMemoryFormationStore(),
    engine: { last: () => sample, refresh: async () => { refreshes++; sample = { at: clock.now(), info, errorCode: null, latencySeconds: 0 }; } },
  });
  ctx.s.address = { address: SELF, interface: 'eth0', reason: 'test' };
  ctx.s.persisted.joined = { id: 'S', createdAt: null, joinAddr: null };
  ctx.s.peers.set(PEER_ID, {
    nodeId: PEER_ID, name: 'pi-2', addr: '10.0.0.2', port: 9100, source: 'mdns', confirmedAt: 0, phaseSince: 0, lastError: null,
    state: { v: 1, nodeId: PEER_ID, name: 'pi-2', addr: '10.0.0.2', port: 9100, phase: 'manager', swarm: { id: 'S', createdAt: null, role: 'manager', nodes: 2, managerAddrs: [], runningTasks: null }, seenSwarms: ['S'] },
  });
  setPhase(ctx, 'member', 'in swarm S');
  /** One formation tick's engine part: read, then note what moved. */
  const tick = async () => {
    await readEngine(ctx);
    ctx.s.quiet = nextQuiet(ctx.s.quiet, ctx.s, clock.now());
  };
  /** `seconds` ticks of 1 s; how many fresh engine samples they asked for. */
  const run = async (seconds: number) => {
    const before = refreshes;
    for (let i = 0; i < seconds; i++) {
      clock.runFor(1_000);
      await tick();
    }
    return refreshes - before;
  };
  return { ctx, run, setInfo: (i: EngineInfo) => { info = i; } };
}

t.test('a member reads the engine every tick until nothing has moved for QUIET_AFTER_MS, then at the monitor\'s period', async (t) => {
  const w = world();
  t.equal(await w.run(QUIET_AFTER_MS / 1000), QUIET_AFTER_MS / 1000, 'every tick while it has not been quiet long enough');
  t.equal(unsettled(w.ctx.s), null, 'settled: a member whose one manager answers as one');
  const settled = await w.run(60);
  // metrics.intervalMs 5 s + a tick: the monitor's own timer (not run here) would take the rest.
  t.ok(settled <= 10, `one fresh sample per 6 s at most (${settled} in 60 s)`);
  t.ok(settled >= 9, `but still one per 6 s when the monitor's timer does not run (${settled} in 60 s)`);
});

t.test('a manager that stops answering hellos makes every tick read the engine again, until the engine no longer names it', async (t) => {
  const w = world();
  await w.run(QUIET_AFTER_MS / 1000 + 10);
  w.ctx.s.peers.get(PEER_ID)!.lastError = 'PISWARM_ERR_PEER_UNREACHABLE';
  t.match(unsettled(w.ctx.s), /manager 10\.0\.0\.2:2377 does not answer as one/);
  // The tick that sees a change still took its sample as settled; every one after reads.
  t.equal(await w.run(20), 19, 'one fresh sample per tick while a manager it names is lost (from the tick after the change)');
  w.ctx.s.peers.delete(PEER_ID);
  w.setInfo(worker(['10.0.0.3']));
  t.equal(await w.run(5), 5, 'still moving: the engine now names another manager, which is no confirmed peer');
});

t.test('any change of the engine\'s swarm or of a peer\'s answer starts the quiet period again', async (t) => {
  const w = world();
  await w.run(QUIET_AFTER_MS / 1000 + 10);
  w.ctx.s.peers.get(PEER_ID)!.state!.phase = 'degraded';
  t.equal(unsettled(w.ctx.s), null, 'a peer\'s phase is no reason by itself');
  t.equal(await w.run(QUIET_AFTER_MS / 1000), QUIET_AFTER_MS / 1000 - 1, 'but its change restarts the quiet period: every tick after it reads');
  t.ok(await w.run(12) <= 3, 'quiet again after QUIET_AFTER_MS');
  w.ctx.s.removedSince = 1;
  t.equal(unsettled(w.ctx.s), 'removed from the swarm');
  t.equal(await w.run(3), 2, 'from the tick after');
});
