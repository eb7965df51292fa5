/**
 * Issue 16 on real engines: `piswarm upgrade` rolls a signed release over a
 * 5-node simulated cluster, run by the operator on a worker. In order:
 *   - a release signed with another key is refused by every node, counted
 *     there, and nothing is installed;
 *   - with one worker powered off, the current release under a newer
 *     version goes to the four others, workers first and the leader last,
 *     while the walkthrough's http-server keeps answering and the swarm
 *     keeps its three reachable managers (both sampled every second);
 *   - the worker powered on again catches up to the cluster's version by
 *     itself (from a peer, over the peer protocol);
 *   - a truncated release is refused by every node;
 *   - a release whose agent exits at start is rolled back on the first node
 *     (which runs the previous release again and says so on /health,
 *     /metrics, its journal and, through gossip, in every node's
 *     /v1/cluster), and the rollout stops there: no other node tries it;
 *   - `piswarm upgrade --abort` takes the new version back on every node
 *     (the rolled-back one included), and none catches up to it again.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { httpGet, sim, skipReason, startCluster } from '../helpers/cluster.js';
import { FAST_AUTOPILOT, nodeLs, reachableManagers, until } from '../healing/swarm.js';
import { answered, deployDemo, probeReplicas } from '../../../scripts/sim/demo.js';
import { testReleases, type TestRelease } from '../helpers/releases.js';

const skip = await skipReason();

const health = async (apiUrl: string) => {
  const r = await httpGet(`${apiUrl}/health`);
  try {
    return JSON.parse(r.text) as { releaseId: string; status: string; checks: Record<string, Array<{ status: string; output?: string }>> };
  } catch {
    return null;
  }
};
const metric = async (apiUrl: string, re: RegExp): Promise<number> => Number(re.exec((await httpGet(`${apiUrl}/metrics`)).text)?.[1] ?? 0);

t.test('piswarm upgrade: signed releases rolled over 5 Pis, refusals, catch-up and rollback', { skip, timeout: 1_200_000 }, async (t) => {
  const version = (JSON.parse(readFileSync(join(sim.repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  const rel = await testReleases(join(sim.repoRoot(), 'release', `piswarm-${version}.tar.gz`));
  t.teardown(() => rel.cleanup());
  const c = await startCluster(t, { prefix: 'it-upg', nodes: 5, env: { ...FAST_AUTOPILOT, PISWARM_FORMATION_EXPECT: '5', PISWARM_UPGRADE_RELEASE_KEY: rel.publicKey, PISWARM_UPGRADE_CATCH_UP_INTERVAL_MS: '10000' } });
  const names = c.nodes.map((n) => n.name);
  const api = (h: string) => c.nodes.find((n) => n.name === h)!.apiUrl;
  const ls = await until('5 Ready nodes, 3 reachable managers', async () => {
    const l = await nodeLs(c.ref, names);
    return l && l.length === 5 && l.every((x) => x.status === 'Ready') && reachableManagers(l) === 3 && l;
  }, 240_000);
  const leader = ls.find((x) => x.manager === 'Leader')!.hostname;
  const workers = ls.filter((x) => x.manager === '').map((x) => x.hostname).sort();
  const off = workers[0]!;
  // The operator runs it on a worker: the CLI takes the leader and the managers' reachability from a manager's view.
  const operatorNode = workers[1]!;
  const running = async (h: string) => (await health(api(h)))?.releaseId ?? null;

  const upgrade = async (r: TestRelease, ...flags: string[]) => {
    for (const f of [r.tarball, r.sig]) await sim.copyFiles(c.ref, operatorNode, '/root', [{ name: f.slice(f.lastIndexOf('/') + 1), content: readFileSync(f), mode: 0o600, uid: 0, gid: 0 }]);
    const name = r.tarball.slice(r.tarball.lastIndexOf('/') + 1);
    const t0 = Date.now();
    const out = await sim.exec(c.ref, operatorNode, ['piswarm', 'upgrade', `/root/${name}`, '--json', ...flags], { timeoutMs: 900_000 });
    let result: { outcome: string; nodes: Array<{ hostname: string; result: string; seconds: number | null; detail: string }> } | null = null;
    try {
      result = JSON.parse(out.stdout);
    } catch {
      t.fail(`piswarm upgrade printed no JSON: ${out.stdout.slice(0, 300)} ${out.stderr.slice(0, 300)}`);
    }
    return { code: out.code, result, seconds: (Date.now() - t0) / 1000, stderr: out.stderr };
  };

  await t.test('a release signed with another key: refused and counted by every node, nothing installed', async (t) => {
    const forged = await rel.make('9.0.0', { otherKey: true });
    const r = await upgrade(forged);
    t.equal(r.code, 1, 'piswarm upgrade exits 1');
    t.equal(r.result?.outcome, 'refused');
    t.same(r.result?.nodes.map((n) => n.result), names.map(() => 'refused'), 'every node refused it');
    t.match(r.result?.nodes[0]?.detail ?? '', /does not verify with this cluster's release key/);
    for (const h of names) {
      t.equal(await metric(api(h), /^piswarm_release_refusals_total\{reason="bad_signature"\} (\d+)$/m), 1, `${h} counted it`);
      t.equal(await running(h), version, `${h} still runs ${version}`);
    }
  });

  const next = await rel.make('9.1.0');
  await t.test(`${next.version} over the four nodes that are on, the service answering throughout`, async (t) => {
    const demo = await deployDemo({ ...c.ref, replicas: 2, timeoutMs: 180_000 });
    t.equal(demo.replicas, 2, 'the walkthrough\'s http-server runs 2 replicas');
    await sim.stop({ ...c.ref, timeoutMs: 60_000 }, off);
    // The rollout takes the nodes alive in gossip: wait until the operator's node no longer counts the one powered off.
    await until(`${off} not alive in ${operatorNode}'s view`, async () => {
      const doc = JSON.parse((await httpGet(`${api(operatorNode)}/v1/cluster`)).text || '{}') as { nodes?: Array<{ hostname: string; gossip: { state: string } | null }> };
      const n = doc.nodes?.find((x) => x.hostname === off);
      return doc.nodes && (!n || n.gossip?.state !== 'alive');
    }, 60_000);
    // Sampled every second while the rollout runs: the service's answers and the swarm's managers.
    let sampling = true;
    const samples = { probes: 0, unanswered: 0, quorumLost: 0 };
    const sampler = (async () => {
      while (sampling) {
        const [answers, l] = await Promise.all([probeReplicas(c.ref, leader).catch(() => []), nodeLs(c.ref, names.filter((n) => n !== off)).catch(() => null)]);
        samples.probes++;
        if (answers.filter(answered).length < 1) samples.unanswered++;
        if (!l || reachableManagers(l) < 2) samples.quorumLost++;
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    const r = await upgrade(next);
    sampling = false;
    await sampler;
    t.equal(r.code, 0, `piswarm upgrade exits 0 (${r.stderr.slice(0, 200)})`);
    t.equal(r.result?.outcome, 'done');
    const order = (r.result?.nodes ?? []).filter((n) => n.result === 'installed').map((n) => n.hostname);
    t.equal(order.length, 4, 'installed on the four nodes that are on');
    t.equal(order.at(-1), leader, 'the Raft leader last');
    t.same(order.slice(0, 1), workers.filter((w) => w !== off), 'the worker that is on first');
    t.same(r.result?.nodes.find((n) => n.hostname === off)?.result, 'off', `${off} is reported off`);
    t.comment(`rollout of ${next.version}: ${r.seconds.toFixed(1)} s; per node: ${(r.result?.nodes ?? []).map((n) => `${n.hostname} ${n.seconds ?? '-'} s`).join(', ')}`);
    t.comment(`samples during the rollout: ${samples.probes}, without an answering replica: ${samples.unanswered}, with fewer than 2 reachable managers: ${samples.quorumLost}`);
    t.ok(samples.probes >= 5, 'sampled throughout');
    t.equal(samples.unanswered, 0, 'the service answered in every sample');
    t.equal(samples.quorumLost, 0, 'the swarm kept quorum in every sample');
    for (const h of names.filter((n) => n !== off)) t.equal(await running(h), next.version, `${h} runs ${next.version}`);
  });

  await t.test(`${off}, off during the rollout, catches up by itself`, async (t) => {
    await sim.start({ ...c.ref, timeoutMs: 120_000 }, off);
    const t0 = Date.now();
    const v = await until(`${off} runs ${next.version}`, async () => (await running(off)) === next.version && next.version, 240_000).catch(() => null);
    t.equal(v, next.version, `${off} runs ${next.version} ${((Date.now() - t0) / 1000).toFixed(1)} s after its agent answered`);
    const journal = await sim.logs(c.ref, off);
    t.match(journal, /catching up: the cluster runs 9\.1\.0/, 'its journal says it caught up');
    // Before the next rollout: its installer done, and alive again in the operator's gossip view (its agent restarted).
    await until(`${off}'s installer done and all five alive for ${operatorNode}`, async () => {
      const doc = JSON.parse((await httpGet(`${api(operatorNode)}/v1/cluster`)).text || '{}') as { nodes?: Array<{ gossip: { state: string } | null }> };
      const st = /^piswarm_upgrade_state\{state="([a-z-]+)"/m.exec((await httpGet(`${api(off)}/metrics`)).text)?.[1];
      return st === 'installed' && doc.nodes?.length === 5 && doc.nodes.every((n) => n.gossip?.state === 'alive');
    }, 120_000);
  });

  await t.test('a truncated release: refused by every node', async (t) => {
    const cut = await rel.make('9.2.0', { truncate: true });
    const r = await upgrade(cut);
    t.equal(r.code, 1);
    t.equal(r.result?.outcome, 'refused');
    t.same(r.result?.nodes.map((n) => n.result), names.map(() => 'refused'), 'each node refused it');
    for (const h of names) t.equal(await metric(api(h), /^piswarm_release_refusals_total\{reason="truncated"\} (\d+)$/m), 1, `${h} counted it as truncated`);
  });

  await t.test('a release whose agent exits at start: rolled back on the first node, the rollout stops', async (t) => {
    const broken = await rel.make('9.3.0', { agentExits: true });
    const r = await upgrade(broken);
    t.equal(r.code, 1, 'piswarm upgrade exits 1');
    t.equal(r.result?.outcome, 'stopped');
    const first = r.result?.nodes.find((n) => n.result === 'rolled-back');
    t.ok(first, 'one node rolled back');
    t.equal(r.result?.nodes.filter((n) => n.result !== 'pending' && n.result !== 'rolled-back').length, 0, 'no other node was asked to install it');
    t.ok(workers.includes(first?.hostname ?? ''), `the first node tried is a worker (${first?.hostname})`);
    const h = first!.hostname;
    const doc = await until(`${h} answers again`, () => health(api(h)), 60_000);
    t.equal(doc.releaseId, next.version, `${h} runs ${next.version} again`);
    t.match(doc.checks['agent:upgrade']?.[0]?.output ?? '', /the upgrade to 9\.3\.0 was rolled-back/, '/health says so');
    t.equal(await metric(api(h), /^piswarm_upgrade_state\{state="rolled-back",version="9\.3\.0",from="9\.1\.0"\} (\d+)$/m), 1, '/metrics says so');
    t.match(await sim.logs(c.ref, h), /the upgrade to 9\.3\.0 was rolled-back/, 'its agent\'s journal says so');
    const other = names.find((x) => x !== h)!;
    const seen = await until(`${other}'s /v1/cluster shows ${h}'s agent:upgrade warning`, async () => {
      const doc = JSON.parse((await httpGet(`${api(other)}/v1/cluster`)).text || '{}') as { nodes?: Array<{ hostname: string; health: { status: string | null; checks: string[] }; facts: { version: string | null } }> };
      const n = doc.nodes?.find((x) => x.hostname === h);
      return n?.health.checks.includes('agent:upgrade') && n;
    }, 90_000).catch(() => null);
    t.ok(seen, `the whole cluster's view (/v1/cluster on ${other}) names the warning on ${h} (health ${seen?.health.status}, version ${seen?.facts.version})`);
    for (const o of names.filter((n) => n !== h)) t.equal(await running(o), next.version, `${o} still runs ${next.version}`);
  });

  await t.test(`--abort: ${next.version} taken back everywhere, and nobody catches up to it again`, async (t) => {
    const r = await upgrade(next, '--abort');
    t.equal(r.code, 0, `piswarm upgrade --abort exits 0 (${r.stderr.slice(0, 200)})`);
    t.equal(r.result?.outcome, 'done');
    t.same(r.result?.nodes.map((n) => n.result), names.map(() => 'reverted'), 'every node reverted');
    t.comment(`abort: ${r.seconds.toFixed(1)} s for ${names.length} nodes`);
    for (const h of names) t.equal(await running(h), version, `${h} runs ${version} again`);
    await new Promise((res) => setTimeout(res, 25_000));
    for (const h of names) t.equal(await running(h), version, `${h} still runs ${version} 25 s later (two catch-up rounds)`);
  });
});
