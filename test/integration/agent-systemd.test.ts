/**
 * The agent on one simulated Pi: installed by scripts/install.sh into an image
 * that boots systemd (exactly as on a Pi), checked from outside through
 * systemd, journald, promtool and HTTP over the bridge.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HEALTH_CONTENT_TYPE } from '../../shared/constants.js';
import { run } from '../../scripts/sim/run.js';
import { httpGet, sim, skipReason, startCluster, unitProps } from './helpers/cluster.js';

const skip = await skipReason();

t.test('the agent under systemd on one node', { skip, timeout: 600_000 }, async (t) => {
  const { ref, nodes } = await startCluster(t, { prefix: 'it-sysd', nodes: 1 });
  const node = nodes[0]!;
  const ex = (cmd: string[]) => sim.exec(ref, node.name, cmd);

  await t.test('the unit is Type=notify and reached active through READY=1', async (t) => {
    const p = await unitProps(ref, node.name, 'piswarm', ['Type', 'NotifyAccess', 'ActiveState', 'SubState', 'NRestarts', 'WatchdogUSec', 'User']);
    t.match(p, { Type: 'notify', NotifyAccess: 'all', ActiveState: 'active', SubState: 'running', NRestarts: '0', User: 'piswarm' });
    t.not(p.WatchdogUSec, '0', 'a watchdog is armed');
    // For Type=notify systemd logs "Started" only when READY=1 arrives.
    const j = await ex(['journalctl', '-u', 'piswarm', '-o', 'cat', '--no-pager']);
    t.match(j.stdout, /Started piswarm\.service/);
  });

  await t.test('/health and /metrics answer from the host over the bridge', async (t) => {
    const health = await httpGet(`${node.apiUrl}/health`);
    t.ok([200, 503].includes(health.status), `/health status ${health.status}`);
    t.match(health.contentType, HEALTH_CONTENT_TYPE);
    t.match(JSON.parse(health.text), { status: /^(pass|warn|fail)$/ });
    const metrics = await httpGet(`${node.apiUrl}/metrics`);
    t.equal(metrics.status, 200);
    t.match(metrics.contentType, /^text\/plain/);
    const promtool = await run('promtool', ['check', 'metrics'], { input: metrics.text }).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
    if (promtool.code === -1 && !process.env.CI) t.pass('promtool check metrics', { skip: `promtool is not installed (scripts/setup-host.sh installs it): ${promtool.stderr}` });
    else {
      // Exit 1 is a parse error; exit 3 is lint only. The one lint accepted is
      // camelCase in node_* names copied from node_exporter (node_memory_MemFree_bytes):
      // promtool flags node_exporter's own output the same way (66 lines here).
      const lint = (promtool.stdout + promtool.stderr).split('\n').filter(Boolean)
        .filter((l) => !/^node_\S+ metric names should be written in 'snake_case' not 'camelCase'$/.test(l));
      t.ok(promtool.code === 0 || promtool.code === 3, `promtool parses /metrics (exit ${promtool.code})`);
      t.same(lint, [], 'and finds no lint problem beyond node_exporter-compatible names');
    }
  });

  await t.test('journald gets the agent logs with syslog priorities', async (t) => {
    const info = await ex(['journalctl', '-u', 'piswarm', '-p', 'info', '-o', 'json', '--no-pager']);
    const entries = info.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { PRIORITY: string; MESSAGE: unknown; _COMM?: string });
    const ready = entries.find((e) => typeof e.MESSAGE === 'string' && e.MESSAGE.includes('"msg":"agent ready"'));
    t.ok(ready, 'an `agent ready` line is in the journal');
    t.equal(ready?.PRIORITY, '6', 'it is logged at info priority');
    t.match(String(ready?.MESSAGE), /^\{/, 'journald consumed the <6> prefix');
    const warn = await ex(['journalctl', '-u', 'piswarm', '-p', 'warning', '-o', 'json', '--no-pager']);
    const agentLines = warn.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { MESSAGE: unknown; PRIORITY: string; _COMM?: string })
      .filter((e) => e._COMM === 'node');
    for (const e of agentLines) {
      const level = /^\{"level":(\d+)/.exec(String(e.MESSAGE))?.[1];
      t.ok(level === undefined || Number(level) >= 40, `only warn-or-worse agent lines at -p warning: ${String(e.MESSAGE).slice(0, 120)}`);
    }
    t.notOk(agentLines.some((e) => String(e.MESSAGE).includes('"msg":"agent ready"')), 'the info-level ready line is not among them');
  });

  await t.test('the unit file verifies clean and is hardened', async (t) => {
    const verify = await ex(['systemd-analyze', 'verify', '/etc/systemd/system/piswarm.service']);
    t.equal(verify.code, 0, verify.stderr);
    t.equal(verify.stderr.trim() + verify.stdout.trim(), '', 'no warnings');
    const security = await ex(['systemd-analyze', 'security', '--no-pager', 'piswarm.service']);
    const score = Number(/Overall exposure level for piswarm\.service: ([\d.]+)/.exec(security.stdout)?.[1]);
    t.comment(`systemd-analyze security piswarm.service: exposure ${score}`);
    t.ok(score <= 2.5, `exposure ${score} stays in the OK band (<= 2.5)`);
  });

  await t.test('systemctl restart brings the agent back', async (t) => {
    const before = await unitProps(ref, node.name, 'piswarm', ['MainPID']);
    const r = await ex(['systemctl', 'restart', 'piswarm']);
    t.equal(r.code, 0, r.stderr);
    const after = await unitProps(ref, node.name, 'piswarm', ['MainPID', 'ActiveState', 'NRestarts']);
    t.match(after, { ActiveState: 'active', NRestarts: '0' });
    t.not(after.MainPID, before.MainPID, 'a new process');
    await sim.waitFor(async () => (await httpGet(`${node.apiUrl}/health`, 1000)).status > 0, { timeoutMs: 30_000, what: '/health after restart' });
  });

  await t.test('install.sh is idempotent on a running Pi and refuses bad input', async (t) => {
    const tarball = join(sim.repoRoot(), 'release/piswarm.tar.gz');
    await readFile(tarball); // built by `up`; fails loudly if not
    await run('docker', ['cp', tarball, `${node.name}:/tmp/piswarm.tar.gz`]);
    const config = await ex(['cat', '/etc/piswarm/config.json']);
    const again = await ex(['bash', '-c', 'd=$(mktemp -d) && tar -xzf /tmp/piswarm.tar.gz -C $d && $d/piswarm-*/scripts/install.sh --release /tmp/piswarm.tar.gz']);
    t.equal(again.code, 0, again.stderr);
    t.match(again.stdout, /kept existing \/etc\/piswarm\/config\.json/);
    t.match(again.stdout, /restarted piswarm\.service/);
    t.equal((await ex(['cat', '/etc/piswarm/config.json'])).stdout, config.stdout, 'config.json untouched');
    t.match(await unitProps(ref, node.name, 'piswarm', ['ActiveState']), { ActiveState: 'active' });
    await sim.waitFor(async () => (await httpGet(`${node.apiUrl}/health`, 1000)).status > 0, { timeoutMs: 30_000, what: '/health after reinstall' });

    const short = await ex(['bash', '-c', 'echo short > /tmp/k && /opt/piswarm/scripts/install.sh --release /opt/piswarm --cluster-key-file /tmp/k']);
    t.equal(short.code, 1);
    t.match(short.stderr, /needs at least 32/);
    const bad = await ex(['/opt/piswarm/scripts/install.sh', '--bogus']);
    t.equal(bad.code, 64);
  });
});
