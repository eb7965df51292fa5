/**
 * Self-healing across partitions and a whole-cluster power cut, on simulated
 * Pis (real dockerd per node, real Raft, real gossip over the bridge):
 * - two of five nodes lose their cable (one manager among them), the autopilot
 *   on the majority side replaces the cut manager and, past the TTL, prunes
 *   both; then the cables are plugged back: both come back by themselves, one
 *   swarm, every node Ready, three reachable managers, no ghost;
 * - every node loses power at once and comes back: the same swarm (same
 *   cluster id, same node ids) returns by itself, and no node ever created a
 *   second swarm.
 * Node journals are printed on any failure (startCluster's teardown).
 */
import t from 'tap';
import { sim, skipReason, startCluster } from '../helpers/cluster.js';
import { FAST_AUTOPILOT, managers, nodeLs, reachableManagers, until, type SwarmRow } from './swarm.js';

const skip = await skipReason();

const allReady = (l: SwarmRow[] | null, n: number) => l !== null && l.length === n && l.every((x) => x.status === 'Ready');

/**
 * The swarm (cluster) id of the nodes, as the managers' engines report it, and
 * whether every node's engine is a member of it (workers know no cluster id:
 * their own node id must be in a manager's node list).
 */
async function oneSwarm(ref: sim.ClusterRef, names: readonly string[]): Promise<{ ids: string[]; allIn: boolean }> {
  const infos = await Promise.all(names.map(async (n) => {
    const r = await sim.exec(ref, n, ['docker', 'info', '--format', '{{.Swarm.NodeID}} {{.Swarm.ControlAvailable}}'], { timeoutMs: 10_000 }).catch(() => null);
    const [nodeId, manager] = (r?.code === 0 ? r.stdout.trim() : '').split(' ');
    let cluster = '';
    if (manager === 'true') {
      const c = await sim.exec(ref, n, ['docker', 'info', '--format', '{{.Swarm.Cluster.ID}}'], { timeoutMs: 10_000 }).catch(() => null);
      cluster = c?.code === 0 ? c.stdout.trim() : '';
    }
    return { nodeId: nodeId ?? '', cluster };
  }));
  const ls = (await nodeLs(ref, names)) ?? [];
  const listed = new Set(ls.map((x) => x.id));
  return { ids: [...new Set(infos.map((i) => i.cluster).filter(Boolean))], allIn: infos.every((i) => i.nodeId !== '' && listed.has(i.nodeId)) };
}

t.test('cable cut of two nodes of five, then reconnected: one swarm, all Ready, managers restored', { skip, timeout: 900_000 }, async (t) => {
  const c = await startCluster(t, { prefix: 'it-part5', nodes: 5, env: { ...FAST_AUTOPILOT, PISWARM_FORMATION_EXPECT: '5' } });
  const names = () => c.nodes.map((n) => n.name);
  const ls = await until('5 Ready nodes and 3 reachable managers', async () => {
    const l = await nodeLs(c.ref, names());
    return allReady(l, 5) && reachableManagers(l!) === 3 && l;
  }, 240_000);
  const first = await oneSwarm(c.ref, names());
  t.equal(first.ids.length, 1, 'the managers report one swarm');
  t.ok(first.allIn, 'every node is in it');

  // The minority: one manager that is not the leader, and one worker.
  const cutManager = ls.find((x) => x.manager === 'Reachable')!;
  const cutWorker = ls.find((x) => x.manager === '')!;
  t.ok(cutManager && cutWorker, 'a follower manager and a worker to cut off');
  const cut = [cutManager.hostname, cutWorker.hostname];
  const majority = () => names().filter((n) => !cut.includes(n));
  for (const n of cut) await sim.disconnect(c.ref, n);

  // The majority keeps quorum (2 of 3): first it sees the cut manager unreachable...
  await until(`${cutManager.hostname} unreachable from the majority`, async () => {
    const l = await nodeLs(c.ref, majority());
    return l?.find((x) => x.id === cutManager.id)?.manager === 'Unreachable';
  }, 90_000);
  // ...then, past the grace period, it replaces it with a majority-side node.
  const during = await until('3 reachable managers on the majority side', async () => {
    const l = await nodeLs(c.ref, majority());
    const onMajority = l?.filter((x) => majority().includes(x.hostname) && (x.manager === 'Leader' || x.manager === 'Reachable')) ?? [];
    return onMajority.length === 3 && l;
  }, 240_000);
  t.equal(managers(during).filter((x) => majority().includes(x.hostname) && x.manager !== 'Unreachable').length, 3, 'the majority restored three reachable managers while the cable was out');

  // Keep the cable out until the majority has pruned the cut nodes (down past
  // the TTL, 60 s here): on a slow machine that happens anyway, and then the
  // cut nodes' engines come back to a swarm that no longer lists them.
  await until('the cut nodes removed by the majority', async () => {
    const l = await nodeLs(c.ref, majority());
    return l && !l.some((x) => x.id === cutManager.id || x.id === cutWorker.id) && l;
  }, 240_000);
  t.pass('the majority pruned both cut nodes while the cable was out');

  for (const n of cut) await sim.connect(c.ref, n);
  const healed = await until('one swarm of 5 Ready nodes with 3 reachable managers', async () => {
    const l = await nodeLs(c.ref, names());
    return allReady(l, 5) && reachableManagers(l!) === 3 && managers(l!).length === 3 && l;
  }, 240_000);
  t.equal(new Set(healed.map((x) => x.hostname)).size, 5, 'no ghost: one entry per node');
  t.ok(cut.every((h) => healed.some((x) => x.hostname === h && x.status === 'Ready')), 'both pruned nodes are back, Ready');
  for (const h of cut) {
    t.match(await sim.logs(c.ref, h), /"msg":"a manager of this swarm no longer lists this node/, `${h} learnt from a manager that it was pruned, and joined again`);
  }
  t.equal(managers(healed).length, 3, 'three managers, all reachable');
  const last = await oneSwarm(c.ref, names());
  t.same(last.ids, first.ids, 'the managers report the original swarm');
  t.ok(last.allIn, 'every engine is in it');
});

t.test('every node power-cut, then all powered on: the same swarm comes back by itself', { skip, timeout: 900_000 }, async (t) => {
  const c = await startCluster(t, { prefix: 'it-cold3', nodes: 3, env: { ...FAST_AUTOPILOT, PISWARM_FORMATION_EXPECT: '3' } });
  const names = () => c.nodes.map((n) => n.name);
  const before = await until('3 Ready nodes and 3 reachable managers', async () => {
    const l = await nodeLs(c.ref, names());
    return allReady(l, 3) && reachableManagers(l!) === 3 && l;
  }, 240_000);
  const first = await oneSwarm(c.ref, names());
  t.equal(first.ids.length, 1, 'the managers report one swarm');

  for (const n of names()) await sim.kill(c.ref, n);
  for (const n of names()) await sim.start(c.ref, n);

  const after = await until('the same 3 nodes Ready with 3 reachable managers', async () => {
    const l = await nodeLs(c.ref, names());
    return allReady(l, 3) && reachableManagers(l!) === 3 && l;
  }, 300_000);
  t.same(after.map((x) => x.id).sort(), before.map((x) => x.id).sort(), 'the same swarm node ids, no duplicates');
  const last = await oneSwarm(c.ref, names());
  t.same(last.ids, first.ids, 'the managers report the original swarm');
  t.ok(last.allIn, 'every engine is in it');
  // Journals persist across power cuts (as on Raspberry Pi OS), so this counts the cluster's whole life.
  let inits = 0;
  for (const n of names()) inits += ((await sim.logs(c.ref, n)).match(/"msg":"created the swarm"/g) ?? []).length;
  t.equal(inits, 1, 'one swarm created in the whole life of the cluster, the power cut included');
});
