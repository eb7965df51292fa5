import t from 'tap';
import { renderFamilies } from '../../../../agent/metrics/format.js';
import { createFormation } from '../../../../agent/formation/controller.js';
import { createMemoryFormationStore } from '../../../../agent/formation/store.js';
import { fakeDocker, memoryLogger } from '../../../helpers/fakes.js';
import { promtoolCheck, promtoolSkip } from '../metrics/promtool.js';
import { FakeWorld } from './fake-swarm.js';
import { KEY, testConfig } from './helpers.js';

const noClient = { hello: async () => { throw new Error('Not implemented: hello'); }, grant: async () => { throw new Error('Not implemented: grant'); }, close: async () => undefined };

t.test('formation metrics parse with promtool and carry no secret', { skip: promtoolSkip() }, async (t) => {
  const world = new FakeWorld();
  const engine = world.engine('pi-1');
  await engine.swarmInit({ advertiseAddr: '10.0.0.1', listenAddr: '10.0.0.1:2377', dataPathAddr: '10.0.0.1' });
  const { log } = memoryLogger();
  const f = createFormation({
    config: testConfig({ clusterKey: KEY, nodeName: 'pi-1' }), log, docker: engine, clock: { now: Date.now, setTimeout, clearTimeout },
    identity: { nodeId: 'a'.repeat(24), name: 'pi-1', createdAt: '' }, discovery: null, peerClient: noClient,
    address: () => ({ address: '10.0.0.1', interface: 'eth0', reason: 'test' }), store: createMemoryFormationStore(),
  });
  await f.tick();
  const text = renderFamilies(f.collector.collect());
  const v = promtoolCheck(text);
  t.equal(v.parseError, null, 'promtool parses it');
  t.same(v.disallowedLint, [], 'no lint');
  t.match(text, /piswarm_formation_phase\{phase="manager"\} 1/);
  t.match(text, /piswarm_formation_phase\{phase="discovering"\} 0/);
  t.notOk(text.includes('SWMTKN') || text.includes(KEY));
});

t.test('an unusable identity turns formation off with the reason in /health, nothing runs', async (t) => {
  const { log } = memoryLogger();
  const f = createFormation({
    config: testConfig({ clusterKey: KEY }), log, docker: fakeDocker({}), clock: { now: Date.now, setTimeout, clearTimeout },
    identity: { nodeId: '0'.repeat(24), name: 'x', createdAt: '' }, discovery: null, peerClient: noClient,
    address: () => ({ address: '10.0.0.1', interface: 'eth0', reason: 'test' }), store: createMemoryFormationStore(),
    disabledReason: 'cannot write /var/lib/piswarm/identity.json: EACCES',
  });
  await f.start();
  await f.tick(); // would throw 'Not implemented: info' if it touched the engine
  t.equal(f.status().phase, 'disabled');
  t.match(f.healthChecks[0]!.run()[0]!.output, /EACCES/);
  await f.stop();
});
