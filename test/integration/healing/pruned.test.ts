/**
 * Issue 10, item 1, on real engines: nodes kept off past the dead-node TTL
 * are removed by the autopilot (a manager demoted first); when they come
 * back their engines cannot notice (a removed manager's stays `pending`,
 * dockerd logging "The swarm does not have a leader" and "node ... was
 * removed from swarm"). Before the fix they stayed out for good. Two rounds
 * on one 5-node cluster, each taking out one manager (never the leader, never
 * a majority) and one worker at once: a clean stop and a power cut of each
 * kind of node.
 */
import t from 'tap';
import { httpGet, sim, skipReason, startCluster } from '../helpers/cluster.js';
import { FAST_AUTOPILOT, managers, nodeLs, reachableManagers, until, type SwarmRow } from './swarm.js';

const skip = await skipReason();
const TTL_MS = 30_000;
/** What the test allows a node from power-on to Ready in its swarm again (boot, agent, hello, 15 s settle, leave, join). */
const BACK_WITHIN_MS = 120_000;

const rejoinsPruned = async (apiUrl: string): Promise<number> => {
  const m = await httpGet(`${apiUrl}/metrics`);
  return Number(/^piswarm_formation_rejoins_total\{reason="pruned"\} (\d+)$/m.exec(m.text)?.[1] ?? NaN);
};

t.test('nodes removed while they were off come back by themselves: a manager and a worker, each stopped cleanly and each power-cut', { skip, timeout: 1_200_000 }, async (t) => {
  const env = {
    ...FAST_AUTOPILOT,
    PISWARM_FORMATION_EXPECT: '5',
    PISWARM_AUTOPILOT_DEAD_MANAGER_GRACE_MS: '10000',
    PISWARM_AUTOPILOT_DEAD_NODE_TTL_MS: String(TTL_MS),
  };
  const c = await startCluster(t, { prefix: 'it-pruned', nodes: 5, env });
  const names = () => c.nodes.map((n) => n.name);
  const apiOf = (host: string) => c.nodes.find((n) => n.name === host)!.apiUrl;
  const whole = async (exclude: readonly string[] = []) => {
    const l = await nodeLs(c.ref, names().filter((n) => !exclude.includes(n)));
    return l && l.length === 5 && new Set(l.map((x) => x.hostname)).size === 5 && l.every((x) => x.status === 'Ready') && reachableManagers(l) === 3 && managers(l).length === 3 && l;
  };
  let ls: SwarmRow[] = await until('5 Ready nodes and 3 reachable managers', () => whole(), 240_000);

  const rounds: Array<{ manager: 'stop' | 'kill'; worker: 'stop' | 'kill' }> = [
    { manager: 'stop', worker: 'kill' },
    { manager: 'kill', worker: 'stop' },
  ];
  for (const round of rounds) {
    await t.test(`manager ${round.manager === 'stop' ? 'stopped cleanly' : 'power-cut'}, worker ${round.worker === 'stop' ? 'stopped cleanly' : 'power-cut'}, both off past the TTL`, async (t) => {
      const manager = ls.find((x) => x.manager === 'Reachable')!;
      const worker = ls.find((x) => x.manager === '' && x.status === 'Ready')!;
      t.ok(manager && worker, `taking out ${manager?.hostname} (manager) and ${worker?.hostname} (worker)`);
      const before = { [manager.hostname]: await rejoinsPruned(apiOf(manager.hostname)), [worker.hostname]: await rejoinsPruned(apiOf(worker.hostname)) };
      const off = [manager.hostname, worker.hostname];
      for (const [host, how] of [[manager.hostname, round.manager], [worker.hostname, round.worker]] as const) {
        if (how === 'stop') await sim.stop(c.ref, host);
        else await sim.kill(c.ref, host);
      }
      const t0 = Date.now();
      await until('both removed from the swarm by the autopilot', async () => {
        const l = await nodeLs(c.ref, names().filter((n) => !off.includes(n)));
        return l && !l.some((x) => x.id === manager.id || x.id === worker.id) && l;
      }, TTL_MS + 120_000);
      t.comment(`both removed ${((Date.now() - t0) / 1000).toFixed(0)} s after they went off (TTL ${TTL_MS / 1000} s)`);

      const t1 = Date.now();
      await Promise.all(off.map((h) => sim.start({ ...c.ref, timeoutMs: 120_000 }, h)));
      ls = await until('5 Ready nodes, one entry each, 3 reachable managers', () => whole(), BACK_WITHIN_MS);
      const backS = (Date.now() - t1) / 1000;
      t.comment(`power-on -> whole again: ${backS.toFixed(1)} s`);
      t.ok(backS * 1000 <= BACK_WITHIN_MS, `back within ${BACK_WITHIN_MS / 1000} s of power-on (${backS.toFixed(1)} s)`);
      t.notOk(ls.some((x) => x.id === manager.id || x.id === worker.id), 'the old entries are gone: both joined under new node ids');
      for (const host of off) {
        const journal = await sim.logs(c.ref, host);
        t.match(journal, /"msg":"a manager of this swarm no longer lists this node \(removed while away\?\)"/, `${host}: the journal says what it saw`);
        t.match(journal, /"msg":"leaving the swarm to join it again through a live manager"/, `${host}: and that it left to join again`);
        t.equal(await rejoinsPruned(apiOf(host)), 1, `${host}: piswarm_formation_rejoins_total{reason="pruned"} counts it (was ${before[host]} before the agent restarted)`);
      }
    });
  }
});
