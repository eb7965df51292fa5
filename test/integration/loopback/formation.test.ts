import t, { type Test } from 'tap';
import { buildApp } from '../../../agent/http/app.js';
import type { HealthDocument } from '../../../agent/health/aggregate.js';
import { deriveClusterKeys } from '../../../agent/identity/keys.js';
import type { NodeIdentity } from '../../../agent/identity/identity.js';
import { createPeerClient } from '../../../agent/peers/client.js';
import { createFormation, type Formation } from '../../../agent/formation/controller.js';
import { createMemoryFormationStore, type FormationStore } from '../../../agent/formation/store.js';
import { renderFamilies } from '../../../agent/metrics/format.js';
import { memoryLogger } from '../../helpers/fakes.js';
import { FakeLan, FakeWorld } from '../../unit/agent/formation/fake-swarm.js';
import { KEY, OTHER_KEY, freePort, testConfig } from '../../unit/agent/formation/helpers.js';

/**
 * Several formation controllers in one process, each with its own fake
 * engine (one shared world of swarms), talking real authenticated HTTP over
 * loopback addresses 127.0.0.x (one port, like a real cluster), and hearing
 * each other's signed adverts through the real verification.
 *
 * Multi-node behaviour on the wall clock (about 35 s), so it lives with the
 * integration tests, not the unit tests (which drive one controller on the
 * test's clock: test/unit/agent/formation/formation-lone and join). No Docker
 * engine: the engines are FakeWorld's, which throw on anything they do not model.
 */
const doc: HealthDocument = { status: 'pass', version: '0', releaseId: '0', serviceId: 'x', description: 'x', checks: {} };

interface Node {
  name: string;
  formation: Formation;
  engine: ReturnType<FakeWorld['engine']>;
  store: FormationStore;
  identity: NodeIdentity;
  lines: () => Array<Record<string, unknown>>;
  close(): Promise<void>;
}

async function node(world: FakeWorld, lan: FakeLan | null, i: number, port: number, opts: { key?: string; expect?: number; engine?: Node['engine']; store?: FormationStore; identity?: NodeIdentity; seeds?: string[]; pinSettleMs?: number } = {}): Promise<Node> {
  const name = `pi-${i}`;
  const key = opts.key ?? KEY;
  const keys = deriveClusterKeys(key);
  const identity = opts.identity ?? { nodeId: (0x100 + i * 7919).toString(16).padStart(24, '0'), name, createdAt: '' };
  const engine = opts.engine ?? world.engine(name);
  const store = opts.store ?? createMemoryFormationStore();
  const { log, lines } = memoryLogger();
  const addr = `127.0.0.${i + 1}`;
  const config = testConfig({
    clusterKey: key,
    nodeName: name,
    http: { port },
    discovery: { confirmIntervalMs: 300, peerTtlMs: 5000, requestTimeoutMs: 1000, seeds: opts.seeds ?? [] },
    formation: { expect: opts.expect ?? 1, holdOffMs: 600, initDeadlineMs: 3000, tickMs: 100, rotateAfterMs: 1000 },
  });
  const formation = createFormation({
    config,
    log,
    docker: engine,
    clock: { now: Date.now, setTimeout, clearTimeout },
    identity,
    discovery: lan ? lan.discovery(keys, identity.nodeId) : null,
    peerClient: createPeerClient({ keys, identity, timeoutMs: 1000, windowMs: 30_000 }),
    address: () => ({ address: addr, interface: 'lo', reason: 'test' }),
    store,
    pinSettleMs: opts.pinSettleMs ?? 500,
  });
  const app = await buildApp({ log, bodyLimit: 16384, version: '0', health: () => doc, metrics: () => '', countError: () => undefined, plugins: [formation.routes] });
  await app.listen({ host: addr, port });
  await formation.start();
  return {
    name, formation, engine, store, identity, lines,
    async close() {
      await formation.stop();
      await app.close();
    },
  };
}

async function until(what: string, cond: () => boolean, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - t0;
}

/** A fresh world of swarms, one LAN, one port, and the nodes a test starts, closed when it ends. */
async function cluster(t: Test): Promise<{ world: FakeWorld; lan: FakeLan; port: number; nodes: Node[] }> {
  const nodes: Node[] = [];
  t.teardown(async () => {
    for (const n of nodes) await n.close();
  });
  return { world: new FakeWorld(), lan: new FakeLan(), port: await freePort(), nodes };
}

t.test('5 nodes powered on together form exactly one swarm; a late node joins; a foreign node never does', async (t) => {
  const { world, lan, port, nodes } = await cluster(t);
  for (let i = 1; i <= 5; i++) nodes.push(await node(world, lan, i, port, { expect: 5 }));
  const ms = await until('one swarm of 5', () => world.swarms.size === 1 && [...world.swarms.values()][0]!.members.size === 5, 15_000);
  t.comment(`formed in ${ms} ms`);
  t.equal(world.count('init'), 1, 'exactly one swarm init');
  t.equal(world.count('join'), 4, 'four joins, no retries needed');
  const creator = world.calls.find((c) => c.op === 'init')!.node;
  const lowest = [...nodes].sort((a, b) => (a.identity.nodeId < b.identity.nodeId ? -1 : 1))[0]!;
  t.equal(creator, lowest.name, 'the lowest node id created it');
  await until('all report member/manager', () => nodes.every((n) => ['member', 'manager'].includes(n.formation.status().phase)), 5000);
  const st = lowest.formation.status();
  t.equal(st.phase, 'manager');
  t.ok(st.timeline.some((e) => e.to === 'initialising'), 'timeline records the init');
  t.equal(st.confirmedPeers.length, 4);
  t.match(st.election, { winner: lowest.identity.nodeId, why: 'lowest node id among confirmed peers' }, 'the creator still says it won, and why');
  for (const n of nodes.filter((x) => x !== lowest)) t.equal(n.formation.status().election?.winner, lowest.identity.nodeId, `${n.name}, a joiner, still names the winner`);

  // A node powered on after formation joins by itself, with expect=5 still configured.
  nodes.push(await node(world, lan, 6, port, { expect: 5 }));
  await until('late node joined', () => [...world.swarms.values()][0]!.members.size === 6, 10_000);
  t.equal(world.count('init'), 1, 'still one init');

  // Another cluster key: never joins, never a peer, and its /health warns.
  const foreign = await node(world, lan, 7, port, { key: OTHER_KEY, expect: 1 });
  nodes.push(foreign);
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(foreign.engine.state().swarmId === [...world.swarms.keys()][0], false, 'foreign node is not in our swarm');
  t.equal(foreign.formation.status().confirmedPeers.length, 0, 'it confirmed nobody');
  t.notOk(nodes.slice(0, 6).some((n) => n.formation.status().confirmedPeers.some((p) => p.nodeId === foreign.identity.nodeId)), 'nobody confirmed it');
  const warn = foreign.formation.healthChecks.find((c) => c.name === 'discovery:peers')!.run()[0]!;
  t.equal(warn.status, 'warn');
  t.match(warn.output, /another piswarm cluster/);
  t.match(renderFamilies(foreign.formation.collector.collect()), /piswarm_discovery_adverts_dropped_total\{reason="wrong_cluster"\} [1-9]/);

  // Token rotation after the burst of joins.
  await until('worker token rotated', () => world.count('rotate') >= 1, 5000);
  t.pass('worker token rotated once the joins stopped');

  const all = nodes.flatMap((n) => n.lines()).map((l) => JSON.stringify(l)).join('\n');
  t.notOk(all.includes('SWMTKN'), 'no join token in any log line');
  t.notOk(all.includes(KEY) || all.includes(OTHER_KEY), 'no cluster key in any log line');
  t.ok(nodes[0]!.lines().some((l) => l.msg === 'formation phase changed' && typeof l.from === 'string' && typeof l.to === 'string'), 'one log line per transition');
});

t.test('a winner that is alive but whose swarm init keeps failing: the next in rank creates the swarm after one deadline, and the winner joins it', async (t) => {
  const { world, lan, port, nodes } = await cluster(t);
  // pi-1 has the lowest node id, so it wins; its engine refuses every swarm init. Hold-off 600 ms, deadline 3 s, tick 100 ms.
  nodes.push(await node(world, lan, 1, port, { expect: 3, engine: world.engine('pi-1', { initError: 'could not choose an IP address to advertise' }) }));
  for (let i = 2; i <= 3; i++) nodes.push(await node(world, lan, i, port, { expect: 3 }));
  const [winner, next] = nodes as [Node, Node];
  const ms = await until('one swarm of 3', () => world.swarms.size === 1 && [...world.swarms.values()][0]!.members.size === 3, 15_000);
  t.comment(`formed in ${ms} ms`);
  const inits = world.calls.filter((c) => c.op === 'init');
  t.same(inits.filter((c) => c.node !== 'pi-1').map((c) => c.node), ['pi-2'], 'rank 1 created it, once; rank 2 never tried');
  const failed = inits.filter((c) => c.node === 'pi-1').length;
  t.ok(failed >= 2 && failed <= 12, `the winner retried with backoff, not every tick (${failed} failed inits in its 3 s turn)`);
  t.same(winner.engine.state().role, 'worker', 'the winner then joined the swarm it could not create');
  // Its turn runs out (waiting) or, when the next in rank's clock ran out a
  // little sooner, the swarm it created is seen first (joining): both right,
  // and which comes first is the machine's timing (CI saw the second once).
  const left = winner.formation.status().timeline.find((e) => e.from === 'initialising' && (e.to === 'waiting' || e.to === 'joining'));
  t.ok(left, `it left initialising when its turn was over or the swarm appeared (${left?.to ?? 'never'})`);
  const said = left?.to === 'joining' ? 'swarm init kept failing on this node; another node created the swarm and this one joins it' : "swarm init kept failing for this node's whole turn; the next in rank takes over";
  t.ok(winner.lines().some((l) => l.msg === said), `and its journal says so: "${said}"`);
  t.match(next.formation.status().election, { winner: next.identity.nodeId, why: new RegExp(`^takeover: ${winner.identity.nodeId} did not create the swarm`) }, 'the creator says it took over, and why');
  t.match(renderFamilies(winner.formation.collector.collect()), new RegExp(`piswarm_formation_init_failures_total ${failed}\\n`), 'every failed init counted');
});

t.test('agent restart of a member: no init, no join, no duplicate', async (t) => {
  const world = new FakeWorld();
  const lan = new FakeLan();
  const port = await freePort();
  const a = await node(world, lan, 1, port);
  const b = await node(world, lan, 2, port);
  await until('two in one swarm', () => world.swarms.size === 1 && [...world.swarms.values()][0]!.members.size === 2, 10_000);
  const calls = world.calls.length;
  await b.close();
  const b2 = await node(world, lan, 2, port, { engine: b.engine, store: b.store, identity: b.identity });
  t.teardown(async () => {
    await a.close();
    await b2.close();
  });
  await until('restarted node reports member', () => b2.formation.status().phase === 'member' || b2.formation.status().phase === 'manager', 5000);
  await new Promise((r) => setTimeout(r, 800));
  t.same(world.calls.slice(calls).filter((c) => c.op === 'init' || c.op === 'join' || c.op === 'leave'), [], 'no init, join or leave after restart');
  t.equal([...world.swarms.values()][0]!.members.size, 2, 'no duplicate node entry');
});

t.test('split: two swarms made during a partition heal to the bigger one', async (t) => {
  const world = new FakeWorld();
  const port = await freePort();
  // Two LANs = a partition: 3 nodes on one side, 2 on the other.
  const left = new FakeLan();
  const right = new FakeLan();
  const nodes: Node[] = [];
  t.teardown(async () => {
    for (const n of nodes) await n.close();
  });
  for (let i = 1; i <= 3; i++) nodes.push(await node(world, left, i, port, { expect: 3 }));
  for (let i = 4; i <= 5; i++) nodes.push(await node(world, right, i, port, { expect: 2 }));
  // Both sides complete (3 and 2), not merely both created: the third left node may still be joining.
  await until('two swarms of 3 and 2', () => world.swarms.size === 2 && [...world.swarms.values()].map((s) => s.members.size).sort().join() === '2,3', 15_000);
  const big = [...world.swarms.values()].find((s) => s.members.size === 3)!.id;
  // Heal the partition: node 4 now hears the left side's adverts (seeds would do the same).
  for (const [id, a] of left.adverts) right.adverts.set(id, a);
  for (const [id, a] of right.adverts) left.adverts.set(id, a);
  const sync = setInterval(() => {
    for (const [id, a] of left.adverts) right.adverts.set(id, a);
    for (const [id, a] of right.adverts) left.adverts.set(id, a);
  }, 50);
  t.teardown(() => clearInterval(sync));
  await until('one swarm of 5', () => world.swarms.size === 1 && [...world.swarms.values()][0]!.members.size === 5, 20_000);
  t.equal([...world.swarms.keys()][0], big, 'the bigger swarm won');
  t.ok(world.count('leave') >= 2, 'the losing side left');
  const m = renderFamilies(nodes[3]!.formation.collector.collect());
  t.match(m, /piswarm_formation_splits_detected_total [1-9]/);
});

t.test('without multicast: static seeds alone form one swarm', async (t) => {
  const world = new FakeWorld();
  const port = await freePort();
  const seeds = [1, 2, 3].map((i) => `127.0.0.${i + 1}:${port}`);
  const nodes: Node[] = [];
  t.teardown(async () => {
    for (const n of nodes) await n.close();
  });
  // Every node is given the full list, its own address included (as a cluster file would).
  for (let i = 1; i <= 3; i++) nodes.push(await node(world, null, i, port, { expect: 3, seeds }));
  await until('one swarm of 3', () => world.swarms.size === 1 && [...world.swarms.values()][0]!.members.size === 3, 15_000);
  t.equal(world.count('init'), 1);
  t.ok(nodes.every((n) => n.formation.status().confirmedPeers.every((p) => p.source === 'seed')), 'peers came from seeds');
  t.ok(nodes.every((n) => n.formation.status().confirmedPeers.length === 2), 'a node never counts itself as a peer');
});

t.test('a worker joined by hand (no grant persisted) learns its swarm id from a confirmed manager and never re-joins', async (t) => {
  const world = new FakeWorld();
  const lan = new FakeLan();
  const port = await freePort();
  const a = await node(world, lan, 1, port);
  await until('a alone made a swarm', () => world.swarms.size === 1, 10_000);
  const s = [...world.swarms.values()][0]!;
  const engine = world.engine('pi-2');
  await engine.swarmJoin({ advertiseAddr: '127.0.0.3', listenAddr: '127.0.0.3:2377', dataPathAddr: '127.0.0.3', remoteAddrs: ['127.0.0.2:2377'], joinToken: s.workerToken });
  const b = await node(world, lan, 2, port, { engine });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  await until('b names its swarm', () => b.formation.status().swarm?.id === s.id, 10_000);
  t.equal(b.formation.status().phase, 'member');
  t.equal(world.count('join'), 1, 'only the manual join');
  t.equal(world.count('leave'), 0);
});

/**
 * moby PR #47854: before Docker 27 a worker's engine, promoted, joins Raft
 * only through the manager it joined through. When that manager is demoted
 * (or dead and demoted), the worker re-joins through a live manager.
 * pi-1 has the lowest node id and creates the swarm; pi-2 is promoted and
 * pi-1 demoted, as the autopilot does after a manager is lost; pi-3 (with
 * the engine version under test) joined through pi-1.
 */
async function pinnedWorld(t: Test, version: string) {
  const world = new FakeWorld();
  const lan = new FakeLan();
  const port = await freePort();
  const creator = await node(world, lan, 1, port, { expect: 3 });
  const promoted = await node(world, lan, 2, port, { expect: 3 });
  const worker = await node(world, lan, 3, port, { expect: 3, engine: world.engine('pi-3', { version }) });
  t.teardown(async () => {
    for (const n of [creator, promoted, worker]) await n.close();
  });
  await until('one swarm of 3', () => world.swarms.size === 1 && [...world.swarms.values()][0]!.members.size === 3, 15_000);
  t.equal(creator.engine.state().role, 'manager', 'pi-1 created the swarm');
  const promote = async () => {
    world.setRole(promoted.engine, (await promoted.engine.info()).swarm.nodeId!, 'manager');
    world.setRole(creator.engine, (await creator.engine.info()).swarm.nodeId!, 'worker');
  };
  return { world, worker, promote };
}

t.test('a worker pinned to a manager that is no longer one re-joins through a live manager (Docker < 27)', async (t) => {
  const { world, worker, promote } = await pinnedWorld(t, '20.10.24');
  t.equal(worker.store.load().joined?.joinAddr, '127.0.0.2:2377', 'the join address persisted is the granting manager\'s');
  t.equal(worker.formation.joinAddress(), '127.0.0.2:2377', 'published for gossip on an engine that pins it');
  await promote();
  await until('pi-3 re-joined through pi-2', () => worker.store.load().joined?.joinAddr === '127.0.0.3:2377', 15_000);
  const leaves = world.calls.filter((c) => c.op === 'leave');
  t.same(leaves.map((c) => c.node), ['pi-3'], 'one leave: the pinned worker, nobody else');
  t.equal(world.swarms.size, 1, 'still one swarm');
  t.same(worker.engine.state(), { swarmId: [...world.swarms.keys()][0], role: 'worker' }, 'a worker again, in the same swarm');
  t.ok(worker.lines().some((l) => l.msg === 'leaving the swarm to join it again through a live manager'), 'the journal says why it left');
  t.equal(worker.formation.joinAddress(), '127.0.0.3:2377', 'it now publishes the live manager');
  t.match(renderFamilies(worker.formation.collector.collect()), /piswarm_formation_rejoins_total\{reason="join-manager-gone"\} 1\n/, 'counted by reason');
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(world.count('leave'), 1, 'and it stays: no loop');
});

t.test('on Docker 27 or newer the same worker stays where it is', async (t) => {
  const { world, worker, promote } = await pinnedWorld(t, '27.3.1');
  t.equal(worker.formation.joinAddress(), null, 'nothing published: the engine does not pin its join address');
  await promote();
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(world.count('leave'), 0, 'no leave');
  t.equal(worker.engine.state().role, 'worker');
});

t.test('a worker the swarm removed while it was away (its engine still says active) joins again', async (t) => {
  const world = new FakeWorld();
  const lan = new FakeLan();
  const port = await freePort();
  const a = await node(world, lan, 1, port, { expect: 2 });
  const b = await node(world, lan, 2, port, { expect: 2, engine: world.engine('pi-2', { version: '28.2.2' }) });
  t.teardown(async () => {
    for (const n of [a, b]) await n.close();
  });
  await until('one swarm of 2', () => world.swarms.size === 1 && [...world.swarms.values()][0]!.members.size === 2, 15_000);
  const s = [...world.swarms.values()][0]!;
  const oldId = (await b.engine.info()).swarm.nodeId!;
  // `docker node rm --force` on the manager while b was cut off: b's engine keeps its swarm state.
  s.members.delete(oldId);
  t.equal((await b.engine.info()).swarm.state, 'active', 'the removed engine still says active, as dockerd does');
  await until('b joined again under a new node id', () => s.members.size === 2 && !s.members.has(oldId), 20_000);
  t.same(world.calls.filter((c) => c.op === 'leave').map((c) => c.node), ['pi-2'], 'b left (its stale state) and nobody else');
  t.ok(b.lines().some((l) => l.msg === 'a manager of this swarm no longer lists this node (removed while away?)'), 'the journal says what it saw');
  t.ok(b.lines().some((l) => typeof l.why === 'string' && /no longer list this node/.test(l.why)), 'and why it left');
  const m = renderFamilies(b.formation.collector.collect());
  t.match(m, /piswarm_formation_rejoins_total\{reason="pruned"\} 1\n/, 'counted by reason');
  t.match(m, /piswarm_formation_split_leaves_total 0\n/, 'not as a split');
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(world.count('leave'), 1, 'and stays: no loop');
});

/**
 * Issue 10, item 1: a node the autopilot removed while it was off comes back
 * with an engine that stays `pending` for good (dockerd: "node ... was
 * removed from swarm", "The swarm does not have a leader"). The rule used to
 * answer "wait" to any pending engine, and the agent forgot what the
 * managers had said whenever the engine was not active.
 */
async function strandedWorld(t: Test) {
  const world = new FakeWorld();
  const lan = new FakeLan();
  const port = await freePort();
  const a = await node(world, lan, 1, port, { expect: 2 });
  const b = await node(world, lan, 2, port, { expect: 2 });
  t.teardown(async () => {
    for (const n of [a, b]) await n.close().catch(() => undefined); // a test may have closed one already
  });
  await until('one swarm of 2', () => world.swarms.size === 1 && [...world.swarms.values()][0]!.members.size === 2, 15_000);
  const [swarmId, s] = [...world.swarms.entries()][0]!;
  const creator = world.calls.find((c) => c.op === 'init')!.node === 'pi-1' ? a : b;
  const joiner = creator === a ? b : a;
  return { world, lan, port, s, swarmId, creator, joiner };
}

t.test('the node that creates the swarm records the swarm id, not its own node id', async (t) => {
  const { swarmId, creator, joiner } = await strandedWorld(t);
  const creatorNodeId = (await creator.engine.info()).swarm.nodeId;
  t.equal(creator.store.load().joined?.id, swarmId, 'formation.json names the swarm');
  t.not(creator.store.load().joined?.id, creatorNodeId);
  t.same(creator.store.load().seenSwarms.map((x) => x.id), [swarmId], 'and only the swarm is among the swarms it has seen');
  await until('the joiner confirms the creator', () => joiner.formation.status().swarm?.id === swarmId, 5000);
  t.notOk(joiner.store.load().seenSwarms.some((x) => x.id === creatorNodeId), 'no node id spreads to the peers as a swarm');
  t.ok(creator.lines().some((l) => l.msg === 'created the swarm' && l.swarmId === swarmId && l.swarmNodeId === creatorNodeId), 'the journal names both');
});

t.test('a worker removed while it was off (its engine pending for good) leaves and joins again through a live manager', async (t) => {
  const { world, s, swarmId, joiner } = await strandedWorld(t);
  const oldId = (await joiner.engine.info()).swarm.nodeId!;
  world.removeWhileAway(joiner.engine, oldId);
  t.equal((await joiner.engine.info()).swarm.state, 'pending', 'the removed engine is pending, as dockerd is');
  await until('joined again under a new node id', () => s.members.size === 2 && !s.members.has(oldId), 20_000);
  t.same(world.calls.filter((c) => c.op === 'leave').map((c) => c.node), [joiner.name], 'it left its stale state, nobody else did');
  t.equal(joiner.engine.state().swarmId, swarmId, 'same swarm');
  t.ok(joiner.lines().some((l) => l.msg === 'a manager of this swarm no longer lists this node (removed while away?)'), 'the journal says what it saw');
  t.match(renderFamilies(joiner.formation.collector.collect()), /piswarm_formation_rejoins_total\{reason="pruned"\} 1\n/, 'counted by reason');
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(world.count('leave'), 1, 'and it stays: no loop');
});

t.test('a manager demoted and removed while it was off (the creator, pending for good) joins again as a worker', async (t) => {
  const { world, s, swarmId, creator, joiner } = await strandedWorld(t);
  // The autopilot promoted the other node and removed this one while it was away.
  world.setRole(joiner.engine, (await joiner.engine.info()).swarm.nodeId!, 'manager');
  const oldId = (await creator.engine.info()).swarm.nodeId!;
  world.removeWhileAway(creator.engine, oldId);
  await until('the creator joined again', () => s.members.size === 2 && !s.members.has(oldId), 20_000);
  t.same(creator.engine.state(), { swarmId, role: 'worker' }, 'a worker of the same swarm (the autopilot promotes it if needed)');
  t.equal(world.swarms.size, 1, 'no second swarm');
  t.equal(world.count('init'), 1, 'never initialised again');
  t.match(renderFamilies(creator.formation.collector.collect()), /piswarm_formation_rejoins_total\{reason="pruned"\} 1\n/);
});

t.test('a removed manager whose engine answers docker info past the call deadline still leaves and joins again', async (t) => {
  const { world, s, swarmId, creator, joiner } = await strandedWorld(t);
  world.setRole(joiner.engine, (await joiner.engine.info()).swarm.nodeId!, 'manager');
  const oldId = (await creator.engine.info()).swarm.nodeId!;
  // As on Docker 26.1.5 after a manager's cable was pulled past the grace and
  // it rebooted: docker info took 12.8 s, and the re-join's last look before
  // leaving timed out at every attempt, for minutes (no leave was ever tried).
  world.removeWhileAway(creator.engine, oldId, { slowInfo: true });
  await until('the creator joined again', () => s.members.size === 2 && !s.members.has(oldId), 20_000);
  t.same(creator.engine.state(), { swarmId, role: 'worker' }, 'a worker of the same swarm');
  t.equal(world.count('leave'), 1, 'one leave');
  t.match(renderFamilies(creator.formation.collector.collect()), /piswarm_formation_rejoins_total\{reason="pruned"\} 1\n/);
});

t.test('a manager the swarm refuses as removed (engine in error, answering now and then) leaves and joins again', async (t) => {
  const { world, s, swarmId, creator, joiner } = await strandedWorld(t);
  world.setRole(joiner.engine, (await joiner.engine.info()).swarm.nodeId!, 'manager');
  const oldId = (await creator.engine.info()).swarm.nodeId!;
  // As on Docker 26.1.5 in the fault campaign (seed 20261208, fault 18): demoted
  // during a 22.7 s cable pull, removed before its engine got its worker
  // certificate; the engine sat in error for good and formation waited.
  world.removeWhileAway(creator.engine, oldId, { refused: true, slowInfo: true });
  t.equal((await creator.engine.info({ patient: true })).swarm.state, 'error');
  await until('the creator joined again', () => s.members.size === 2 && !s.members.has(oldId), 20_000);
  t.same(creator.engine.state(), { swarmId, role: 'worker' }, 'a worker of the same swarm');
  t.equal(world.count('leave'), 1, 'one leave');
  t.ok(creator.lines().some((l) => typeof l.why === 'string' && /refuses this node as removed/.test(l.why)), 'the journal says why');
  t.match(renderFamilies(creator.formation.collector.collect()), /piswarm_formation_rejoins_total\{reason="pruned"\} 1\n/);
});

t.test('refused as removed and rebooted (the engine names no node id): formation.json knows it, and it joins again', async (t) => {
  const { world, lan, port, s, swarmId, creator, joiner } = await strandedWorld(t);
  world.setRole(joiner.engine, (await joiner.engine.info()).swarm.nodeId!, 'manager');
  const oldId = (await creator.engine.info()).swarm.nodeId!;
  await until('formation.json records the swarm node id', () => creator.store.load().joined?.nodeId === oldId, 5000);
  await creator.close();
  world.removeWhileAway(creator.engine, oldId, { refused: true });
  t.equal((await creator.engine.info()).swarm.nodeId, null, 'the refused engine names no node id');
  const again = await node(world, lan, Number(creator.name.slice(3)), port, { expect: 2, engine: creator.engine, store: creator.store, identity: creator.identity });
  t.teardown(() => again.close());
  await until('the rebooted creator joined again', () => s.members.size === 2 && !s.members.has(oldId), 20_000);
  t.same(creator.engine.state(), { swarmId, role: 'worker' });
});

t.test('a pending engine whose managers still list it waits (a swarm powering on again), and never leaves', async (t) => {
  const { world, creator, joiner } = await strandedWorld(t);
  // Stranded, but its entry is still there: e.g. a Raft without a leader yet.
  const id = (await joiner.engine.info()).swarm.nodeId!;
  joiner.engine.strand();
  await new Promise((r) => setTimeout(r, 2500));
  t.equal(world.count('leave'), 0, 'no leave');
  t.equal(joiner.formation.status().phase, 'joining');
  t.ok([...world.swarms.values()][0]!.members.has(id), 'its entry is still listed');
  t.ok(creator.formation.status().phase === 'manager');
});
