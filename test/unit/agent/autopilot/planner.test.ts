import t from 'tap';
import { PiswarmError } from '../../../../shared/errors.js';
import { plan, quorum, targetManagers, assess, lossAfterStep, lossOnLeadership, staleRaftMembers, MANAGER_LOSS_SETTLE_MS } from '../../../../agent/autopilot/planner.js';
import { buildView, nodeScore, observe, LABEL_AUTOPILOT_DRAINED } from '../../../../agent/autopilot/view.js';
import type { SwarmNode } from '../../../../agent/docker/engine.js';
import type { Member } from '../../../../agent/membership/types.js';
import { BASE_CONFIG, Driver } from './driver.js';
import { SimSwarm } from './sim-swarm.js';

const MIN = 60_000;

/** A stable cluster: `managers` managers (the first is leader) and the rest workers, settled past every timer. */
async function settled(nodes: number, opts: { cfg?: typeof BASE_CONFIG; labels?: (i: number) => Record<string, string> } = {}) {
  const sim = new SimSwarm();
  const ids: string[] = [];
  for (let i = 1; i <= nodes; i++) ids.push(sim.add(`pi${i}`, { role: i === 1 ? 'manager' : 'worker', labels: opts.labels?.(i) }));
  const d = new Driver(sim, opts.cfg ?? BASE_CONFIG);
  await d.run(10 * MIN);
  return { sim, d, ids };
}

t.test('target manager count by healthy nodes: 1, 3, 5, odd, capped', async (t) => {
  const want = [1, 1, 1, 3, 3, 3, 3, 5, 5, 5];
  t.same([...Array(10).keys()].map((n) => targetManagers(n, BASE_CONFIG)), want);
  t.equal(targetManagers(20, { ...BASE_CONFIG, maxManagers: 9 }), 7);
  t.equal(targetManagers(20, { ...BASE_CONFIG, maxManagers: 4 }), 3, 'an even cap acts as the odd number below');
  t.equal(targetManagers(20, { ...BASE_CONFIG, maxManagers: 2 }), 1);
  t.equal(targetManagers(4, { ...BASE_CONFIG, threeManagersAt: 5 }), 1, 'thresholds are configurable');
  t.same([1, 2, 3, 4, 5].map(quorum), [1, 2, 2, 3, 3]);
});

t.test('node score: labels and gossip metadata, power first, absent is null', async (t) => {
  t.equal(nodeScore({}, null), null);
  t.equal(nodeScore({ 'piswarm.disk-bps': '200000000' }, null), 50);
  t.equal(nodeScore({ 'piswarm.disk-bps': '20000000' }, null), 5);
  t.equal(nodeScore({ 'piswarm.disk-bps': '200000000', 'piswarm.undervoltage': 'true' }, null), -50);
  t.equal(nodeScore({ 'piswarm.temp': '81' }, null), -40);
  t.equal(nodeScore({}, { diskBps: 40e6, undervoltage: 0, tempC: 72 }), -5, 'gossip metadata when no labels');
  t.equal(nodeScore({ 'piswarm.disk-bps': 'fast' }, null), null, 'malformed values count as absent');
});

t.test('only the Raft leader decides', async (t) => {
  const { sim, d } = await settled(5);
  const nodes = sim.list();
  const follower = nodes.find((n) => n.role === 'manager' && !n.leader)!;
  const view = buildView({ selfId: follower.id, nodes, tracker: d.trackers.get(follower.id)!, now: sim.t });
  t.match(plan(view, BASE_CONFIG, sim.t), { kind: 'wait', reason: 'not-leader' });
});

t.test('grow 1 -> 7 one node at a time: 1, 3, 5 managers, never without quorum', async (t) => {
  const sim = new SimSwarm();
  sim.add('pi1', { role: 'manager' });
  const d = new Driver(sim);
  const settledCounts: number[] = [];
  await d.run(MIN);
  settledCounts.push(sim.reachableManagers());
  for (let i = 2; i <= 7; i++) {
    sim.add(`pi${i}`);
    await d.run(2 * MIN);
    settledCounts.push(sim.reachableManagers());
  }
  t.same(settledCounts, [1, 1, 3, 3, 3, 3, 5], 'settled manager count per node count');
  t.same(d.quorumViolations, [], 'no step ever lost quorum');
  t.ok(d.managerCounts.every((c, i) => i === 0 || Math.abs(c - d.managerCounts[i - 1]!) <= 1), 'one manager change at a time');
  t.same(d.actions().map((s) => `${s.kind}:${s.reason}`), Array(4).fill('promote:grow'));
  // Each promotion waited for the previous one to be reachable (joinMs) and for stabilisation.
  const promos = d.actions().map((s) => d.taken.find((x) => x.step === s)!.t);
  t.ok(promos.every((p, i) => i === 0 || p - promos[i - 1]! >= sim.joinMs), 'promotions are spaced by reachability');
});

t.test('no promotion toward 3 before two stable candidates exist (no parking at 2)', async (t) => {
  const sim = new SimSwarm();
  sim.add('pi1', { role: 'manager' });
  sim.add('pi2');
  const d = new Driver(sim);
  await d.run(5 * MIN);
  sim.add('pi3');
  await d.run(20_000); // pi3 not yet stable (30 s)
  t.equal(sim.managers().length, 1, 'still one manager while pi3 stabilises');
  t.match(d.waits.at(-1)?.step, { reason: 'waiting-candidates' });
  await d.run(MIN);
  t.equal(sim.reachableManagers(), 3);
});

t.test('leader power cut, 5 nodes / 3 managers: the dead one demoted first (a 4th manager would need the newcomer for quorum), then a worker promoted, prune after TTL', async (t) => {
  const { sim, d } = await settled(5);
  t.equal(sim.reachableManagers(), 3);
  const before = d.taken.length;
  const oldLeader = sim.leaderId!;
  sim.set(oldLeader, { on: false });
  t.not(sim.leaderId, oldLeader, 'the swarm elected another leader');
  await d.run(55_000);
  t.equal(d.taken.length, before, 'nothing inside the grace period');
  await d.run(2 * MIN);
  const steps = d.taken.slice(before).map((x) => `${x.step.kind}:${x.step.reason}`);
  t.same(steps, ['demote:dead-manager', 'promote:grow']);
  t.equal(sim.reachableManagers(), 3, 'three reachable managers again');
  t.equal(sim.managers().length, 3);
  t.ok(sim.nodes.has(oldLeader), 'the dead node is not removed before its TTL');
  await d.run(10 * MIN);
  t.notOk(sim.nodes.has(oldLeader), 'the dead node is pruned after its TTL');
  t.match(d.taken.at(-1)?.step, { kind: 'remove', reason: 'dead-node-ttl', nodeId: oldLeader });
  t.same(d.quorumViolations, []);
});

t.test('leader power cut: the settle counts from the loss, so the demotion of the dead leader does not start it over', async (t) => {
  for (const grace of [60_000, 15_000]) {
    const cfg = { ...BASE_CONFIG, deadManagerGraceMs: grace };
    const { sim, d } = await settled(5, { cfg });
    const before = d.taken.length;
    const cutAt = sim.t;
    sim.set(sim.leaderId!, { on: false });
    await d.run(2 * MIN);
    const [demote, promote] = d.taken.slice(before);
    t.match([demote?.step, promote?.step], [{ kind: 'demote', reason: 'dead-manager' }, { kind: 'promote', reason: 'grow' }], `grace ${grace / 1000} s: demote, then promote`);
    // Leadership moved on the first tick after the cut: that is the loss the settle counts from.
    const wantPromoteBy = cutAt + Math.max(grace, MANAGER_LOSS_SETTLE_MS) + 2 * cfg.intervalMs;
    t.ok(promote!.t <= wantPromoteBy, `grace ${grace / 1000} s: promoted ${(promote!.t - cutAt) / 1000} s after the cut (by ${(wantPromoteBy - cutAt) / 1000} s; it was the demotion + ${MANAGER_LOSS_SETTLE_MS / 1000} s before)`);
    t.same(d.quorumViolations, []);
  }
});

t.test('lossAfterStep: demoting or removing a dead manager dates the loss to when it stopped answering; other steps leave it', async (t) => {
  const now = 10 * MIN;
  const nodes: SwarmNode[] = [
    { id: 'a', hostname: 'h-a', role: 'manager', availability: 'active', state: 'ready', addr: '', leader: true, reachability: 'reachable', labels: {}, createdAt: '2024-01-01T00:00:00Z', updatedAt: '', version: 1 },
    { id: 'b', hostname: 'h-b', role: 'manager', availability: 'active', state: 'down', addr: '', leader: false, reachability: 'unreachable', labels: {}, createdAt: '2024-01-01T00:00:00Z', updatedAt: '', version: 1 },
    { id: 'c', hostname: 'h-c', role: 'worker', availability: 'active', state: 'ready', addr: '', leader: false, reachability: null, labels: {}, createdAt: '2024-01-01T00:00:00Z', updatedAt: '', version: 1 },
  ];
  const tracker = observe(new Map(), nodes, [], now - 70_000);
  const view = buildView({ selfId: 'a', nodes, tracker, now });
  const step = (kind: 'demote' | 'remove' | 'promote', nodeId: string, reason: string) => ({ kind, nodeId, hostname: `h-${nodeId}`, nodeState: 'down', reason, detail: '' }) as Parameters<typeof lossAfterStep>[1];
  t.equal(lossAfterStep(-Infinity, step('demote', 'b', 'dead-manager'), view), now - 70_000, 'demote: when b went unreachable');
  t.equal(lossAfterStep(now - 20_000, step('demote', 'b', 'dead-manager'), view), now - 20_000, 'a later loss (leadership moved) stays');
  t.equal(lossAfterStep(-Infinity, step('remove', 'b', 'reimaged'), view), now - 70_000, 'remove of a stale manager entry too');
  t.equal(lossAfterStep(5, step('promote', 'c', 'grow'), view), 5, 'a promotion is no loss');
  t.equal(lossAfterStep(5, step('remove', 'c', 'dead-node-ttl'), view), 5, 'pruning a dead worker is no loss');
});

t.test('lossOnLeadership: a manager Raft lists unreachable dates the loss to when it stopped answering; leadership moving with every manager reachable is no loss', async (t) => {
  const now = 10 * MIN;
  const mk = (id: string, role: 'manager' | 'worker', reachability: SwarmNode['reachability'], leader = false): SwarmNode => ({
    id, hostname: `h-${id}`, role, availability: 'active', state: reachability === 'unreachable' ? 'down' : 'ready', addr: '', leader, reachability, labels: {}, createdAt: '2024-01-01T00:00:00Z', updatedAt: '', version: 1,
  });
  const lost = [mk('a', 'manager', 'reachable', true), mk('b', 'manager', 'unreachable'), mk('c', 'manager', 'reachable'), mk('d', 'worker', null)];
  // b was listed unreachable for the first time now; gossip had it dead 12 s before.
  const members = [{ id: 'h-b', addr: '10.0.0.2', port: 7946, incarnation: 1, state: 'dead' as const, meta: { swarmNodeId: 'b' }, stateChangedAt: now - 12_000, self: false }];
  const view = buildView({ selfId: 'a', nodes: lost, members, tracker: observe(new Map(), lost, members, now), now });
  t.equal(lossOnLeadership(-Infinity, view), now - 12_000, 'the loss is gossip\'s death of b, not the takeover');
  t.equal(lossOnLeadership(now - 1000, view), now - 1000, 'a later loss already known stays');
  const moved = [mk('a', 'manager', 'reachable', true), mk('b', 'manager', 'reachable'), mk('c', 'manager', 'reachable'), mk('d', 'worker', null)];
  const calm = buildView({ selfId: 'a', nodes: moved, tracker: observe(new Map(), moved, [], now), now });
  t.equal(lossOnLeadership(-Infinity, calm), -Infinity, 'every manager reachable: no loss, no settle');
  const workerDown = [...moved.slice(0, 3), { ...mk('d', 'worker', null), state: 'down' }];
  t.equal(lossOnLeadership(-Infinity, buildView({ selfId: 'a', nodes: workerDown, tracker: observe(new Map(), workerDown, [], now), now })), -Infinity, 'a worker down is no manager lost');
});

t.test('waits that end by the clock say when: the grace of a settling manager, the settle after a loss', async (t) => {
  const now = 10 * MIN;
  const mk = (id: string, role: 'manager' | 'worker', reachability: SwarmNode['reachability'], leader = false): SwarmNode => ({
    id, hostname: `h-${id}`, role, availability: 'active', state: reachability === 'unreachable' ? 'down' : 'ready', addr: '', leader, reachability, labels: {}, createdAt: '2024-01-01T00:00:00Z', updatedAt: '', version: 1,
  });
  const nodes = [mk('a', 'manager', 'reachable', true), mk('b', 'manager', 'unreachable'), mk('c', 'manager', 'reachable'), mk('d', 'worker', null), mk('e', 'worker', null)];
  const healthy = nodes.map((n) => (n.id === 'b' ? { ...n, reachability: 'reachable' as const, state: 'ready' as const } : n));
  // b went unreachable 4 s ago, every node healthy long before.
  const tracker = observe(observe(new Map(), healthy, [], 0), nodes, [], now - 4000);
  const view = buildView({ selfId: 'a', nodes, tracker, now });
  t.match(plan(view, BASE_CONFIG, now), { kind: 'wait', reason: 'manager-settling', nodeId: 'b', until: now - 4000 + BASE_CONFIG.deadManagerGraceMs }, 'until the grace of b ends');
  const two = nodes.filter((n) => n.id !== 'b');
  const settling = buildView({ selfId: 'a', nodes: two, tracker: observe(new Map(), two, [], 0), managerLostAt: now - 5000, now });
  t.match(plan(settling, BASE_CONFIG, now), { kind: 'wait', reason: 'manager-settling', until: now - 5000 + MANAGER_LOSS_SETTLE_MS }, 'until the settle after the loss ends');
});

t.test('a new leader marks every node "unknown" until it registers: with gossip alive that is no loss of health, and only a ready worker is promoted', async (t) => {
  const mk = (id: string, role: 'manager' | 'worker', state: string, leader = false): SwarmNode => ({
    id, hostname: `h-${id}`, role, availability: 'active', state, addr: '', leader, reachability: role === 'manager' ? 'reachable' : null, labels: {}, createdAt: `2024-01-0${id.charCodeAt(0) - 96}T00:00:00Z`, updatedAt: '', version: 1,
  });
  const alive = (id: string): Member => ({ id: `h-${id}`, addr: '10.0.0.1', port: 7070, incarnation: 1, state: 'alive', meta: {}, stateChangedAt: 0, self: false });
  const before = [mk('a', 'manager', 'ready', true), mk('b', 'worker', 'ready'), mk('c', 'worker', 'ready'), mk('d', 'worker', 'ready')];
  // b (the oldest, the first choice) has not registered yet; c and d have.
  const after = [mk('a', 'manager', 'ready', true), mk('b', 'worker', 'unknown'), mk('c', 'worker', 'ready'), mk('d', 'worker', 'ready')];
  const members = ['b', 'c', 'd'].map(alive);
  const now = 10 * MIN;
  const withGossip = observe(observe(new Map(), before, members, 0), after, members, now);
  t.equal(withGossip.get('b')!.since, 0, 'unknown with gossip alive: healthy since before');
  const noGossip = observe(observe(new Map(), before, [], 0), after, [], now);
  t.equal(noGossip.get('b')!.since, now, 'unknown without gossip: unhealthy from now (nothing else speaks for it)');
  const view = buildView({ selfId: 'a', nodes: after, members, tracker: withGossip, now });
  t.same(view.nodes.filter((n) => n.healthy).map((n) => n.id), ['a', 'b', 'c', 'd']);
  const p = plan(view, BASE_CONFIG, now);
  t.match(p, { kind: 'promote', nodeId: 'c' }, 'a ready worker is promoted; the one not yet registered with the leader is not');
  const one = buildView({ selfId: 'a', nodes: after.map((n) => (n.id === 'c' ? { ...n, state: 'unknown' } : n)), members, tracker: withGossip, now });
  t.match(plan(one, BASE_CONFIG, now), { kind: 'wait', reason: 'waiting-candidates' }, 'one ready worker is not two candidates: wait (no parking at 2 managers)');
});

t.test('a manager first listed unreachable is dated by gossip when gossip saw its agent dead first (never by a suspicion), so the grace runs from its death', async (t) => {
  const mk = (id: string, reachability: 'reachable' | 'unreachable', leader = false): SwarmNode => ({
    id, hostname: `h-${id}`, role: 'manager', availability: 'active', state: reachability === 'reachable' ? 'ready' : 'down', addr: '', leader, reachability, labels: {}, createdAt: '2024-01-01T00:00:00Z', updatedAt: '', version: 1,
  });
  const member = (id: string, state: Member['state'], at: number): Member => ({ id: `h-${id}`, addr: '10.0.0.1', port: 7070, incarnation: 1, state, meta: {}, stateChangedAt: at, self: false });
  const t0 = 10 * MIN;
  const before = observe(new Map(), [mk('a', 'reachable', true), mk('b', 'reachable'), mk('c', 'reachable')], [], t0);
  // 20 s later b leads and lists a unreachable; gossip had a dead since 12 s after t0.
  const now = t0 + 20_000;
  const after = [mk('a', 'unreachable'), mk('b', 'reachable', true), mk('c', 'reachable')];
  t.equal(observe(before, after, [member('a', 'dead', t0 + 12_000)], now).get('a')!.reachSince, t0 + 12_000, 'dead in gossip: since then');
  t.equal(observe(before, after, [member('a', 'suspect', t0 + 12_000)], now).get('a')!.reachSince, now, 'only suspect: from now');
  t.equal(observe(before, after, [], now).get('a')!.reachSince, now, 'no gossip: from now');
  t.equal(observe(before, after, [member('a', 'dead', now + 5_000)], now).get('a')!.reachSince, now, 'never in the future');
});

t.test('leader power cut among 5 managers (7 nodes): dead demoted, set shrinks to 3 for 6 nodes', async (t) => {
  const { sim, d } = await settled(7);
  t.equal(sim.reachableManagers(), 5);
  const before = d.taken.length;
  const oldLeader = sim.leaderId!;
  sim.set(oldLeader, { on: false });
  await d.run(3 * MIN);
  t.same(d.taken.slice(before).map((x) => `${x.step.kind}:${x.step.reason}`), ['demote:dead-manager', 'demote:shrink']);
  t.equal(sim.reachableManagers(), 3);
  t.same(d.quorumViolations, []);
  sim.set(oldLeader, { on: true });
  await d.run(3 * MIN);
  t.equal(sim.reachableManagers(), 5, 'back to 5 managers once the node returns and is stable');
  t.equal(sim.list().find((n) => n.id === oldLeader)?.state, 'ready', 'the returned node kept its id (not removed inside the TTL)');
});

t.test('two of five managers cut off', async (t) => {
  t.test('reconnected inside the grace period: no step at all', async (t) => {
    const { sim, d } = await settled(7);
    const before = d.taken.length;
    const cut = sim.managers().filter((n) => n.id !== sim.leaderId).slice(0, 2).map((n) => n.id);
    for (const id of cut) sim.set(id, { connected: false });
    t.equal(sim.reachableManagers(), 3, 'majority side keeps quorum with margin 0');
    await d.run(50_000);
    for (const id of cut) sim.set(id, { connected: true });
    await d.run(5 * MIN);
    t.equal(d.taken.length, before);
    t.equal(sim.reachableManagers(), 5);
  });
  t.test('past the grace period: replaced, then re-promoted when back', async (t) => {
    const { sim, d } = await settled(7);
    const before = d.taken.length;
    const cut = sim.managers().filter((n) => n.id !== sim.leaderId).slice(0, 2).map((n) => n.id);
    for (const id of cut) sim.set(id, { connected: false });
    await d.run(3 * MIN);
    t.same(d.taken.slice(before).map((x) => `${x.step.kind}:${x.step.reason}`), ['demote:dead-manager', 'demote:dead-manager']);
    t.equal(sim.managers().length, 3);
    t.equal(sim.reachableManagers(), 3);
    for (const id of cut) sim.set(id, { connected: true });
    await d.run(3 * MIN);
    t.equal(sim.reachableManagers(), 5);
    t.ok(cut.every((id) => sim.nodes.has(id)), 'the reconnected nodes keep their ids');
    t.same(d.quorumViolations, []);
  });
});

t.test('worker power cut and back within the TTL: same node, no step', async (t) => {
  const { sim, d } = await settled(5);
  const before = d.taken.length;
  const w = [...sim.nodes.values()].find((n) => n.role === 'worker')!;
  sim.set(w.id, { on: false });
  await d.run(5 * MIN);
  sim.set(w.id, { on: true });
  await d.run(5 * MIN);
  t.equal(d.taken.length, before);
  t.ok(sim.nodes.has(w.id));
  t.equal(sim.list().find((n) => n.id === w.id)?.state, 'ready');
});

t.test('whole cluster power cut, then everything back (workers later): no step', async (t) => {
  const { sim, d } = await settled(5);
  const before = d.taken.length;
  for (const id of sim.nodes.keys()) sim.set(id, { on: false });
  t.equal(sim.leaderId, null, 'no leader while everything is off');
  await d.run(30 * MIN);
  for (const n of sim.managers()) sim.set(n.id, { on: true });
  await d.run(40_000);
  for (const n of sim.nodes.values()) sim.set(n.id, { on: true });
  await d.run(10 * MIN);
  t.equal(d.taken.length, before, 'no promotion, demotion or removal');
  t.equal(sim.reachableManagers(), 3);
});

t.test('re-imaged worker with the same hostname replaces its stale entry', async (t) => {
  const { sim, d } = await settled(5);
  const before = d.taken.length;
  const old = [...sim.nodes.values()].find((n) => n.role === 'worker')!;
  sim.set(old.id, { on: false });
  await d.run(20_000);
  const fresh = sim.add(old.hostname);
  await d.run(MIN);
  t.same(d.taken.slice(before).map((x) => `${x.step.kind}:${x.step.reason}:${x.step.nodeId}`), [`remove:reimaged:${old.id}`]);
  t.equal(sim.byHost(old.hostname).length, 1);
  t.equal(sim.byHost(old.hostname)[0]!.id, fresh);
});

t.test('re-imaged manager: stale entry demoted then removed, the count restored', async (t) => {
  const { sim, d } = await settled(5);
  const before = d.taken.length;
  const old = sim.managers().find((n) => n.id !== sim.leaderId)!;
  sim.set(old.id, { on: false });
  await d.run(10_000);
  sim.add(old.hostname);
  await d.run(2 * MIN);
  const steps = d.taken.slice(before).map((x) => `${x.step.kind}:${x.step.reason}`);
  // The replacement is promoted first (a ghost does not hold the count back), then the ghost goes.
  t.same(steps, ['promote:grow', 'demote:reimaged', 'remove:reimaged']);
  t.equal(sim.byHost(old.hostname).length, 1);
  t.equal(sim.reachableManagers(), 3);
  t.same(d.quorumViolations, []);
});

t.test('flapping nodes inside the stabilisation period: no action', async (t) => {
  t.test('new nodes that never stay up for the stabilisation period are not promoted', async (t) => {
    const sim = new SimSwarm();
    sim.add('pi1', { role: 'manager' });
    const d = new Driver(sim, { ...BASE_CONFIG, managerAvailability: 'auto' });
    await d.run(MIN);
    const flappers = [sim.add('pi2'), sim.add('pi3')];
    for (let i = 0; i < 40; i++) {
      for (const id of flappers) sim.set(id, { on: i % 3 !== 2 }); // 10 s down in every 15 s
      await d.run(5000);
    }
    t.same(d.actions(), []);
    t.equal(sim.managers().length, 1);
  });
  t.test('a flapping worker in a settled cluster (auto availability) changes nothing', async (t) => {
    const { sim, d } = await settled(5, { cfg: { ...BASE_CONFIG, managerAvailability: 'auto' } });
    t.ok(sim.managers().every((n) => n.availability === 'drain'), 'settled: managers drained');
    const before = d.taken.length;
    const w = [...sim.nodes.values()].find((n) => n.role === 'worker')!;
    for (let i = 0; i < 40; i++) {
      sim.set(w.id, { on: i % 4 !== 0 });
      await d.run(5000);
    }
    t.equal(d.taken.length, before);
  });
});

t.test('manager availability', async (t) => {
  t.test('auto: drain with two stable workers, activate when workers are lost', async (t) => {
    const { sim, d } = await settled(5, { cfg: { ...BASE_CONFIG, managerAvailability: 'auto' } });
    const mgrs = sim.managers();
    t.equal(mgrs.length, 3);
    t.ok(mgrs.every((n) => n.availability === 'drain' && n.labels[LABEL_AUTOPILOT_DRAINED] === 'true'));
    const workers = [...sim.nodes.values()].filter((n) => n.role === 'worker');
    for (const w of workers) sim.set(w.id, { on: false });
    await d.run(MIN);
    t.ok(sim.managers().every((n) => n.availability === 'active'), 'managers take tasks again');
    t.ok(d.actions().some((s) => s.kind === 'activate' && s.reason === 'workers-lost'));
  });
  t.test('auto does not undo an operator\'s drain', async (t) => {
    const sim = new SimSwarm();
    const m = sim.add('pi1', { role: 'manager' });
    sim.get(m).availability = 'drain';
    const d = new Driver(sim, { ...BASE_CONFIG, managerAvailability: 'auto' });
    await d.run(5 * MIN);
    t.equal(sim.get(m).availability, 'drain');
    t.same(d.actions(), []);
  });
  t.test('always drains even a lone manager; never reverts our drains', async (t) => {
    const sim = new SimSwarm();
    const m = sim.add('pi1', { role: 'manager' });
    const d = new Driver(sim, { ...BASE_CONFIG, managerAvailability: 'always' });
    await d.run(MIN);
    t.equal(sim.get(m).availability, 'drain');
    const d2 = new Driver(sim, { ...BASE_CONFIG, managerAvailability: 'never' });
    await d2.run(MIN);
    t.equal(sim.get(m).availability, 'active');
    t.match(d2.actions()[0], { kind: 'activate', reason: 'availability-never' });
  });
});

t.test('candidates: best score first, the oldest node when nothing is published', async (t) => {
  const sim = new SimSwarm();
  sim.add('pi1', { role: 'manager' });
  const d = new Driver(sim);
  await d.run(MIN);
  sim.advance(1000);
  const old = sim.add('old');
  sim.advance(1000);
  sim.add('mid');
  sim.advance(1000);
  sim.add('young');
  await d.run(MIN);
  t.equal(d.actions()[0]?.nodeId, old, 'no scores: the oldest first');

  const sim2 = new SimSwarm();
  sim2.add('pi1', { role: 'manager' });
  sim2.add('sd', { labels: { 'piswarm.disk-bps': '20000000' } });
  const ssd = sim2.add('ssd', { labels: { 'piswarm.disk-bps': '300000000' } });
  const brown = sim2.add('brown', { labels: { 'piswarm.disk-bps': '300000000', 'piswarm.undervoltage': '3' } });
  const d2 = new Driver(sim2);
  await d2.run(5 * MIN);
  t.equal(d2.actions()[0]?.nodeId, ssd, 'fast storage first');
  t.ok(d2.actions().every((s) => s.nodeId !== brown), 'the under-volted node is never promoted while others qualify');
});

t.test('quorum guard and engine refusals', async (t) => {
  t.test('quorum lost: nothing planned; dead managers demoted one at a time, a backed-off step skipped', async (t) => {
    const now = 10 * MIN;
    const mk = (id: string, reach: string | null, state = 'ready', leader = false): SwarmNode => ({
      id, hostname: id, role: reach === null ? 'worker' : 'manager', availability: 'active', state, addr: '', leader, reachability: reach, labels: {}, createdAt: '2024-01-01T00:00:00Z', updatedAt: '', version: 1,
    });
    const nodes = [mk('a', 'reachable', 'ready', true), mk('b', 'reachable'), mk('c', 'unreachable', 'down'), mk('d', 'unreachable', 'down')];
    const tracker = observe(new Map(), nodes, [], 0);
    const view = buildView({ selfId: 'a', nodes, tracker, now });
    t.same(assess(view, BASE_CONFIG, now), { managers: 4, reachable: 2, quorum: 3, counted: 2, target: 1, staleMembers: [] });
    t.match(plan(view, BASE_CONFIG, now), { kind: 'wait', reason: 'quorum-lost' });
    // 5 managers, 3 reachable, 2 dead: demote one dead -> 4 managers, quorum 3, 3 reachable: allowed.
    const five = [...nodes, mk('e', 'reachable')];
    const v5 = buildView({ selfId: 'a', nodes: five, tracker: observe(new Map(), five, [], 0), now });
    t.match(plan(v5, BASE_CONFIG, now), { kind: 'demote', reason: 'dead-manager', nodeId: 'c' });
    // ...but a demotion blocked by backoff moves on to the other dead manager, not into a loop.
    const blocked = buildView({ selfId: 'a', nodes: five, tracker: observe(new Map(), five, [], 0), blocked: { 'demote:c': now + 5000 }, now });
    t.match(plan(blocked, BASE_CONFIG, now), { kind: 'demote', nodeId: 'd' });
    const both = buildView({ selfId: 'a', nodes: five, tracker: observe(new Map(), five, [], 0), blocked: { 'demote:c': now + 5000, 'demote:d': now + 5000 }, now });
    t.match(plan(both, BASE_CONFIG, now), { kind: 'wait', reason: 'backoff' });
  });

  t.test('engine refusal: counted, backed off, retried later, never in a loop', async (t) => {
    const { sim, d } = await settled(5);
    const before = d.taken.length;
    const dead = sim.managers().find((n) => n.id !== sim.leaderId)!;
    sim.set(dead.id, { on: false });
    // The engine refuses every demotion for a while (e.g. its own Raft view disagrees).
    const real = sim.updateNode.bind(sim);
    let refusing = true;
    sim.updateNode = (id, change) => {
      if (refusing && change.role === 'worker') {
        const engineMessage = "rpc error: code = FailedPrecondition desc = can't remove member from the raft: this would result in a loss of quorum";
        throw new PiswarmError('PISWARM_ERR_DOCKER', engineMessage, { details: { statusCode: 500, engineMessage } });
      }
      return real(id, change);
    };
    await d.run(3 * MIN);
    const refused = d.taken.slice(before).filter((x) => !x.ok);
    t.ok(refused.length >= 2, 'the refusal was met more than once');
    t.ok(refused.length <= 6, `but not every tick (${refused.length} in 3 min of 5 s ticks)`);
    const gaps = refused.slice(1).map((x, i) => x.t - refused[i]!.t);
    t.ok(gaps.every((g, i) => i === 0 || g >= gaps[i - 1]!), `backoff grows: ${gaps.join(', ')}`);
    t.equal(refused[0]!.refusal, 'quorum');
    refusing = false;
    await d.run(10 * MIN);
    t.equal(sim.managers().length, 3);
    t.equal(sim.reachableManagers(), 3);
  });
});

t.test('gossip as an extra opinion: a ready node gossip calls dead is not promoted', async (t) => {
  const now = 10 * MIN;
  const mk = (id: string, role: 'manager' | 'worker', leader = false): SwarmNode => ({
    id, hostname: `h-${id}`, role, availability: 'active', state: 'ready', addr: '', leader, reachability: role === 'manager' ? 'reachable' : null, labels: {}, createdAt: `2024-01-0${id.charCodeAt(0) - 96}T00:00:00Z`, updatedAt: '', version: 1,
  });
  const nodes = [mk('a', 'manager', true), mk('b', 'worker'), mk('c', 'worker'), mk('d', 'worker')];
  const member = (id: string, state: Member['state'], meta: Record<string, unknown>): Member => ({ id, addr: '10.0.0.1', port: 7070, incarnation: 1, state, meta, stateChangedAt: 0, self: false });
  const members = [member('x', 'dead', { swarmNodeId: 'b' }), member('h-c', 'alive', {}), member('y', 'alive', { hostname: 'h-d', diskBps: 200e6 })];
  const tracker = observe(new Map(), nodes, members, 0);
  const view = buildView({ selfId: 'a', nodes, members, tracker, now });
  t.equal(view.nodes.find((n) => n.id === 'b')!.healthy, false);
  t.equal(view.nodes.find((n) => n.id === 'd')!.score, 50);
  t.match(plan(view, BASE_CONFIG, now), { kind: 'promote', nodeId: 'd' }, 'best gossip score first, the gossip-dead node skipped');
  t.equal(assess(view, BASE_CONFIG, now).counted, 3);
});

t.test('the planner is fast enough to run every tick on a Pi', async (t) => {
  // Not a timing assertion (that lives in bench/): just that it is deterministic on a large view.
  const { sim, d } = await settled(7);
  const nodes = sim.list();
  const view = buildView({ selfId: sim.leaderId!, nodes, tracker: d.trackers.get(sim.leaderId!)!, now: sim.t });
  t.same(plan(view, BASE_CONFIG, sim.t), plan(view, BASE_CONFIG, sim.t));
});

t.test('after a manager is lost, promotions wait until workers know the surviving managers', async (t) => {
  const now = 10 * MIN;
  const mk = (id: string, role: 'manager' | 'worker', leader = false): SwarmNode => ({
    id, hostname: `h-${id}`, role, availability: 'active', state: 'ready', addr: '', leader, reachability: role === 'manager' ? 'reachable' : null, labels: {}, createdAt: '2024-01-01T00:00:00Z', updatedAt: '', version: 1,
  });
  const nodes = [mk('a', 'manager', true), mk('b', 'manager'), mk('c', 'worker'), mk('d', 'worker')];
  const tracker = observe(new Map(), nodes, [], 0);
  const soon = buildView({ selfId: 'a', nodes, tracker, managerLostAt: now - 5000, now });
  t.match(plan(soon, BASE_CONFIG, now), { kind: 'wait', reason: 'manager-settling' }, '5 s after the loss: wait');
  const later = buildView({ selfId: 'a', nodes, tracker, managerLostAt: now - MANAGER_LOSS_SETTLE_MS, now });
  t.match(plan(later, BASE_CONFIG, now), { kind: 'promote', reason: 'grow' }, 'once settled: promote toward 3');
  const never = buildView({ selfId: 'a', nodes, tracker, now });
  t.match(plan(never, BASE_CONFIG, now), { kind: 'promote' }, 'no loss recorded: no wait');
});

t.test('a worker pinned to a manager that is gone (gossip joinAddr, Docker < 27) is never promoted; one joined through a live manager is', async (t) => {
  const now = 10 * MIN;
  const mk = (id: string, role: 'manager' | 'worker', ip: string, leader = false): SwarmNode => ({
    id, hostname: `h-${id}`, role, availability: 'active', state: 'ready', addr: ip, leader, reachability: role === 'manager' ? 'reachable' : null,
    managerAddr: role === 'manager' ? `${ip}:2377` : null, labels: {}, createdAt: `2024-01-0${id.charCodeAt(0) - 96}T00:00:00Z`, updatedAt: '', version: 1,
  });
  // a and b manage; the first manager (10.0.0.9) was demoted after its power cut.
  const nodes = [mk('a', 'manager', '10.0.0.1', true), mk('b', 'manager', '10.0.0.2'), mk('c', 'worker', '10.0.0.3'), mk('d', 'worker', '10.0.0.4')];
  const member = (id: string, meta: Record<string, unknown>): Member => ({ id, addr: '10.0.0.1', port: 7070, incarnation: 1, state: 'alive', meta, stateChangedAt: 0, self: false });
  const tracker = observe(new Map(), nodes, [], 0);
  const view = (members: Member[]) => buildView({ selfId: 'a', nodes, members, tracker, now });

  const bothPinned = [member('h-c', { swarmNodeId: 'c', joinAddr: '10.0.0.9:2377' }), member('h-d', { swarmNodeId: 'd', joinAddr: '10.0.0.9:2377' })];
  const w = plan(view(bothPinned), BASE_CONFIG, now);
  t.match(w, { kind: 'wait', reason: 'waiting-candidates' }, 'no promotion while every candidate is pinned to the gone manager');
  t.match(w?.detail, /2 more joined through a manager that is gone and re-join first \(h-c, h-d\)/, 'the wait names them');

  const oneRejoined = [member('h-c', { swarmNodeId: 'c', joinAddr: '10.0.0.9:2377' }), member('h-d', { swarmNodeId: 'd', joinAddr: '10.0.0.2:2377' })];
  t.match(plan(view(oneRejoined), BASE_CONFIG, now), { kind: 'promote', nodeId: 'd', reason: 'grow' }, 'the worker joined through a live manager is promoted');

  const unpublished = [member('h-c', { swarmNodeId: 'c' }), member('h-d', { swarmNodeId: 'd' })];
  t.match(plan(view(unpublished), BASE_CONFIG, now), { kind: 'promote', nodeId: 'c' }, 'no joinAddr (Docker 27+): ranked as before, oldest first');
  t.equal(view(bothPinned).nodes.find((n) => n.id === 'a')!.managerAddr, '10.0.0.1:2377');
});

t.test('a worker that left and joined again: its old entry is never promoted, and a promoted entry that never joined Raft is no voter and is removed once down', async (t) => {
  const now = 10 * MIN;
  const mk = (id: string, role: 'manager' | 'worker', o: Partial<SwarmNode> = {}): SwarmNode => ({
    id, hostname: `h-${id}`, role, availability: 'active', state: 'ready', addr: '', leader: false, reachability: role === 'manager' ? 'reachable' : null,
    managerAddr: null, labels: {}, createdAt: '2024-01-01T00:00:00Z', updatedAt: '', version: 1, ...o,
  });
  const a = mk('a', 'manager', { leader: true });
  const b = mk('b', 'manager');
  // c left and joined again as c2: the engine still says its old entry is ready for a few seconds.
  const cOld = mk('c', 'worker');
  const cNew = mk('c2', 'worker', { hostname: 'h-c', createdAt: '2024-01-01T00:09:00Z' });
  const d = mk('d', 'worker', { createdAt: '2024-01-01T00:05:00Z' });
  const tracker = observe(new Map(), [a, b, cOld, cNew, d], [], 0);
  const v1 = buildView({ selfId: 'a', nodes: [a, b, cOld, cNew, d], tracker, now });
  t.match(plan(v1, BASE_CONFIG, now), { kind: 'promote', nodeId: 'd' }, 'the stale entry (oldest, so first by rank) is skipped');

  // The stale entry was promoted anyway (by hand, or before this rule) and went down without ever joining Raft.
  const ghost = mk('c', 'manager', { state: 'down', reachability: null });
  const nodes2 = [a, b, ghost, cNew, d];
  const v2 = buildView({ selfId: 'a', nodes: nodes2, tracker: observe(new Map(), nodes2, [], 0), now });
  t.same(assess(v2, BASE_CONFIG, now).managers, 2, 'it is not counted as a Raft member: 2 of 2 reachable, quorum holds');
  t.match(plan(v2, BASE_CONFIG, now), { kind: 'remove', nodeId: 'c', reason: 'reimaged' }, 'removed (the engine would refuse to demote it)');

  // The same without a newer entry for its hostname: a dead manager that never joined Raft.
  const lone = mk('e', 'manager', { state: 'down', reachability: null });
  const nodes3 = [a, b, lone, d];
  const v3 = buildView({ selfId: 'a', nodes: nodes3, tracker: observe(new Map(), nodes3, [], 0), now });
  t.match(plan(v3, BASE_CONFIG, now), { kind: 'remove', nodeId: 'e', reason: 'dead-manager' });
  const stuck = mk('e', 'manager', { state: 'ready', reachability: null });
  const nodes4 = [a, b, stuck, d];
  const v4 = buildView({ selfId: 'a', nodes: nodes4, tracker: observe(new Map(), nodes4, [], 0), now });
  t.match(plan(v4, BASE_CONFIG, now), { kind: 'wait', reason: 'node-not-down', nodeId: 'e' }, 'up but not in Raft: still trying to join, left alone');
});

t.test('entries superseded by a newer entry for the same hostname count toward neither the node total nor the manager target', async (t) => {
  // 5 nodes, 3 managers; then three workers... here the two workers and one
  // follower manager re-join (a cable pulled and back): their old entries are
  // still listed Ready beside the new ones, as the engine shows them for a while.
  const { sim, d } = await settled(5);
  const before = sim.list();
  const leader = before.find((n) => n.leader)!;
  sim.advance(1000);
  for (const n of before.filter((x) => x.role === 'worker')) sim.add(n.hostname);
  await d.run(0);
  const view = buildView({ selfId: leader.id, nodes: sim.list(), tracker: d.trackers.get(leader.id)!, now: sim.t });
  t.equal(view.nodes.length, 7, 'the engine lists 7 entries');
  const a = assess(view, BASE_CONFIG, sim.t);
  t.equal(a.counted, 5, 'five nodes counted');
  t.equal(a.target, 3, 'target 3, not 5');
  const step = plan(view, BASE_CONFIG, sim.t);
  t.notMatch(step, { kind: 'promote' }, 'no promotion toward a target the stale entries inflated');
});

t.test('a worker the Raft group still lists as an unreachable member is reported, and changes no plan (fault 7 of the 20.10 campaign)', async (t) => {
  const now = 10 * MIN;
  const mk = (id: string, role: 'manager' | 'worker', reach: string | null, leader = false): SwarmNode => ({
    id, hostname: `pi-${id}`, role, availability: 'active', state: 'ready', addr: '', leader, reachability: reach, labels: {}, createdAt: '2024-01-01T00:00:00Z', updatedAt: '', version: 1,
  });
  // What `docker node ls` / inspect said: pi-2 Ready, spec role worker, ManagerStatus Unreachable; three managers reachable.
  const nodes = [mk('1', 'manager', 'reachable', true), mk('2', 'worker', 'unreachable'), mk('3', 'manager', 'reachable'), mk('4', 'manager', 'reachable'), mk('5', 'worker', null)];
  const view = buildView({ selfId: '1', nodes, tracker: observe(new Map(), nodes, [], 0), now });
  t.same(staleRaftMembers(view, now, BASE_CONFIG.deadManagerGraceMs).map((n) => n.id), ['2']);
  t.same(staleRaftMembers(view, 1000, BASE_CONFIG.deadManagerGraceMs), [], 'not before it has lasted the grace (a demotion under way)');
  t.match(assess(view, BASE_CONFIG, now), { managers: 3, reachable: 3, staleMembers: ['pi-2'] });
  const without = nodes.map((n) => (n.id === '2' ? { ...n, reachability: null } : n));
  const clean = buildView({ selfId: '1', nodes: without, tracker: observe(new Map(), without, [], 0), now });
  t.same(plan(view, BASE_CONFIG, now), plan(clean, BASE_CONFIG, now), 'the plan is the one without the stale member: reported, not acted on');
  const demoting = nodes.map((n) => (n.id === '2' ? { ...n, reachability: 'reachable' } : n));
  t.same(assess(buildView({ selfId: '1', nodes: demoting, tracker: observe(new Map(), demoting, [], 0), now }), BASE_CONFIG, now).staleMembers, [], 'a demoted manager still reachable (its Raft removal under way) is not stale');
});

t.test('a node listed for the first time counts as healthy since gossip has had it alive, never before the swarm created it', async (t) => {
  // The autopilot's clock is the wall clock on a Pi, as the engine's createdAt is.
  const now = Date.parse('2026-12-07T16:00:00Z');
  const iso = (ms: number) => new Date(ms).toISOString();
  const mk = (id: string, role: 'manager' | 'worker', createdAgoMs: number, leader = false): SwarmNode => ({
    id, hostname: `h-${id}`, role, availability: 'active', state: 'ready', addr: '', leader, reachability: role === 'manager' ? 'reachable' : null, labels: {}, createdAt: iso(now - createdAgoMs), updatedAt: '', version: 1,
  });
  const member = (id: string, state: Member['state'], sinceAgoMs: number): Member => ({ id: `h-${id}`, addr: '10.0.0.9', port: 7946, incarnation: 1, state, meta: { swarmNodeId: id }, stateChangedAt: now - sinceAgoMs, self: false });
  const nodes = [mk('a', 'manager', 600_000, true), mk('b', 'manager', 600_000), mk('c', 'worker', 600_000), mk('d', 'worker', 10_000), mk('e', 'worker', 600_000), mk('f', 'worker', 600_000)];
  const members = [member('c', 'alive', 60_000), member('d', 'alive', 60_000), member('e', 'suspect', 60_000)];
  const tracker = observe(new Map(), nodes, members, now);
  t.equal(tracker.get('c')!.since, now - 60_000, 'alive in gossip for 60 s, created 10 min ago: healthy for 60 s');
  t.equal(tracker.get('d')!.since, now - 10_000, 'created 10 s ago (joined or re-joined): from its creation');
  t.equal(tracker.get('f')!.since, now, 'no gossip member: from now, as before');
  t.equal(tracker.get('e')!.since, now, 'a suspect member is no healthy one: from now');
  const later = observe(tracker, nodes, members, now + 5_000);
  t.equal(later.get('c')!.since, now - 60_000, 'kept on the next observation');
  const view = buildView({ selfId: 'a', nodes: nodes.slice(0, 3), members, tracker: observe(new Map(), nodes.slice(0, 3), members, now), now });
  t.match(plan(view, { ...BASE_CONFIG, stabilizationMs: 30_000 }, now), { kind: 'promote', nodeId: 'c' }, 'a new leader promotes a worker gossip has had alive past the stabilisation at once');
  const future = [{ ...mk('g', 'worker', 0), createdAt: iso(now + 60_000) }];
  t.equal(observe(new Map(), future, [member('g', 'alive', 60_000)], now).get('g')!.since, now, 'a createdAt after now (another clock): from now');
});
