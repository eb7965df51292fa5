import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { translateDockerError, type DockerEngine, type SwarmAddresses } from '../../../../agent/docker/engine.js';
import { buildApp } from '../../../../agent/http/app.js';
import type { HealthDocument } from '../../../../agent/health/aggregate.js';
import type { NodeIdentity } from '../../../../agent/identity/identity.js';
import { deriveClusterKeys } from '../../../../agent/identity/keys.js';
import { renderFamilies } from '../../../../agent/metrics/format.js';
import { createPeerClient } from '../../../../agent/peers/client.js';
import { openToken, signRequest, verifyResponse } from '../../../../agent/peers/protocol.js';
import { createFormation } from '../../../../agent/formation/controller.js';
import { createMemoryFormationStore, type FormationStore } from '../../../../agent/formation/store.js';
import type { JoinRelay } from '../../../../agent/formation/join-relay.js';

type JoinRelayLike = Pick<JoinRelay, 'address' | 'joining'>;
import { PEER_AUTH_HEADER } from '../../../../shared/wire/peer.js';
import { fakeDocker, memoryLogger } from '../../../helpers/fakes.js';
import { FakeWorld } from './fake-swarm.js';
import { KEY, freePort, testConfig } from './helpers.js';

/**
 * Join grants (README, "Join grants"): joins retry through every known
 * manager with capped exponential backoff, a join that timed out is checked
 * before any retry, and the manager token never leaves the managers.
 *
 * Two managers of one swarm (FakeWorld engines; their formation routes served
 * over real authenticated HTTP on 127.0.0.2 and 127.0.0.3, one port) and a
 * joiner on 127.0.0.4 that finds them through seeds. The joiner's clock is the
 * test's and its ticks are run by hand, so the time between join rounds is
 * observed exactly. The swarm's tokens are distinct, recognisable strings.
 */
const keys = deriveClusterKeys(KEY);
const doc: HealthDocument = { status: 'pass', version: '0', releaseId: '0', serviceId: 'x', description: 'x', checks: {} };
const WORKER_TOKEN = `SWMTKN-1-workerworker${randomBytes(20).toString('hex')}-${randomBytes(12).toString('hex')}`;
const MANAGER_TOKEN = `SWMTKN-1-managermanager${randomBytes(20).toString('hex')}-${randomBytes(12).toString('hex')}`;
/** The token without its `SWMTKN-1-` prefix: the logger masks `SWMTKN-...`, so a leak of this part is what would get through. */
const MANAGER_SECRET = MANAGER_TOKEN.slice('SWMTKN-1-'.length);
const MANAGERS = [
  { name: 'pi-1', nodeId: 'a'.repeat(24), addr: '127.0.0.2' },
  { name: 'pi-2', nodeId: 'b'.repeat(24), addr: '127.0.0.3' },
] as const;
type JoinArgs = SwarmAddresses & { remoteAddrs: string[]; joinToken: string };

const noTimers = { setTimeout: () => { throw new Error('Not implemented: setTimeout'); }, clearTimeout: () => undefined };
const noPeerClient = { hello: async () => { throw new Error('Not implemented: hello'); }, grant: async () => { throw new Error('Not implemented: grant'); }, close: async () => undefined };

/**
 * The two managers, each ticked once (so each knows its swarm and role).
 * `answer` decides, for each grant request a manager is asked (its engine's
 * swarm inspect), whether that engine answers or times out; `asked` lists
 * the managers asked, in order.
 */
async function managers(t: Test) {
  const world = new FakeWorld();
  const port = await freePort();
  const first = world.engine('pi-1');
  await first.swarmInit({ advertiseAddr: MANAGERS[0].addr, listenAddr: `${MANAGERS[0].addr}:2377`, dataPathAddr: MANAGERS[0].addr });
  const swarm = [...world.swarms.values()][0]!;
  const second = world.engine('pi-2');
  await second.swarmJoin({ advertiseAddr: MANAGERS[1].addr, listenAddr: `${MANAGERS[1].addr}:2377`, dataPathAddr: MANAGERS[1].addr, remoteAddrs: [`${MANAGERS[0].addr}:2377`], joinToken: swarm.managerToken });
  swarm.workerToken = WORKER_TOKEN;
  swarm.managerToken = MANAGER_TOKEN;
  const m = {
    world,
    swarm,
    port,
    asked: [] as string[],
    answer: (_manager: string): 'grant' | 'time out' => 'grant',
    nodes: [] as Array<{ name: string; addr: string; lines: () => Array<Record<string, unknown>>; metrics: () => string }>,
  };
  let ready = false;
  for (const [i, base] of [first, second].entries()) {
    const { name, nodeId, addr } = MANAGERS[i]!;
    const engine = fakeDocker({
      info: base.info,
      listNodes: base.listNodes,
      async swarmInspect() {
        if (ready) {
          m.asked.push(name);
          if (m.answer(name) === 'time out') throw translateDockerError(new Error('timeout'), 'swarm inspect');
        }
        return base.swarmInspect();
      },
    });
    const { log, lines } = memoryLogger();
    const formation = createFormation({
      config: testConfig({ clusterKey: KEY, nodeName: name, http: { port } }),
      log,
      docker: engine,
      clock: { now: Date.now, ...noTimers },
      identity: { nodeId, name, createdAt: '' },
      discovery: null,
      peerClient: noPeerClient,
      address: () => ({ address: addr, interface: 'lo', reason: 'test' }),
      store: createMemoryFormationStore(),
    });
    const metrics = () => renderFamilies(formation.collector.collect());
    const app = await buildApp({ log, bodyLimit: 16384, version: '0', health: () => doc, metrics, countError: () => undefined, plugins: [formation.routes] });
    await app.listen({ host: addr, port });
    t.teardown(() => app.close());
    await formation.tick();
    t.equal(formation.status().phase, 'manager', `${name} is a manager`);
    m.nodes.push({ name, addr, lines, metrics });
  }
  ready = true;
  return m;
}

/** The joiner, on the test's clock: `step(ms)` advances it and runs one tick. */
function joiner(t: Test, port: number, docker: DockerEngine, formation: { joinBackoffMaxMs?: number } = {}, extra: { joinRelay?: JoinRelayLike; store?: FormationStore } = {}) {
  let now = Date.now();
  const { log, lines } = memoryLogger();
  const identity: NodeIdentity = { nodeId: 'c'.repeat(24), name: 'pi-3', createdAt: '' };
  const peerClient = createPeerClient({ keys, identity, timeoutMs: 1000, windowMs: 30_000 });
  t.teardown(() => peerClient.close());
  const f = createFormation({
    config: testConfig({ clusterKey: KEY, nodeName: 'pi-3', http: { port }, discovery: { seeds: MANAGERS.map((x) => `${x.addr}:${port}`) }, formation }),
    log,
    docker,
    clock: { now: () => now, ...noTimers },
    identity,
    discovery: null,
    peerClient,
    address: () => ({ address: '127.0.0.4', interface: 'lo', reason: 'test' }),
    store: extra.store ?? createMemoryFormationStore(),
    random: () => 0.5,
    ...(extra.joinRelay ? { joinRelay: extra.joinRelay } : {}),
  });
  const step = async (ms: number) => {
    now += ms;
    await f.tick();
  };
  return { formation: f, lines, step, now: () => now, metrics: () => renderFamilies(f.collector.collect()) };
}

for (const after of ['active', 'pending'] as const) {
  t.test(`a join that timed out but made the engine ${after}: counted as joined, never tried again`, async (t) => {
    const m = await managers(t);
    const base = m.world.engine('pi-3');
    const joins: JoinArgs[] = [];
    // dockerd answers `pending` while the node is still joining, `active` once it is in.
    let joining: JoinArgs | null = null;
    const engine = fakeDocker({
      async info() {
        const i = await base.info();
        return joining ? { ...i, swarm: { ...i.swarm, state: 'pending' } } : i;
      },
      async swarmJoin(a) {
        joins.push(a);
        if (after === 'active') await base.swarmJoin(a);
        else joining = a;
        // What dockerode's request timeout becomes through the engine's own translation.
        throw translateDockerError(new Error('timeout'), 'swarm join');
      },
    });
    const j = joiner(t, m.port, engine);
    await j.step(0);
    t.equal(joins.length, 1, 'one join call');
    t.equal(m.asked.length, 1, 'the second manager was never asked: nothing to retry');
    t.ok(j.lines().some((l) => l.msg === 'swarm join reported an error but the engine is in the swarm' && l.state === after), 'the journal says the engine is in the swarm');
    if (after === 'pending') {
      await j.step(1000);
      t.match(j.formation.status(), { phase: 'joining', reason: 'the engine is joining a swarm' }, 'while pending it waits');
      const a = joining as JoinArgs | null;
      joining = null;
      if (a) await base.swarmJoin(a); // the engine's join completes
    }
    for (let i = 0; i < 5; i++) await j.step(1000);
    t.equal(joins.length, 1, 'five ticks later, still one join call');
    t.equal(m.asked.length, 1, 'and one grant request');
    t.match(j.formation.status(), { phase: 'member', swarm: { id: m.swarm.id, role: 'worker' } }, 'a member of the swarm');
    t.same(base.state(), { swarmId: m.swarm.id, role: 'worker' }, 'and its engine is');
    t.match(j.metrics(), /piswarm_formation_joins_total 1\n/, 'counted as a join');
    t.match(j.metrics(), /piswarm_formation_join_failures_total 0\n/, 'not as a failure');
  });
}

t.test('a failed join whose outcome the engine cannot report is not retried through the next manager', async (t) => {
  const m = await managers(t);
  const base = m.world.engine('pi-3');
  const joins: JoinArgs[] = [];
  let infoDown = false;
  const engine = fakeDocker({
    async info() {
      if (infoDown) throw translateDockerError(new Error('connect ENOENT /var/run/docker.sock'), 'info');
      return base.info();
    },
    async swarmJoin(a) {
      joins.push(a);
      infoDown = true; // the engine went away mid-join: whether it joined is unknown
      throw translateDockerError(new Error('timeout'), 'swarm join');
    },
  });
  const j = joiner(t, m.port, engine);
  await j.step(0);
  t.equal(joins.length, 1, 'one join call');
  t.equal(m.asked.length, 1, 'the second manager was not asked in the same round');
  t.ok(j.lines().some((l) => l.msg === 'swarm join failed and the engine cannot say whether it joined; backing off'));
  t.match(j.formation.status(), { phase: 'waiting' }, 'backing off');
  t.match(j.metrics(), /piswarm_formation_join_failures_total 1\n/);
});

t.test('join rounds ask every known manager, back off exponentially up to joinBackoffMaxMs, and join through the one that granted', async (t) => {
  const m = await managers(t);
  const base = m.world.engine('pi-3');
  const joins: JoinArgs[] = [];
  const engine = fakeDocker({
    info: base.info,
    async swarmJoin(a) {
      joins.push(a);
      return base.swarmJoin(a);
    },
  });
  // README: `formation.joinBackoffMaxMs` is the "cap of the exponential backoff between join attempts".
  // agent/formation/actions.ts doJoin: backoffMs(attempt, 500, cap, random()), i.e. min(cap, 500 ms * 2^attempt), half
  // of it fixed, half jittered: with random() = 0.5 each delay is 3/4 of that.
  const CAP = 4000;
  const j = joiner(t, m.port, engine, { joinBackoffMaxMs: CAP });
  const rounds: Array<{ at: number; asked: string[] }> = [];
  let seen = 0;
  const observe = () => {
    if (m.asked.length > seen) rounds.push({ at: j.now(), asked: m.asked.slice(seen) });
    seen = m.asked.length;
  };
  m.answer = () => 'time out';
  await j.step(0);
  observe();
  t.match(j.formation.status(), { phase: 'waiting', reason: /^no manager of \w+ granted a join yet; retrying in 375 ms$/ });
  for (let i = 0; i < 400 && rounds.length < 6; i++) {
    await j.step(125);
    observe();
  }
  // Round 7: the first manager asked still times out, the next one grants.
  let asked = 0;
  m.answer = () => (asked++ === 0 ? 'time out' : 'grant');
  for (let i = 0; i < 400 && rounds.length < 7; i++) {
    await j.step(125);
    observe();
  }
  t.equal(rounds.length, 7, 'seven join rounds');
  t.same(rounds.map((r) => [...r.asked].sort()), rounds.map(() => ['pi-1', 'pi-2']), 'every round asked each known manager, once');
  const delays = rounds.slice(1).map((r, i) => r.at - rounds[i]!.at);
  t.same(delays, [375, 750, 1500, 3000, 3000, 3000], 'the delay between rounds doubles, then stays at the cap');
  t.ok(delays.every((d) => d <= CAP), `no delay above joinBackoffMaxMs (${CAP} ms)`);

  t.equal(joins.length, 1, 'one swarm join');
  const [refusing, granting] = (rounds[6]?.asked ?? []).map((name) => MANAGERS.find((x) => x.name === name)?.addr);
  t.same(joins.map((x) => x.remoteAddrs), [[`${granting}:2377`, `${refusing}:2377`]], 'RemoteAddrs: the granting manager first, then every other manager');
  t.same(joins.map((x) => x.joinToken), [WORKER_TOKEN], 'joined with the worker token');
  await j.step(1000);
  t.match(j.formation.status(), { phase: 'member', swarm: { id: m.swarm.id, role: 'worker' } });
  t.match(j.metrics(), /piswarm_formation_join_failures_total 6\n/, 'six failed rounds counted');
  t.match(j.metrics(), /piswarm_formation_joins_total 1\n/);
  const all = [...j.lines(), ...m.nodes.flatMap((n) => n.lines())].map((l) => JSON.stringify(l)).join('\n');
  t.notOk(all.includes(MANAGER_SECRET) || all.includes(WORKER_TOKEN.slice('SWMTKN-1-'.length)), 'no token in any journal');
});

t.test('a grant carries the worker token only: the manager token is nowhere in the answer, its headers, /metrics, the formation views or the journal', async (t) => {
  const m = await managers(t);
  const mgr = m.nodes[0]!;
  const url = (path: string) => `http://${mgr.addr}:${m.port}${path}`;
  const joinerId = 'c'.repeat(24);
  const body = JSON.stringify({ v: 1, nodeId: joinerId, name: 'pi-3', addr: '127.0.0.4' });
  const nonce = randomBytes(16).toString('base64url');
  const res = await fetch(url('/v1/grants'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', [PEER_AUTH_HEADER]: signRequest(keys, { method: 'POST', path: '/v1/grants', body, nodeId: joinerId, to: `${mgr.addr}:${m.port}`, now: Date.now(), nonce }) },
    body,
  });
  const text = await res.text();
  t.equal(res.status, 200, 'the grant is answered');
  const h = verifyResponse(keys, { requestNonce: nonce, to: `${mgr.addr}:${m.port}`, status: 200, body: text, header: res.headers.get(PEER_AUTH_HEADER), now: Date.now(), windowMs: 30_000 });
  const g = JSON.parse(text);
  const token = openToken(keys, { requestNonce: nonce, responseNonce: h.nonce, joinerId, managerId: h.nodeId, swarmId: g.swarmId, managerAddrs: g.managerAddrs }, g);
  t.equal(token, WORKER_TOKEN, 'the sealed token is the worker token');
  t.not(token, MANAGER_TOKEN);
  t.same(m.asked, ['pi-1'], "the answer came from the manager's engine (swarm inspect, which holds both tokens)");

  const leaks = (s: string) => s.includes(MANAGER_SECRET);
  t.notOk(leaks(text), 'not in the answer body');
  t.notOk(leaks(JSON.stringify([...res.headers])), 'not in its headers');
  t.match(mgr.metrics(), /piswarm_formation_grants_issued_total 1\n/);
  for (const path of ['/metrics', '/v1/formation', '/v1/peers', '/v1/nodes']) {
    const r = await fetch(url(path));
    const s = await r.text();
    t.equal(r.status, 200, `${path} answers`);
    t.notOk(leaks(s) || leaks(JSON.stringify([...r.headers])), `not in ${path}`);
  }
  const journal = m.nodes.flatMap((n) => n.lines()).map((l) => JSON.stringify(l)).join('\n');
  t.ok(journal.includes('join grant issued'), 'the journal has the grant');
  t.notOk(leaks(journal), 'not in any journal line');
});

t.test('through the join relay: the engine joins the relay\'s address, the relay is told the grant\'s managers for that join only, and the worker is never pinned', async (t) => {
  const m = await managers(t);
  const base = m.world.engine('pi-3');
  const joins: JoinArgs[] = [];
  const told: Array<string[] | null> = [];
  let during: Array<string[] | null> = [];
  const RELAY = '127.0.0.1:2378';
  // Fakes the one thing the relay does for the engine: what reaches it goes to the managers it was last told about.
  const relay: JoinRelayLike = { address: () => RELAY, joining: (l) => void told.push(l ? [...l] : null) };
  const engine = fakeDocker({
    info: base.info,
    async swarmJoin(a) {
      joins.push(a);
      during = [...told];
      const via = told.at(-1);
      if (!via) throw new Error('the relay was not told where to forward');
      return base.swarmJoin({ ...a, remoteAddrs: via });
    },
  });
  const store = createMemoryFormationStore();
  const j = joiner(t, m.port, engine, {}, { joinRelay: relay, store });
  m.answer = () => 'grant';
  await j.step(0);
  t.equal(joins.length, 1, 'one swarm join');
  t.same(joins[0]!.remoteAddrs, [RELAY], 'RemoteAddrs: the relay alone');
  t.equal(during.length, 1, 'the relay was told before the join');
  t.match(during[0], [/^127\.0\.0\.[23]:2377$/, /^127\.0\.0\.[23]:2377$/], 'the grant\'s managers, the granting one first');
  t.same(told.at(-1), null, 'and that the join is over');
  t.equal(store.load().joined?.joinAddr, RELAY, 'the join address kept is the relay\'s');
  await j.step(1000);
  t.match(j.formation.status(), { phase: 'member', swarm: { role: 'worker' } });
  t.equal(j.formation.joinAddress(), null, 'on an engine that pins (20.10.24), nothing published: the relay reaches a live manager');
  t.ok(j.lines().some((l) => l.msg === 'joined the swarm' && l.joinAddr === RELAY), 'the journal names the relay');
});
