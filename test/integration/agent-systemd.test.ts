/**
 * The agent on one simulated Pi: installed by scripts/install.sh into an image
 * that boots systemd (exactly as on a Pi), checked from outside through
 * systemd, journald, promtool and HTTP over the bridge.
 */
import { ALLOWED_LINT } from '../unit/agent/metrics/promtool.js';
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HEALTH_CONTENT_TYPE } from '../../shared/constants.js';
import { run } from '../../scripts/sim/run.js';
import { ensureImages, resolveBase } from '../../scripts/sim/images.js';
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
    // No timesyncd in a container: the answer comes from timedated over D-Bus,
    // which the hardened unit (user piswarm, ProtectSystem=strict) can reach.
    const clockSync = (JSON.parse(health.text) as { checks: Record<string, Array<{ observedValue: unknown; output?: string }>> }).checks['clock:sync']?.[0];
    t.equal(typeof clockSync?.observedValue, 'boolean', `clock:sync known under the unit: ${clockSync?.output ?? clockSync?.observedValue}`);
    const metrics = await httpGet(`${node.apiUrl}/metrics`);
    t.equal(metrics.status, 200);
    t.match(metrics.contentType, /^text\/plain/);
    // The board/OS inventory (systeminformation spawns small commands) works inside the hardened unit.
    // The node's own OS (trixie: 13, bookworm: 12, by the simulated OS under test).
    const [release, codename] = (await ex(['sh', '-c', '. /etc/os-release; echo "$VERSION_ID $VERSION_CODENAME"'])).stdout.trim().split(' ');
    t.match(metrics.text, new RegExp(`^piswarm_host_info\\{[^}]*os="Debian GNU/Linux",os_release="${release}",os_codename="${codename}"[^}]*\\} 1$`, 'm'), `inventory under the unit (Debian ${release} ${codename})`);
    t.match(metrics.text, /^piswarm_collector_success\{collector="inventory"\} 1$/m);
    // adjtimex(2) through perl (else python3) under the unit's seccomp filter (ProtectClock would refuse it: EPERM).
    t.match(metrics.text, /^piswarm_collector_success\{collector="timex"\} 1$/m, 'the timex collector reads adjtimex under the unit');
    t.match(metrics.text, /^node_timex_tick_seconds 0\.0\d+$/m, 'node_timex_tick_seconds from the kernel');
    const mounts = metrics.text.split('\n').filter((l) => l.startsWith('node_filesystem_size_bytes')).map((l) => /mountpoint="([^"]*)"/.exec(l)?.[1] ?? '');
    t.comment(`filesystems reported under the unit: ${mounts.join(' ')}`);
    t.same(mounts.filter((m) => ['/tmp', '/var/tmp', '/var/lib/piswarm', '/home', '/root', '/run/user', '/run/credentials', '/run/systemd/incoming'].includes(m)), [], "none of the unit's own sandbox mounts");
    const promtool = await run('promtool', ['check', 'metrics'], { input: metrics.text }).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
    if (promtool.code === -1 && !process.env.CI) t.pass('promtool check metrics', { skip: `promtool is not installed (scripts/setup-host.sh installs it): ${promtool.stderr}` });
    else {
      // Exit 1 is a parse error; exit 3 is lint only. The one lint accepted is
      // camelCase in node_* names copied from node_exporter (node_memory_MemFree_bytes):
      // promtool flags node_exporter's own output the same way (66 lines here).
      const lint = (promtool.stdout + promtool.stderr).split('\n').filter(Boolean)
        .filter((l) => !ALLOWED_LINT.test(l) && !/^node_\S+ metric names should be written in 'snake_case' not 'camelCase'$/.test(l));
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
    // The agent's privileged requests (moby#47854 recovery, installing a release): installed, verified, watching.
    const units = ['piswarm-engine-restart.path', 'piswarm-engine-restart.service', 'piswarm-upgrade.path', 'piswarm-upgrade.service'].map((u) => `/etc/systemd/system/${u}`);
    const v2 = await ex(['systemd-analyze', 'verify', ...units]);
    t.equal(v2.code, 0, v2.stderr);
    t.equal(v2.stderr.trim() + v2.stdout.trim(), '', 'the engine-restart and upgrade units verify with no warnings');
    for (const u of ['piswarm-engine-restart.path', 'piswarm-upgrade.path']) {
      const path = await ex(['systemctl', 'is-active', u]);
      t.equal(path.stdout.trim(), 'active', `${u} watches for the agent's request`);
    }
  });

  await t.test('systemctl restart brings the agent back', async (t) => {
    const before = await unitProps(ref, node.name, 'piswarm', ['MainPID']);
    const r = await ex(['systemctl', 'restart', 'piswarm']);
    t.equal(r.code, 0, r.stderr);
    const after = await unitProps(ref, node.name, 'piswarm', ['MainPID', 'ActiveState', 'NRestarts']);
    t.match(after, { ActiveState: 'active', NRestarts: '0' });
    t.not(after.MainPID, before.MainPID, 'a new process');
    // The old process stopped in order, by itself, within the unit's TimeoutStopSec.
    const old = await ex(['journalctl', '-u', 'piswarm', `_PID=${before.MainPID}`, '-o', 'cat', '--no-pager']);
    const msgs = old.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { msg?: string }).msg);
    t.ok(msgs.includes('stopping') && msgs.indexOf('stopped') > msgs.indexOf('stopping'), `old agent logged "stopping" then "stopped": ${JSON.stringify(msgs.slice(-4))}`);
    const sysd = await ex(['journalctl', '-u', 'piswarm', '-o', 'cat', '--no-pager', '-n', '40']);
    t.notMatch(sysd.stdout, /timed out|Killing process|SIGKILL/, 'systemd did not have to kill it');
    await sim.waitFor(async () => (await httpGet(`${node.apiUrl}/health`, 1000)).status > 0, { timeoutMs: 30_000, what: '/health after restart' });
  });

  await t.test('install.sh is idempotent on a running Pi and refuses bad input', async (t) => {
    const tarball = join(sim.repoRoot(), 'release/piswarm.tar.gz');
    await readFile(tarball); // built by `up`; fails loudly if not
    await run('docker', ['cp', tarball, `${node.name}:/var/tmp/piswarm.tar.gz`]);
    const config = await ex(['cat', '/etc/piswarm/config.json']);
    const again = await ex(['bash', '-c', 'd=$(mktemp -d) && tar -xzf /var/tmp/piswarm.tar.gz -C $d && $d/piswarm-*/scripts/install.sh --release /var/tmp/piswarm.tar.gz']);
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

  await t.test('the agent pings the systemd watchdog', async (t) => {
    const props = () => unitProps(ref, node.name, 'piswarm', ['ActiveEnterTimestampMonotonic', 'WatchdogTimestampMonotonic', 'WatchdogUSec']);
    const first = await props();
    // systemd stamps the watchdog at READY=1; only a WATCHDOG=1 moves it on.
    // The agent pings every WatchdogSec/2 (15 s), so 25 s is a generous bound.
    const moved = await sim.waitFor(async () => {
      const p = await props();
      return Number(p.WatchdogTimestampMonotonic) > Number(first.ActiveEnterTimestampMonotonic) + 1_000_000 && p;
    }, { timeoutMs: 25_000, what: 'a WATCHDOG=1 ping', intervalMs: 1000 });
    t.ok(moved, `watchdog pinged (${((Number(moved.WatchdogTimestampMonotonic) - Number(first.ActiveEnterTimestampMonotonic)) / 1e6).toFixed(1)} s after READY)`);
    t.match(await unitProps(ref, node.name, 'piswarm', ['NRestarts', 'ActiveState']), { NRestarts: '0', ActiveState: 'active' });
  });
});

t.test('install.sh on a fresh Debian without node or systemd running', { skip, timeout: 300_000 }, async (t) => {
  const root = sim.repoRoot();
  // Debian 12 (bookworm) whatever the simulated OS: its nodejs is 18, so a
  // fresh one has no usable node and install.sh needs --node (trixie's base
  // carries nodejs 20.19, which install.sh would simply take). ensureImages
  // for bookworm stages the release and the node binary.
  await ensureImages({ root, os: 'bookworm' });
  const { base } = await resolveBase(root, undefined, undefined, 'bookworm');
  const script = String.raw`
    set -u; exec 2>&1
    k=$(mktemp); head -c 48 /dev/urandom | base64 -w0 > "$k"
    d=$(mktemp -d); tar -xzf /r/piswarm.tar.gz -C "$d"; inst=$(echo "$d"/piswarm-*/scripts/install.sh)
    echo "== nonode"; "$inst" --release /r/piswarm.tar.gz; echo "rc=$?"
    echo "== first"; "$inst" --release /r/piswarm.tar.gz --node /r/node --cluster-key-file "$k"; echo "rc=$?"
    echo "== state"; stat -c '%n %a %U %G' /etc/piswarm /etc/piswarm/config.json /etc/piswarm/cluster.key
    id -nG piswarm; readlink /etc/systemd/system/multi-user.target.wants/piswarm.service; cat /etc/piswarm/config.json
    echo "== second"; "$inst" --release "$d"/piswarm-*; echo "rc=$?"
    echo "== badkey"; "$inst" --release "$d"/piswarm-* --release-key short; echo "rc=$?"
    echo "== relkey"; "$inst" --release "$d"/piswarm-* --release-key HICzKkCiSAJn0o1bLo1XX0ZEs3XEi-PeNgjcvQ5js34; echo "rc=$?"
    stat -c '%n %a %U %G' /etc/piswarm/config.json; cat /etc/piswarm/config.json`;
  const r = await run('docker', ['run', '--rm', '--network', 'none',
    '-v', `${join(root, 'release/piswarm.tar.gz')}:/r/piswarm.tar.gz:ro`, '-v', `${join(root, 'release/node')}:/r/node:ro`,
    base, 'bash', '-c', script], { timeoutMs: 240_000 });
  const section = (name: string) => r.stdout.split('== ').find((s) => s.startsWith(name)) ?? '';
  t.match(section('nonode'), /no node found .*needs node >= 20\.18/s, 'refuses clearly without node');
  t.match(section('nonode'), /rc=1/);
  const first = section('first');
  t.match(first, /installed \/r\/node as \/usr\/local\/bin\/node/);
  t.match(first, /created system user piswarm/);
  t.match(first, /enabled piswarm\.service and piswarm-engine-restart\.path piswarm-upgrade\.path \(systemd is not running here/);
  t.match(first, /rc=0/);
  const state = section('state');
  t.match(state, /\/etc\/piswarm 750 root piswarm/);
  t.match(state, /\/etc\/piswarm\/config\.json 640 root piswarm/);
  t.match(state, /\/etc\/piswarm\/cluster\.key 640 root piswarm/);
  t.match(state, /\bdocker\b/, 'piswarm is in the docker group');
  t.match(state, /\/etc\/systemd\/system\/piswarm\.service/, 'enabled for multi-user.target');
  t.match(state, /"clusterKeyFile": "\/etc\/piswarm\/cluster\.key"/);
  const second = section('second');
  t.match(second, /kept existing \/etc\/piswarm\/config\.json/);
  t.notMatch(second, /created system user/);
  t.match(second, /rc=0/, 'a second run from the unpacked directory succeeds');
  t.match(section('badkey'), /--release-key is not a release key's public half.*rc=64/s, 'a malformed release key: usage error, nothing changed');
  const relkey = section('relkey');
  t.match(relkey, /set upgrade\.releaseKey in \/etc\/piswarm\/config\.json/);
  t.match(relkey, /rc=0/);
  t.match(relkey, /\/etc\/piswarm\/config\.json 640 root piswarm/, 'config.json keeps its mode and owner');
  t.match(relkey, /"clusterKeyFile": "\/etc\/piswarm\/cluster\.key"[\s\S]*"releaseKey": "HICzKkCiSAJn0o1bLo1XX0ZEs3XEi-PeNgjcvQ5js34"/, 'merged: the other settings kept');
});
