import { DEFAULT_HTTP_PORT, SWARM_PORTS } from '../../shared/constants.js';
import { MDNS_PORT_FIX } from '../discovery/discovery.js';
import {
  AGENT_CONFIG, CGROUP2_CONTROLLERS, CMD_ADDRESSES, CMD_NODE, CMD_TIMESYNC, CMD_UFW, DOCKER_DAEMON_JSON, MODULE_PARAM_FILES, modulesBuiltin, modulesDep,
  PROC_CGROUPS, PROC_CMDLINE, PROC_MODULES, PROC_ROUTE, TIMESYNC_FLAG, type ProcessRef, type SystemState,
} from './state.js';

/** One finding, shaped like a health check so the lead can serve it on /health. */
export interface DoctorCheck {
  id: string;
  status: 'pass' | 'warn' | 'fail';
  observedValue?: unknown;
  output: string;
  fix?: string;
}

const MIN_NODE = [20, 18] as const;

function agentConfig(s: SystemState): Record<string, unknown> {
  const text = s.files[AGENT_CONFIG];
  if (!text) return {};
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {}; // the config loader reports a broken file with its own error; doctor uses defaults here
  }
}

function section(cfg: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = cfg[key];
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function agentPort(s: SystemState): number {
  const p = section(agentConfig(s), 'http').port;
  return typeof p === 'number' ? p : DEFAULT_HTTP_PORT;
}

export function checkMemoryCgroup(s: SystemState): DoctorCheck {
  const id = 'cgroup:memory';
  const cmdline = (s.files[PROC_CMDLINE] ?? '').trim().split(/\s+/);
  const lastDisable = cmdline.lastIndexOf('cgroup_disable=memory');
  const cmdlineDisables = lastDisable >= 0 && cmdline.lastIndexOf('cgroup_enable=memory') < lastDisable;
  const fix = 'Add "cgroup_enable=memory cgroup_memory=1" to the single line of /boot/firmware/cmdline.txt (/boot/cmdline.txt on older releases), then reboot.';
  const v2 = s.files[CGROUP2_CONTROLLERS];
  let enabled: boolean | null = null;
  if (v2 != null) enabled = v2.trim().split(/\s+/).includes('memory');
  else if (s.files[PROC_CGROUPS] != null) {
    const row = s.files[PROC_CGROUPS]!.split('\n').map((l) => l.trim().split(/\s+/)).find((f) => f[0] === 'memory');
    enabled = row ? row[3] === '1' : false;
  }
  const observedValue = { cgroupV2: v2 != null, enabled, cmdlineDisables };
  if (enabled === null) return { id, status: 'warn', observedValue, output: `cannot tell whether the memory cgroup is enabled (neither ${CGROUP2_CONTROLLERS} nor ${PROC_CGROUPS} is readable)` };
  if (!enabled) {
    return { id, status: 'fail', observedValue, output: `the memory cgroup is disabled${cmdlineDisables ? ' (the kernel command line has cgroup_disable=memory)' : ''}: Docker cannot limit memory and swarm services with memory limits or reservations fail`, fix };
  }
  return { id, status: 'pass', observedValue, output: 'memory cgroup enabled' };
}

export function checkClock(s: SystemState): DoctorCheck {
  const id = 'clock:synchronized';
  const fix = 'Run "sudo timedatectl set-ntp true" and check "timedatectl timesync-status": a Raspberry Pi has no battery-backed clock, so an NTP server (UDP 123) must be reachable. Swarm TLS certificates are rejected when clocks disagree.';
  const td = s.commands[CMD_TIMESYNC];
  if (td && td.exitCode === 0 && /^(yes|no)$/.test(td.stdout.trim())) {
    const synced = td.stdout.trim() === 'yes';
    return synced
      ? { id, status: 'pass', observedValue: true, output: 'system clock synchronised (timedatectl: NTPSynchronized=yes)' }
      : { id, status: 'fail', observedValue: false, output: 'system clock not synchronised (timedatectl: NTPSynchronized=no)', fix };
  }
  // Without timedatectl, systemd-timesyncd still leaves this flag file once it has synchronised.
  if (s.files[TIMESYNC_FLAG] != null) return { id, status: 'pass', observedValue: true, output: `system clock synchronised (${TIMESYNC_FLAG} present)` };
  return { id, status: 'warn', observedValue: null, output: `cannot tell whether the clock is synchronised (no answer from "${CMD_TIMESYNC}" and no ${TIMESYNC_FLAG})`, fix };
}

type ModuleState = 'loaded' | 'builtin' | 'loadable' | 'missing';

export function moduleState(s: SystemState, name: string): ModuleState {
  const loaded = (s.files[PROC_MODULES] ?? '').split('\n').some((l) => l.split(' ')[0] === name);
  if (loaded) return 'loaded';
  const ko = new RegExp(`(^|/)${name}\\.ko(\\.(xz|gz|zst))?(:|$)`, 'm');
  if (ko.test(s.files[modulesBuiltin(s.kernelRelease)] ?? '')) return 'builtin';
  const param = MODULE_PARAM_FILES[name];
  if (param && s.files[param] != null) return 'builtin';
  const dep = s.files[modulesDep(s.kernelRelease)] ?? '';
  if (dep.split('\n').some((l) => ko.test(l.split(':')[0] ?? ''))) return 'loadable';
  return 'missing';
}

export function checkModule(s: SystemState, name: 'vxlan' | 'ip_vs'): DoctorCheck {
  const id = `kernel:${name}`;
  const state = moduleState(s, name);
  const what = name === 'vxlan' ? 'overlay networks (VXLAN data path)' : 'the ingress routing mesh (IPVS load balancing)';
  const how = { loaded: 'loaded', builtin: 'built into the kernel', loadable: 'available as a module (loaded on demand)' } as const;
  if (state !== 'missing') return { id, status: 'pass', observedValue: state, output: `${name} ${how[state]}: ${what} can work` };
  const noTree = s.files[modulesDep(s.kernelRelease)] == null && s.files[modulesBuiltin(s.kernelRelease)] == null;
  const fix = `Run "sudo modprobe ${name}"; if it is not found, install the kernel's extra modules (Ubuntu: sudo apt install linux-modules-extra-raspi) and reboot.${noTree ? ` /lib/modules/${s.kernelRelease} is missing: there is no module tree for the running kernel (after a kernel upgrade, reboot).` : ''}`;
  // Without IPVS the swarm still forms and overlay networks work; only ingress-published ports do not route.
  return name === 'vxlan'
    ? { id, status: 'fail', observedValue: state, output: `kernel module vxlan is missing: ${what} cannot work, so services on different nodes cannot reach each other`, fix }
    : { id, status: 'warn', observedValue: state, output: `kernel module ip_vs is missing: ${what} will not answer; publish ports with mode=host instead`, fix };
}

export function checkDockerDaemon(s: SystemState): DoctorCheck {
  const id = 'docker:daemon-options';
  const text = s.files[DOCKER_DAEMON_JSON];
  if (text == null || text.trim() === '') return { id, status: 'pass', observedValue: null, output: `no ${DOCKER_DAEMON_JSON}: Docker defaults are swarm-compatible` };
  let opts: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    opts = v as Record<string, unknown>;
  } catch (err) {
    return { id, status: 'fail', observedValue: null, output: `${DOCKER_DAEMON_JSON} is not valid JSON (${(err as Error).message}): dockerd will not start`, fix: `Fix the JSON syntax in ${DOCKER_DAEMON_JSON}, then "sudo systemctl restart docker".` };
  }
  const observedValue = { 'live-restore': opts['live-restore'] ?? false, iptables: opts.iptables ?? true };
  if (opts['live-restore'] === true) {
    return { id, status: 'fail', observedValue, output: `"live-restore": true in ${DOCKER_DAEMON_JSON}: Docker refuses swarm mode with live restore enabled`, fix: `Remove "live-restore" from ${DOCKER_DAEMON_JSON} (or set it to false), then "sudo systemctl restart docker".` };
  }
  if (opts.iptables === false) {
    return { id, status: 'warn', observedValue, output: `"iptables": false in ${DOCKER_DAEMON_JSON}: overlay networks and published ports need Docker's iptables rules`, fix: `Remove "iptables": false from ${DOCKER_DAEMON_JSON}, then "sudo systemctl restart docker".` };
  }
  return { id, status: 'pass', observedValue, output: 'Docker daemon options are swarm-compatible' };
}

export interface SocketEntry {
  port: number;
  state: string; // hex st column: 0A = LISTEN, 07 = UDP unconnected
  inode: string;
}

/** /proc/net/{tcp,udp}[6]: "sl local_address rem_address st ... inode"; ports are hex. */
export function parseProcNet(text: string | null | undefined): SocketEntry[] {
  if (!text) return [];
  return text.split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 10).map((f) => ({
    port: parseInt(f[1]!.split(':').pop()!, 16),
    state: f[3]!,
    inode: f[9]!,
  }));
}

function owners(s: SystemState, entries: SocketEntry[]): { others: ProcessRef[]; unknown: number; ours: number } {
  const others: ProcessRef[] = [];
  let unknown = 0;
  let ours = 0;
  for (const e of entries) {
    const procs = s.socketOwners[e.inode] ?? [];
    if (procs.length === 0) unknown++;
    for (const p of procs) {
      if (s.agentPids.includes(p.pid)) ours++;
      else if (!others.some((o) => o.pid === p.pid)) others.push(p);
    }
  }
  return { others, unknown, ours };
}

const describe = (ps: ProcessRef[]) => ps.map((p) => `${p.comm} (pid ${p.pid})`).join(', ');

export function checkMdnsPort(s: SystemState): DoctorCheck {
  const id = 'mdns:port';
  if (section(agentConfig(s), 'discovery').mdns === false) return { id, status: 'pass', observedValue: null, output: 'mDNS discovery is disabled in the agent config (discovery.mdns=false)' };
  const entries = [...parseProcNet(s.files['/proc/net/udp']), ...parseProcNet(s.files['/proc/net/udp6'])].filter((e) => e.port === 5353);
  const o = owners(s, entries);
  const fix = MDNS_PORT_FIX;
  const observedValue = { sockets: entries.length, others: o.others, unknownOwners: o.unknown };
  if (o.others.length === 0 && o.unknown === 0) return { id, status: 'pass', observedValue, output: entries.length ? 'UDP 5353 is held only by the piswarm agent' : 'UDP 5353 is free for the agent' };
  if (o.others.length === 0) {
    return { id, status: 'warn', observedValue, output: `${o.unknown} socket(s) on UDP 5353 whose owner is unknown (run doctor as root to see process names)`, fix };
  }
  // avahi and the agent both set SO_REUSEADDR, so both receive queries, but two responders answer inconsistently.
  const onlyAvahi = o.others.every((p) => p.comm === 'avahi-daemon');
  return {
    id,
    status: onlyAvahi ? 'warn' : 'fail',
    observedValue,
    output: onlyAvahi
      ? `avahi-daemon also answers mDNS on UDP 5353 (${describe(o.others)}): peers may be discovered late or inconsistently`
      : `another program holds UDP 5353: ${describe(o.others)}; the agent's mDNS discovery may not receive peer adverts, or not bind the port at all (PISWARM_ERR_MDNS_BIND in its journal, a warning in /health discovery:peers)`,
    fix,
  };
}

interface Addr {
  iface: string;
  family: 'inet' | 'inet6';
  address: string;
}

/** `ip -o addr show`: "2: eth0    inet 192.168.1.10/24 brd ... scope global eth0\ ...". */
export function parseIpAddr(text: string): Addr[] {
  const out: Addr[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+(\S+?)(@\S+)?\s+(inet6?)\s+([0-9a-fA-F.:]+)\//.exec(line);
    if (m) out.push({ iface: m[1]!, family: m[3] as Addr['family'], address: m[4]! });
  }
  return out;
}

const EXCLUDED_IFACE = /^(lo|docker0|docker_gwbridge|veth.*|br-.*)$/;

function isLinkLocal(a: Addr): boolean {
  return a.family === 'inet' ? a.address.startsWith('169.254.') : /^fe[89ab]/i.test(a.address);
}

/** Interfaces with a default route in /proc/net/route, lowest metric first. */
function defaultRouteIfaces(text: string | null | undefined): string[] {
  return (text ?? '').split('\n').slice(1).map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 8 && f[1] === '00000000' && f[7] === '00000000')
    .sort((a, b) => Number(a[6]) - Number(b[6]))
    .map((f) => f[0]!);
}

export function checkAdvertiseAddress(s: SystemState): DoctorCheck {
  const id = 'network:advertise-address';
  const disc = section(agentConfig(s), 'discovery');
  if (typeof disc.advertiseAddress === 'string') return { id, status: 'pass', observedValue: disc.advertiseAddress, output: `advertise address set in the agent config: ${disc.advertiseAddress}` };
  if (typeof disc.interface === 'string') return { id, status: 'pass', observedValue: disc.interface, output: `advertise interface set in the agent config: ${disc.interface}` };
  const ip = s.commands[CMD_ADDRESSES];
  if (!ip || ip.exitCode !== 0) return { id, status: 'warn', observedValue: null, output: `cannot list addresses ("${CMD_ADDRESSES}" unavailable: install iproute2)` };
  const candidates = parseIpAddr(ip.stdout).filter((a) => a.family === 'inet' && !EXCLUDED_IFACE.test(a.iface) && !isLinkLocal(a));
  const observedValue = candidates.map((a) => `${a.address} (${a.iface})`);
  const fix = 'Set discovery.advertiseAddress (or discovery.interface) in /etc/piswarm/config.json, e.g. "discovery": { "interface": "eth0" }, then "sudo systemctl restart piswarm". Docker cannot choose among several addresses by itself (moby#25117).';
  if (candidates.length === 0) return { id, status: 'fail', observedValue, output: 'no IPv4 address to advertise (only loopback, Docker bridges or link-local): is the network up?', fix: 'Connect eth0 or configure Wi-Fi (netplan / NetworkManager), then check "ip addr".' };
  if (candidates.length === 1) return { id, status: 'pass', observedValue, output: `one candidate address: ${observedValue[0]}` };
  const route = defaultRouteIfaces(s.files[PROC_ROUTE])[0];
  const onRoute = candidates.filter((a) => a.iface === route);
  if (onRoute.length === 1) {
    return { id, status: 'warn', observedValue, output: `several candidate addresses (${observedValue.join(', ')}); the agent will use ${onRoute[0]!.address} on ${route} (default route)`, fix };
  }
  return { id, status: 'fail', observedValue, output: `ambiguous advertise address: ${observedValue.join(', ')}${route ? ` (default route via ${route})` : ' and no default route'}`, fix };
}

interface UfwRule {
  to: string;
  action: string;
}

/** Rules of `ufw status verbose` (IPv4 lines; the "(v6)" twins are ignored). */
function parseUfw(text: string): { active: boolean; defaultIncoming: string | null; rules: UfwRule[] } {
  const active = /^Status: active/m.test(text);
  const def = /^Default: (\w+) \(incoming\)/m.exec(text);
  const rules: UfwRule[] = [];
  let inTable = false;
  for (const line of text.split('\n')) {
    if (/^--/.test(line)) {
      inTable = true;
      continue;
    }
    if (!inTable || !line.trim() || line.includes('(v6)')) continue;
    const m = /^(.+?)\s{2,}(ALLOW(?: IN)?|DENY(?: IN)?|REJECT(?: IN)?|LIMIT(?: IN)?)\s+/.exec(line);
    if (m) rules.push({ to: m[1]!.trim(), action: m[2]!.split(' ')[0]! });
  }
  return { active, defaultIncoming: def ? def[1]! : null, rules };
}

/** Application profiles ufw ships that matter here. */
const UFW_APPS: Record<string, string[]> = { OpenSSH: ['22/tcp'] };

function ufwAllows(rules: UfwRule[], port: number, proto: string): boolean {
  for (const r of rules) {
    if (r.action !== 'ALLOW' && r.action !== 'LIMIT') continue;
    if (UFW_APPS[r.to]?.includes(`${port}/${proto}`)) return true;
    const m = /^(\d+)(?::(\d+))?(?:\/(tcp|udp))?$/.exec(r.to);
    if (!m) continue;
    const lo = Number(m[1]);
    const hi = m[2] ? Number(m[2]) : lo;
    if (port >= lo && port <= hi && (!m[3] || m[3] === proto)) return true;
  }
  return false;
}

export function checkFirewall(s: SystemState): DoctorCheck {
  const id = 'firewall:ports';
  const ufw = s.commands[CMD_UFW];
  if (ufw === null || ufw === undefined) return { id, status: 'pass', observedValue: null, output: 'ufw not installed' };
  if (ufw.exitCode !== 0) return { id, status: 'warn', observedValue: null, output: 'cannot read the ufw status (run doctor as root)' };
  const p = parseUfw(ufw.stdout);
  if (!p.active) return { id, status: 'pass', observedValue: { active: false }, output: 'ufw is inactive' };
  if (p.defaultIncoming === 'allow') return { id, status: 'pass', observedValue: { active: true, defaultIncoming: 'allow' }, output: 'ufw is active but allows incoming traffic by default' };
  // The agent serves HTTP on its port over TCP and gossips on the same number over UDP.
  const needed = [...SWARM_PORTS.map((x) => ({ port: x.port, proto: x.proto })), { port: agentPort(s), proto: 'tcp' }, { port: agentPort(s), proto: 'udp' }];
  const missing = needed.filter((n) => !ufwAllows(p.rules, n.port, n.proto)).map((n) => `${n.port}/${n.proto}`);
  if (missing.length === 0) return { id, status: 'pass', observedValue: { active: true, missing }, output: 'ufw allows every swarm, mDNS and agent port' };
  return { id, status: 'fail', observedValue: { active: true, missing }, output: `ufw is active and blocks ${missing.join(', ')}`, fix: missing.map((m) => `sudo ufw allow ${m}`).join('; ') };
}

export function checkAgentPort(s: SystemState): DoctorCheck {
  const id = 'agent:port';
  const port = agentPort(s);
  const listeners = [...parseProcNet(s.files['/proc/net/tcp']), ...parseProcNet(s.files['/proc/net/tcp6'])].filter((e) => e.port === port && e.state === '0A');
  const o = owners(s, listeners);
  const observedValue = { port, listeners: listeners.length, others: o.others };
  if (listeners.length === 0) return { id, status: 'pass', observedValue, output: `TCP ${port} is free (the agent is not listening yet)` };
  if (o.others.length > 0) {
    return { id, status: 'fail', observedValue, output: `TCP ${port} is taken by ${describe(o.others)}`, fix: `Stop that program, or move the agent with "http": { "port": N } in /etc/piswarm/config.json (every node must use the same port).` };
  }
  if (o.unknown > 0 && o.ours === 0) {
    return s.agentPids.length === 0
      ? { id, status: 'fail', observedValue, output: `TCP ${port} is taken by another program (the agent is not running; run doctor as root to see which)`, fix: `Find it with "sudo ss -ltnp 'sport = :${port}'" and stop it, or move the agent with "http": { "port": N }.` }
      : { id, status: 'warn', observedValue, output: `TCP ${port} has a listener whose owner is unknown (run doctor as root)` };
  }
  return { id, status: 'pass', observedValue, output: `TCP ${port} is held by the piswarm agent` };
}

export function checkNode(s: SystemState): DoctorCheck {
  const id = 'runtime:node';
  const out = s.commands[CMD_NODE];
  const fix = `Install Node.js >= ${MIN_NODE.join('.')} into /usr/local (e.g. the official linux-arm64 build): Debian bookworm and Ubuntu 24.04 ship 18.x.`;
  if (!out || out.exitCode !== 0) return { id, status: 'fail', observedValue: null, output: 'node is not on the PATH', fix };
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(out.stdout.trim());
  if (!m) return { id, status: 'warn', observedValue: out.stdout.trim(), output: `cannot parse the Node.js version "${out.stdout.trim()}"` };
  const [maj, min] = [Number(m[1]), Number(m[2])];
  const ok = maj > MIN_NODE[0] || (maj === MIN_NODE[0] && min >= MIN_NODE[1]);
  return ok
    ? { id, status: 'pass', observedValue: m[0], output: `Node.js ${m[0]}` }
    : { id, status: 'fail', observedValue: m[0], output: `Node.js ${m[0]} is too old for the agent (needs >= ${MIN_NODE.join('.')})`, fix };
}

/** Every check, in the order a user should fix them. Pure: usable as a /health check group. */
export function doctorChecks(state: SystemState): DoctorCheck[] {
  return [
    checkMemoryCgroup(state),
    checkClock(state),
    checkModule(state, 'vxlan'),
    checkModule(state, 'ip_vs'),
    checkDockerDaemon(state),
    checkMdnsPort(state),
    checkAdvertiseAddress(state),
    checkFirewall(state),
    checkAgentPort(state),
    checkNode(state),
  ];
}

export function overallStatus(checks: readonly DoctorCheck[]): 'pass' | 'warn' | 'fail' {
  return checks.some((c) => c.status === 'fail') ? 'fail' : checks.some((c) => c.status === 'warn') ? 'warn' : 'pass';
}
