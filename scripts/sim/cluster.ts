/**
 * The simulated Raspberry Pi cluster, as a library: every node is a container
 * booting systemd, its own Docker Engine and the agent installed by
 * scripts/install.sh. The CLI (main.ts) and the integration tests both drive
 * clusters through these functions.
 *
 * Everything created carries the label io.piswarm.sim.cluster=<name>, and
 * `down` removes exactly what carries it, so clusters coexist and nothing
 * else on the engine is touched.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_HTTP_PORT } from '../../shared/constants.js';
import { PiswarmError } from '../../shared/errors.js';
import { NODE_FLAGS } from './node-flags.js';
import { ensureImages, imageFacts, imagesFor, simOs, type ImageFacts, type ImageTimings, type SimOs } from './images.js';
import { daemonJson, ensureRegistry, REGISTRY_OCTET, registryAddress, type RegistryInfo } from './registry.js';
import { docker, run, type RunResult } from './run.js';
import { tar, type TarEntry } from './tar.js';

export const LABEL_CLUSTER = 'io.piswarm.sim.cluster';
export const LABEL_NODE = 'io.piswarm.sim.node';
export const LABEL_INDEX = 'io.piswarm.sim.index';
export const LABEL_IP = 'io.piswarm.sim.ip';
export const LABEL_PORT = 'io.piswarm.sim.port';
export const LABEL_OS = 'io.piswarm.sim.os';
export const LABEL_ENGINE = 'io.piswarm.sim.engine';
export const DEFAULT_CLUSTER = 'piswarm';
const NAME_RE = /^[a-z0-9][a-z0-9-]{0,40}$/;

/** One node as `status --json` prints it. The field names are a stable contract. */
export interface NodeStatus {
  name: string;
  cluster: string;
  containerId: string;
  /** The node's fixed address on its cluster network (kept while disconnected). */
  ip: string;
  apiUrl: string;
  running: boolean;
  /** Whether its network cable is plugged in (see disconnect/connect). */
  connected: boolean;
  /** The OS it was created from: "trixie" or "bookworm" (images.ts SIM_OSES). */
  os: string;
  /**
   * The Docker Engine its image holds ("26.1.5+dfsg1"), or null for a node
   * created without one (a card whose first boot installs it).
   */
  engine: string | null;
}

export interface ClusterRef {
  /** Cluster name (default `piswarm`): [a-z0-9-], at most 41 characters. */
  name?: string;
  /** Repository root; found from this file's location when absent. */
  root?: string;
  log?: (msg: string) => void;
}

export interface NodeOptions extends ClusterRef {
  /**
   * Cluster key for the nodes this call creates; default: the cluster's own key
   * in .sim/<name>/cluster.key. Nodes that already exist keep theirs.
   */
  clusterKey?: string;
  /**
   * Extra lines for /etc/piswarm/env (read by the unit's EnvironmentFile=) of the
   * nodes this call creates. Nodes that already exist keep theirs, as a flashed card does.
   */
  env?: Record<string, string>;
  /** How long to wait for every agent to answer /health (default 120 s). */
  timeoutMs?: number;
  /** Skip image preparation (the caller already ran ensureImages). */
  skipImages?: boolean;
  /** The OS of the nodes this call creates; default: simOs() (PISWARM_SIM_OS, else trixie). */
  os?: SimOs;
}

export interface UpOptions extends NodeOptions {
  nodes: number;
}

export interface UpResult {
  cluster: string;
  network: string;
  subnet: string;
  nodes: NodeStatus[];
  /** Names of the nodes this call created or started. */
  started: string[];
  images?: ImageTimings;
  /** Host CLOCK_MONOTONIC (µs) when the first container was started; see bootPhases(). */
  startedAtUs: number;
  /** From the first `docker start` to every agent answering /health. */
  bootMs: number;
}

export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new PiswarmError('PISWARM_ERR_TOOL_MISSING', 'cannot find the repository root (package.json)');
    dir = up;
  }
  return dir;
}

function clusterName(ref: ClusterRef): string {
  const name = ref.name ?? DEFAULT_CLUSTER;
  if (!NAME_RE.test(name)) {
    throw new PiswarmError('PISWARM_ERR_BAD_REQUEST', `cluster name "${name}" must match ${NAME_RE.source}`);
  }
  return name;
}

export const networkName = (cluster: string) => `piswarm-sim-${cluster}`;
const nodeName = (cluster: string, index: number) => `${cluster}-${index}`;
const volumeName = (node: string) => `${node}-var-lib-docker`;
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

/** Polls `condition` until it returns a value other than undefined/false, or throws once the deadline passes. */
export async function waitFor<T>(
  condition: () => Promise<T | undefined | false> | T | undefined | false,
  deadline: { timeoutMs: number; what: string; intervalMs?: number },
): Promise<T> {
  const end = Date.now() + deadline.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await condition();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= end) {
      const why = last instanceof Error ? `: last error: ${last.message}` : '';
      throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', `timed out after ${deadline.timeoutMs} ms waiting for ${deadline.what}${why}`);
    }
    await new Promise((r) => setTimeout(r, deadline.intervalMs ?? 250));
  }
}

/** The host-side state of a cluster: .sim/<name>/ in the repository (git-ignored); `down` removes it. */
export function stateDir(ref: ClusterRef): string {
  return join(ref.root ?? repoRoot(), '.sim', clusterName(ref));
}

/** The cluster's own key: generated once, kept in .sim/<name>/cluster.key; gone with `down`. */
export async function clusterKey(ref: ClusterRef): Promise<string> {
  const file = join(stateDir(ref), 'cluster.key');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const key = randomBytes(32).toString('base64url');
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(file, key + '\n', { mode: 0o600, flag: 'wx' }).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    return (await readFile(file, 'utf8')).trim();
  }
}

interface NetworkInfo {
  name: string;
  subnet: string;
  prefix: string; // "10.231.X."
}

async function findNetwork(cluster: string): Promise<NetworkInfo | undefined> {
  const name = networkName(cluster);
  const r = await run('docker', ['network', 'inspect', name, '--format', '{{range .IPAM.Config}}{{.Subnet}}{{end}}']);
  if (r.code !== 0) return undefined;
  const subnet = r.stdout.trim();
  return { name, subnet, prefix: subnet.replace(/0\/24$/, '') };
}

/**
 * A user-defined bridge per cluster (mDNS multicast crosses it; the host has
 * the .1 address on it and reaches every node). Its /24 is chosen from
 * 10.231.0.0/16 by the cluster name's hash, stepping on when taken, so it can
 * clash neither with the engine's default pools (172.17+, which the nodes'
 * own engines use for docker0 and docker_gwbridge) nor with another cluster.
 */
async function ensureNetwork(cluster: string): Promise<NetworkInfo> {
  const existing = await findNetwork(cluster);
  if (existing) return existing;
  const start = createHash('sha256').update(cluster).digest()[0]!;
  for (let i = 0; i < 64; i++) {
    const x = (start + i) % 256;
    const subnet = `10.231.${x}.0/24`;
    const r = await run('docker', [
      'network', 'create', '--driver', 'bridge', '--subnet', subnet, '--gateway', `10.231.${x}.1`,
      '--label', `${LABEL_CLUSTER}=${cluster}`, networkName(cluster),
    ]);
    if (r.code === 0) return { name: networkName(cluster), subnet, prefix: `10.231.${x}.` };
    if (/already exists/.test(r.stderr)) return (await findNetwork(cluster))!;
    if (!/overlap/i.test(r.stderr)) throw new PiswarmError('PISWARM_ERR_DOCKER', `docker network create failed: ${r.stderr.trim()}`);
  }
  throw new PiswarmError('PISWARM_ERR_DOCKER', 'no free /24 left in 10.231.0.0/16 for a simulated cluster network');
}

interface Inspected {
  Id: string;
  Name: string;
  State: { Running: boolean };
  Config: { Labels: Record<string, string> };
  NetworkSettings: { Networks: Record<string, unknown> };
}

/** The nodes (containers with LABEL_NODE; not the cluster's registry) carrying a label. */
async function inspectNodes(filterLabel: string): Promise<Inspected[]> {
  const ids = (await docker(['ps', '-aq', '--filter', `label=${filterLabel}`, '--filter', `label=${LABEL_NODE}`])).split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  return JSON.parse(await docker(['inspect', ...ids])) as Inspected[];
}

function toStatus(c: Inspected): NodeStatus {
  const l = c.Config.Labels;
  const cluster = l[LABEL_CLUSTER]!;
  const ip = l[LABEL_IP] ?? '';
  return {
    name: l[LABEL_NODE] ?? c.Name.replace(/^\//, ''),
    cluster,
    containerId: c.Id,
    ip,
    apiUrl: `http://${ip}:${l[LABEL_PORT] ?? DEFAULT_HTTP_PORT}`,
    running: c.State.Running,
    connected: networkName(cluster) in c.NetworkSettings.Networks,
    os: l[LABEL_OS] ?? '',
    engine: l[LABEL_ENGINE] || null,
  };
}

/** The cluster a simulated node belongs to (from its label), or undefined for any other container or none. */
export async function clusterOf(node: string): Promise<string | undefined> {
  const r = await run('docker', ['inspect', '-f', `{{index .Config.Labels "${LABEL_CLUSTER}"}}`, node]);
  const name = r.stdout.trim();
  return r.code === 0 && name && name !== '<no value>' ? name : undefined;
}

/** Every node of a cluster, in creation order. */
export async function status(ref: ClusterRef = {}): Promise<NodeStatus[]> {
  const cluster = clusterName(ref);
  const nodes = await inspectNodes(`${LABEL_CLUSTER}=${cluster}`);
  const index = (c: Inspected) => Number(c.Config.Labels[LABEL_INDEX] ?? 0);
  return nodes.sort((a, b) => index(a) - index(b)).map(toStatus);
}

async function node(ref: ClusterRef, name: string): Promise<NodeStatus> {
  const found = (await status(ref)).find((n) => n.name === name);
  if (!found) throw new PiswarmError('PISWARM_ERR_NOT_FOUND', `no node "${name}" in cluster "${clusterName(ref)}"`);
  return found;
}

function envFile(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new PiswarmError('PISWARM_ERR_BAD_REQUEST', `invalid environment variable name "${k}"`);
      // systemd.exec(5) EnvironmentFile= quoting: double quotes, backslash escapes.
      return `${k}="${v.replace(/[\\"]/g, (c) => '\\' + c).replace(/\n/g, '\\n')}"\n`;
    })
    .join('');
}

const factsCache = new Map<string, Promise<ImageFacts>>();
const factsOf = (image: string) => {
  let f = factsCache.get(image);
  if (!f) factsCache.set(image, (f = imageFacts(image)));
  f.catch(() => factsCache.delete(image));
  return f;
};

interface ContainerSpec {
  image: string;
  port: string;
  os: string;
  engine?: string;
  hostname?: string;
}

/** Creates (not starts) the container of one node: labels, fixed address, its own /var/lib/docker volume. */
async function createContainer(cluster: string, net: NetworkInfo, index: number, spec: ContainerSpec): Promise<string> {
  const name = nodeName(cluster, index);
  const ip = `${net.prefix}${10 + index}`;
  if (10 + index >= REGISTRY_OCTET) throw new PiswarmError('PISWARM_ERR_BAD_REQUEST', `a simulated cluster holds at most ${REGISTRY_OCTET - 11} nodes`);
  const labels = [
    `${LABEL_CLUSTER}=${cluster}`, `${LABEL_NODE}=${name}`, `${LABEL_INDEX}=${index}`, `${LABEL_IP}=${ip}`, `${LABEL_PORT}=${spec.port}`,
    `${LABEL_OS}=${spec.os}`, ...(spec.engine ? [`${LABEL_ENGINE}=${spec.engine}`] : []),
  ].flatMap((l) => ['--label', l]);
  await docker(['volume', 'create', ...labels.slice(0, 4), volumeName(name)]);
  await docker([
    'create', '--name', name, '--hostname', spec.hostname ?? name, '--network', net.name, '--ip', ip, ...labels,
    ...NODE_FLAGS, '-v', `${volumeName(name)}:/var/lib/docker`, spec.image,
  ]);
  return name;
}

const copyInto = (name: string, dir: string, files: readonly TarEntry[]) => docker(['cp', '-', `${name}:${dir}`], { input: tar(files) });

/** Copies files into a directory of a node (created or running), with exact modes and numeric owners. */
export async function copyFiles(ref: ClusterRef, name: string, dir: string, files: readonly TarEntry[]): Promise<void> {
  await node(ref, name);
  await copyInto(name, dir, files);
}

/** Creates (not starts) one node with its /etc/piswarm filled in, as an SD card flashed before first boot. */
async function createNode(cluster: string, net: NetworkInfo, index: number, key: string, env: Record<string, string>, os: SimOs): Promise<string> {
  const image = imagesFor(os).pi;
  const imageId = (await docker(['image', 'inspect', '-f', '{{.Id}}', image])).trim();
  const { gid, engine } = await factsOf(imageId);
  const name = await createContainer(cluster, net, index, { image, port: env.PISWARM_HTTP_PORT ?? String(DEFAULT_HTTP_PORT), os, engine });
  const config = { clusterName: cluster, clusterKeyFile: '/etc/piswarm/cluster.key', stateDir: '/var/lib/piswarm' };
  await copyInto(name, '/etc/piswarm', [
    // Same modes and owners as install.sh gives them on a Pi.
    { name: 'config.json', content: JSON.stringify(config, null, 2) + '\n', mode: 0o640, uid: 0, gid },
    { name: 'cluster.key', content: key + '\n', mode: 0o640, uid: 0, gid },
    { name: 'env', content: envFile(env), mode: 0o600, uid: 0, gid: 0 },
  ]);
  // The engine pulls from the cluster's registry node over plain HTTP (registry.ts).
  await copyInto(name, '/etc', [{ name: 'docker/daemon.json', content: daemonJson(registryAddress(net.prefix)), mode: 0o644, uid: 0, gid: 0 }]);
  return name;
}

export interface BareNodeOptions extends ClusterRef {
  /** An image without the agent, e.g. FIRSTBOOT_IMAGE (images.ts). */
  image: string;
  /** The hostname it boots with before anything renames it (a Pi image's stock one). */
  hostname?: string;
  /** The agent port its provisioning will configure (for status and apiUrl). */
  port?: number;
  /** The OS of its image (for status). */
  os?: SimOs;
}

/**
 * Creates (not starts) one more node of a running cluster from another image
 * and with nothing in /etc/piswarm: a Pi whose card carries only what its
 * first boot provisions (put the files there with copyFiles, then start it).
 */
export async function createBare(opts: BareNodeOptions): Promise<NodeStatus> {
  const cluster = clusterName(opts);
  const net = await findNetwork(cluster);
  if (!net) throw new PiswarmError('PISWARM_ERR_NOT_FOUND', `cluster "${cluster}" is not up (run \`up\` first)`);
  const name = await createContainer(cluster, net, await nextIndex(opts), {
    image: opts.image, port: String(opts.port ?? DEFAULT_HTTP_PORT), os: simOs(opts.os), hostname: opts.hostname,
  });
  return node(opts, name);
}

async function nextIndex(ref: ClusterRef): Promise<number> {
  const cluster = clusterName(ref);
  return (await status(ref)).reduce((m, n) => Math.max(m, Number(n.name.slice(cluster.length + 1)) || 0), 0) + 1;
}

/** Whether the agent at `apiUrl` answers /health at all (any HTTP status counts: it answered). */
export async function healthAnswers(apiUrl: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const res = await fetch(`${apiUrl}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

async function waitForAgents(ref: ClusterRef, names: readonly string[], timeoutMs: number): Promise<void> {
  const nodes = (await status(ref)).filter((n) => names.includes(n.name));
  const pending = new Set(nodes.map((n) => n.name));
  const failed = new Map<string, string>();
  let polls = 0;
  try {
    await waitFor(
      async () => {
        const check = ++polls % 15 === 0; // every ~3 s: has systemd given up on the unit?
        await Promise.all(nodes.filter((n) => pending.has(n.name)).map(async (n) => {
          if (await healthAnswers(n.apiUrl, 1000)) pending.delete(n.name);
          else if (check && (await run('docker', ['exec', n.name, 'systemctl', 'is-failed', '--quiet', 'piswarm'])).code === 0) {
            failed.set(n.name, await logs(ref, n.name, { lines: 15 }));
          }
        }));
        // A unit systemd has given up on will not answer: stop waiting at once.
        return pending.size === 0 || failed.size > 0;
      },
      { timeoutMs, what: `the agents to answer /health`, intervalMs: 200 },
    );
  } catch (err) {
    const why = await Promise.all([...pending].map(async (name) => `--- ${name}: ${await bootProblem(name)}`));
    throw new PiswarmError('PISWARM_ERR_UNAVAILABLE',
      `${[...pending].join(', ')} did not answer /health within ${timeoutMs} ms (see \`npm run sim -- logs NODE\`)\n${why.join('\n')}`, { cause: err });
  }
  if (failed.size > 0) {
    throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', `piswarm.service failed on ${[...failed.keys()].join(', ')}; last journal lines:\n` +
      [...failed].map(([name, text]) => `--- ${name}\n${text}`).join('\n'));
  }
}

/**
 * Why a node's agent does not answer, as far as the node can tell: a
 * container that exited (systemd refusing to boot, e.g. a systemd that will
 * not run on this host's cgroup hierarchy) shows its console's last lines;
 * a running one its systemd state, taint flags and failed units.
 */
async function bootProblem(name: string): Promise<string> {
  const state = await run('docker', ['inspect', '-f', '{{.State.Running}} {{.State.ExitCode}}', name]);
  const [running, exitCode] = state.stdout.trim().split(' ');
  if (running !== 'true') {
    const console = await run('docker', ['logs', '--tail', '15', name]);
    return `the container stopped (exit ${exitCode}); its console's last lines:\n${(console.stdout + console.stderr).trim()}`;
  }
  const r = await run('docker', ['exec', name, 'sh', '-c',
    'echo "systemd: $(systemctl is-system-running) (tainted: $(systemctl show -p Tainted --value))"; systemctl --no-pager --failed --plain --no-legend'], { timeoutMs: 10_000 });
  return (r.stdout + r.stderr).trim();
}

async function startNodes(ref: ClusterRef, names: readonly string[], timeoutMs: number): Promise<{ startedAtUs: number; bootMs: number }> {
  const startedAtUs = nowUs();
  const t0 = performance.now();
  if (names.length > 0) {
    await docker(['start', ...names]);
    await waitForAgents(ref, names, timeoutMs);
  }
  return { startedAtUs, bootMs: performance.now() - t0 };
}

/** Creates the network and image if missing, powers on nodes until `nodes` exist and run, and waits for every agent. */
export async function up(opts: UpOptions): Promise<UpResult> {
  const cluster = clusterName(opts);
  const root = opts.root ?? repoRoot();
  const log = opts.log ?? (() => {});
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1) throw new PiswarmError('PISWARM_ERR_BAD_REQUEST', '--nodes must be a positive integer');
  const os = simOs(opts.os);
  const images = opts.skipImages ? undefined : await ensureImages({ root, log, os });
  const net = await ensureNetwork(cluster);
  await ensureRegistry({ root, cluster, network: net.name, prefix: net.prefix, os, labels: [`${LABEL_CLUSTER}=${cluster}`], log });
  const key = opts.clusterKey ?? (await clusterKey({ ...opts, root }));
  const existing = await status(opts);
  const toStart = existing.filter((n) => !n.running).map((n) => n.name);
  let next = await nextIndex(opts);
  for (let count = existing.length; count < opts.nodes; count++) {
    toStart.push(await createNode(cluster, net, next++, key, opts.env ?? {}, os));
  }
  log(`starting ${toStart.length} node(s) of cluster ${cluster} on ${net.subnet}`);
  const boot = await startNodes(opts, toStart, opts.timeoutMs ?? 120_000);
  return { cluster, network: net.name, subnet: net.subnet, nodes: await status(opts), started: toStart, images, ...boot };
}

/**
 * The cluster's registry node (registry.ts), started again if it was stopped;
 * `up` creates it. The OS of its image is that of the cluster's first node.
 */
export async function registry(ref: ClusterRef): Promise<RegistryInfo> {
  const cluster = clusterName(ref);
  const net = await findNetwork(cluster);
  const nodes = await status(ref);
  if (!net || nodes.length === 0) throw new PiswarmError('PISWARM_ERR_NOT_FOUND', `cluster "${cluster}" is not up (run \`npm run sim -- up --nodes N --name ${cluster}\` first)`);
  return ensureRegistry({
    root: ref.root ?? repoRoot(), cluster, network: net.name, prefix: net.prefix, os: simOs(nodes[0]!.os || undefined), labels: [`${LABEL_CLUSTER}=${cluster}`], log: ref.log,
  });
}

/** Powers on one more node (e.g. with another cluster key, to test a stranger). */
export async function add(opts: NodeOptions = {}): Promise<NodeStatus> {
  const cluster = clusterName(opts);
  const net = await findNetwork(cluster);
  if (!net) throw new PiswarmError('PISWARM_ERR_NOT_FOUND', `cluster "${cluster}" is not up (run \`up\` first)`);
  const os = simOs(opts.os);
  if (!opts.skipImages) await ensureImages({ root: opts.root ?? repoRoot(), log: opts.log, os });
  const key = opts.clusterKey ?? (await clusterKey(opts));
  const name = await createNode(cluster, net, await nextIndex(opts), key, opts.env ?? {}, os);
  await startNodes(opts, [name], opts.timeoutMs ?? 120_000);
  return node(opts, name);
}

export interface PowerOptions extends ClusterRef {
  /** For start/restart: wait until the agent answers again (default true). */
  wait?: boolean;
  timeoutMs?: number;
}

/** Clean shutdown (systemd receives SIGRTMIN+3 and stops every unit). */
export async function stop(ref: PowerOptions, name: string): Promise<void> {
  await node(ref, name);
  await docker(['stop', '-t', '30', name]);
}

/** Power on a stopped node. */
export async function start(ref: PowerOptions, name: string): Promise<void> {
  await node(ref, name);
  await docker(['start', name]);
  if (ref.wait !== false) await waitForAgents(ref, [name], ref.timeoutMs ?? 120_000);
}

/** Power cut: SIGKILL to the whole node, no shutdown of any kind. */
export async function kill(ref: ClusterRef, name: string): Promise<void> {
  await node(ref, name);
  await docker(['kill', '--signal', 'KILL', name]);
}

/** Reboot: clean shutdown, then boot again (the disk, /var/lib/docker and /var/lib/piswarm, persists). */
export async function restart(ref: PowerOptions, name: string): Promise<void> {
  await node(ref, name);
  await docker(['restart', '-t', '30', name]);
  if (ref.wait !== false) await waitForAgents(ref, [name], ref.timeoutMs ?? 120_000);
}

/** Cable pulled: the node loses its only LAN interface. */
export async function disconnect(ref: ClusterRef, name: string): Promise<void> {
  const n = await node(ref, name);
  if (n.connected) await docker(['network', 'disconnect', networkName(n.cluster), name]);
}

/** Cable plugged back in, with the same address (a DHCP reservation on a real LAN). */
export async function connect(ref: ClusterRef, name: string): Promise<void> {
  const n = await node(ref, name);
  if (!n.connected) await docker(['network', 'connect', '--ip', n.ip, networkName(n.cluster), name]);
}

/** Runs a command inside a node; never throws for a non-zero exit. */
export async function exec(ref: ClusterRef, name: string, cmd: readonly string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
  await node(ref, name);
  return run('docker', ['exec', ...(opts.input === undefined ? [] : ['-i']), name, ...cmd], opts);
}

/** The agent's journal on a node (`journalctl -u piswarm`). */
export async function logs(ref: ClusterRef, name: string, opts: { lines?: number; priority?: string } = {}): Promise<string> {
  const args = ['journalctl', '-u', 'piswarm', '--no-pager', '-o', 'short-iso'];
  if (opts.lines) args.push('-n', String(opts.lines));
  if (opts.priority) args.push('-p', opts.priority);
  const r = await exec(ref, name, args);
  return r.stdout + r.stderr;
}

export interface BootPhases {
  node: string;
  /** From `docker start` to systemd (PID 1) running. */
  containerMs: number;
  /** To docker.service active (the inner dockerd sent READY=1). */
  dockerdMs: number;
  /** To piswarm.service active (the agent sent READY=1). */
  agentMs: number;
}

/**
 * Splits a fresh boot into phases from systemd's own CLOCK_MONOTONIC
 * timestamps: a container shares the host's monotonic clock, so they compare
 * directly with `startedAtUs` and cost no polling during the boot.
 */
export async function bootPhases(ref: ClusterRef, name: string, startedAtUs: number): Promise<BootPhases> {
  const r = await exec(ref, name, [
    'sh', '-c',
    'systemctl show -p UserspaceTimestampMonotonic --value; ' +
      'systemctl show -p ActiveEnterTimestampMonotonic --value docker.service; ' +
      'systemctl show -p ActiveEnterTimestampMonotonic --value piswarm.service',
  ]);
  const [pid1, dockerd, agent] = r.stdout.trim().split('\n').map(Number);
  const ms = (us: number | undefined) => (us && us > 0 ? (us - startedAtUs) / 1000 : NaN);
  return { node: name, containerMs: ms(pid1), dockerdMs: ms(dockerd), agentMs: ms(agent) };
}

/**
 * Removes every container, volume and network of the cluster (or of every
 * simulated cluster), and the host-side state dir .sim/<name>/ of each
 * cluster it removes, and nothing else.
 */
export async function down(ref: ClusterRef & { all?: boolean } = {}): Promise<{ containers: number; volumes: number; networks: number }> {
  const filter = `label=${ref.all ? LABEL_CLUSTER : `${LABEL_CLUSTER}=${clusterName(ref)}`}`;
  const clusters = new Set<string>(ref.all ? [] : [clusterName(ref)]);
  // One line per object: its id (or volume name), then its cluster label.
  const list = async (kind: string[], id: string) => {
    const lines = (await docker([...kind, '--filter', filter, '--format', `{{${id}}} {{.Label "${LABEL_CLUSTER}"}}`])).split('\n').filter(Boolean);
    return lines.map((l) => {
      const [obj, cluster] = l.split(' ');
      if (cluster && NAME_RE.test(cluster)) clusters.add(cluster);
      return obj!;
    });
  };
  const containers = await list(['ps', '-a'], '.ID');
  // -t 0 via kill: down is a teardown, the nodes' shutdown is of no interest.
  if (containers.length) await docker(['rm', '-f', '-v', ...containers]);
  const volumes = await list(['volume', 'ls'], '.Name');
  if (volumes.length) await docker(['volume', 'rm', ...volumes]);
  const networks = await list(['network', 'ls'], '.ID');
  if (networks.length) await docker(['network', 'rm', ...networks]);
  for (const cluster of clusters) {
    const dir = stateDir({ ...ref, name: cluster });
    if (!existsSync(dir)) continue;
    await rm(dir, { recursive: true, force: true });
    ref.log?.(`removed ${join('.sim', cluster)}/ (its cluster key)`);
  }
  return { containers: containers.length, volumes: volumes.length, networks: networks.length };
}
