import t from 'tap';
import { probeVerdict, type AgentSample } from '../../../../agent/upgrade/probe.js';
import { managerStepAllowed, rolloutPlan } from '../../../../agent/upgrade/rollout.js';
import type { ClusterNode } from '../../../../shared/wire/cluster.js';

const good: AgentSample = { active: true, version: '1.1.0', health: 'warn', phase: 'member', alive: 5 };
const before: AgentSample = { active: true, version: '1.0.0', health: 'pass', phase: 'member', alive: 5 };

t.test('a new agent is healthy only when it is back where the old one was', async (t) => {
  t.ok(probeVerdict(before, good, '1.1.0').ok, 'READY, its version, not failing, in the swarm, gossip peers');
  t.match(probeVerdict(before, { ...good, active: false }, '1.1.0'), { ok: false, why: /not active/ });
  t.match(probeVerdict(before, { ...good, version: null }, '1.1.0'), { ok: false, why: /does not answer/ });
  t.match(probeVerdict(before, { ...good, version: '1.0.0' }, '1.1.0'), { ok: false, why: /names release 1\.0\.0/ });
  t.match(probeVerdict(before, { ...good, health: 'fail' }, '1.1.0'), { ok: false, why: /fails/ });
  t.ok(probeVerdict({ ...before, health: 'fail' }, { ...good, health: 'fail' }, '1.1.0').ok, 'failing before too: not the release\'s doing');
  t.match(probeVerdict(before, { ...good, phase: 'joining' }, '1.1.0'), { ok: false, why: /not back in the swarm/ });
  t.ok(probeVerdict({ ...before, phase: 'discovering' }, { ...good, phase: 'discovering' }, '1.1.0').ok, 'not in a swarm before: not asked');
  t.match(probeVerdict(before, { ...good, alive: 1 }, '1.1.0'), { ok: false, why: /no gossip peer/ });
  t.ok(probeVerdict(null, { ...good, alive: 1, phase: null }, '1.1.0').ok, 'nothing known before: READY and its version suffice');
});

const node = (hostname: string, role: 'manager' | 'worker', status: 'Leader' | 'Reachable' | null, gossip: 'alive' | 'dead' = 'alive'): ClusterNode => ({
  id: hostname.padEnd(24, '0').slice(0, 24), hostname, addr: `10.0.0.${hostname.length}`, self: false,
  gossip: { state: gossip, sinceS: 1 }, swarm: { nodeId: null, role, state: 'ready', availability: 'active', managerStatus: status },
  health: { status: 'pass', checks: [] }, facts: { version: '1.0.0' } as ClusterNode['facts'],
});

t.test('workers first, then managers, the leader last; nodes not alive are left to catch up', async (t) => {
  const p = rolloutPlan([node('m-lead', 'manager', 'Leader'), node('w2', 'worker', null), node('m1', 'manager', 'Reachable'), node('w1', 'worker', null), node('w3', 'worker', null, 'dead')]);
  t.same(p.order.map((n) => n.hostname), ['w1', 'w2', 'm1', 'm-lead']);
  t.same(p.off, ['w3']);
  t.ok(p.order.at(-1)!.leader);
});

t.test('a manager is taken only while every manager is reachable, from an engine view', async (t) => {
  const doc = (source: 'engine' | 'gossip', managers: number, managersReachable: number | null) => ({ cluster: { source, managers, managersReachable } }) as Parameters<typeof managerStepAllowed>[0];
  t.ok(managerStepAllowed(doc('engine', 3, 3)).ok);
  t.match(managerStepAllowed(doc('engine', 3, 2)), { ok: false, why: /1 of 3 managers unreachable/ });
  t.match(managerStepAllowed(doc('gossip', 3, null)), { ok: false, why: /no manager's view/ });
});
