import t from 'tap';
import { compareSwarms, decide, effectiveHoldOffMs, splitWinner, summarizeSwarms, type ElectionInput, type PeerState, type SelfState } from '../../../../agent/formation/rule.js';
import { backoffMs } from '../../../../agent/lifecycle/backoff.js';
import type { PeerSwarm } from '../../../../shared/wire/peer.js';

const id = (i: number) => i.toString(16).padStart(24, '0');
const cfg = { expect: 3, holdOffMs: 5000, initDeadlineMs: 20_000 };
const PORT = 7070;
const swarm = (sid: string, over: Partial<PeerSwarm> = {}): PeerSwarm => ({ id: sid, createdAt: '2026-01-01T00:00:00Z', role: 'manager', nodes: 1, managerAddrs: ['10.0.0.1:2377'], runningTasks: 0, ...over });
const peer = (i: number, over: Partial<PeerState> = {}): PeerState => ({ nodeId: id(i), addr: `10.0.0.${i}`, port: PORT, phase: 'candidate', swarm: null, seenSwarms: [], ...over });
const self = (i: number, over: Partial<SelfState> = {}): SelfState => ({ nodeId: id(i), engine: 'inactive', swarm: null, seenSwarms: [], ...over });
const input = (s: SelfState, peers: PeerState[], now: number, stableSince = 0, c = cfg): ElectionInput => ({ self: s, peers, now, stableSince, ...c });

t.test('lowest id creates once the set is stable and big enough; others wait for it', async (t) => {
  const peers = [peer(2), peer(3)];
  t.equal(decide(input(self(1), [peer(2)], 10_000), PORT).phase, 'discovering', 'fewer than expect');
  t.equal(decide(input(self(1), peers, 4_999), PORT).phase, 'candidate', 'hold-off not over');
  const d = decide(input(self(1), peers, 5_000), PORT);
  t.equal(d.action, 'init');
  const w = decide(input(self(2), [peer(1), peer(3)], 5_000), PORT);
  t.equal(w.action, 'wait');
  t.equal(w.action === 'wait' && w.winner, id(1));
});

t.test('takeover: the next in rank creates after each deadline', async (t) => {
  const at = (ms: number, me: number) => decide(input(self(me), [1, 2, 3].filter((x) => x !== me).map((x) => peer(x)), ms), PORT).action;
  t.equal(at(5_000 + 19_999, 2), 'wait');
  t.equal(at(5_000 + 20_000, 2), 'init', 'rank 1 after one deadline');
  t.equal(at(5_000 + 20_000, 3), 'wait');
  t.equal(at(5_000 + 40_000, 3), 'init', 'rank 2 after two');
  t.equal(decide(input(self(3), [peer(1, { phase: 'initialising' }), peer(2)], 60_000), PORT).action, 'wait', 'never while a peer says it is creating one');
});

t.test('never create when any peer is in a swarm, joining one, or one was ever seen', async (t) => {
  const d = decide(input(self(1), [peer(2, { swarm: swarm('S', { role: 'worker', managerAddrs: ['10.0.0.9:2377'] }) }), peer(3, { swarm: swarm('S') })], 1e9), PORT);
  t.equal(d.action, 'join');
  if (d.action === 'join') {
    t.equal(d.swarmId, 'S');
    t.same(d.via.map((v) => v.addr), ['10.0.0.3'], 'managers are asked, not workers');
  }
  const onlyWorker = decide(input(self(1), [peer(2, { swarm: swarm('S', { role: 'worker', managerAddrs: ['10.0.0.9:2377'] }) })], 1e9), PORT);
  t.same(onlyWorker.action === 'join' && onlyWorker.via, [{ nodeId: null, addr: '10.0.0.9', port: PORT }], 'the managers a worker names');
  t.equal(decide(input(self(1), [peer(2, { phase: 'joining' }), peer(3)], 1e9), PORT).action, 'wait');
  t.equal(decide(input(self(1), [peer(2, { phase: 'member' }), peer(3)], 1e9), PORT).action, 'wait', 'a member whose swarm id is unknown');
  t.equal(decide(input(self(1, { seenSwarms: ['OLD'] }), [peer(2), peer(3)], 1e9), PORT).action, 'wait', 'this node saw a swarm');
  t.equal(decide(input(self(1), [peer(2, { seenSwarms: ['OLD'] }), peer(3)], 1e9), PORT).action, 'wait', 'a peer saw a swarm');
});

t.test('a member stays a member (restart/reboot never re-inits or re-joins)', async (t) => {
  const d = decide(input(self(1, { engine: 'active', swarm: swarm('S', { role: 'worker' }) }), [], 1e9), PORT);
  t.same([d.action, d.phase], ['member', 'member']);
  t.same(decide(input(self(9, { engine: 'active', swarm: swarm('S') }), [peer(1), peer(2)], 1e9), PORT).phase, 'manager');
  t.equal(decide(input(self(1, { engine: 'active' }), [peer(2), peer(3)], 1e9), PORT).action, 'member', 'active with unknown swarm id');
  t.equal(decide(input(self(1, { engine: 'pending' }), [peer(2), peer(3)], 1e9), PORT).action, 'wait');
  t.equal(decide(input(self(1, { engine: 'locked' }), [], 1e9), PORT).phase, 'degraded');
});

t.test('split-heal decision table', async (t) => {
  const A = (o: Partial<PeerSwarm> = {}) => swarm('AAAA', { nodes: 3, createdAt: '2026-01-01T00:00:10Z', ...o });
  const B = (o: Partial<PeerSwarm> = {}) => swarm('BBBB', { nodes: 2, createdAt: '2026-01-01T00:00:00Z', ...o });
  t.equal(splitWinner([{ id: 'AAAA', nodes: 3, createdAt: 'x' }, { id: 'BBBB', nodes: 2, createdAt: '2020-01-01T00:00:00Z' }])!.id, 'AAAA', 'more nodes wins');
  t.equal(splitWinner([{ id: 'AAAA', nodes: 2, createdAt: '2026-01-02T00:00:00Z' }, { id: 'BBBB', nodes: 2, createdAt: '2026-01-01T00:00:00Z' }])!.id, 'BBBB', 'then older');
  t.equal(splitWinner([{ id: 'BBBB', nodes: 2, createdAt: null }, { id: 'AAAA', nodes: 2, createdAt: null }])!.id, 'AAAA', 'then lower id');
  t.ok(compareSwarms({ id: 'X', nodes: 1, createdAt: '2026-01-01T00:00:00Z' }, { id: 'Y', nodes: 1, createdAt: null }) < 0, 'unknown age counts as newest');
  t.same(summarizeSwarms([{ swarm: A({ nodes: 1 }) }, { swarm: A({ nodes: null }) }, { swarm: null }]), [{ id: 'AAAA', nodes: 2, createdAt: '2026-01-01T00:00:10Z' }], 'counts members seen when managers report fewer');

  const rows: Array<[string, SelfState, PeerState[], string, string]> = [
    ['winner side stays', self(1, { engine: 'active', swarm: A() }), [peer(2, { swarm: B() })], 'member', 'manager'],
    ['loser without services leaves and joins the winner', self(1, { engine: 'active', swarm: B({ runningTasks: 0 }) }), [peer(2, { swarm: A() })], 'join', 'joining'],
    ['loser with services stays, degraded', self(1, { engine: 'active', swarm: B({ runningTasks: 2 }) }), [peer(2, { swarm: A() })], 'member', 'degraded'],
    ['loser with unknown task count stays', self(1, { engine: 'active', swarm: B({ runningTasks: null }) }), [peer(2, { swarm: A() })], 'member', 'degraded'],
    ['loser, winner has no reachable manager', self(1, { engine: 'active', swarm: B({ runningTasks: 0 }) }), [peer(2, { swarm: A({ role: 'worker', managerAddrs: [] }) })], 'member', 'degraded'],
    ['outsider joins the winner of two', self(1), [peer(2, { swarm: A() }), peer(3, { swarm: B() })], 'join', 'joining'],
  ];
  for (const [what, s, ps, action, phase] of rows) {
    const d = decide(input(s, ps, 1e9), PORT);
    t.same([d.action, d.phase], [action, phase], what);
  }
  const leave = decide(input(self(1, { engine: 'active', swarm: B({ runningTasks: 0 }) }), [peer(2, { swarm: A() })], 1e9), PORT);
  t.ok(leave.action === 'join' && leave.leaveFirst && leave.swarmId === 'AAAA');
  const stay = decide(input(self(1, { engine: 'active', swarm: B({ runningTasks: 2 }) }), [peer(2, { swarm: A() })], 1e9), PORT);
  t.match(stay.reason, /docker swarm leave --force/, 'health text says what to do');
});

/**
 * Property: N nodes boot at random moments, see each other after random
 * delays (discovery + HTTP confirmation), and run the rule on every tick.
 * An init becomes visible to others only after a confirmation delay, and
 * a node is 'initialising' while its init runs. Exactly one swarm results.
 * With `lowestFails` the lowest node id is alive but every swarm init it
 * tries fails: it stays 'initialising' while the rule has it try.
 */
function simulate(n: number, seed: number, c = cfg, lowestFails = false): { creators: number; formedAt: number } {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const boot = Array.from({ length: n }, () => Math.floor(rnd() * 3000));
  const seeLatency = Array.from({ length: n }, () => Array.from({ length: n }, () => 50 + Math.floor(rnd() * 1500)));
  const ids = Array.from({ length: n }, () => Math.floor(rnd() * 2 ** 40));
  const swarmOf: Array<string | null> = Array(n).fill(null);
  const initAt: Array<number | null> = Array(n).fill(null);
  const failing = lowestFails ? ids.indexOf(Math.min(...ids)) : -1;
  const tryingSince: Array<number | null> = Array(n).fill(null);
  const stable = Array.from({ length: n }, () => ({ key: '', since: 0 }));
  let creators = 0;
  for (let now = 0; now < 200_000; now += 100) {
    for (let i = 0; i < n; i++) {
      if (now < boot[i]! || swarmOf[i]) continue;
      const visible = [];
      for (let j = 0; j < n; j++) {
        if (j === i || now < Math.max(boot[i]!, boot[j]!) + seeLatency[i]![j]!) continue;
        // Peers learn our swarm/phase at their next confirmation, up to 1 s late.
        const lagged = now - seeLatency[i]![j]! / 2;
        const sw = swarmOf[j] && initAt[j]! + 300 <= lagged ? swarm(swarmOf[j]!) : null;
        const since = initAt[j] ?? tryingSince[j] ?? null;
        const creating = since !== null && since <= lagged;
        // phaseSince: when i first heard j say so.
        visible.push(peer(ids[j]!, { swarm: sw, phase: creating ? 'initialising' : 'candidate', ...(creating ? { phaseSince: since + seeLatency[i]![j]! / 2 } : {}) }));
      }
      const key = visible.map((p) => p.nodeId).sort().join();
      if (key !== stable[i]!.key) stable[i] = { key, since: now };
      const d = decide(input(self(ids[i]!), visible, now, stable[i]!.since, c), PORT);
      if (i === failing) tryingSince[i] = d.action === 'init' ? tryingSince[i] ?? now : null;
      if (d.action === 'init' && i === failing) continue;
      if (d.action === 'init' && initAt[i] === null) {
        creators++;
        initAt[i] = now;
        swarmOf[i] = `S${i}`;
      } else if (d.action === 'join') swarmOf[i] = d.swarmId;
    }
    if (swarmOf.every(Boolean)) return { creators, formedAt: now };
  }
  return { creators, formedAt: -1 };
}

t.test('simultaneous boot of 5 nodes, 500 different arrival orders: exactly one creator every time', async (t) => {
  let bad = 0;
  for (let seed = 1; seed <= 500; seed++) {
    const r = simulate(5, seed, { expect: 5, holdOffMs: 3000, initDeadlineMs: 20_000 });
    if (r.creators !== 1 || r.formedAt < 0) bad++;
  }
  t.equal(bad, 0, 'no run with zero or several creators');
  for (let seed = 1; seed <= 200; seed++) {
    const r = simulate(5, seed * 7, { expect: 1, holdOffMs: 5000, initDeadlineMs: 20_000 });
    if (r.creators !== 1) bad++;
  }
  t.equal(bad, 0, 'also with expect=1 when boots are within the hold-off');
  for (const expect of [2, 3, 5]) {
    for (let seed = 1; seed <= 200; seed++) {
      const r = simulate(5, seed * 13 + expect, { expect, holdOffMs: effectiveHoldOffMs({ expect }), initDeadlineMs: 20_000 });
      if (r.creators !== 1 || r.formedAt < 0) bad++;
    }
    t.equal(bad, 0, `the default hold-off for expect=${expect} (${effectiveHoldOffMs({ expect })} ms) gives one creator`);
  }
});

t.test('a winner that is alive but whose swarm init keeps failing: the next in rank creates the swarm, once, in every order', async (t) => {
  let bad = 0;
  let slowest = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const r = simulate(5, seed, { expect: 5, holdOffMs: 3000, initDeadlineMs: 20_000 }, true);
    if (r.creators !== 1 || r.formedAt < 0) bad++;
    slowest = Math.max(slowest, r.formedAt);
  }
  t.equal(bad, 0, 'one creator and everyone in its swarm, every time (it waited forever before)');
  t.ok(slowest < 3000 + 3000 + 2 * 20_000, `formed within the hold-off and two deadlines of the last boot (slowest ${slowest} ms)`);
});

t.test('a creating peer holds the others off for one deadline from when they saw it start; each node tries in its own turn only', async (t) => {
  // 3 nodes, hold-off 5 s, deadline 20 s. Rank 0 began initialising at 5 s; rank 1 first saw it at 5.5 s.
  const stuck = peer(1, { phase: 'initialising', phaseSince: 5_500 });
  t.match(decide(input(self(2), [stuck, peer(3)], 25_499), PORT), { action: 'wait', winner: id(1) }, 'less than a deadline since it was seen to start: wait for it');
  t.match(decide(input(self(2), [stuck, peer(3)], 25_500), PORT), { action: 'init', takeover: true, reason: new RegExp(`takeover: ${id(1)} did not create`) }, 'a deadline later, rank 1 takes over');
  t.match(decide(input(self(3), [stuck, peer(2, { phase: 'initialising', phaseSince: 25_700 })], 30_000), PORT), { action: 'wait', winner: id(2) }, 'rank 2 waits for the takeover in progress');
  t.match(decide(input(self(1), [peer(2), peer(3)], 25_000), PORT), { action: 'wait', winner: id(2) }, 'the failing winner stops trying once its turn is over');
  t.match(decide(input(self(1), [peer(2), peer(3)], 65_000), PORT), { action: 'init', takeover: true, reason: /no node created the swarm in 3 turns/ }, 'and tries again when its turn comes round');
  t.match(decide(input(self(1), [peer(2), peer(3)], 5_000), PORT), { action: 'init', takeover: false }, 'the first turn is no takeover');
  t.match(decide(input(self(2), [peer(1, { phase: 'initialising' }), peer(3)], 1e9), PORT), { action: 'wait' }, 'since when unknown: wait, never guess');
  t.match(decide(input(self(2), [peer(1, { phase: 'joining', phaseSince: 0 }), peer(3)], 1e9), PORT), { action: 'wait' }, 'a joining peer still holds off');
  t.match(decide(input(self(2), [stuck, peer(3, { swarm: swarm('S') })], 1e9), PORT), { action: 'join', swarmId: 'S' }, 'a takeover never makes a second swarm: one that exists is joined');
  t.match(decide(input(self(2), [stuck, peer(3, { phase: 'member' })], 1e9), PORT), { action: 'wait' }, 'nor while a peer is in a swarm it cannot name');
});

t.test('the default hold-off is long only where nothing else protects', async (t) => {
  t.equal(effectiveHoldOffMs({ expect: 1 }), 5000);
  t.equal(effectiveHoldOffMs({ expect: 3 }), 2000);
  t.equal(effectiveHoldOffMs({ expect: 3, holdOffMs: 7000 }), 7000, 'a configured value wins');
  t.equal(effectiveHoldOffMs({ expect: 1, holdOffMs: 0 }), 0);
});

t.test('the simulation can see a double init: without hold-off, staggered boots make two swarms', async (t) => {
  let multi = 0;
  for (let seed = 1; seed <= 100; seed++) if (simulate(5, seed, { expect: 1, holdOffMs: 0, initDeadlineMs: 20_000 }).creators > 1) multi++;
  t.ok(multi > 0, `${multi} of 100 runs made more than one swarm (which is why hold-off and expect exist)`);
});

t.test('backoff: capped, jittered, grows', async (t) => {
  t.equal(backoffMs(0, 500, 10_000, 0), 250);
  t.equal(backoffMs(0, 500, 10_000, 0.999), 499);
  t.equal(backoffMs(3, 500, 10_000, 0), 2000);
  t.equal(backoffMs(50, 500, 10_000, 0.5), 7500);
});

t.test('a worker pinned to a manager that is no longer one re-joins its own swarm through a live manager', async (t) => {
  const swarm = (role: 'manager' | 'worker') => ({ id: 'S', createdAt: '2026-01-01T00:00:00Z', role, nodes: role === 'manager' ? 3 : null, managerAddrs: ['10.0.0.2:2377'], runningTasks: 0 });
  const peers: PeerState[] = [
    { nodeId: 'm2', addr: '10.0.0.2', port: 7070, phase: 'manager', swarm: swarm('manager'), seenSwarms: ['S'] },
    { nodeId: 'w9', addr: '10.0.0.9', port: 7070, phase: 'member', swarm: swarm('worker'), seenSwarms: ['S'] },
  ];
  const input = (self: Partial<ElectionInput['self']>): ElectionInput => ({
    self: { nodeId: 'w3', engine: 'active', swarm: swarm('worker'), seenSwarms: ['S'], ...self }, peers, now: 0, stableSince: 0, expect: 1, holdOffMs: 1000, initDeadlineMs: 10_000,
  });
  const d = decide(input({ pinnedTo: '10.0.0.9:2377' }), 7070);
  t.match(d, { action: 'join', swarmId: 'S', leaveFirst: true }, 'leave and join the same swarm');
  t.same(d.action === 'join' ? d.via.map((v) => v.addr) : null, ['10.0.0.2'], 'through the live manager only');
  t.match(d.action === 'join' ? d.reason : '', /moby PR #47854/);
  t.match(decide(input({}), 7070), { action: 'member' }, 'not pinned: stays');
  t.match(decide(input({ pinnedTo: '10.0.0.2:2377' }), 7070), { action: 'member' }, 'no live manager other than the pinned one: stays');
  t.match(decide(input({ pinnedTo: '10.0.0.9:2377', swarm: swarm('manager') }), 7070), { action: 'member', phase: 'manager' }, 'a manager is never re-joined');
});

t.test('a node its managers no longer list joins its swarm again; a listed one stays', async (t) => {
  const swarm = (role: 'manager' | 'worker') => ({ id: 'S', createdAt: '2026-01-01T00:00:00Z', role, nodes: role === 'manager' ? 2 : null, managerAddrs: ['10.0.0.2:2377'], runningTasks: 0 });
  const peers: PeerState[] = [{ nodeId: 'm2', addr: '10.0.0.2', port: 7070, phase: 'manager', swarm: swarm('manager'), seenSwarms: ['S'] }];
  const input = (self: Partial<ElectionInput['self']>): ElectionInput => ({
    self: { nodeId: 'w3', engine: 'active', swarm: swarm('worker'), seenSwarms: ['S'], ...self }, peers, now: 0, stableSince: 0, expect: 1, holdOffMs: 1000, initDeadlineMs: 10_000,
  });
  const d = decide(input({ unlisted: true }), 7070);
  t.match(d, { action: 'join', swarmId: 'S', leaveFirst: true });
  t.match(d.action === 'join' ? d.reason : '', /no longer list this node/);
  t.match(decide(input({ unlisted: false }), 7070), { action: 'member' });
  t.match(decide(input({ unlisted: true, swarm: swarm('manager') }), 7070), { action: 'join', leaveFirst: true }, 'a manager demoted and removed while away, still running its own leaderless Raft, too');
  t.match(decide({ ...input({ unlisted: true }), peers: [] }, 7070), { action: 'member' }, 'no confirmed manager to join through: stays');
});

t.test('a pending engine: waits, unless a manager of the swarm it last joined no longer lists it (removed while away)', async (t) => {
  const managerOfS = peer(2, { phase: 'manager', swarm: swarm('S') });
  const pending = (over: Partial<SelfState>) => decide(input(self(1, { engine: 'pending', seenSwarms: ['S'], ...over }), [managerOfS, peer(3)], 1e9), PORT);
  t.match(pending({}), { action: 'wait', phase: 'joining' }, 'joining: nobody said otherwise');
  t.match(pending({ lastSwarm: 'S' }), { action: 'wait' }, 'still listed (a swarm powering on again): waits, never leaves');
  const d = pending({ lastSwarm: 'S', unlisted: true });
  t.match(d, { action: 'join', swarmId: 'S', leaveFirst: true, rejoin: 'pruned' }, 'removed: leaves and joins again');
  t.same(d.action === 'join' && d.via.map((v) => v.nodeId), [id(2)], 'through the manager that answered, by node id');
  t.match(pending({ lastSwarm: null, unlisted: true }), { action: 'wait' }, 'the swarm it belonged to is unknown: waits');
  t.match(pending({ lastSwarm: 'T', unlisted: true }), { action: 'wait' }, 'no manager of that swarm is confirmed: waits');
});

t.test('an engine in error: waits, unless a manager refused it as removed from the swarm (fault campaign, seed 20261208)', async (t) => {
  const managerOfS = peer(2, { phase: 'manager', swarm: swarm('S') });
  const failed = (over: Partial<SelfState>, peers = [managerOfS, peer(3)]) => decide(input(self(1, { engine: 'error', seenSwarms: ['S'], ...over }), peers, 1e9), PORT);
  t.match(failed({ lastSwarm: 'S' }), { action: 'wait', phase: 'degraded', reason: /swarm error/ }, 'any other error waits for a person');
  const d = failed({ lastSwarm: 'S', removedByEngine: true });
  t.match(d, { action: 'join', swarmId: 'S', leaveFirst: true, rejoin: 'pruned', reason: /refuses this node as removed/ });
  t.same(d.action === 'join' && d.via.map((v) => v.nodeId), [id(2)], 'through a live manager of that swarm');
  t.match(failed({ lastSwarm: 'S', removedByEngine: true }, [peer(3)]), { action: 'wait', phase: 'degraded', reason: /waiting for one of its managers/ }, 'no manager of S confirmed: waits');
  t.match(failed({ lastSwarm: null, removedByEngine: true }), { action: 'wait', phase: 'degraded' }, 'the swarm it was in is unknown: waits');
});
