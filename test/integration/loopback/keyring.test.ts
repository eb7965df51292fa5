import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { OPERATOR_NODE_ID } from '../../../shared/constants.js';
import { deriveGossipKeys, GossipKeyring } from '../../../shared/wire/gossip.js';
import { createFormation, type Formation } from '../../../agent/formation/controller.js';
import { createMemoryFormationStore } from '../../../agent/formation/store.js';
import type { HealthDocument } from '../../../agent/health/aggregate.js';
import { buildApp } from '../../../agent/http/app.js';
import type { NodeIdentity } from '../../../agent/identity/identity.js';
import { deriveClusterKeys, Keyring } from '../../../agent/identity/keys.js';
import { KEYRING_FILE } from '../../../agent/keyring/store.js';
import { keyringSubsystem, type KeyringSubsystem } from '../../../agent/keyring/subsystem.js';
import { rotateKeyCommand } from '../../../agent/cli/key-change.js';
import { renderFamilies } from '../../../agent/metrics/format.js';
import { newClusterFile, readClusterFile, writeClusterFile } from '../../../agent/provision/cluster-file.js';
import { createPeerClient } from '../../../agent/peers/client.js';
import { memoryLogger } from '../../helpers/fakes.js';
import { FakeLan, FakeWorld } from '../../unit/agent/formation/fake-swarm.js';
import { KEY, freePort, testConfig } from '../../unit/agent/formation/helpers.js';

/**
 * `piswarm cluster rotate-key` end to end without Docker (issue 16): three
 * formation controllers on loopback, real signed adverts and peer HTTP, each
 * with its keyring in its own state directory; the rotation is asked of one
 * node by an operator client holding the key, as the CLI does. The engines
 * are FakeWorld's.
 */
const doc: HealthDocument = { status: 'pass', version: '0', releaseId: '0', serviceId: 'x', description: 'x', checks: {} };
const NEW_KEY = 'the key the operator rotates to, 32+ characters long';

interface Node {
  name: string;
  identity: NodeIdentity;
  formation: Formation;
  keyring: KeyringSubsystem;
  keys: Keyring;
  stateDir: string;
  lines: () => Array<Record<string, unknown>>;
  close(): Promise<void>;
}

async function node(world: FakeWorld, lan: FakeLan, i: number, port: number, stateDir: string, engine = world.engine(`pi-${i}`)): Promise<Node> {
  const name = `pi-${i}`;
  const identity = { nodeId: (0x200 + i * 7919).toString(16).padStart(24, '0'), name, createdAt: '' };
  const keys = new Keyring(deriveClusterKeys(KEY));
  const gossipKeys = new GossipKeyring(deriveGossipKeys(KEY));
  const { log, lines } = memoryLogger();
  const addr = `127.0.0.${i + 1}`;
  const config = testConfig({
    clusterKey: KEY,
    nodeName: name,
    http: { port },
    discovery: { confirmIntervalMs: 300, peerTtlMs: 3000, requestTimeoutMs: 1000, seeds: [] },
    formation: { expect: 3, holdOffMs: 600, initDeadlineMs: 3000, tickMs: 100, rotateAfterMs: 1000 },
  });
  let formation: Formation | null = null;
  const peerClient = createPeerClient({ keys, identity, timeoutMs: 1000, windowMs: 30_000 });
  const keyring = keyringSubsystem({
    node: {
      identity,
      keys,
      setClusterKeys: (p, a) => {
        keys.set(deriveClusterKeys(p), a.map(deriveClusterKeys));
        gossipKeys.set(deriveGossipKeys(p), a.map((k) => deriveGossipKeys(k)));
      },
    },
    configKey: KEY,
    stateDir,
    log,
    peers: () => formation!.status().confirmedPeers.map((p) => ({ nodeId: p.nodeId, name: p.name, addr: p.addr, port: p.port })),
    client: () => peerClient,
    docker: engine,
  });
  formation = createFormation({
    config,
    log,
    docker: engine,
    clock: { now: Date.now, setTimeout, clearTimeout },
    identity,
    keys,
    discovery: lan.discovery(keys, identity.nodeId),
    peerClient,
    address: () => ({ address: addr, interface: 'lo', reason: 'test' }),
    store: createMemoryFormationStore(),
    pinSettleMs: 500,
    keyring: { keyringStep: keyring.step, rotate: keyring.rotate, revoke: keyring.revoke },
  });
  const app = await buildApp({ log, bodyLimit: 16384, version: '0', health: () => doc, metrics: () => '', countError: () => undefined, plugins: [formation.routes] });
  await app.listen({ host: addr, port });
  await formation.start();
  const f = formation;
  return {
    name, identity, formation: f, keyring, keys, stateDir, lines,
    async close() {
      await f.stop(); // closes the peer client too
      await app.close();
    },
  };
}

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const peerIds = (n: Node) => n.formation.status().confirmedPeers.map((p) => p.nodeId).sort();
const operator = (key: string) => createPeerClient({ keys: deriveClusterKeys(key), identity: { nodeId: OPERATOR_NODE_ID, name: 'operator', createdAt: '' }, timeoutMs: 5000, windowMs: 30_000 });

async function threeNodes(t: Test) {
  const world = new FakeWorld();
  const lan = new FakeLan();
  const port = await freePort();
  const dirs = [1, 2, 3].map(() => mkdtempSync(join(tmpdir(), 'piswarm-keyring-')));
  const nodes: Node[] = [];
  t.teardown(async () => {
    for (const n of nodes) await n.close().catch(() => undefined);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  for (let i = 1; i <= 3; i++) nodes.push(await node(world, lan, i, port, dirs[i - 1]!));
  await until('every node confirms the two others', () => nodes.every((n) => n.formation.status().confirmedPeers.length === 2), 20_000);
  return { world, lan, port, dirs, nodes };
}

t.test('a rotation with every node up: each signs with the new key only, keeps its peers, and a restart keeps the new key', async (t) => {
  const { world, lan, port, nodes } = await threeNodes(t);
  const [a, b] = nodes as [Node, Node, Node];
  const op = operator(KEY);
  t.teardown(() => op.close());
  const before = nodes.map(peerIds);
  const r = await op.rotate({ addr: '127.0.0.2', port }, NEW_KEY, false, 30_000);
  t.equal(r.outcome, 'rotated');
  t.same(r.nodes.map((n) => n.reached), ['drop', 'drop', 'drop'], 'every node took every step');
  const newId = deriveClusterKeys(NEW_KEY).clusterId;
  for (const n of nodes) t.same(n.keys.clusterIds, [newId], `${n.name} holds the new key only`);
  const file = join(a.stateDir, KEYRING_FILE);
  t.equal(statSync(file).mode & 0o777, 0o600, 'keyring.json is 0600');
  t.notMatch(readFileSync(file, 'utf8'), KEY, 'the old key is gone from it');
  t.ok(a.lines().every((l) => !JSON.stringify(l).includes(NEW_KEY) && !JSON.stringify(l).includes(KEY)), 'no key in the journal');
  await new Promise((r) => setTimeout(r, 1500));
  t.same(nodes.map(peerIds), before, 'no peer lost on the way (hellos signed with either key were accepted)');
  t.match(renderFamilies(a.keyring.collectors![0]!.collect()), /piswarm_key_rotations_total\{outcome="rotated"\} 1\n/);
  // The old key is another cluster now: the operator's old client is refused.
  await t.rejects(op.rotate({ addr: '127.0.0.2', port }, 'yet another key of 32 characters or more', false, 5000), { code: 'PISWARM_ERR_WRONG_CLUSTER' });
  // A restarted agent reads its keyring.json: it still signs with the new key and is still a peer.
  await a.close();
  nodes[0] = await node(world, lan, 1, port, a.stateDir, world.engine('pi-1b'));
  t.same(nodes[0].keys.clusterIds, [newId], 'the restarted node starts from keyring.json');
  await until('the restarted node is confirmed again by pi-2', () => peerIds(b).includes(nodes[0]!.identity.nodeId) && peerIds(nodes[0]!).length === 2, 15_000);
});

t.test('a node that is down: the rotation aborts unless told to go on; then that node, back with the old key, is another cluster', async (t) => {
  const { world, lan, port, dirs, nodes } = await threeNodes(t);
  const [a, b, c] = nodes as [Node, Node, Node];
  await c.close();
  const op = operator(KEY);
  t.teardown(() => op.close());
  const oldId = deriveClusterKeys(KEY).clusterId;
  const aborted = await op.rotate({ addr: '127.0.0.2', port }, NEW_KEY, false, 30_000);
  t.equal(aborted.outcome, 'aborted');
  t.match(aborted.nodes.find((n) => n.name === 'pi-3'), { reached: 'none', error: /stage/ });
  for (const n of [a, b]) t.same(n.keys.clusterIds, [oldId], `${n.name} keeps the old key only`);
  const r = await op.rotate({ addr: '127.0.0.2', port }, NEW_KEY, true, 30_000);
  t.equal(r.outcome, 'rotated', 'rotated on the nodes that are up');
  t.match(r.nodes.find((n) => n.name === 'pi-3'), { reached: 'none' }, 'pi-3 listed as missed');
  for (const n of [a, b]) t.same(n.keys.clusterIds, [deriveClusterKeys(NEW_KEY).clusterId]);
  // pi-3 powers on again with the card's (old) key.
  nodes[2] = await node(world, lan, 3, port, dirs[2]!, world.engine('pi-3b'));
  await new Promise((r) => setTimeout(r, 3000));
  t.notOk(peerIds(a).includes(nodes[2].identity.nodeId), 'pi-1 does not take it as a peer');
  t.same(peerIds(nodes[2]), [], 'and it has no peer');
  t.ok(nodes[2].formation.status().foreignClusters.length > 0, 'it sees the others as another cluster (its /v1/formation and health say so)');
  t.ok(a.formation.status().foreignClusters.some((f) => f.addr === '127.0.0.4'), 'and pi-1 sees its adverts as another cluster\'s (counted as wrong_cluster drops)');
});

t.test('bad rotation requests: a key that does not match its id, a replay, a step out of order', async (t) => {
  const { port, nodes } = await threeNodes(t);
  const [a] = nodes as [Node, Node, Node];
  const op = operator(KEY);
  t.teardown(() => op.close());
  await t.rejects(op.keyringStep({ addr: '127.0.0.2', port }, 'promote', NEW_KEY), { code: 'PISWARM_ERR_KEYRING' }, 'promote before stage');
  await t.rejects(op.keyringStep({ addr: '127.0.0.2', port }, 'drop', NEW_KEY), { code: 'PISWARM_ERR_KEYRING' }, 'drop before promote');
  t.same(a.keys.clusterIds, [deriveClusterKeys(KEY).clusterId], 'nothing changed');
  const staged = await op.keyringStep({ addr: '127.0.0.2', port }, 'stage', NEW_KEY);
  t.same(staged.clusterIds, [deriveClusterKeys(KEY).clusterId, deriveClusterKeys(NEW_KEY).clusterId], 'stage: both, the old one first');
  const again = await op.keyringStep({ addr: '127.0.0.2', port }, 'stage', NEW_KEY);
  t.same(again.clusterIds, staged.clusterIds, 'a repeated step changes nothing');
  await op.keyringStep({ addr: '127.0.0.2', port }, 'abort', NEW_KEY);
  t.same(a.keys.clusterIds, [deriveClusterKeys(KEY).clusterId], 'abort: back to the old key');
  t.match(renderFamilies(a.keyring.collectors![0]!.collect()), /piswarm_keyring_steps_total\{op="promote",result="refused"\} 1\n/);
});

t.test('piswarm cluster rotate-key: the command a user runs, against a node, writes the new cluster file and rotates', async (t) => {
  const { port, nodes } = await threeNodes(t);
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-rotate-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = testConfig({ clusterKey: KEY, clusterName: 'walkthrough', stateDir: dir, formation: { expect: 6 } });
  const out: string[] = [];
  const run = (argv: string[]) => rotateKeyCommand(() => ({ config, rest: argv })).run({ argv, env: {}, cwd: dir, out: (x) => out.push(x), err: (x) => out.push(x), confirm: async () => false });
  t.equal(await run(['--bogus']), 64, 'an unknown flag is a usage error');
  const file = join(dir, 'new.cluster.json');
  t.equal(await run(['--url', `http://127.0.0.2:${port}`, '--out', file]), 0, 'exit 0');
  const written = readClusterFile(file);
  t.equal(statSync(file).mode & 0o777, 0o600, 'the new cluster file is 0600');
  t.match(written, { name: 'walkthrough', size: 6 }, 'named and sized from the node\'s configuration');
  t.ok(out.some((l) => /-> .*: rotated/.test(l)), 'the report says rotated');
  t.notOk(out.some((l) => l.includes(written.key) || l.includes(KEY)), 'no key printed');
  for (const n of nodes) t.same(n.keys.clusterIds, [deriveClusterKeys(written.key).clusterId], `${n.name} holds the key of the new file`);
  t.equal(await run(['--url', `http://127.0.0.2:${port}`, '--out', file]), 1, 'an existing cluster file is never replaced');
  const second = join(dir, 'second.cluster.json');
  out.length = 0;
  t.equal(await run(['--url', `http://127.0.0.2:${port}`, '--out', second]), 1, 'the old key is refused now');
  t.ok(out.some((l) => /WRONG_CLUSTER/.test(l)) && out.some((l) => /nothing changed/.test(l)), 'and the output says so');
  t.throws(() => statSync(second), { code: 'ENOENT' }, 'its new cluster file is removed again');
});

t.test('node revoke: the card\'s node is left out of the new key, removed from the swarm, and cannot come back', async (t) => {
  const { world, port, nodes } = await threeNodes(t);
  await until('one swarm of 3', () => world.swarms.size === 1 && [...world.swarms.values()][0]!.members.size === 3, 15_000);
  const [swarm] = [...world.swarms.values()];
  const manager = nodes.find((n) => world.calls.some((c) => c.op === 'init' && c.node === n.name))!;
  const lost = nodes.find((n) => n !== manager)!;
  const lostAddr = `127.0.0.${Number(lost.name.slice(3)) + 1}`;
  const lostSwarmId = [...swarm!.members.values()].find((m) => m.addr === lostAddr)!.nodeId;
  const tokens = { worker: swarm!.workerToken, manager: swarm!.managerToken };
  const op = operator(KEY);
  t.teardown(() => op.close());
  const managerAddr = `127.0.0.${Number(manager.name.slice(3)) + 1}`;
  const notOnWorker = nodes.find((n) => n !== manager && n !== lost)!;
  await t.rejects(op.revoke({ addr: `127.0.0.${Number(notOnWorker.name.slice(3)) + 1}`, port }, lostAddr, NEW_KEY, false, 30_000), { code: 'PISWARM_ERR_NOT_MANAGER' }, 'a worker refuses: revoke needs a manager');
  await t.rejects(op.revoke({ addr: managerAddr, port }, managerAddr, NEW_KEY, false, 30_000), { code: 'PISWARM_ERR_BAD_REQUEST' }, 'a manager does not revoke itself');
  await t.rejects(op.revoke({ addr: managerAddr, port }, 'no-such-node', NEW_KEY, false, 30_000), { code: 'PISWARM_ERR_NOT_FOUND' });
  const r = await op.revoke({ addr: managerAddr, port }, lostAddr, NEW_KEY, false, 30_000);
  t.match(r, { excluded: [lost.name], swarmNode: { id: lostSwarmId, removed: true }, tokensRotated: true, rotation: { outcome: 'rotated' } });
  t.notOk(r.rotation.nodes.some((n) => n.name === lost.name), 'the lost node was never sent the new key');
  t.notOk(swarm!.members.has(lostSwarmId), 'out of the swarm');
  t.ok(swarm!.workerToken !== tokens.worker && swarm!.managerToken !== tokens.manager, 'both join tokens rotated');
  const newId = deriveClusterKeys(NEW_KEY).clusterId;
  for (const n of nodes) t.same(n.keys.clusterIds, [n === lost ? deriveClusterKeys(KEY).clusterId : newId], `${n.name}: ${n === lost ? 'still the old key only' : 'the new key'}`);
  const joinsBefore = world.count('join');
  await new Promise((r) => setTimeout(r, 4000));
  t.equal(swarm!.members.size, 2, 'it never joined again');
  t.equal(world.count('join'), joinsBefore, 'no join was even tried: no grant for the old key');
  t.same(peerIds(lost), [], 'and it is nobody\'s peer');
});

t.test('a rotation that stopped half way is finished with rotate-key --resume FILE, never reversed', async (t) => {
  const { port, nodes } = await threeNodes(t);
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-resume-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'walkthrough-new.cluster.json');
  const next = newClusterFile({ name: 'walkthrough', size: 3, keyBytes: randomBytes(32), now: new Date() });
  writeClusterFile(file, next, false);
  const op = operator(KEY);
  t.teardown(() => op.close());
  // As a rotation cut short: every node staged the new key, only pi-2 promoted it.
  for (const i of [2, 3, 4]) await op.keyringStep({ addr: `127.0.0.${i}`, port }, 'stage', next.key);
  await op.keyringStep({ addr: '127.0.0.3', port }, 'promote', next.key);
  const [oldId, newId] = [deriveClusterKeys(KEY).clusterId, deriveClusterKeys(next.key).clusterId];
  t.same(nodes.map((n) => n.keys.clusterIds), [[oldId, newId], [newId, oldId], [oldId, newId]], 'pi-2 signs with the new key, the others with the old');
  // pi-3 goes down meanwhile; the resume is asked of pi-2, which already signs with the new key.
  await nodes[2]!.close();
  const config = testConfig({ clusterKey: KEY, stateDir: dir });
  const out: string[] = [];
  const code = await rotateKeyCommand(() => ({ config, rest: ['--url', `http://127.0.0.3:${port}`, '--resume', file] })).run({ argv: [], env: {}, cwd: dir, out: (x) => out.push(x), err: (x) => out.push(x), confirm: async () => false });
  t.equal(code, 0, 'exit 0');
  t.ok(out.some((l) => /: rotated$/.test(l)), 'rotated: not aborted although pi-3 did not answer (going back would strand pi-2)');
  t.ok(out.some((l) => /pi-3 missed it/.test(l)), 'pi-3 listed as missed');
  for (const n of nodes.slice(0, 2)) t.same(n.keys.clusterIds, [newId], `${n.name}: the new key only`);
  t.same(readClusterFile(file).key, next.key, 'the file resumed from is kept as it was');
});
