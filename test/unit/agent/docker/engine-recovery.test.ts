import t from 'tap';
import { decide, engineRecovery, pinsJoinAddress, removedFromSwarm, restartCause, DEFAULT_RECOVERY, type RecoveryPolicy, type RecoveryState } from '../../../../agent/docker/engine-recovery.js';
import { toEngineInfo } from '../../../../agent/docker/engine.js';
import type { EngineSample } from '../../../../agent/docker/monitor.js';
import { memoryLogger } from '../../../helpers/fakes.js';

const P: RecoveryPolicy = { stuckMs: 30_000, fixedStuckMs: 180_000, relayClosedMs: 5_000, minIntervalMs: 600_000 };
const stuck = { info: toEngineInfo({ ServerVersion: '20.10.24', Swarm: { LocalNodeState: 'error', Error: "manager stopped: can't initialize raft node: rpc error: code = Unavailable desc = connection error: dial tcp 10.0.0.5:2377: connect: no route to host" } }) };
const otherError = { info: toEngineInfo({ ServerVersion: '20.10.24', Swarm: { LocalNodeState: 'error', Error: 'invalid join token' } }) };
const fine = { info: toEngineInfo({ ServerVersion: '20.10.24', Swarm: { LocalNodeState: 'active', ControlAvailable: true } }) };

t.test('asks once the raft-join error has lasted stuckMs, then not again within minIntervalMs', async (t) => {
  t.same(DEFAULT_RECOVERY, { stuckMs: 30_000, fixedStuckMs: 180_000, relayClosedMs: 5_000, minIntervalMs: 60_000 }, 'the shipped policy');
  let s = { stuckSince: null as number | null, lastRequestAt: null as number | null };
  let r = decide(s, stuck, 0, P);
  t.equal(r.request, false, 'not at first sight');
  s = r.state;
  r = decide(s, stuck, 29_999, P);
  t.equal(r.request, false);
  s = r.state;
  r = decide(s, stuck, 30_000, P);
  t.equal(r.request, true, 'after 30 s');
  s = r.state;
  r = decide(s, stuck, 100_000, P);
  s = r.state;
  r = decide(s, stuck, 200_000, P);
  t.equal(r.request, false, 'not again within 10 minutes');
  s = r.state;
  r = decide(s, stuck, 630_001, P);
  t.equal(r.request, true, 'again once 10 minutes passed and it is still stuck');
});

t.test('an engine that does not pin (26.1.5) gets out by itself: a restart, which stops every container, only after fixedStuckMs', async (t) => {
  // What the promoted worker of the service test said on 26.1.5 after the leader's power cut (2026-12-07), before its engine's own swarm restart.
  const fixed = { info: toEngineInfo({ ServerVersion: '26.1.5+dfsg1', Swarm: { LocalNodeState: 'error', Error: "manager stopped: can't initialize raft node: rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp 10.231.190.12:2377: i/o timeout\"" } }) };
  let s = decide({ stuckSince: null, lastRequestAt: null }, fixed, 0, P).state;
  t.equal(s.stuckSince, 0, 'the clock starts');
  const at30 = decide(s, fixed, 30_000, P);
  t.equal(at30.request, false, 'not after the 30 s that hold for 20.10');
  s = at30.state;
  t.equal(decide(s, fixed, 179_999, P).request, false);
  t.equal(decide(s, fixed, 180_000, P).request, true, 'a last resort once fixedStuckMs passed');
  t.equal(decide({ stuckSince: 0, lastRequestAt: null }, { info: toEngineInfo({ ServerVersion: '27.3.1', Swarm: fixed.info.swarm.error ? { LocalNodeState: 'error', Error: fixed.info.swarm.error } : {} }) }, 30_000, P).request, false, '27 is fixed too');
  t.equal(decide({ stuckSince: 0, lastRequestAt: null }, { info: toEngineInfo({ ServerVersion: '26.1.4', Swarm: { LocalNodeState: 'error', Error: fixed.info.swarm.error! } }) }, 30_000, P).request, true, 'an engine not checked counts as pinning: 30 s');
});

// What the revoked card's 20.10 engine said after its power cycle (revoke test, CI run of 2026-12-07):
// dockerd dialled the join relay while the agent was still starting, and did not dial again within 30 s.
const RELAY_REFUSED = "manager stopped: can't initialize raft node: rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing dial tcp 127.0.0.1:2378: connect: connection refused\"";

t.test('a dial to the join relay before it listened: on an engine that pins, a restart after relayClosedMs, with that cause', async (t) => {
  t.equal(restartCause(RELAY_REFUSED, '127.0.0.1:2378'), 'relay-was-closed');
  t.equal(restartCause(RELAY_REFUSED, null), 'pinned-join-address', 'no relay listening now: nothing says it was the relay');
  t.equal(restartCause(RELAY_REFUSED, '127.0.0.1:2379'), 'pinned-join-address', 'another port is not this relay');
  t.equal(restartCause(RELAY_REFUSED.replace('connection refused', 'connection reset by peer'), '127.0.0.1:2378'), 'pinned-join-address', 'a relay that listened and found no manager is not this case');
  const closed = (v: string) => ({ info: toEngineInfo({ ServerVersion: v, Swarm: { LocalNodeState: 'error', Error: RELAY_REFUSED } }) });
  let r = decide({ stuckSince: null, lastRequestAt: null }, closed('20.10.24+dfsg1'), 0, P, '127.0.0.1:2378');
  t.match(r, { request: false, cause: 'relay-was-closed' });
  t.equal(decide(r.state, closed('20.10.24+dfsg1'), 4_999, P, '127.0.0.1:2378').request, false);
  r = decide(r.state, closed('20.10.24+dfsg1'), 5_000, P, '127.0.0.1:2378');
  t.match(r, { request: true, cause: 'relay-was-closed' }, 'after 5 s on 20.10');
  t.equal(decide(r.state, closed('20.10.24+dfsg1'), 10_000, P, '127.0.0.1:2378').request, false, 'and not again within minIntervalMs');
  t.equal(decide({ stuckSince: 0, lastRequestAt: null }, closed('20.10.24+dfsg1'), 5_000, P, null).request, false, 'without a listening relay: the 30 s of moby#47854');
  t.equal(decide({ stuckSince: 0, lastRequestAt: null }, closed('26.1.5+dfsg1'), 30_000, P, '127.0.0.1:2378').request, false, 'an engine that does not pin dials again by itself: fixedStuckMs');
});

t.test('a recovery in between resets the clock; other errors and no engine never ask', async (t) => {
  let s = decide({ stuckSince: null, lastRequestAt: null }, stuck, 0, P).state;
  s = decide(s, fine, 20_000, P).state;
  t.equal(s.stuckSince, null);
  t.equal(decide(s, stuck, 40_000, P).request, false, 'the 30 s start again');
  t.equal(decide({ stuckSince: 0, lastRequestAt: null }, otherError, 1e6, P).request, false, 'a bad token is not fixed by a restart');
  t.equal(decide({ stuckSince: 0, lastRequestAt: null }, { info: null }, 1e6, P).request, false, 'a dead engine is systemd\'s business');
});

// What a 26.1.5 engine said in the fault campaign (seed 20261208, fault 18) and by hand: demoted while
// away, then removed before its engine got its worker certificate.
const REFUSAL = 'manager stopped: can\'t initialize raft node: rpc error: code = PermissionDenied desc = Permission denied: unauthorized peer role: rpc error: code = PermissionDenied desc = Permission denied: node pdniq99h4i03wczy7x99v4940 was removed from swarm';
const removed = (nodeId: string) => ({ info: toEngineInfo({ ServerVersion: '26.1.5+dfsg1', Swarm: { LocalNodeState: 'error', NodeID: nodeId, Error: REFUSAL } }) });

t.test('a node the swarm removed is not a restart case: formation leaves and joins again', async (t) => {
  t.equal(removedFromSwarm(removed('pdniq99h4i03wczy7x99v4940').info.swarm), true);
  t.equal(removedFromSwarm(removed('someoneelse0000000000000').info.swarm), false, 'another node\'s id is not this node removed');
  t.equal(removedFromSwarm({ state: 'active', nodeId: 'pdniq99h4i03wczy7x99v4940', error: REFUSAL }), false, 'only in state error');
  t.equal(removedFromSwarm(stuck.info.swarm), false, 'moby#47854 is not a removal');
  t.equal(decide({ stuckSince: 0, lastRequestAt: null }, removed('pdniq99h4i03wczy7x99v4940'), 1e6, P).request, false);
});

t.test('refused as removed, the engine names no node id and alternates with a dial error: never a restart (26.1.5, a revoked manager)', async (t) => {
  const ID = 'pdniq99h4i03wczy7x99v4940';
  const active = { info: toEngineInfo({ ServerVersion: '26.1.5+dfsg1', Swarm: { LocalNodeState: 'active', NodeID: ID } }) };
  const refusal = { info: toEngineInfo({ ServerVersion: '26.1.5+dfsg1', Swarm: { LocalNodeState: 'error', Error: REFUSAL } }) };
  const dial = { info: toEngineInfo({ ServerVersion: '26.1.5+dfsg1', Swarm: { LocalNodeState: 'error', Error: "manager stopped: can't initialize raft node: rpc error: code = Unavailable desc = connection error: dial tcp 10.0.0.11:2377: connect: connection refused" } }) };
  t.equal(removedFromSwarm(refusal.info.swarm), true, 'no node id in the sample, none known (agent started after): the refusal is this engine\'s');
  t.equal(removedFromSwarm(refusal.info.swarm, ID), true, 'with the id the engine last named');
  t.equal(removedFromSwarm(refusal.info.swarm, 'another00000000000000000'), false, 'a refusal naming another id than the one known: not this node');
  let s: RecoveryState = { stuckSince: null, lastRequestAt: null };
  s = decide(s, active, 0, P).state;
  let asked = 0;
  for (let i = 1; i <= 40; i++) {
    const r = decide(s, i % 2 ? refusal : dial, i * 5000, P);
    s = r.state;
    if (r.request) asked++;
  }
  t.equal(asked, 0, '200 s of alternating errors: no restart asked');
  t.equal(s.removed, true);
  s = decide(s, active, 300_000, P).state;
  t.equal(s.removed, false, 'back in a swarm: forgotten');
  s = decide(s, dial, 305_000, P).state;
  t.equal(decide(s, dial, 336_000, P).request, false, 'a dial error alone after that: not within fixedStuckMs on 26.1.5');
  t.equal(decide(s, dial, 485_000, P).request, true, 'and the last-resort restart after it');
});

t.test('an unanswered sample neither starts nor clears the stuck clock', async (t) => {
  // A stuck engine answers docker info only now and then (seen on 26.1.5).
  let s = decide({ stuckSince: null, lastRequestAt: null }, stuck, 0, P).state;
  s = decide(s, { info: null }, 10_000, P).state;
  t.equal(s.stuckSince, 0, 'kept across an unanswered sample');
  t.equal(decide(s, stuck, 30_000, P).request, true, 'the 30 s count from the first stuck sample');
  t.same(decide({ stuckSince: null, lastRequestAt: null }, { info: null }, 0, P).state, { stuckSince: null, lastRequestAt: null }, 'and never starts it');
});

t.test('the subsystem writes the request file and counts it; a failed write is counted, never thrown', async (t) => {
  const { log, lines } = memoryLogger();
  let listener: ((s: EngineSample) => void) | null = null;
  const writes: string[] = [];
  let clock = 0;
  let failWrite = false;
  const sub = engineRecovery({
    monitor: { onSample: (fn) => { listener = fn; } },
    log, stateDir: '/var/lib/piswarm', policy: P, now: () => clock,
    writeRequest: (p) => { if (failWrite) throw Object.assign(new Error('EROFS'), { code: 'EROFS' }); writes.push(p); },
  });
  const sample = (s: typeof stuck) => listener!({ at: clock, errorCode: null, latencySeconds: 0, ...s });
  sample(stuck);
  clock = 60_000;
  sample(stuck);
  t.same(writes, [], 'nothing before start()');
  await sub.start!();
  clock = 61_000; sample(stuck);
  clock = 92_000; sample(stuck);
  t.same(writes, ['/var/lib/piswarm/engine-restart.request']);
  t.ok(lines().some((l) => l.msg === 'asked systemd to restart the Docker Engine'));
  failWrite = true;
  clock = 800_000; sample(stuck);
  clock = 840_000; sample(stuck);
  const fams = sub.collectors![0]!.collect();
  t.equal(fams.find((f) => f.name === 'piswarm_engine_restart_requests_total')?.samples[0]?.value, 1);
  t.equal(fams.find((f) => f.name === 'piswarm_engine_restart_request_failures_total')?.samples[0]?.value, 1);
  await sub.stop!();
});

t.test('which engines pin the join address (moby PR #47854 landed in 27.0)', async (t) => {
  t.equal(pinsJoinAddress('20.10.24+dfsg1'), true, "Debian bookworm's docker.io");
  t.equal(pinsJoinAddress('26.1.5+dfsg1'), false, "Debian trixie's docker.io: joins Raft through a live manager (join-address.test)");
  t.equal(pinsJoinAddress('26.1.6'), false, 'a later patch of a fixed line');
  t.equal(pinsJoinAddress('26.1.4'), true, 'before the checked patch release: counts as affected');
  t.equal(pinsJoinAddress('26.0.2'), true, 'a line not checked here');
  t.equal(pinsJoinAddress('25.0.5'), true, 'a line not checked here');
  t.equal(pinsJoinAddress('27.0'), false, 'no patch number');
  t.equal(pinsJoinAddress('27.0.1'), false);
  t.equal(pinsJoinAddress('28.2.2'), false);
  t.equal(pinsJoinAddress('unknown'), false, 'unparseable: nothing done on a guess');
  t.equal(pinsJoinAddress(''), false);
});
