/**
 * The autopilot on simulated Pis (real dockerd per node, real Raft): a
 * leader's power cut is healed back to three reachable managers and the dead
 * node pruned after its TTL; a worker's power cycle leaves it the same node;
 * growing one node at a time gives 1, 3, 5 managers without losing quorum.
 * Node journals are printed on any failure (startCluster's teardown).
 */
import t from 'tap';
import { dumpJournals, httpGet, sim, skipReason, startCluster } from '../helpers/cluster.js';
import { pinsJoinAddress } from '../../../agent/docker/engine-recovery.js';
import { FAST_AUTOPILOT, managers, nodeLs, quorumOf, reachableManagers, until, type SwarmRow } from './swarm.js';

const skip = await skipReason();

/** Fails (not skips) when the wiring exists but the running agents do not export autopilot metrics. */
async function assertAutopilotRuns(t: { match(found: unknown, want: RegExp, msg: string): unknown }, apiUrl: string): Promise<void> {
  const m = await httpGet(`${apiUrl}/metrics`);
  t.match(m.text, /piswarm_autopilot_leader/, 'the agent exports autopilot metrics');
}

t.test('5 nodes: leader power cut is healed, the dead node pruned; a worker power cycle keeps its node', { skip, timeout: 900_000 }, async (t) => {
  const c = await startCluster(t, { prefix: 'it-heal5', nodes: 5, env: { ...FAST_AUTOPILOT, PISWARM_FORMATION_EXPECT: '5' } });
  const names = () => c.nodes.map((n) => n.name);
  await assertAutopilotRuns(t, c.nodes[0]!.apiUrl);
  const ls = await until('5 Ready nodes and 3 reachable managers', async () => {
    const l = await nodeLs(c.ref, names());
    return l && l.length === 5 && l.every((x) => x.status === 'Ready') && reachableManagers(l) === 3 && l;
  }, 240_000);
  t.equal(managers(ls).length, 3, 'autopilot grew the swarm to 3 managers');

  await t.test('a worker power cut and back: the same node returns', async (t) => {
    const l = (await nodeLs(c.ref, names()))!;
    const worker = l.find((x) => x.manager === '' && x.status === 'Ready')!;
    await sim.kill(c.ref, worker.hostname);
    await until(`${worker.hostname} Down`, async () => (await nodeLs(c.ref, names()))?.find((x) => x.id === worker.id)?.status === 'Down', 90_000);
    await sim.start(c.ref, worker.hostname);
    const back = await until(`${worker.hostname} Ready again`, async () => {
      const x = await nodeLs(c.ref, names());
      return x?.find((r) => r.hostname === worker.hostname && r.status === 'Ready') && x;
    }, 120_000);
    const rows = back.filter((r: SwarmRow) => r.hostname === worker.hostname);
    t.equal(rows.length, 1, 'no second entry for the hostname');
    t.equal(rows[0]!.id, worker.id, 'the same swarm node id');
  });

  // Docker 20.10 (bookworm) pins: a worker's engine, promoted, dials only the
  // address it joined through (moby PR #47854; join-address.test shows it);
  // 26.1.5 (trixie) dials it once more before its own swarm restart forgets
  // it. Every worker here joined through its agent's join relay
  // (agent/formation/join-relay.ts), which forwards to a live manager, so
  // after the first manager's power cut no worker has to leave and join
  // again on either engine, and the promoted one reaches Raft through it.
  const engine = (await sim.exec(c.ref, names()[0]!, ['docker', 'info', '--format', '{{.ServerVersion}}'])).stdout.trim();
  const pinning = pinsJoinAddress(engine);
  let firstManager = '';
  const joinedVia: string[] = [];
  for (const n of names()) {
    const j = await sim.logs(c.ref, n);
    if (/"msg":"created the swarm"/.test(j)) firstManager = n;
    for (const m of j.matchAll(/"joinAddr":"([^"]+)","msg":"joined the swarm"/g)) joinedVia.push(`${n} ${m[1]}`);
  }
  t.comment(`engine ${engine}: ${pinning ? 'pins the join address' : 'has the fix'}; joins: ${joinedVia.join(', ')}`);
  t.ok(joinedVia.length >= 4 && joinedVia.every((x) => x.endsWith(' 127.0.0.1:2378')), 'every node that joined did so through its join relay');

  await t.test('leader power cut: a leader kept, 3 reachable managers restored, the dead node pruned', async (t) => {
    const leader = ls.find((x) => x.manager === 'Leader')!;
    t.ok(leader, 'a leader');
    const t0 = Date.now();
    await sim.kill(c.ref, leader.hostname);
    const alive = () => names().filter((n) => n !== leader.hostname);

    const newLeader = await until('a new leader', async () => {
      const l = await nodeLs(c.ref, alive());
      return l?.find((x) => x.manager === 'Leader' && x.hostname !== leader.hostname);
    }, 90_000);
    t.not(newLeader.hostname, leader.hostname, `the swarm kept a leader (${newLeader.hostname})`);

    const healed = await until('3 reachable managers without the dead one', async () => {
      const l = await nodeLs(c.ref, alive());
      return l && reachableManagers(l) === 3 && !managers(l).some((x) => x.id === leader.id) && l;
    }, 300_000); // grace + settle (+ re-joins and their stabilisation before Docker 27)
    t.comment(`leader power cut -> 3 reachable managers again: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    t.equal(managers(healed).length, 3, 'three managers, all reachable');
    const journal = await sim.logs(c.ref, newLeader.hostname);
    t.match(journal, /"reason":"(replace-dead-manager|grow)".*"msg":"autopilot promoted a node"/, 'the new leader\'s agent promoted a replacement');
    t.match(journal, /"reason":"dead-manager".*"msg":"autopilot demoted a node"/, 'and demoted the dead manager');
    let rejoins = 0;
    let relayed = 0;
    for (const n of alive()) {
      const j = await sim.logs(c.ref, n);
      rejoins += (j.match(/"msg":"leaving the swarm to join it again through a live manager"/g) ?? []).length;
      relayed += (j.match(/"msg":"the engine connected through the join relay"/g) ?? []).length;
    }
    t.equal(rejoins, 0, `no worker left the swarm to join it again (the dead leader ${leader.hostname === firstManager ? 'was' : 'was not'} the manager they joined through)`);
    t.ok(relayed >= 4, `the engines went through their relays (joins, then the promoted worker's Raft join): ${relayed} connections`);

    await t.test('the dead node is pruned after its TTL', async (t) => {
      const pruned = await until('the dead node gone from docker node ls', async () => {
        const l = await nodeLs(c.ref, alive());
        return l && !l.some((x) => x.id === leader.id) && l;
      }, 180_000);
      const settled = await until('4 Ready nodes, one entry each, 3 reachable managers', async () => {
        const l = await nodeLs(c.ref, alive());
        return l && l.length === 4 && new Set(l.map((x) => x.hostname)).size === 4 && l.every((x) => x.status === 'Ready') && reachableManagers(l) === 3 && l;
      }, 180_000);
      t.equal(settled.length, 4, 'the four live nodes, no ghost of a re-joined worker');
      t.ok(pruned.length >= 4);
      t.match(await sim.logs(c.ref, newLeader.hostname), /"reason":"(dead-node-ttl|reimaged)"/);
    });

    await t.test('a re-imaged worker (same hostname, new engine and agent identity) replaces its stale entry', async (t) => {
      const before = (await nodeLs(c.ref, alive()))!;
      const worker = before.find((x) => x.manager === '' && x.status === 'Ready')!;
      t.ok(worker, 'a worker to re-image');
      // What a freshly flashed card is to the swarm: the same hostname, no
      // swarm state in the engine, no identity or formation state in the agent.
      const wipe = await sim.exec(c.ref, worker.hostname, ['sh', '-c', 'systemctl stop piswarm docker.socket docker && rm -rf /var/lib/docker/swarm /var/lib/piswarm && systemctl start docker piswarm'], { timeoutMs: 120_000 });
      t.equal(wipe.code, 0, `wiped ${worker.hostname}: ${wipe.stderr.trim()}`);
      const after = await until(`${worker.hostname} back under a new id, its stale entry removed`, async () => {
        const l = await nodeLs(c.ref, alive());
        const rows = l?.filter((x) => x.hostname === worker.hostname) ?? [];
        return l && rows.length === 1 && rows[0]!.id !== worker.id && rows[0]!.status === 'Ready' && l;
      }, 240_000);
      t.equal(after.length, 4, 'four nodes, one entry each');
      let removed = '';
      for (const n of alive()) removed += (await sim.logs(c.ref, n)).match(new RegExp(`"reason":"reimaged".*"nodeId":"${worker.id}"|"node":"${worker.id}".*"reason":"reimaged"`))?.[0] ?? '';
      t.ok(removed !== '', 'the leader removed the stale entry with reason reimaged');
    });

  });
});

t.test('grow 1 -> 7 one node at a time: 1, 3, 5 managers, quorum never lost', { skip, timeout: 1_800_000 }, async (t) => {
  const env = { ...FAST_AUTOPILOT, PISWARM_FORMATION_EXPECT: '1' };
  const c = await startCluster(t, { prefix: 'it-grow7', nodes: 1, env });
  await assertAutopilotRuns(t, c.nodes[0]!.apiUrl);
  const names = () => c.nodes.map((n) => n.name);
  const violations: string[] = [];
  const seen: number[] = [];
  // Watch continuously: every listing must show a reachable majority.
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const l = await nodeLs(c.ref, names()).catch(() => null);
      if (l && l.length > 0) {
        const m = managers(l).length;
        const r = reachableManagers(l);
        if (r < quorumOf(m)) violations.push(`${r} of ${m} reachable with ${l.length} nodes`);
        if (seen.at(-1) !== m) seen.push(m);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  t.teardown(async () => { watching = false; await watcher; });

  const want = [1, 1, 3, 3, 3, 3, 5];
  const settled: number[] = [];
  for (let n = 1; n <= 7; n++) {
    if (n > 1) c.nodes.push(await sim.add({ ...c.ref, env, skipImages: true }));
    const l = await until(`${n} Ready nodes with ${want[n - 1]} reachable managers`, async () => {
      const x = await nodeLs(c.ref, names());
      return x && x.length === n && x.every((r) => r.status === 'Ready') && reachableManagers(x) === want[n - 1] && managers(x).length === want[n - 1] && x;
    }, 240_000).catch(async (err) => {
      await dumpJournals(t, c.ref);
      throw err;
    });
    settled.push(managers(l).length);
  }
  watching = false;
  await watcher;
  t.same(settled, want, 'settled manager count per node count');
  t.same(violations, [], 'quorum never lost');
  t.comment(`manager counts seen: ${seen.join(' -> ')}`);
});
