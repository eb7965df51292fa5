/**
 * Grafana's "Node Exporter Full" against a real Prometheus (Debian's package)
 * that scrapes the agent and Debian's node_exporter on this host: every query
 * of the dashboard, its variables filled in as Grafana would ($job, $nodename
 * and $node from node_uname_info, $__rate_interval = 4 x the scrape interval),
 * evaluated for each job. The agent must answer every query node_exporter
 * answers, except the ones listed in NOT_SERVED with their reason. About 25 s.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { freePort, missingTool, NODE_EXPORTER, PROMETHEUS, startAgent, startNodeExporter, waitHttp } from './servers.js';

const DASHBOARD = fileURLToPath(new URL('../../../../test/fixtures/dashboards/node-exporter-full.json', import.meta.url));
const SCRAPE_S = 1;
const RATE_INTERVAL = `${4 * SCRAPE_S}s`;

/**
 * What node_exporter serves here that the agent cannot, and why. The timex
 * series come through the host's perl (Essential on Debian and Ubuntu), else
 * its python3 (agent/host/node/timex.ts), so in CI nothing is excused.
 */
const NOT_SERVED: ReadonlyArray<[RegExp, string]> = fs.existsSync('/usr/bin/perl') || fs.existsSync('/usr/bin/python3') ? [] : [
  [/node_timex_/, 'neither /usr/bin/perl nor /usr/bin/python3 on this host: the agent reads adjtimex(2) through one of them'],
];

interface Panel { targets?: Array<{ expr?: string }>; panels?: Panel[] }

export function dashboardQueries(file: string): string[] {
  const d = JSON.parse(fs.readFileSync(file, 'utf8')) as { panels: Panel[] };
  const out = new Set<string>();
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      for (const tg of p.targets ?? []) if (tg.expr) out.add(tg.expr);
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  return [...out];
}

interface PromAnswer { status: string; data: { resultType: string; result: unknown } }

t.test('every Node Exporter Full query node_exporter answers, the agent answers', { skip: missingTool(NODE_EXPORTER, PROMETHEUS) }, async (t) => {
  const queries = dashboardQueries(DASHBOARD);
  t.ok(queries.length > 200, `${queries.length} distinct queries in the dashboard`);
  const [agent, ne] = await Promise.all([startAgent(t), startNodeExporter(t)]);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-prom-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const jobs = { piswarm: `127.0.0.1:${agent.port}`, node: `127.0.0.1:${ne.port}` };
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), [
    'global:', `  scrape_interval: ${SCRAPE_S}s`, `  scrape_timeout: ${SCRAPE_S}s`, 'scrape_configs:',
    ...Object.entries(jobs).flatMap(([job, target]) => [`  - job_name: ${job}`, '    static_configs:', `      - targets: ['${target}']`]),
  ].join('\n') + '\n');
  const port = await freePort();
  const prom = spawn(PROMETHEUS, [`--config.file=${dir}/prometheus.yml`, `--storage.tsdb.path=${dir}/data`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
  t.teardown(() => prom.kill('SIGTERM'));
  const api = `http://127.0.0.1:${port}/api/v1`;
  await waitHttp(`http://127.0.0.1:${port}/-/ready`, prom, 'prometheus', 30_000);

  const query = async (q: string): Promise<PromAnswer> => {
    const r = await fetch(`${api}/query?query=${encodeURIComponent(q)}`);
    const body = (await r.json()) as PromAnswer;
    if (body.status !== 'success') throw new Error(`prometheus rejected ${q}: ${JSON.stringify(body).slice(0, 300)}`);
    return body;
  };
  const hasData = (a: PromAnswer) => (Array.isArray(a.data.result) ? a.data.result.length > 0 : a.data.result !== null);

  // Both targets up, then enough samples for every rate window ($__rate_interval plus a scrape).
  for (let i = 0; ; i++) {
    const up = await query('up == 1');
    if ((up.data.result as unknown[]).length === 2) break;
    if (i > 100) throw new Error('targets not up within 20 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, (4 * SCRAPE_S + 3) * 1000));

  const answered: Record<string, Set<string>> = {};
  for (const [job, instance] of Object.entries(jobs)) {
    const names = await query(`node_uname_info{job="${job}",instance="${instance}"}`);
    const nodename = ((names.data.result as Array<{ metric: Record<string, string> }>)[0]?.metric.nodename) ?? '';
    t.not(nodename, '', `${job}: $nodename from node_uname_info`);
    const fill = (q: string) => q.replace(/\$\{?job\}?/g, job).replace(/\$\{?node\}?/g, instance).replace(/\$\{?nodename\}?/g, nodename)
      .replace(/\$\{?__rate_interval\}?/g, RATE_INTERVAL);
    answered[job] = new Set();
    for (const q of queries) if (hasData(await query(fill(q)))) answered[job]?.add(q);
  }
  const [ours, theirs] = [answered.piswarm as Set<string>, answered.node as Set<string>];
  t.comment(`queries with data: piswarm ${ours.size}, node_exporter ${theirs.size} of ${queries.length}; only piswarm: ${[...ours].filter((q) => !theirs.has(q)).length}`);
  const excused = (q: string) => NOT_SERVED.find(([re]) => re.test(q));
  const missing = [...theirs].filter((q) => !ours.has(q));
  t.same(missing.filter((q) => !excused(q)), [], 'the agent answers every query node_exporter answers');
  for (const [re, why] of NOT_SERVED) {
    const n = missing.filter((q) => re.test(q)).length;
    t.comment(`not served: ${n} queries on ${re.source}: ${why}`);
  }
  t.ok(ours.size >= theirs.size - missing.filter(excused).length, `piswarm ${ours.size} >= node_exporter ${theirs.size} minus the excused`);
});
