/**
 * The registry node of a simulated cluster: the build machines reach no
 * image registry, and a real cluster pulls its images from one. Debian's
 * `docker-registry` (distribution 2.8) runs in a container built on the same
 * base as the simulated Pis, at a fixed address on the cluster's network
 * (REGISTRY_OCTET), named `<cluster>-registry`. It speaks plain HTTP on the
 * simulated LAN: each Pi's engine lists it under `insecure-registries`
 * (daemonJson, written at the node's creation). It keeps nothing: images live
 * in the container's own layer, removed with it by `down`.
 *
 * The host's engine pushes to it through a port published on 127.0.0.1 only
 * (dockerd treats 127.0.0.0/8 as insecure by default), so the host's own
 * daemon configuration is never touched.
 */
import { join } from 'node:path';
import { PiswarmError } from '../../shared/errors.js';
import { resolveBase, type SimOs } from './images.js';
import { docker, run } from './run.js';

/** The registry's host part on the cluster's /24; the nodes use .10 upwards, below it. */
export const REGISTRY_OCTET = 250;
export const REGISTRY_PORT = 5000;
/** A container of a cluster that is not a node (status() lists only nodes). */
export const LABEL_ROLE = 'io.piswarm.sim.role';

export const registryName = (cluster: string) => `${cluster}-registry`;
export const registryImage = (os: SimOs) => `piswarm/registry:sim-${os}`;

/** host:port the nodes pull from, e.g. "10.231.7.250:5000". */
export const registryAddress = (prefix: string) => `${prefix}${REGISTRY_OCTET}:${REGISTRY_PORT}`;

/** A simulated Pi's /etc/docker/daemon.json: pull over plain HTTP from its cluster's registry, nothing else. */
export function daemonJson(registry: string): string {
  return JSON.stringify({ 'insecure-registries': [registry] }, null, 2) + '\n';
}

export interface RegistryInfo {
  name: string;
  /** What the nodes use in image references: "10.231.7.250:5000". */
  address: string;
  /** What the host's engine pushes to: "127.0.0.1:<published port>". */
  hostAddress: string;
}

async function dockerBuild(root: string, dir: string, tag: string, base: string, what: string): Promise<void> {
  const r = await run('docker', ['build', '-q', '--build-arg', `BASE=${base}`, '-t', tag, join(root, 'scripts/sim', dir)], { timeoutMs: 15 * 60_000 });
  if (r.code !== 0) {
    throw new PiswarmError('PISWARM_ERR_DOCKER', `${what} ${tag} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n')}`);
  }
}

/**
 * Builds one of the simulator's small images from scripts/sim/<dir>/ on the
 * OS's base (the one the Pi image uses); Docker's layer cache makes a
 * rebuild of an unchanged one take about a second. Returns the tag.
 */
export async function buildSimImage(root: string, os: SimOs, dir: string, tag: string, log: (m: string) => void = () => {}): Promise<string> {
  const { base } = await resolveBase(root, log, undefined, os);
  const t0 = performance.now();
  await dockerBuild(root, dir, tag, base, 'image');
  log(`image ${tag}: ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  return tag;
}

/** The cluster's registry if its container exists and runs. */
export async function findRegistry(cluster: string, prefix: string): Promise<RegistryInfo | undefined> {
  const name = registryName(cluster);
  const r = await run('docker', ['inspect', '-f', '{{.State.Running}} {{range $p, $b := .NetworkSettings.Ports}}{{range $b}}{{.HostIp}}:{{.HostPort}}{{end}}{{end}}', name]);
  const [running, host] = r.stdout.trim().split(' ');
  if (r.code !== 0 || running !== 'true' || !host) return undefined;
  return { name, address: registryAddress(prefix), hostAddress: host };
}

/**
 * GET from the host; the status and body, or the error. The deadline is a
 * plain (ref'd) timer: AbortSignal.timeout's is unref'd, and a CLI process
 * whose only pending work is a fetch to a port that accepted but does not
 * answer yet exits with status 0 in the middle of its work.
 */
export async function httpText(url: string, timeoutMs: number): Promise<{ status: number; text: string; error?: string }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    const res = await fetch(url, { signal: ac.signal });
    return { status: res.status, text: await res.text() };
  } catch (err) {
    return { status: 0, text: '', error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until the registry answers its API's base endpoint (`GET /v2/` is 200). */
async function waitForRegistry(info: RegistryInfo, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    const r = await httpText(`http://${info.hostAddress}/v2/`, 2000);
    if (r.status === 200) return;
    last = r.error ?? `HTTP ${r.status}`;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', `registry ${info.name} did not answer GET /v2/ within ${timeoutMs} ms (${last})`);
}

export interface RegistryOptions {
  root: string;
  cluster: string;
  network: string;
  prefix: string;
  os: SimOs;
  /** Labels (`key=value`) that make `down` remove it with the cluster. */
  labels: readonly string[];
  log?: (m: string) => void;
}

/** Starts the cluster's registry unless it runs already (building its image if needed). */
export async function ensureRegistry(o: RegistryOptions): Promise<RegistryInfo> {
  const name = registryName(o.cluster);
  const found = await findRegistry(o.cluster, o.prefix);
  if (found) return found;
  const exists = (await run('docker', ['inspect', '-f', '{{.Id}}', name])).code === 0;
  if (exists) {
    await docker(['start', name]);
  } else {
    const image = await buildSimImage(o.root, o.os, 'registry-image', registryImage(o.os), o.log);
    await docker([
      'run', '-d', '--name', name, '--hostname', name, '--network', o.network, '--ip', `${o.prefix}${REGISTRY_OCTET}`,
      '-p', `127.0.0.1::${REGISTRY_PORT}`, ...[...o.labels, `${LABEL_ROLE}=registry`].flatMap((l) => ['--label', l]), image,
    ]);
  }
  const info = await findRegistry(o.cluster, o.prefix);
  if (!info) throw new PiswarmError('PISWARM_ERR_DOCKER', `registry container ${name} is not running (docker logs ${name})`);
  await waitForRegistry(info);
  o.log?.(`registry ${name} at ${info.address} (plain HTTP on the cluster network; host pushes via ${info.hostAddress})`);
  return info;
}
