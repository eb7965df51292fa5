/**
 * The whole cluster from any node, against real components: 3 simulated Pis,
 * a real Prometheus (Debian's package) that finds them only through one
 * node's /v1/sd/prometheus, and a real browser (Debian's chromium driven by
 * playwright-core) on the dashboard of every node. One cluster serves all of
 * it: a node added appears, a worker's power cut shows on the open page and
 * drops out of Prometheus. A worker's page lists a service created on the
 * manager (fetched from it over the peer API), and a node's warning shows
 * its check's output (fetched from that node).
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterDocument, PrometheusTargetGroup } from '../../../shared/wire/cluster.js';
import { httpGet, sim, skipReason, startCluster, until } from '../helpers/cluster.js';

// The page functions below run in the browser; the agent's tsconfig has no DOM types.
declare const document: { querySelectorAll(s: string): { length: number }; querySelector(s: string): { getAttribute(n: string): string | null } | null };

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../../..');
const PROMETHEUS = '/usr/bin/prometheus';
const CHROMIUM = '/usr/bin/chromium';
/** Flags from shared/ENVIRONMENT.md: root, no GPU, nothing phoning home. */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
// One manager, so there are workers to cut and no promotion changes a role label mid-test.
const FAST = { PISWARM_FORMATION_HOLD_OFF_MS: '2000', PISWARM_DISCOVERY_CONFIRM_INTERVAL_MS: '1000', PISWARM_FORMATION_EXPECT: '3', PISWARM_AUTOPILOT_MAX_MANAGERS: '1' };

async function playwright(): Promise<typeof import('playwright-core') | null> {
  try {
    return await import('playwright-core');
  } catch {
    return null;
  }
}

const missing = [!existsSync(PROMETHEUS) && `${PROMETHEUS} (apt-get install prometheus)`, !existsSync(CHROMIUM) && `${CHROMIUM} (apt-get install chromium)`, !(await playwright()) && 'npm playwright-core (npm ci)'].filter(Boolean);
const skip = (await skipReason()) || (missing.length > 0 && !process.env.CI ? `missing: ${missing.join(', ')}` : false);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function json<T>(url: string): Promise<T | null> {
  const r = await httpGet(url);
  if (r.status !== 200) return null;
  try {
    return JSON.parse(r.text) as T;
  } catch {
    return null;
  }
}

interface PromSeries { metric: Record<string, string>; value: [number, string] }
async function promUp(base: string): Promise<PromSeries[]> {
  const r = await json<{ data: { result: PromSeries[] } }>(`${base}/api/v1/query?query=up`);
  return r?.data.result ?? [];
}

function startPrometheus(t: { teardown(fn: () => unknown): void }, sdUrl: string, port: number): { base: string; proc: ChildProcess } {
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-prom-'));
  // The snippet the README gives, with short intervals for the test.
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global:', '  scrape_interval: 2s', '  scrape_timeout: 1s',
    'scrape_configs:', '  - job_name: piswarm', '    http_sd_configs:', `      - url: ${sdUrl}`, '        refresh_interval: 2s', '',
  ].join('\n'));
  const proc = spawn(PROMETHEUS, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
  t.teardown(() => {
    proc.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });
  return { base: `http://127.0.0.1:${port}`, proc };
}

t.test('one cluster, seen whole from every node: /v1/cluster, Prometheus SD with a real Prometheus, the dashboard in a real browser', { skip, timeout: 900_000 }, async (t) => {
  const t0 = Date.now();
  const c = await startCluster(t, { prefix: 'it-view', nodes: 3, env: FAST });
  const key = readFileSync(join(ROOT, '.sim', c.ref.name, 'cluster.key'), 'utf8').trim();
  t.ok(key.length >= 32, 'the cluster key the nodes got');
  const urls = () => c.nodes.map((n) => n.apiUrl);

  // Every node knows every node, alive and with facts, and one is the manager.
  const complete = (d: ClusterDocument | null, n: number) => d !== null && d.nodes.length === n && d.nodes.every((x) => x.gossip?.state === 'alive' && x.health.status !== null && x.facts.version !== null && x.swarm.role !== 'none');
  for (const u of urls()) {
    const d = await until(`${u}/v1/cluster lists 3 alive nodes with facts`, async () => { const x = await json<ClusterDocument>(`${u}/v1/cluster`); return complete(x, 3) && x; }, 120_000);
    t.equal(d.nodes.length, 3, `${u}: 3 nodes`);
    t.equal(d.nodes.filter((n) => n.self).length, 1, `${u}: itself once`);
    t.ok(d.nodes.every((n) => n.facts.memPct !== null && n.facts.uptimeS !== null && n.facts.arch !== null && n.facts.rootFreePct !== null), `${u}: figures from every node`);
  }
  const docs = await Promise.all(urls().map((u) => json<ClusterDocument>(`${u}/v1/cluster`)));
  const managerDoc = docs.find((d) => d?.cluster.source === 'engine');
  t.ok(managerDoc, 'a manager answers with its engine view');
  t.equal(managerDoc!.nodes.filter((n) => n.swarm.managerStatus === 'Leader').length, 1, 'one leader');
  t.ok(managerDoc!.cluster.election?.winner, 'the election result is there');
  const managerUrl = c.nodes.find((n) => n.name === managerDoc!.servedBy.hostname)!.apiUrl;
  // Services are listed every 5 s once the autopilot has the node list.
  const services = await until('the manager lists services', async () => (await json<ClusterDocument>(`${managerUrl}/v1/cluster`))?.services, 20_000).catch(() => null);
  t.same(services, [], 'a manager lists services (none here)');
  // Not the node Prometheus asks: a discovery source that is down keeps its last answer in Prometheus.
  const worker = c.nodes.slice(1).find((n) => docs.find((d) => d?.servedBy.hostname === n.name)?.nodes.find((x) => x.self)?.swarm.role === 'worker');
  t.ok(worker, 'a worker to cut later');

  // A worker's engine cannot list services: it asks a manager over the peer API.
  // Zero replicas: listed with its image, yet nothing is pulled (no registry here).
  const created = await sim.exec(c.ref, managerDoc!.servedBy.hostname, ['docker', 'service', 'create', '--detach', '--no-resolve-image', '--name', 'it-web', '--replicas', '0', 'nginx:alpine']);
  t.equal(created.code, 0, `docker service create on the manager: ${created.stderr.trim()}`);
  const viaPeer = await until(`${worker!.name} lists the manager's service`, async () => (await json<ClusterDocument>(`${worker!.apiUrl}/v1/cluster`))?.services?.find((s) => s.name === 'it-web'), 30_000);
  t.match(viaPeer, { name: 'it-web', image: 'nginx:alpine', mode: 'replicated', desired: 0, running: 0 }, 'a worker shows the service from a manager');

  // Never a secret, in any answer of any node.
  for (const u of urls()) {
    for (const path of ['/v1/cluster', '/v1/sd/prometheus', '/v1/cluster/history', '/ui/', '/ui/app.js', '/']) {
      const r = await httpGet(`${u}${path}`);
      t.equal(r.status, 200, `${u}${path}`);
      t.notOk(r.text.includes('SWMTKN'), `${u}${path}: no join token`);
      t.notOk(r.text.includes(key), `${u}${path}: no cluster key`);
    }
    t.equal((await httpGet(`${u}/v1/cluster?all=1`)).status, 400, 'unknown query parameter');
    // Check outputs: its own and another member's (fetched over the peer API).
    for (const n of c.nodes) {
      const r = await httpGet(`${u}/v1/cluster/nodes/${n.name}/checks`);
      t.equal(r.status, 200, `${u}: ${n.name}'s checks`);
      t.notOk(r.text.includes('SWMTKN') || r.text.includes(key), `${u}: ${n.name}'s checks hold no secret`);
    }
    t.equal((await httpGet(`${u}/v1/cluster/nodes/no-such-pi/checks`)).status, 404, 'an unknown node');
    t.equal((await httpGet(`${u}/v1/cluster/nodes/${c.nodes[0]!.name}/checks?all=1`)).status, 400, 'unknown query parameter on checks');
  }

  // A real Prometheus finds every node through one node's SD URL.
  const prom = startPrometheus(t, `${c.nodes[0]!.apiUrl}/v1/sd/prometheus`, await freePort());
  // Exactly these nodes, each once and up (a target whose labels just changed lingers a scrape or two).
  const upExactly = async (names: string[]) => {
    const s = await promUp(prom.base);
    const got = s.map((x) => x.metric.node).sort();
    return JSON.stringify(got) === JSON.stringify([...names].sort()) && s.every((x) => x.value[1] === '1') && s;
  };
  const up3 = await until('Prometheus: 3 targets up', () => upExactly(c.nodes.map((n) => n.name)), 60_000);
  t.same(up3.map((s) => s.metric.node).sort(), c.nodes.map((n) => n.name).sort(), 'one target per node');
  // The board model reaches discovery a moment after start; wait until Prometheus has caught up,
  // then compare every target's labels with what discovery says.
  await until('Prometheus labels as discovery gives them', async () => {
    const g = (await json<PrometheusTargetGroup[]>(`${c.nodes[0]!.apiUrl}/v1/sd/prometheus`)) ?? [];
    const s = await promUp(prom.base);
    return s.length === g.length && s.every((x) => g.some((y) => y.labels.node === x.metric.node && (y.labels.model || undefined) === x.metric.model)) && s;
  }, 30_000).catch(() => null);
  const groups = (await json<PrometheusTargetGroup[]>(`${c.nodes[0]!.apiUrl}/v1/sd/prometheus`)) ?? [];
  const labelled = await promUp(prom.base);
  t.equal(labelled.length, 3);
  for (const s of labelled) {
    const g = groups.find((x) => x.labels.node === s.metric.node);
    t.equal(s.metric.cluster, managerDoc!.cluster.name, `${s.metric.node}: cluster label`);
    t.match(s.metric.role, /^(manager|worker)$/, `${s.metric.node}: role label`);
    t.equal(s.metric.role, g?.labels.role, `${s.metric.node}: role as discovery says`);
    t.ok(s.metric.arch, `${s.metric.node}: arch label`);
    // Prometheus drops an empty label, so a board without a model name has none.
    t.equal(s.metric.model, g?.labels.model || undefined, `${s.metric.node}: model label`);
  }

  // The browser: every node's page lists every node, without a console error.
  const pw = (await playwright())!;
  const browser = await pw.chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  const errors: string[] = [];
  const rows = async (page: import('playwright-core').Page) => page.$$eval('#nodes tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-node'), tr.getAttribute('data-state')]));
  for (const n of c.nodes) {
    const page = await browser.newPage();
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`${n.name}: ${m.text()}`); });
    page.on('pageerror', (e) => errors.push(`${n.name}: ${e.message}`));
    await page.goto(`${n.apiUrl}/`);
    await page.waitForFunction((k) => document.querySelectorAll('#nodes tbody tr[data-state="alive"]').length === k, 3, { timeout: 15_000 });
    t.same((await rows(page)).map((r) => r[0]).sort(), c.nodes.map((x) => x.name).sort(), `${n.name}'s page lists every node`);
    await page.waitForSelector('#services tbody tr[data-service="it-web"]', { timeout: 15_000 });
    t.pass(`${n.name}'s page lists the service${n.name === worker!.name ? ' (a worker: from a manager)' : ''}`);
    await page.close();
  }

  await t.test('a node added with sim add appears in discovery, in Prometheus and on the page, its warning with its output', async (t) => {
    // Its disk:free warns (99 % threshold), so its row shows a warning check's output.
    const late = await sim.add({ ...c.ref, env: { ...FAST, PISWARM_HEALTH_DISK_FREE_WARN_PERCENT: '99' } });
    c.nodes.push(late);
    const sd = await until('the SD answer lists 4 targets', async () => { const g = await json<PrometheusTargetGroup[]>(`${c.nodes[0]!.apiUrl}/v1/sd/prometheus`); return g?.length === 4 && g; }, 120_000);
    t.ok(sd.some((g) => g.labels.node === late.name), 'the new node is a target');
    const up4 = await until('Prometheus: the 4 nodes up', () => upExactly(c.nodes.map((n) => n.name)), 60_000);
    t.ok(up4.some((s) => s.metric.node === late.name), 'Prometheus scrapes the new node');
    const viewer = c.nodes[0]!;
    const checks = await until(`${viewer.name} fetches ${late.name}'s disk:free output`, async () => {
      const r = await json<{ source: string; checks: Array<{ name: string; status: string; output: string }> }>(`${viewer.apiUrl}/v1/cluster/nodes/${late.name}/checks`);
      return r?.checks.some((x) => x.name === 'disk:free') && r;
    }, 60_000);
    t.equal(checks.source, 'peer', 'fetched from the member');
    t.match(checks.checks.find((x) => x.name === 'disk:free'), { status: 'warn', output: /\S/ }, 'the warning with its output');
    const page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(`warn page: ${e.message}`));
    await page.goto(`${viewer.apiUrl}/`);
    const shown = await page.waitForSelector(`#nodes tbody tr[data-node="${late.name}"] li[data-check="disk:free"]`, { timeout: 30_000 });
    t.match(await shown.textContent(), /^disk:free.*: \S/, 'the page shows the output under the node');
    await page.close();
  });

  await t.test('a worker\'s power cut: the open page shows it without reload, Prometheus drops it', async (t) => {
    const page = await browser.newPage();
    // A check-output read of the worker just cut may time out (504, shown on the page): expected.
    page.on('console', (m) => { if (m.type() === 'error' && !m.location().url.includes('/checks')) errors.push(`power-cut page: ${m.text()}`); });
    page.on('pageerror', (e) => errors.push(`power-cut page: ${e.message}`));
    const viewer = c.nodes.find((n) => n.name !== worker!.name)!;
    await page.goto(`${viewer.apiUrl}/`);
    await page.waitForFunction((k) => document.querySelectorAll('#nodes tbody tr[data-state="alive"]').length === k, 4, { timeout: 30_000 });
    const cut = Date.now();
    await sim.kill(c.ref, worker!.name);
    await page.waitForFunction((name) => ['suspect', 'dead'].includes(document.querySelector(`#nodes tbody tr[data-node="${name}"]`)?.getAttribute('data-state') ?? ''), worker!.name, { timeout: 60_000 });
    t.comment(`page shows ${worker!.name} suspect/dead ${Date.now() - cut} ms after the power cut`);
    await page.waitForFunction((name) => document.querySelector(`#nodes tbody tr[data-node="${name}"]`)?.getAttribute('data-state') === 'dead', worker!.name, { timeout: 90_000 });
    t.comment(`page shows ${worker!.name} dead ${Date.now() - cut} ms after the power cut`);
    t.pass('the cut worker is shown dead, still listed');
    const shot = join(ROOT, 'docs', 'dashboard.png');
    mkdirSync(dirname(shot), { recursive: true });
    await page.setViewportSize({ width: 1400, height: 560 });
    await page.screenshot({ path: shot, fullPage: true });
    t.ok(existsSync(shot), `screenshot saved to ${shot}`);
    await page.close();
    const others = c.nodes.filter((n) => n.name !== worker!.name).map((n) => n.name);
    const gone = await until('Prometheus: the cut worker is no longer a target, the others up', () => upExactly(others), 120_000).catch(async (err: Error) => {
      t.comment(`up now: ${JSON.stringify((await promUp(prom.base)).map((x) => [x.metric.node, x.value[1]]))}`);
      throw err;
    });
    t.equal(gone.length, 3, 'the other 3 stay up');
  });

  t.same(errors, [], 'no console errors on any page');
  t.comment(`cluster view integration: ${Math.round((Date.now() - t0) / 1000)} s`);
});
