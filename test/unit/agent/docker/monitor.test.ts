import t from 'tap';
import { EngineMonitor } from '../../../../agent/docker/monitor.js';
import { toEngineInfo } from '../../../../agent/docker/engine.js';
import { PiswarmError } from '../../../../shared/errors.js';
import { fakeDocker, memoryLogger } from '../../../helpers/fakes.js';

t.test('a dead engine fails docker:engine and warns on swarm:membership, once in the log', async (t) => {
  const { log, lines } = memoryLogger();
  const docker = fakeDocker({ info: async () => { throw new PiswarmError('PISWARM_ERR_DOCKER_UNREACHABLE'); } });
  const m = new EngineMonitor(docker, log, 1000);
  await m.refresh();
  await m.refresh();
  const [engine, swarm] = m.healthChecks();
  t.equal(engine!.run()[0]!.status, 'fail');
  t.match(engine!.run()[0]!.output, /does not answer/);
  t.equal(swarm!.run()[0]!.status, 'warn');
  t.equal(lines().filter((l) => l.msg === 'docker engine does not answer').length, 1, 'logged on the transition only');
  const fams = m.collector().collect();
  t.equal(fams.find((f) => f.name === 'piswarm_docker_up')?.samples[0]?.value, 0);
  t.equal(fams.find((f) => f.name === 'piswarm_docker_sample_failures_total')?.samples[0]?.value, 2);
});

t.test('an active manager passes and exports its role and counts', async (t) => {
  const { log } = memoryLogger();
  const info = toEngineInfo({ ServerVersion: '20.10.24', Swarm: { LocalNodeState: 'active', NodeID: 'n1', ControlAvailable: true, Managers: 1, Nodes: 3 } });
  const m = new EngineMonitor(fakeDocker({ info: async () => info }), log, 1000);
  await m.refresh();
  const [engine, swarm] = m.healthChecks();
  t.equal(engine!.run()[0]!.status, 'pass');
  t.same(swarm!.run()[0], { ...swarm!.run()[0], status: 'pass', output: 'manager', observedValue: 'active' });
  const fams = m.collector().collect();
  const role = fams.find((f) => f.name === 'piswarm_swarm_role')!;
  t.same(role.samples.filter((s) => s.value === 1).map((s) => s.labels?.role), ['manager']);
  t.equal(fams.find((f) => f.name === 'piswarm_swarm_nodes')?.samples[0]?.value, 3);
  const state = fams.find((f) => f.name === 'piswarm_swarm_state')!;
  t.same(state.samples.filter((s) => s.value === 1).map((s) => s.labels?.state), ['active']);
});

t.test('a node outside any swarm warns, an errored swarm fails', async (t) => {
  const { log } = memoryLogger();
  let state = 'inactive';
  const m = new EngineMonitor(fakeDocker({ info: async () => toEngineInfo({ ServerVersion: 'x', Swarm: { LocalNodeState: state, Error: state === 'error' ? 'raft broke' : '' } }) }), log, 1000);
  await m.refresh();
  t.equal(m.healthChecks()[1]!.run()[0]!.status, 'warn');
  state = 'error';
  await m.refresh();
  t.equal(m.healthChecks()[1]!.run()[0]!.status, 'fail');
  t.equal(m.healthChecks()[1]!.run()[0]!.output, 'raft broke');
});

t.test('the fake engine refuses what it does not model', async (t) => {
  const docker = fakeDocker({});
  t.throws(() => docker.swarmInit({ advertiseAddr: 'a', listenAddr: 'b', dataPathAddr: 'c' }), /Not implemented: swarmInit/);
});
