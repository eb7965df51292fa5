/**
 * Zero-touch formation on simulated Pis (containers booting systemd, their
 * own dockerd and the agent from our unit), through the sim harness.
 */
import t from 'tap';
import { httpGet, sim, skipReason, startCluster } from '../helpers/cluster.js';

const skip = await skipReason();
const FAST = { PISWARM_FORMATION_HOLD_OFF_MS: '2000', PISWARM_DISCOVERY_CONFIRM_INTERVAL_MS: '1000' };

interface NodeLs { hostname: string; status: string; manager: string }

/** `docker node ls` on the first node that answers as a manager. */
async function nodeLs(ref: sim.ClusterRef, names: string[]): Promise<NodeLs[] | null> {
  for (const name of names) {
    const r = await sim.exec(ref, name, ['docker', 'node', 'ls', '--format', '{{.Hostname}}|{{.Status}}|{{.ManagerStatus}}'], { timeoutMs: 10_000 });
    if (r.code === 0) return r.stdout.trim().split('\n').filter(Boolean).map((l) => { const [hostname, status, manager] = l.split('|'); return { hostname: hostname!, status: status!, manager: manager ?? '' }; });
  }
  return null;
}

/** Swarm cluster ids as each node's engine reports them (workers: via their node's swarm state). */
async function swarmStates(ref: sim.ClusterRef, names: string[]): Promise<Array<{ name: string; state: string; cluster: string }>> {
  return Promise.all(names.map(async (name) => {
    const r = await sim.exec(ref, name, ['docker', 'info', '--format', '{{.Swarm.LocalNodeState}}|{{if .Swarm.Cluster}}{{.Swarm.Cluster.ID}}{{end}}'], { timeoutMs: 10_000 });
    const [state, cluster] = r.stdout.trim().split('|');
    return { name, state: state ?? '', cluster: cluster ?? '' };
  }));
}

async function until<T>(what: string, fn: () => Promise<T | null | false | undefined>, ms: number): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const allReady = (ls: NodeLs[] | null, n: number) => ls !== null && ls.length === n && ls.every((x) => x.status === 'Ready');

t.test('3 nodes powered on together form one swarm; late node joins; stranger refused; restart and reboot change nothing', { skip, timeout: 900_000 }, async (t) => {
  const c = await startCluster(t, { prefix: 'it-form3', nodes: 3, env: { ...FAST, PISWARM_FORMATION_EXPECT: '3' } });
  const names = () => c.nodes.map((n) => n.name);
  const ls = await until('3 nodes Ready', async () => { const l = await nodeLs(c.ref, names()); return allReady(l, 3) && l; }, 90_000);
  t.equal(ls.length, 3, 'docker node ls: 3 nodes, all Ready');
  t.equal(ls.filter((x) => x.manager === 'Leader').length, 1, 'one leader');
  const states = await swarmStates(c.ref, names());
  t.ok(states.every((s) => s.state === 'active'), 'every engine is in a swarm');
  for (const n of c.nodes) {
    // The controller notices its own engine's new state on its next tick, a moment after `docker node ls` does.
    const formation = async () => JSON.parse((await httpGet(`${n.apiUrl}/v1/formation`)).text) as { phase: string; confirmedPeers: unknown[] };
    const f = await until(`${n.name} in phase member or manager`, async () => { const x = await formation(); return ['member', 'manager'].includes(x.phase) && x; }, 15_000).catch(formation);
    t.ok(['member', 'manager'].includes(f.phase), `${n.name} phase ${f.phase}`);
    t.equal(f.confirmedPeers.length, 2, `${n.name} confirmed both others`);
  }

  await t.test('a node powered on after formation joins by itself', async (t) => {
    const late = await sim.add({ ...c.ref, env: { ...FAST, PISWARM_FORMATION_EXPECT: '3' } });
    c.nodes.push(late);
    const l = await until('4 nodes Ready', async () => { const x = await nodeLs(c.ref, names()); return allReady(x, 4) && x; }, 90_000);
    t.equal(l.length, 4);
  });

  await t.test('a node with another cluster key never joins, is never a peer, and warns', async (t) => {
    const stranger = await sim.add({ ...c.ref, clusterKey: 'a-completely-different-cluster-key-0123456789', env: { ...FAST, PISWARM_FORMATION_EXPECT: '1' } });
    await new Promise((r) => setTimeout(r, 15_000));
    const l = await nodeLs(c.ref, names());
    t.equal(l?.length, 4, 'still 4 nodes in our swarm');
    t.notOk(l?.some((x) => x.hostname === stranger.name), 'the stranger is not in it');
    for (const n of c.nodes) {
      const peers = JSON.parse((await httpGet(`${n.apiUrl}/v1/peers`)).text).peers as Array<{ addr: string }>;
      t.notOk(peers.some((p) => p.addr === stranger.ip), `${n.name} does not list it`);
    }
    const health = JSON.parse((await httpGet(`${stranger.apiUrl}/health`)).text);
    t.equal(health.checks['discovery:peers']?.[0]?.status, 'warn', 'its /health warns about another cluster');
    t.match(health.checks['discovery:peers']?.[0]?.output ?? '', /another piswarm cluster/);
    const own = await swarmStates(c.ref, [stranger.name]);
    t.not(own[0]!.cluster, (await swarmStates(c.ref, [names()[0]!]))[0]!.cluster || 'x', 'never in our swarm');
  });

  await t.test('agent restart and node reboot: no second swarm, no duplicate node', async (t) => {
    const before = await nodeLs(c.ref, names());
    const worker = c.nodes[2]!.name;
    await sim.exec(c.ref, worker, ['systemctl', 'restart', 'piswarm']);
    await until('agent back', async () => (await httpGet(`${c.nodes[2]!.apiUrl}/health`)).status > 0, 60_000);
    await sim.restart(c.ref, c.nodes[1]!.name);
    await new Promise((r) => setTimeout(r, 10_000));
    const after = await until('4 Ready again', async () => { const x = await nodeLs(c.ref, names()); return allReady(x, 4) && x; }, 120_000);
    t.same(after.map((x) => x.hostname).sort(), before!.map((x) => x.hostname).sort(), 'same nodes, no duplicate entries');
    const ids = new Set((await swarmStates(c.ref, names())).filter((s) => s.cluster).map((s) => s.cluster));
    t.equal(ids.size, 1, 'managers report one swarm id');
  });

  await t.test('no journal line of any node contains SWMTKN or the cluster key', async (t) => {
    const key = await sim.clusterKey(c.ref);
    let inits = 0;
    for (const n of c.nodes) {
      const j = await sim.logs(c.ref, n.name);
      inits += (j.match(/"msg":"created the swarm"/g) ?? []).length;
      t.notOk(j.includes('SWMTKN'), `${n.name}: no join token`);
      t.notOk(j.includes(key), `${n.name}: no cluster key`);
      t.match(j, /formation phase changed/, `${n.name}: transitions are logged`);
    }
    t.equal(inits, 1, 'one swarm created in the whole life of the cluster, restarts and reboots included');
  });
});

t.test('5 nodes powered on together, five fresh times: exactly one swarm every time', { skip, timeout: 1_800_000 }, async (t) => {
  for (let round = 1; round <= 5; round++) {
    await t.test(`round ${round}`, async (t) => {
      const c = await startCluster(t, { prefix: `it-form5r${round}`, nodes: 5, env: { ...FAST, PISWARM_FORMATION_EXPECT: '5' } });
      const names = c.nodes.map((n) => n.name);
      const ls = await until('5 nodes Ready', async () => { const l = await nodeLs(c.ref, names); return allReady(l, 5) && l; }, 120_000);
      t.equal(ls.length, 5);
      const states = await swarmStates(c.ref, names);
      t.ok(states.every((s) => s.state === 'active'), 'all five in a swarm');
      const ids = new Set(states.filter((s) => s.cluster).map((s) => s.cluster));
      t.equal(ids.size, 1, `exactly one swarm id among managers (${[...ids].join(', ')})`);
      let inits = 0;
      for (const n of names) inits += ((await sim.logs(c.ref, n)).match(/"msg":"created the swarm"/g) ?? []).length;
      t.equal(inits, 1, 'exactly one node created a swarm');
    });
  }
});
