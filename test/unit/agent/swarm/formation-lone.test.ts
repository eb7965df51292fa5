import t from 'tap';
import type { DockerEngine, SwarmAddresses } from '../../../../agent/docker/engine.js';
import { createFormation } from '../../../../agent/swarm/formation.js';
import { createMemoryFormationStore } from '../../../../agent/swarm/store.js';
import { PiswarmError } from '../../../../shared/errors.js';
import { fakeDocker, memoryLogger } from '../../../helpers/fakes.js';
import { FakeWorld } from './fake-swarm.js';
import { KEY, testConfig } from './helpers.js';

/**
 * One node alone (expect 1, no discovery, no seeds): its clock is the
 * test's and each tick is run by hand, so every step of the election is
 * observable. The engine is a FakeWorld engine whose swarm init the test
 * sees (and can make fail).
 */
function lone(opts: { address?: string; initFails?: () => boolean } = {}) {
  let now = Date.parse('2026-03-01T10:00:00Z');
  const world = new FakeWorld();
  const base = world.engine('pi-1');
  const inits: SwarmAddresses[] = [];
  const docker: DockerEngine = fakeDocker({
    info: base.info,
    swarmInspect: base.swarmInspect,
    listNodes: base.listNodes,
    async swarmInit(a) {
      inits.push(a);
      if (opts.initFails?.()) throw new PiswarmError('PISWARM_ERR_DOCKER', 'swarm init: could not choose an IP address to advertise');
      return base.swarmInit(a);
    },
  });
  const { log, lines } = memoryLogger();
  const formation = createFormation({
    config: testConfig({ clusterKey: KEY, nodeName: 'pi-1', formation: { expect: 1, holdOffMs: 1000, initDeadlineMs: 20_000, tickMs: 1000 } }),
    log,
    docker,
    clock: { now: () => now, setTimeout: () => { throw new Error('Not implemented: setTimeout'); }, clearTimeout: () => undefined },
    identity: { nodeId: 'a'.repeat(24), name: 'pi-1', createdAt: '' },
    discovery: null,
    peerClient: { hello: async () => { throw new Error('Not implemented: hello'); }, grant: async () => { throw new Error('Not implemented: grant'); }, close: async () => undefined },
    address: () => ({ address: opts.address ?? '10.0.0.1', interface: 'eth0', reason: 'test' }),
    store: createMemoryFormationStore(),
    random: () => 0.5,
  });
  /** Advances the clock by `ms`, then runs one tick. */
  const step = async (ms: number) => {
    now += ms;
    await formation.tick();
  };
  return { formation, inits, world, lines, step };
}

t.test('an IPv6 advertise address: the listen address is [addr]:2377, advertise and data-path addresses stay bare', async (t) => {
  const { formation, inits, step } = await lone({ address: 'fd00::21' });
  await step(0);
  await step(1000);
  t.same(inits, [{ advertiseAddr: 'fd00::21', listenAddr: '[fd00::21]:2377', dataPathAddr: 'fd00::21' }], 'what the engine (Go net.SplitHostPort, net.ParseIP) accepts');
  await step(1000);
  t.equal(formation.status().phase, 'manager');
});

t.test('the election result outlives the election: /v1/formation still names the winner and why once the swarm exists', async (t) => {
  const { formation, step } = await lone();
  await step(0);
  t.match(formation.status().election, { winner: 'a'.repeat(24), why: /peer set stable for 0 of 1000 ms/ }, 'during the hold-off');
  await step(1000);
  await step(1000);
  const st = formation.status();
  t.equal(st.phase, 'manager', 'the swarm exists');
  t.same(st.election, { winner: 'a'.repeat(24), rank: ['a'.repeat(24)], why: 'lowest node id among confirmed peers', at: '2026-03-01T10:00:01.000Z' }, 'winner, why and when, kept');
  await step(60_000);
  t.equal(formation.status().election?.at, '2026-03-01T10:00:01.000Z', 'later ticks as a member change nothing');
});
