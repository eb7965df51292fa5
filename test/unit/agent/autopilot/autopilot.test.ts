import t from 'tap';
import { PiswarmError } from '../../../../shared/errors.js';
import { createAutopilot, FOLLOW_UP_MS } from '../../../../agent/autopilot/autopilot.js';
import { MANAGER_LOSS_SETTLE_MS } from '../../../../agent/autopilot/planner.js';
import { classifyRefusal, executeStep } from '../../../../agent/autopilot/executor.js';
import type { EngineInfo } from '../../../../agent/docker/engine.js';
import type { EngineSample } from '../../../../agent/docker/monitor.js';
import type { MetricFamily } from '../../../../agent/metrics/types.js';
import { fakeDocker, memoryLogger } from '../../../helpers/fakes.js';
import { BASE_CONFIG } from './driver.js';
import { SimSwarm } from './sim-swarm.js';

function info(nodeId: string | null, isManager: boolean): EngineInfo {
  return {
    serverVersion: '20.10.24',
    swarm: { state: nodeId ? 'active' : 'inactive', nodeId, nodeAddr: '10.0.0.1', clusterId: 'c1', isManager, managers: 1, nodes: 1, remoteManagers: [], error: null },
  };
}

function harness(sim: SimSwarm, cfg = BASE_CONFIG) {
  const { log, lines } = memoryLogger();
  let sample: EngineSample = { at: 1, info: info(sim.leaderId, true), errorCode: null, latencySeconds: 0 };
  const calls: string[] = [];
  const docker = fakeDocker({
    listNodes: async () => { calls.push('listNodes'); return sim.list(); },
    updateNode: async (id, change) => { calls.push(`updateNode ${id} ${JSON.stringify(change)}`); sim.updateNode(id, change); },
    removeNode: async (id, force) => { calls.push(`removeNode ${id} ${force}`); sim.removeNode(id, force); },
  });
  const ap = createAutopilot({ config: { autopilot: cfg }, log, docker, monitor: { last: () => sample }, now: () => sim.t, random: () => 0.5 });
  const run = async (ms: number) => {
    for (let left = ms; left > 0; left -= cfg.intervalMs) {
      sim.advance(cfg.intervalMs);
      await ap.tick();
    }
  };
  const metric = (name: string, labels?: Record<string, string>) => {
    const fam = ap.collectors![0]!.collect().find((f: MetricFamily) => f.name === name);
    const s = fam?.samples.find((x) => !labels || Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
    return s?.value;
  };
  const health = () => ap.checks![0]!.run()[0]!;
  return { ap, lines, calls, run, metric, health, setSample: (s: Partial<EngineSample>) => { sample = { ...sample, ...s }; } };
}

t.test('a worker\'s autopilot idles without touching the engine', async (t) => {
  const { log } = memoryLogger();
  const ap = createAutopilot({
    config: BASE_CONFIG,
    log,
    docker: fakeDocker({}),
    monitor: { last: () => ({ at: 1, info: info('w1', false), errorCode: null, latencySeconds: 0 }) },
  });
  await ap.tick();
  t.equal(ap.status().role, 'not-manager');
  const fams = ap.collectors![0]!.collect();
  t.equal(fams.find((f) => f.name === 'piswarm_autopilot_tick_errors_total')!.samples.length, 0, 'no call was attempted');
  t.notOk(fams.some((f) => f.name === 'piswarm_autopilot_managers_reachable'), 'a worker does not report manager counts');
  t.match(ap.checks![0]!.run()[0], { status: 'pass', observedValue: null });
});

t.test('a follower observes but never acts', async (t) => {
  const sim = new SimSwarm();
  sim.add('pi1', { role: 'manager' });
  const follower = sim.add('pi2', { role: 'manager' });
  sim.add('pi3', { role: 'manager' });
  sim.add('pi4');
  const h = harness(sim);
  h.setSample({ info: info(follower, true) });
  await h.run(5 * 60_000);
  t.equal(h.ap.status().role, 'follower');
  t.ok(h.calls.every((c) => c === 'listNodes'), 'only listings');
  t.equal(h.metric('piswarm_autopilot_managers_reachable'), 3);
});

t.test('the leader grows the swarm: steps logged with reasons, counted, recorded', async (t) => {
  const sim = new SimSwarm();
  sim.add('pi1', { role: 'manager' });
  sim.add('pi2');
  sim.add('pi3');
  const h = harness(sim);
  await h.run(20_000);
  t.equal(h.metric('piswarm_autopilot_target_managers'), 3);
  t.match(h.health(), { status: 'warn', observedValue: 1 }, 'below target: warn');
  await h.run(2 * 60_000);
  t.equal(sim.reachableManagers(), 3);
  const promoted = h.lines().filter((l) => l.msg === 'autopilot promoted a node');
  t.equal(promoted.length, 2);
  t.match(promoted[0], { step: 'promote', reason: 'grow', hostname: 'pi2', node: String });
  t.same(h.ap.history().map((r) => `${r.step.kind}:${r.outcome}`), ['promote:done', 'promote:done']);
  t.equal(h.metric('piswarm_autopilot_promotions_total', { reason: 'grow' }), 2);
  t.equal(h.metric('piswarm_autopilot_managers_reachable'), 3);
  t.equal(h.metric('piswarm_autopilot_quorum_margin'), 1);
  t.equal(h.metric('piswarm_autopilot_leader'), 1);
  t.equal(h.metric('piswarm_autopilot_last_step_timestamp_seconds'), h.ap.history().at(-1)!.at / 1000);
  t.match(h.health(), { status: 'pass', observedValue: 3 });
  t.ok(h.lines().some((l) => l.msg === 'autopilot decides on this node (Raft leader)'));
  t.ok(h.lines().some((l) => l.msg === 'autopilot waits' && l.reason === 'waiting-candidates'), 'a wait is journalled with its reason');
});

t.test('a takeover after the leader\'s power cut: the grace runs from gossip\'s death (on its own clock), not from the takeover, whether the engine hung meanwhile or not', async (t) => {
  for (const engineHangs of [true, false]) {
    const sim = new SimSwarm();
    const ids = ['pi1', 'pi2', 'pi3', 'pi4', 'pi5'].map((h, i) => sim.add(h, { role: i < 3 ? 'manager' : 'worker' }));
    sim.advance(10 * 60_000); // every node long healthy, every manager in Raft
    const oldLeader = sim.leaderId!;
    const next = ids.filter((id) => id !== oldLeader && sim.nodes.get(id)!.role === 'manager').sort()[0]!;
    const cfg = { ...BASE_CONFIG, intervalMs: 1000, deadManagerGraceMs: 15_000 };
    const { log } = memoryLogger();
    let memberNow = 5_000_000; // the membership's clock: another origin than sim.t
    let deadAt: number | null = null;
    const membership = {
      members: () => ids.map((id) => ({ id: sim.nodes.get(id)!.hostname, addr: '10.0.0.1', port: 7946, incarnation: 1, state: id === oldLeader && deadAt !== null ? 'dead' as const : 'alive' as const, meta: { swarmNodeId: id }, stateChangedAt: id === oldLeader && deadAt !== null ? deadAt : 0, self: id === next })),
    };
    // A real swarm has no leader, so no node list, for 10-20 s after its leader
    // is cut (20 s here); on Docker 26.1 the engine's whole API hangs meanwhile.
    let leaderlessUntil = -Infinity;
    const leaderless = () => sim.t < leaderlessUntil;
    const docker = fakeDocker({ listNodes: async () => { if (leaderless()) throw new PiswarmError('PISWARM_ERR_DOCKER_UNREACHABLE', 'socket hang up'); return sim.list(); }, updateNode: async (id, change) => sim.updateNode(id, change), removeNode: async (id, force) => sim.removeNode(id, force) });
    const monitor = { last: () => ({ at: 1, info: engineHangs && leaderless() ? null : info(next, true), errorCode: engineHangs && leaderless() ? 'PISWARM_ERR_DOCKER_UNREACHABLE' : null, latencySeconds: 0 }) };
    const ap = createAutopilot({ config: { autopilot: cfg }, log, docker, monitor, membership, memberClock: () => memberNow, now: () => sim.t, random: () => 0.5 });
    const step = async (ms: number) => { sim.advance(ms); memberNow += ms; await ap.tick(); };
    await step(1000);
    const cutAt = sim.t;
    sim.set(oldLeader, { on: false });
    leaderlessUntil = cutAt + 20_000;
    await step(8000);
    deadAt = memberNow; // gossip declares the old leader dead 8 s after the cut
    await step(12_000);
    t.equal(ap.status().role, 'leader', `engine ${engineHangs ? 'hung' : 'answered'} while leaderless: it takes over 20 s after the cut`);
    let demotedAt: number | null = null;
    for (let i = 0; i < 60 && sim.reachableManagers() < 3; i++) {
      await step(1000);
      if (demotedAt === null && sim.nodes.get(oldLeader)!.role === 'worker') demotedAt = sim.t;
    }
    t.equal(sim.reachableManagers(), 3, 'three reachable managers again');
    t.ok(demotedAt !== null && demotedAt - cutAt <= 8_000 + cfg.deadManagerGraceMs + 2_000, `the dead leader demoted ${(demotedAt! - cutAt) / 1000} s after the cut: the grace ran from gossip's death at 8 s, not from the takeover at 20 s`);
    // The settle runs from the loss (gossip's death at 8 s), not from the
    // takeover at 20 s (before: 20 + 20 s), nor from the demotion (about 56 s).
    const healedAfter = sim.t - cutAt;
    t.ok(healedAfter <= 8_000 + Math.max(cfg.deadManagerGraceMs, MANAGER_LOSS_SETTLE_MS) + sim.joinMs + 2_000, `healed ${healedAfter / 1000} s after the cut (by ${(8_000 + Math.max(cfg.deadManagerGraceMs, MANAGER_LOSS_SETTLE_MS) + sim.joinMs + 2_000) / 1000} s)`);
  }
});

t.test('an engine refusal is logged with its reason, counted and retried only after backoff', async (t) => {
  const sim = new SimSwarm();
  sim.add('pi1', { role: 'manager' });
  sim.add('pi2');
  sim.add('pi3');
  const h = harness(sim);
  const real = sim.updateNode.bind(sim);
  let refusals = 0;
  sim.updateNode = (id, change) => {
    if (refusals < 2) {
      refusals++;
      const engineMessage = 'rpc error: code = Unknown desc = update out of sequence';
      throw new PiswarmError('PISWARM_ERR_DOCKER', `node update: ${engineMessage}`, { details: { statusCode: 500, engineMessage } });
    }
    real(id, change);
  };
  await h.run(35_000);
  const refused = h.ap.history().filter((r) => r.outcome === 'refused');
  t.equal(refused.length, 1, 'refused once; the next ticks wait');
  t.match(refused[0], { refusal: 'conflict', step: { kind: 'promote' } });
  t.ok(refused[0]!.retryAt! - refused[0]!.at >= BASE_CONFIG.backoffBaseMs / 2);
  const warn = h.lines().find((l) => l.msg === 'engine refused an autopilot step');
  t.match(warn, { step: 'promote', refusal: 'conflict', statusCode: 500, engineMessage: /out of sequence/, retryInMs: Number });
  t.equal(h.metric('piswarm_autopilot_refusals_total', { step: 'promote', reason: 'conflict' }), 1);
  await h.run(3 * 60_000);
  t.equal(refusals, 2);
  t.equal(sim.reachableManagers(), 3, 'done once the engine accepts');
});

t.test('quorum lost: the health check fails and nothing is forced', async (t) => {
  const { log, lines } = memoryLogger();
  const engineMessage = "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online.";
  const ap = createAutopilot({
    config: BASE_CONFIG,
    log,
    docker: fakeDocker({ listNodes: async () => { throw new PiswarmError('PISWARM_ERR_DOCKER', engineMessage, { details: { statusCode: 503, engineMessage } }); } }),
    monitor: { last: () => ({ at: 1, info: info('m1', true), errorCode: null, latencySeconds: 0 }) },
  });
  await ap.tick();
  await ap.tick();
  t.match(ap.checks![0]!.run()[0], { status: 'fail', output: /quorum/ });
  t.equal(lines().filter((l) => l.msg === 'swarm managers lost quorum; the autopilot never forces a new cluster').length, 1, 'said once');
  t.equal(ap.history().length, 0);
});

t.test('the executor removes only down nodes, and classifies engine refusals', async (t) => {
  const docker = fakeDocker({}); // any engine call would throw "Not implemented"
  await t.rejects(
    executeStep(docker, { kind: 'remove', nodeId: 'n1', hostname: 'pi1', nodeState: 'ready', reason: 'dead-node-ttl', detail: '' }),
    { code: 'PISWARM_ERR_AUTOPILOT_UNSAFE' },
  );
  await t.rejects(
    executeStep(docker, { kind: 'remove', nodeId: 'n1', hostname: 'pi1', nodeState: 'down', reason: 'dead-node-ttl', detail: '' }),
    /Not implemented: removeNode/,
    'a down node goes to the engine',
  );
  const e = (statusCode: number, engineMessage: string) => new PiswarmError('PISWARM_ERR_DOCKER', engineMessage, { details: { statusCode, engineMessage } });
  t.equal(classifyRefusal(e(500, "can't remove member from the raft: this would result in a loss of quorum")).reason, 'quorum');
  t.equal(classifyRefusal(e(400, 'node x is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal')).reason, 'cannot-remove');
  t.equal(classifyRefusal(e(404, 'node x not found')).reason, 'not-found');
  t.equal(classifyRefusal(new PiswarmError('PISWARM_ERR_NOT_MANAGER', 'x')).reason, 'not-manager');
  t.equal(classifyRefusal(new PiswarmError('PISWARM_ERR_DOCKER_UNREACHABLE', 'x')).reason, 'unreachable');
  t.equal(classifyRefusal(e(500, 'something else')).reason, 'engine-error');
});

t.test('start ticks on its interval and stop waits for the tick in flight', async (t) => {
  const { log } = memoryLogger();
  let listed = 0;
  const sim = new SimSwarm();
  const id = sim.add('pi1', { role: 'manager' });
  const ap = createAutopilot({
    config: { ...BASE_CONFIG, intervalMs: 100 },
    log,
    docker: fakeDocker({ listNodes: async () => { listed++; return sim.list(); } }),
    monitor: { last: () => ({ at: 1, info: info(id, true), errorCode: null, latencySeconds: 0 }) },
  });
  await ap.start!();
  await new Promise((r) => setTimeout(r, 450));
  await ap.stop!();
  const after = listed;
  t.ok(after >= 2, `ticked ${after} times in 450 ms`);
  await new Promise((r) => setTimeout(r, 250));
  t.equal(listed, after, 'no tick after stop');
});

t.test('disabled: no timer, no calls, a passing check that says so', async (t) => {
  const { log } = memoryLogger();
  const ap = createAutopilot({ config: { ...BASE_CONFIG, enabled: false }, log, docker: fakeDocker({}), monitor: { last: () => ({ at: 1, info: info('m', true), errorCode: null, latencySeconds: 0 }) } });
  await ap.start!();
  await ap.tick();
  await ap.stop!();
  t.match(ap.checks![0]!.run()[0], { status: 'pass', output: 'autopilot disabled' });
  t.equal(ap.status().role, 'unknown');
});

t.test('a stale Raft member: /health warns with the real Raft arithmetic, the metric counts it, the journal says it once', async (t) => {
  const { log, lines } = memoryLogger();
  const node = (id: string, role: 'manager' | 'worker', reach: string | null, leader = false) => ({
    id, hostname: `pi-${id}`, role, availability: 'active' as const, state: 'ready', addr: '', leader, reachability: reach, labels: {}, createdAt: '2024-01-01T00:00:00Z', updatedAt: '', version: 1,
  });
  let nodes = [node('1', 'manager', 'reachable', true), node('2', 'worker', 'unreachable'), node('3', 'manager', 'reachable'), node('4', 'manager', 'reachable')];
  let now = 1_000_000;
  const ap = createAutopilot({
    config: BASE_CONFIG, log,
    docker: fakeDocker({ listNodes: async () => nodes }),
    monitor: { last: () => ({ at: 1, info: info('3', true), errorCode: null, latencySeconds: 0 }) },
    now: () => now,
  });
  await ap.tick();
  t.match(ap.checks![0]!.run()[0], { status: 'pass' }, 'first seen: not yet (a demotion may be under way)');
  now += BASE_CONFIG.deadManagerGraceMs;
  await ap.tick();
  await ap.tick();
  t.match(ap.checks![0]!.run()[0], { status: 'warn', observedValue: 3, output: 'pi-2: a worker the Raft group still lists as an unreachable member; 3 of 4 Raft members reachable, quorum 3' });
  const fam = ap.collectors![0]!.collect().find((f: MetricFamily) => f.name === 'piswarm_autopilot_stale_raft_members');
  t.equal(fam?.samples[0]?.value, 1);
  t.equal(lines().filter((l) => l.msg === 'a worker is still an unreachable Raft member: it counts against quorum').length, 1, 'said once, not every tick');
  nodes = nodes.map((n) => (n.id === '2' ? { ...n, reachability: null } : n));
  await ap.tick();
  t.match(ap.checks![0]!.run()[0], { status: 'pass', output: '3 of 3 managers reachable, quorum 2' });
});

t.test('follow-ups: an engine that answers as a manager again is looked at at once, a done step is followed within FOLLOW_UP_MS, a wait that ends by the clock when it ends', async (t) => {
  const sim = new SimSwarm();
  const ids = ['pi1', 'pi2', 'pi3', 'pi4', 'pi5'].map((h, i) => sim.add(h, { role: i < 3 ? 'manager' : 'worker' }));
  sim.advance(10 * 60_000);
  const self = sim.leaderId!;
  const follower = ids.find((id) => id !== self && sim.nodes.get(id)!.role === 'manager')!;
  // Real timers (the ticker's), the swarm's clock runs with them.
  const t0 = Date.now();
  const base = sim.t;
  const now = () => base + (Date.now() - t0);
  const cfg = { ...BASE_CONFIG, intervalMs: 60_000, deadManagerGraceMs: 1_500, stabilizationMs: 0 };
  const { log } = memoryLogger();
  const lists: number[] = [];
  const docker = fakeDocker({
    listNodes: async () => { sim.advance(now() - sim.t); lists.push(Date.now() - t0); return sim.list(); },
    updateNode: async (id, change) => sim.updateNode(id, change),
    removeNode: async (id, force) => sim.removeNode(id, force),
  });
  const sub: { listener?: (s: EngineSample) => void } = {};
  let sample: EngineSample = { at: 1, info: null, errorCode: 'PISWARM_ERR_DOCKER_UNREACHABLE', latencySeconds: 0 };
  const monitor = { last: () => sample, onSample: (fn: (s: EngineSample) => void) => { sub.listener = fn; } };
  const ap = createAutopilot({ config: { autopilot: cfg }, log, docker, monitor, now, random: () => 0.5 });
  await ap.start!();
  t.teardown(() => ap.stop!());
  t.ok(sub.listener, 'the autopilot follows the engine samples');
  sample = { at: 2, info: info(self, true), errorCode: null, latencySeconds: 0 };
  sub.listener!(sample);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(lists.length, 1, `the engine answering as a manager brought a tick at once (interval ${cfg.intervalMs / 1000} s)`);
  t.equal(ap.status().role, 'leader');
  sub.listener!(sample);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(lists.length, 1, 'another sample of the same manager brings none');
  // A manager lost: unreachable, dead once the grace (1.5 s) ends, demoted
  // then, and the tick after the demotion follows within FOLLOW_UP_MS, not a
  // minute later; it waits the settle after a loss, a wait that ends by the clock.
  sim.set(follower, { on: false });
  await ap.tick();
  const lostAt = Date.now() - t0;
  t.match(ap.status().lastPlan, { kind: 'wait', reason: 'manager-settling', nodeId: follower, until: Number }, 'inside the grace: a wait that ends by the clock');
  await new Promise((r) => setTimeout(r, cfg.deadManagerGraceMs + FOLLOW_UP_MS + 600));
  const demote = ap.history().find((r) => r.outcome === 'done' && r.step.kind === 'demote');
  t.ok(demote, `the dead manager demoted once its grace ended (lists at ${lists.map((x) => x - lostAt).join(', ')} ms after the loss)`);
  const demotedAt = demote!.at - base;
  t.ok(demotedAt - lostAt <= cfg.deadManagerGraceMs + 500, `demoted ${demotedAt - lostAt} ms after the loss, grace ${cfg.deadManagerGraceMs} ms`);
  t.ok(lists.some((x) => x > demotedAt && x <= demotedAt + FOLLOW_UP_MS + 300), 'a tick followed the demotion within FOLLOW_UP_MS');
  t.match(ap.status().lastPlan, { kind: 'wait', reason: 'manager-settling', until: Number }, 'promotions wait the settle after the loss');
  t.ok(lists.length <= 5, `no busy loop: ${lists.length} listings in ${(Date.now() - t0) / 1000} s`);
});
