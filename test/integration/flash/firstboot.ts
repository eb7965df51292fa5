/**
 * A flashed Pi's first boot in the simulator, shared by firstboot.test.ts and
 * bench/firstboot.ts. The real `piswarm flash` writes the synthetic disk
 * image (disk-image.ts); the boot partition's files are read back with mtools
 * and copied into /boot/firmware of a node made from the firstboot image (no
 * engine, no node, no agent), which then powers on: cloud-init finds the
 * files (NoCloud), installs docker.io from Debian's mirror and runs the
 * first-boot script, which installs the agent from the release on the card
 * and starts it; the agent joins the running cluster by itself.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterCreateCommand } from '../../../agent/cli/cluster.js';
import type { CommandContext } from '../../../agent/cli/command.js';
import { flashCommand } from '../../../agent/cli/flash.js';
import { BOOT_NODE_FILE, FIRSTBOOT_LOG } from '../../../agent/provision/cloud-init.js';
import { readClusterFile, type ClusterFile } from '../../../agent/provision/cluster-file.js';
import * as sim from '../../../scripts/sim/cluster.js';
import { imagesFor, simOs, type SimOs } from '../../../scripts/sim/images.js';
import type { TarEntry } from '../../../scripts/sim/tar.js';
import { nodeLs } from '../healing/swarm.js';
import { BOOT_START_SECTOR, buildPiImage, mtoolsList, mtoolsRead } from './disk-image.js';

export const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMXKI+em0xPmU3KCqiEL4HUWfAHOGvUDZBgRQ+DCu4qn test@piswarm';
/** The hostname a stock Raspberry Pi OS image boots with; cloud-init replaces it. */
export const STOCK_HOSTNAME = 'raspberrypi';

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

function ctx(argv: string[], cwd: string): CommandContext & { output: string[] } {
  const output: string[] = [];
  return { argv, env: {}, cwd, output, out: (s) => output.push(s), err: (s) => output.push(s), confirm: async () => false };
}

/** `piswarm cluster create NAME --size N` in `dir`; returns the file's path and contents. */
export async function createClusterFile(dir: string, name: string, size: number): Promise<{ path: string; cluster: ClusterFile }> {
  const c = ctx([name, '--size', String(size), '--out', 'cluster.json'], dir);
  const code = await clusterCreateCommand.run(c);
  if (code !== 0) throw new Error(`piswarm cluster create exited ${code}: ${c.output.join('\n')}`);
  const path = join(dir, 'cluster.json');
  return { path, cluster: readClusterFile(path) };
}

/**
 * Flashes the synthetic Pi image to a card image with `piswarm flash` and
 * returns the boot partition's files, as a Pi mounts them at /boot/firmware
 * (vfat, root-owned, 0755).
 */
export async function flashCard(dir: string, opts: { clusterFile: string; hostname: string; release: string; nodeBinary?: string }): Promise<TarEntry[]> {
  const { path: image } = buildPiImage(dir);
  const card = join(dir, 'card.img');
  writeFileSync(join(dir, 'id.pub'), `${SSH_KEY}\n`);
  const c = ctx(['--image', image, '--target', card, '--cluster', opts.clusterFile, '--hostname', opts.hostname, '--ssh-key', 'id.pub', '--release', opts.release, '--timezone', 'Europe/Berlin'], dir);
  const code = await flashCommand.run(c);
  if (code !== 0) throw new Error(`piswarm flash exited ${code}: ${c.output.join('\n')}`);
  const offset = BOOT_START_SECTOR * 512;
  const files: TarEntry[] = mtoolsList(card, offset).map((name) => ({ name, content: mtoolsRead(card, offset, name), mode: 0o755, uid: 0, gid: 0 }));
  // `piswarm flash --node` takes only a linux-arm64 binary (a real Pi's) and
  // this simulated Pi is x86-64, so its node goes onto the card here, under the
  // name flash gives it; the first-boot script installs it from there. Only
  // where the OS's own nodejs is too old (bookworm): trixie's is used as it is.
  if (opts.nodeBinary) files.push({ name: BOOT_NODE_FILE, content: readFileSync(opts.nodeBinary), mode: 0o755, uid: 0, gid: 0 });
  return files;
}

/** A node of the cluster made from the OS's firstboot image, powered off, with no card yet (its name is the hostname to flash). */
export function createUnflashed(ref: sim.ClusterRef, os = simOs()): Promise<sim.NodeStatus> {
  return sim.createBare({ ...ref, image: imagesFor(os).firstboot, hostname: STOCK_HOSTNAME, os });
}

/** Puts the card in and powers on; returns the host's CLOCK_MONOTONIC (µs) at power-on. */
export async function powerOn(ref: sim.ClusterRef, name: string, card: readonly TarEntry[]): Promise<number> {
  await sim.copyFiles(ref, name, '/boot/firmware', card);
  const startedAtUs = nowUs();
  await sim.start({ ...ref, wait: false }, name);
  return startedAtUs;
}

/** Waits until `hostname` is Ready in `docker node ls` on `manager`; returns the host's CLOCK_MONOTONIC (µs) when it was seen. */
export async function waitReady(ref: sim.ClusterRef, manager: string, hostname: string, timeoutMs: number): Promise<number> {
  return sim.waitFor(async () => {
    const ls = await nodeLs(ref, [manager]);
    return ls?.some((n) => n.hostname === hostname && n.status === 'Ready') ? nowUs() : undefined;
  }, { timeoutMs, what: `${hostname} Ready in docker node ls on ${manager}`, intervalMs: 250 });
}

export interface FirstbootPhases {
  /** To systemd (PID 1) running. */
  systemdMs: number;
  /** To cloud-config.service done: datasource found, hostname, users, ssh keys, write_files, ntp, timezone. */
  cloudConfigMs: number;
  /** To docker.service active: apt-get update + install docker.io iw (cloud-final's package module). */
  dockerMs: number;
  /** To piswarm.service active: the first-boot script installed the agent and it sent READY=1. */
  agentMs: number;
  /** To cloud-final.service done (the first-boot script returned). */
  cloudFinalMs: number;
  /** How long the first-boot script itself ran (its "done in N s", whole seconds). */
  scriptMs: number;
  /** To Ready in `docker node ls` on the manager. */
  readyMs: number;
}

/**
 * The first boot's phases from systemd's own CLOCK_MONOTONIC timestamps,
 * which a container shares with the host, so they compare with startedAtUs.
 */
export async function firstbootPhases(ref: sim.ClusterRef, name: string, startedAtUs: number, readyAtUs: number): Promise<FirstbootPhases> {
  const units = ['cloud-config.service', 'docker.service', 'piswarm.service', 'cloud-final.service'];
  const r = await sim.exec(ref, name, ['sh', '-c', `systemctl show -p UserspaceTimestampMonotonic --value; for u in ${units.join(' ')}; do systemctl show -p ActiveEnterTimestampMonotonic --value "$u"; done; ` +
    `sed -n 's/^piswarm-firstboot: done in \\([0-9]*\\) s:.*/\\1/p' ${FIRSTBOOT_LOG}`]);
  const [pid1, config, docker, agent, final, script] = r.stdout.trim().split('\n').map((l) => (l === '' ? NaN : Number(l)));
  const ms = (us: number | undefined) => (us && us > 0 ? (us - startedAtUs) / 1000 : NaN);
  return { systemdMs: ms(pid1), cloudConfigMs: ms(config), dockerMs: ms(docker), agentMs: ms(agent), cloudFinalMs: ms(final), scriptMs: (script ?? NaN) * 1000, readyMs: ms(readyAtUs) };
}

export function describePhases(p: FirstbootPhases): string {
  const s = (ms: number) => (ms / 1000).toFixed(1);
  return `power-on -> systemd ${s(p.systemdMs)} s, cloud-config ${s(p.cloudConfigMs)} s, docker.io installed ${s(p.dockerMs)} s, ` +
    `agent ready ${s(p.agentMs)} s (the first-boot script ran ${s(p.scriptMs)} s of it), cloud-final ${s(p.cloudFinalMs)} s, Ready in docker node ls ${s(p.readyMs)} s`;
}

/**
 * The whole first boot on a running cluster: a new powered-off node, its card
 * flashed for its name, inserted, powered on, until `manager` lists it Ready.
 */
export async function bootFlashed(ref: sim.ClusterRef, opts: { dir: string; clusterFile: string; manager: string; timeoutMs: number; os?: SimOs }): Promise<{ pi: sim.NodeStatus; card: TarEntry[]; phases: FirstbootPhases }> {
  const os = opts.os ?? simOs();
  const pi = await createUnflashed(ref, os);
  const card = await flashCard(opts.dir, {
    clusterFile: opts.clusterFile, hostname: pi.name, release: join(sim.repoRoot(), 'release/piswarm-0.1.0.tar.gz'),
    nodeBinary: imagesFor(os).hostNode ? process.execPath : undefined,
  });
  const startedAtUs = await powerOn(ref, pi.name, card);
  const readyAtUs = await waitReady(ref, opts.manager, pi.name, opts.timeoutMs);
  return { pi, card, phases: await firstbootPhases(ref, pi.name, startedAtUs, readyAtUs) };
}

/** What to print when a first boot went wrong: cloud-init's and the first-boot script's own logs. */
export async function firstbootLogs(ref: sim.ClusterRef, name: string, lines = 60): Promise<string> {
  const r = await sim.exec(ref, name, ['sh', '-c',
    `cloud-init status --long; echo "--- /run/cloud-init/result.json"; cat /run/cloud-init/result.json; ` +
    `echo "--- tail /var/log/cloud-init-output.log"; tail -n ${lines} /var/log/cloud-init-output.log; ` +
    `echo "--- /var/log/piswarm-firstboot.log (apt lines left out)"; grep -v -E '^(Get|Selecting|Preparing|Unpacking|Setting up|Processing)' /var/log/piswarm-firstboot.log | tail -n ${lines}; ` +
    `echo "--- cloud-init warnings"; grep -E 'WARNING|ERROR' /var/log/cloud-init.log | tail -n 20`]).catch((e: Error) => ({ stdout: '', stderr: e.message }));
  return r.stdout + r.stderr;
}
