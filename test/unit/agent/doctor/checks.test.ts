import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { makeDoctorCommand } from '../../../../agent/cli/doctor.js';
import type { CommandContext } from '../../../../agent/cli/command.js';
import { checkAdvertiseAddress, checkFirewall, checkMemoryCgroup, checkModule, doctorChecks, parseIpAddr, parseProcNet, type DoctorCheck } from '../../../../agent/doctor/checks.js';
import { gatherState } from '../../../../agent/doctor/gather.js';
import type { SystemState } from '../../../../agent/doctor/state.js';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}
const FIXTURES = join(repoRoot(), 'test/fixtures/doctor');

/** A fixture is a full recorded state, or overrides of another ("base"); null in files means "absent". */
function load(name: string): SystemState & { description: string } {
  const raw = JSON.parse(readFileSync(join(FIXTURES, name), 'utf8'));
  if (!raw.base) return raw;
  const base = load(raw.base);
  return {
    description: raw.description,
    kernelRelease: raw.kernelRelease ?? base.kernelRelease,
    files: { ...base.files, ...raw.files },
    commands: { ...base.commands, ...raw.commands },
    socketOwners: raw.socketOwners ?? base.socketOwners,
    agentPids: raw.agentPids ?? base.agentPids,
  };
}

const byId = (checks: DoctorCheck[]) => Object.fromEntries(checks.map((c) => [c.id, c]));
const statuses = (checks: DoctorCheck[]) => Object.fromEntries(checks.map((c) => [c.id, c.status]));

const ALL_PASS = {
  'cgroup:memory': 'pass', 'clock:synchronized': 'pass', 'kernel:vxlan': 'pass', 'kernel:ip_vs': 'pass', 'docker:daemon-options': 'pass',
  'mdns:port': 'pass', 'network:advertise-address': 'pass', 'firewall:ports': 'pass', 'agent:port': 'pass', 'runtime:node': 'pass',
};

/** Each fixture differs from all-good in exactly the checks listed; every other check must still pass. */
const EXPECT: Record<string, { changed: Record<string, 'warn' | 'fail'>; output: RegExp; fix?: RegExp }> = {
  'memory-cgroup-off.json': { changed: { 'cgroup:memory': 'fail' }, output: /memory cgroup is disabled \(the kernel command line has cgroup_disable=memory\)/, fix: /cgroup_enable=memory cgroup_memory=1.*cmdline\.txt.*then reboot/ },
  'clock-unsynchronised.json': { changed: { 'clock:synchronized': 'fail' }, output: /not synchronised \(timedatectl: NTPSynchronized=no\)/, fix: /timedatectl set-ntp true/ },
  'vxlan-missing.json': { changed: { 'kernel:vxlan': 'fail' }, output: /kernel module vxlan is missing/, fix: /linux-modules-extra-raspi/ },
  'ip-vs-missing.json': { changed: { 'kernel:ip_vs': 'warn' }, output: /ip_vs is missing: .* publish ports with mode=host/, fix: /modprobe ip_vs/ },
  'live-restore.json': { changed: { 'docker:daemon-options': 'fail' }, output: /"live-restore": true .* refuses swarm mode/, fix: /Remove "live-restore"/ },
  'mdns-port-taken.json': { changed: { 'mdns:port': 'fail' }, output: /another program holds UDP 5353: mdns-repeater \(pid 1422\)/, fix: /avahi-daemon|discovery\.mdns=false/ },
  'ambiguous-address.json': { changed: { 'network:advertise-address': 'fail' }, output: /ambiguous advertise address: 192\.168\.1\.31 \(eth0\), 192\.168\.1\.200 \(eth0\), 192\.168\.1\.32 \(wlan0\) \(default route via eth0\)/, fix: /discovery\.advertiseAddress.*moby#25117/ },
  'ufw-ports-closed.json': { changed: { 'firewall:ports': 'fail' }, output: /ufw is active and blocks 2377\/tcp, 7946\/tcp, 7946\/udp, 4789\/udp, 5353\/udp, 7070\/tcp/, fix: /sudo ufw allow 2377\/tcp; .*sudo ufw allow 7070\/tcp/ },
  'agent-port-taken.json': { changed: { 'agent:port': 'fail' }, output: /TCP 7070 is taken by grafana-agent \(pid 977\)/, fix: /"http": \{ "port": N \}/ },
  'node-too-old.json': { changed: { 'runtime:node': 'fail' }, output: /Node\.js v18\.19\.0 is too old/, fix: /Node\.js >= 20\.18/ },
};

t.test('all good: every check passes, doctor exits 0', async (t) => {
  const s = load('all-good.json');
  t.same(statuses(doctorChecks(s)), ALL_PASS);
  const out: string[] = [];
  const ctx: CommandContext = { argv: [], env: {}, cwd: '/', out: (x) => out.push(x), err: (x) => out.push(x), confirm: async () => false };
  t.equal(await makeDoctorCommand(async () => s).run(ctx), 0);
  t.match(out.join('\n'), /^piswarm doctor: all checks passed/);
});

for (const [file, e] of Object.entries(EXPECT)) {
  t.test(file, async (t) => {
    const s = load(file);
    const checks = doctorChecks(s);
    t.same(statuses(checks), { ...ALL_PASS, ...e.changed }, s.description);
    const main = byId(checks)[Object.keys(e.changed)[0]!]!;
    t.match(main.output, e.output);
    if (e.fix) t.match(main.fix, e.fix);
    for (const c of checks) if (c.status !== 'pass') t.ok(c.fix, `${c.id} names a fix`);

    const out: string[] = [];
    const ctx: CommandContext = { argv: ['--json'], env: {}, cwd: '/', out: (x) => out.push(x), err: (x) => out.push(x), confirm: async () => false };
    const blocks = Object.values(e.changed).includes('fail');
    t.equal(await makeDoctorCommand(async () => s).run(ctx), blocks ? 1 : 0, 'exit 1 only when something blocks');
    const json = JSON.parse(out.join('\n'));
    t.equal(json.status, blocks ? 'fail' : 'warn');
    t.equal(json.checks.length, 10);
  });
}

t.test('every fixture in the directory is covered', async (t) => {
  t.same(readdirSync(FIXTURES).filter((f) => f.endsWith('.json')).sort(), ['all-good.json', ...Object.keys(EXPECT)].sort());
});

t.test('text report shows the fix under each problem', async (t) => {
  const out: string[] = [];
  const ctx: CommandContext = { argv: [], env: {}, cwd: '/', out: (x) => out.push(x), err: (x) => out.push(x), confirm: async () => false };
  t.equal(await makeDoctorCommand(async () => load('live-restore.json')).run(ctx), 1);
  t.match(out.join('\n'), /^piswarm doctor: 1 problem\(s\) will stop the swarm from forming\n/);
  t.match(out.join('\n'), /\nFAIL {2}docker:daemon-options {6}"live-restore": true.*\n {6}.*fix: Remove "live-restore"/);
  t.match(out.join('\n'), /\nok {4}cgroup:memory/);
});

t.test('memory cgroup on a cgroup v1 host and with no data', async (t) => {
  const s = load('all-good.json');
  const v1 = { ...s, files: { ...s.files, '/sys/fs/cgroup/cgroup.controllers': null } };
  t.equal(checkMemoryCgroup(v1).status, 'pass');
  const v1off = { ...v1, files: { ...v1.files, '/proc/cgroups': '#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t1\t0\n' } };
  t.equal(checkMemoryCgroup(v1off).status, 'fail');
  t.equal(checkMemoryCgroup({ ...v1, files: { ...v1.files, '/proc/cgroups': null } }).status, 'warn');
});

t.test('module found as loadable, as built in, and when /lib/modules is absent', async (t) => {
  const s = load('vxlan-missing.json');
  const rel = s.kernelRelease;
  t.equal(checkModule({ ...s, files: { ...s.files, [`/lib/modules/${rel}/modules.dep`]: 'kernel/drivers/net/vxlan.ko.zst: x\n' } }, 'vxlan').observedValue, 'loadable');
  t.equal(checkModule({ ...s, files: { ...s.files, [`/lib/modules/${rel}/modules.builtin`]: 'kernel/drivers/net/vxlan/vxlan.ko\n' } }, 'vxlan').observedValue, 'builtin');
  const none = checkModule({ ...s, files: { ...s.files, [`/lib/modules/${rel}/modules.dep`]: null, [`/lib/modules/${rel}/modules.builtin`]: null } }, 'vxlan');
  t.match(none.fix, /\/lib\/modules\/6\.6\.51\+rpt-rpi-v8 is missing/);
});

t.test('advertise address: two interfaces, the default route decides (warn); config decides (pass)', async (t) => {
  const s = load('all-good.json');
  const two = { ...s, commands: { ...s.commands, 'ip -o addr show': { exitCode: 0, stdout: `${s.commands['ip -o addr show']!.stdout}3: wlan0    inet 192.168.1.32/24 brd 192.168.1.255 scope global wlan0\n` } } };
  const c = checkAdvertiseAddress(two);
  t.equal(c.status, 'warn');
  t.match(c.output, /the agent will use 192\.168\.1\.31 on eth0 \(default route\)/);
  const configured = { ...two, files: { ...two.files, '/etc/piswarm/config.json': '{"discovery":{"interface":"wlan0"}}' } };
  t.equal(checkAdvertiseAddress(configured).status, 'pass');
  const noNet = { ...s, commands: { ...s.commands, 'ip -o addr show': { exitCode: 0, stdout: '1: lo    inet 127.0.0.1/8 scope host lo\n' } } };
  t.equal(checkAdvertiseAddress(noNet).status, 'fail');
});

t.test('ufw: ranges, profiles, inactive, default allow, not root', async (t) => {
  const s = load('all-good.json');
  const ufw = (stdout: string, exitCode = 0) => ({ ...s, commands: { ...s.commands, 'ufw status verbose': { exitCode, stdout } } });
  const head = 'Status: active\nDefault: deny (incoming), allow (outgoing)\n\nTo                         Action      From\n--                         ------      ----\n';
  t.equal(checkFirewall(ufw(`${head}2000:8000/tcp              ALLOW IN    Anywhere\n2000:8000/udp              ALLOW IN    Anywhere\n`)).status, 'pass');
  t.match(checkFirewall(ufw(`${head}2000:8000/tcp              ALLOW IN    Anywhere\n`)).output, /blocks 7946\/udp, 4789\/udp, 5353\/udp, 7070\/udp$/);
  t.match(checkFirewall(ufw(`${head}7946/tcp                   DENY IN     Anywhere\n`)).output, /7946\/tcp/);
  t.equal(checkFirewall(ufw('Status: inactive\n')).status, 'pass');
  t.equal(checkFirewall(ufw('Status: active\nDefault: allow (incoming), allow (outgoing)\n')).status, 'pass');
  t.equal(checkFirewall(ufw('ERROR: You need to be root to run this script\n', 1)).status, 'warn');
  t.equal(checkFirewall({ ...s, commands: { ...s.commands, 'ufw status verbose': null } }).output, 'ufw not installed');
});

t.test('parsers', async (t) => {
  t.same(parseProcNet('  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:1B9E 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 20815 1 0 100 0 0 10 0\n'), [{ port: 7070, state: '0A', inode: '20815' }]);
  t.same(parseIpAddr('9: veth5e2a1c3@if8    inet6 fe80::9c1e/64 scope link \\ x\n2: eth0    inet 10.0.0.2/8 brd 10.255.255.255 scope global eth0\n'), [{ iface: 'veth5e2a1c3', family: 'inet6', address: 'fe80::9c1e' }, { iface: 'eth0', family: 'inet', address: '10.0.0.2' }]);
});

t.test('the real adapter records this machine and every check answers', async (t) => {
  const s = await gatherState({ agentPids: [process.pid] });
  t.equal(typeof s.kernelRelease, 'string');
  t.ok(Object.keys(s.files).includes('/proc/cmdline'));
  t.type(s.files['/proc/cmdline'], 'string', 'procfs is readable');
  const checks = doctorChecks(s);
  t.equal(checks.length, 10);
  for (const c of checks) {
    t.ok(['pass', 'warn', 'fail'].includes(c.status), `${c.id}: ${c.status} ${c.output}`);
    t.ok(c.output.length > 0);
  }
});
