import t from 'tap';
import { PiswarmError } from '../../../../shared/errors.js';
import type { EngineInfo, SwarmNode } from '../../../../agent/docker/engine.js';
import type { EngineSample } from '../../../../agent/docker/monitor.js';
import { labelsSubsystem } from '../../../../agent/labels/subsystem.js';
import type { Member } from '../../../../agent/membership/types.js';
import { fakeDocker, memoryLogger } from '../../../helpers/fakes.js';

const CONFIG = { labels: { enabled: true }, autopilot: { intervalMs: 5000, backoffMaxMs: 300000 } } as const;
const X_PI4 = [1, '0.2.0', 'p', [], 3, 40, 0.2, 0, 70, 100, 'arm64', 'Pi 4 B r1.4', 'c03114s', 3793];

const sample = (nodeId: string, isManager = true): EngineSample => ({
  at: 1, errorCode: null, latencySeconds: 0,
  info: { serverVersion: '27.5.1', swarm: { state: 'active', nodeId, nodeAddr: '10.0.0.1', clusterId: 'c', isManager, managers: 1, nodes: 2, remoteManagers: [], error: null } } as EngineInfo,
});
const swarmNode = (id: string, leader: boolean, labels: Record<string, string> = {}, version = 5): SwarmNode => ({
  id, hostname: `pi-${id}`, role: leader ? 'manager' : 'worker', availability: 'active', state: 'ready', addr: '10.0.0.1', leader,
  reachability: leader ? 'reachable' : null, labels, createdAt: '', updatedAt: '', version,
});
const member = (swarmNodeId: string, extra: Record<string, unknown> = {}): Member =>
  ({ id: `m-${swarmNodeId}`, addr: '10.0.0.2', port: 7070, incarnation: 1, state: 'alive', meta: { swarmNodeId, x: X_PI4, diskBps: 42e6, ...extra }, stateChangedAt: 0, self: false });

function harness(opts: { self?: string; isManager?: boolean; enabled?: boolean; recent?: () => { at: number; nodes: readonly SwarmNode[] } | null } = {}) {
  const { log, lines } = memoryLogger();
  let nodes = [swarmNode('n1', true), swarmNode('n2', false, { team: 'db' })];
  let members = [member('n1'), member('n2')];
  let fail: Error | null = null;
  let clock = 1_000_000;
  const calls: Array<{ id: string; version: number; labels: Record<string, string> }> = [];
  let lists = 0;
  const docker = fakeDocker({
    listNodes: async () => {
      lists++;
      return nodes.map((n) => ({ ...n, labels: { ...n.labels } }));
    },
    setNodeLabels: async (id, version, labels) => {
      calls.push({ id, version, labels });
      if (fail) throw fail;
      nodes = nodes.map((n) => (n.id === id ? { ...n, labels, version: n.version + 1 } : n));
    },
  });
  const sub = labelsSubsystem({ ...CONFIG, labels: { enabled: opts.enabled ?? true } }, {
    log, docker, monitor: { last: () => sample(opts.self ?? 'n1', opts.isManager ?? true) }, members: () => members, random: () => 0, now: () => clock,
    ...(opts.recent ? { recentNodes: opts.recent } : {}),
  });
  const metric = (name: string, result?: string) => sub.collectors![0]!.collect().find((f) => f.name === name)!.samples.find((s) => !result || s.labels?.result === result)!.value;
  return {
    sub, calls, lines, metric,
    lists: () => lists,
    nodes: () => nodes,
    setMembers: (m: Member[]) => { members = m; },
    setFail: (e: Error | null) => { fail = e; },
    advance: (ms: number) => { clock += ms; },
  };
}

t.test('the leader labels every node once, with its version, and leaves user labels alone', async (t) => {
  const h = harness();
  await h.sub.tick();
  t.same(h.calls.map((c) => [c.id, c.version]), [['n1', 5], ['n2', 5]], 'one update per node, the listed version');
  t.same(h.nodes()[1]!.labels, { team: 'db', 'piswarm.arch': 'arm64', 'piswarm.model': 'pi4', 'piswarm.memory_gb': '4', 'piswarm.storage': 'sd', 'piswarm.disk_speed': 'slow' });
  t.equal(h.metric('piswarm_labels_updates_total', 'ok'), 2);
  t.equal(h.metric('piswarm_labels_managed'), 10);
  t.ok(h.lines().some((l) => l.msg === 'node labels updated' && l.hostname === 'pi-n2'));
  await h.sub.tick();
  await h.sub.tick();
  t.equal(h.calls.length, 2, 'no further update while the facts stay the same');
});

t.test('a fact that changes is one more update of that node only', async (t) => {
  const h = harness();
  await h.sub.tick();
  h.setMembers([member('n1'), member('n2', { diskBps: 3.5e8 })]); // `piswarm bench-disk` on a new SSD
  await h.sub.tick();
  t.same(h.calls.slice(2).map((c) => [c.id, c.version, c.labels['piswarm.disk_speed']]), [['n2', 6, 'fast']]);
});

t.test('an operator edit of a piswarm label stands until the facts change', async (t) => {
  const h = harness();
  await h.sub.tick();
  h.nodes()[1]!.labels['piswarm.storage'] = 'nvme';
  await h.sub.tick();
  t.equal(h.calls.length, 2, 'not fought over');
});

t.test('a member gone from gossip keeps its labels', async (t) => {
  const h = harness();
  await h.sub.tick();
  h.setMembers([member('n1')]);
  await h.sub.tick();
  t.equal(h.nodes()[1]!.labels['piswarm.model'], 'pi4');
  t.equal(h.calls.length, 2);
});

t.test('followers and workers never update', async (t) => {
  const follower = harness({ self: 'n2' });
  await follower.sub.tick();
  t.same(follower.calls, []);
  t.equal(follower.metric('piswarm_labels_managed'), 0);
  const worker = harness({ self: 'n2', isManager: false });
  await worker.sub.tick();
  t.same(worker.calls, []);
  t.equal(worker.lists(), 0, 'a worker does not even list');
  const off = harness({ enabled: false });
  await off.sub.tick();
  t.same([off.calls.length, off.lists()], [0, 0], 'disabled by configuration');
});

t.test('a refused update is counted and retried after a backoff, not every tick', async (t) => {
  const h = harness();
  h.setFail(new PiswarmError('PISWARM_ERR_DOCKER', 'node update: update out of sequence', { details: { engineMessage: 'update out of sequence' } }));
  await h.sub.tick();
  t.equal(h.metric('piswarm_labels_updates_total', 'error'), 2);
  t.ok(h.lines().some((l) => l.msg === 'cannot update node labels' && l.code === 'PISWARM_ERR_DOCKER' && l.engineMessage === 'update out of sequence'));
  h.advance(1000);
  await h.sub.tick();
  t.equal(h.calls.length, 2, 'still backing off');
  h.setFail(null);
  h.advance(5000);
  await h.sub.tick();
  t.equal(h.calls.length, 4, 'retried once the backoff ran out');
  t.equal(h.metric('piswarm_labels_updates_total', 'ok'), 2);
});

t.test('the autopilot\'s recent node list saves a listing, unless older than a tick or taken before this agent\'s own label write', async (t) => {
  let recent: { at: number; nodes: readonly SwarmNode[] } | null = null;
  const h = harness({ recent: () => recent });
  const take = () => {
    recent = { at: 1_000_000 + took, nodes: h.nodes().map((n) => ({ ...n, labels: { ...n.labels } })) };
  };
  let took = 0;
  take();
  await h.sub.tick();
  t.equal(h.lists(), 0, 'a list taken this tick by the autopilot: no listing of its own');
  t.same(h.calls.map((c) => [c.id, c.version]), [['n1', 5], ['n2', 5]], 'the updates use its versions');
  h.advance(1_000);
  await h.sub.tick();
  t.equal(h.lists(), 1, 'the autopilot\'s list predates the writes just made: listed afresh');
  t.equal(h.calls.length, 2, 'and nothing to do');
  h.advance(4_000);
  took = 4_500;
  take();
  await h.sub.tick();
  t.equal(h.lists(), 1, 'a list taken after the writes is used');
  t.equal(h.calls.length, 2);
  h.advance(5_000);
  await h.sub.tick();
  t.equal(h.lists(), 1, 'one from the tick before (5.5 s old) is used too: the autopilot may be listing this very moment');
  h.advance(5_000);
  await h.sub.tick();
  t.equal(h.lists(), 2, 'one two ticks old (10.5 s) is not');
  recent = null;
  h.advance(5_000);
  await h.sub.tick();
  t.equal(h.lists(), 3, 'none (a step since, or no listing yet): listed afresh');
});
