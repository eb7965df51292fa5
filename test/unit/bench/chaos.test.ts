import t from 'tap';
import { FAULT_KINDS, nextFault, seededRandom, type NodeRole } from '../../../bench/chaos/plan.js';
import { notReadySince, violations, whole, type NodeSample, type SwarmRow } from '../../../bench/chaos/invariants.js';

const roles: NodeRole[] = [
  { name: 'pi-1', manager: true, leader: true },
  { name: 'pi-2', manager: true, leader: false },
  { name: 'pi-3', manager: true, leader: false },
  { name: 'pi-4', manager: false, leader: false },
  { name: 'pi-5', manager: false, leader: false },
];
const plan = { minOffMs: 5000, maxOffMs: 120_000, longShare: 0.3, longOffMs: 60_000 };

t.test('the campaign is repeatable from its seed, covers every kind of fault, and never takes two managers at once', async (t) => {
  const run = (seed: number) => {
    const r = seededRandom(seed);
    return Array.from({ length: 400 }, () => nextFault(r, roles, plan));
  };
  const a = run(42);
  t.same(run(42), a, 'same seed, same faults');
  t.notSame(run(43), a, 'another seed, other faults');
  t.same(new Set(a.map((f) => f.kind)), new Set(FAULT_KINDS), 'every kind appears');
  const managers = new Set(roles.filter((x) => x.manager).map((x) => x.name));
  t.ok(a.every((f) => f.targets.filter((x) => managers.has(x.name)).length <= 1), 'at most one manager per fault');
  t.ok(a.filter((f) => f.kind === 'leader-power-cut').every((f) => f.targets[0]!.name === 'pi-1' && f.targets[0]!.method === 'kill'), 'the leader is the one cut');
  t.ok(a.filter((f) => f.kind === 'two-at-once').every((f) => f.targets.length === 2 && f.targets[0]!.name !== f.targets[1]!.name), 'two distinct nodes');
  const long = a.filter((f) => f.offMs >= plan.longOffMs).length / a.filter((f) => f.kind !== 'reboot').length;
  t.ok(long > 0.2 && long < 0.4, `about 30 % off past the TTL (${(long * 100).toFixed(0)} %)`);
  t.ok(a.every((f) => f.offMs >= 0 && f.offMs <= plan.maxOffMs), 'off times within bounds');
});

const row = (hostname: string, manager = '', status = 'Ready'): SwarmRow => ({ id: `id-${hostname}-${manager}`, hostname, status, manager });
const names = ['a', 'b', 'c', 'd', 'e'];

t.test('whole: every node Ready once, managers at target and reachable', async (t) => {
  const ok = [row('a', 'Leader'), row('b', 'Reachable'), row('c', 'Reachable'), row('d'), row('e')];
  t.ok(whole(ok, names, 3));
  t.notOk(whole(null, names, 3), 'no manager answered');
  t.notOk(whole([...ok.slice(0, 4), row('e', '', 'Down')], names, 3), 'a node Down');
  t.notOk(whole([...ok, row('e', '', 'Down')], names, 3), 'a stale entry beside the new one');
  t.notOk(whole([row('a', 'Leader'), row('b', 'Unreachable'), row('c', 'Reachable'), row('d'), row('e')], names, 3), 'a manager unreachable');
  t.notOk(whole([row('a', 'Leader'), row('b', 'Reachable'), row('c'), row('d'), row('e')], names, 3), 'managers below target');
});

t.test('violations: two swarms, a stuck node, an agent restart', async (t) => {
  const n = (name: string, over: Partial<NodeSample> = {}): NodeSample => ({ name, up: true, notReadySince: null, swarmId: 'S', agentRestarts: 0, ...over });
  const rows = [row('a', 'Leader'), row('b')];
  t.same(violations(1000, [n('a'), n('b')], rows, 60_000), []);
  t.match(violations(1000, [n('a'), n('b', { swarmId: 'T' })], rows, 60_000), [/two swarms: S vs T/]);
  t.same(violations(1000, [n('a'), n('b', { swarmId: null })], rows, 60_000), [], 'a node with no swarm yet is not a second swarm');
  t.match(violations(70_000, [n('a'), n('c', { notReadySince: 10_000 })], rows, 60_000), [/c: stuck/]);
  t.same(violations(50_000, [n('a'), n('c', { notReadySince: 0 })], rows, 60_000), [], 'not yet stuck');
  t.same(violations(70_000, [n('a'), n('c', { up: false, notReadySince: 0 })], rows, 60_000), [], 'a node that is off is not stuck');
  t.match(violations(1000, [n('a', { agentRestarts: 2 })], rows, 60_000), [/a: the agent restarted 2 time/]);
});

t.test('not Ready since: only without a break (a new leader lists nodes Unknown for a moment)', async (t) => {
  const m = new Map<string, number>();
  const down = [row('a', 'Leader'), row('b', '', 'Unknown')];
  const ready = [row('a', 'Leader'), row('b')];
  t.equal(notReadySince(m, 1000, 'b', true, down), 1000, 'first sample not Ready');
  m.set('b', 1000);
  t.equal(notReadySince(m, 5000, 'b', true, down), 1000, 'still, since the first');
  t.equal(notReadySince(m, 9000, 'b', true, ready), null, 'Ready again: reset');
  t.equal(notReadySince(m, 9000, 'b', false, down), null, 'off: not counted');
  t.equal(notReadySince(m, 9000, 'b', true, null), 1000, 'no manager answered: unchanged');
});
