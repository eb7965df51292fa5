import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT } from '../../shared/constants.js';
import { isPiswarmError } from '../../shared/errors.js';
import { validateHostname, type Wifi } from '../provision/cloud-init.js';
import { readClusterFile, type ClusterFile } from '../provision/cluster-file.js';
import { flash } from '../provision/flash.js';
import { realHostView, type HostView } from '../provision/target.js';
import { parseArgs, type Command, type CommandContext } from './command.js';

const USAGE = `Usage: piswarm flash --image IMG --target DEV_OR_FILE --cluster FILE
                     (--hostname NAME | --hostname-prefix P) --ssh-key PUBKEY_FILE
                     [--wifi-ssid S --wifi-password P --wifi-country CC]
                     [--timezone TZ] [--release TARBALL] [--node NODE_BINARY] [--yes]

Writes a Raspberry Pi OS Lite 64-bit or Ubuntu Server for Raspberry Pi image
(.img or .img.xz) to an SD card or an image file, then puts cloud-init
first-boot files (user-data, meta-data, network-config), the cluster key and
the piswarm release onto its FAT boot partition. On first boot the Pi sets its
hostname, creates user "pi" with your SSH key (no password login), installs
Docker and piswarm, enables the memory cgroup and starts the agent.

  --image IMG          raw image, or .img.xz (needs xz from xz-utils)
  --target DEV|FILE    whole card (e.g. /dev/sdb, /dev/mmcblk0) or an image file to create
  --cluster FILE       cluster file from \`piswarm cluster create\`
  --hostname NAME      this card's hostname
  --hostname-prefix P  hostname P followed by 4 random hex digits (default: the cluster's prefix)
  --ssh-key FILE       OpenSSH public key(s) for user pi (e.g. ~/.ssh/id_ed25519.pub)
  --wifi-ssid S, --wifi-password P, --wifi-country CC
                       optional Wi-Fi (all three together); CC is e.g. DE, GB, US
  --timezone TZ        e.g. Europe/Berlin (default: the cluster's, else Etc/UTC)
  --release TARBALL    piswarm release (default: newest release/piswarm-*.tar.gz; \`npm run package\`)
  --node NODE_BINARY   a linux-arm64 node (>= 20.18) to install on first boot, for
                       images whose nodejs is older (Raspberry Pi OS bookworm,
                       Ubuntu 24.04 ship 18.x): bin/node from nodejs.org's
                       node-v20.x-linux-arm64 archive. Without it the Pi uses the
                       distro's nodejs and stops clearly if that is too old.
  --yes                do not ask before erasing a block device (for scripts)

Refuses, writing nothing: a mounted target, the disk holding /, a partition,
a target smaller than the image, and images without an MBR with a FAT boot
partition (GPT is refused). Needs mtools (mcopy) and, for .xz, xz-utils.`;

/** Releases `npm run package` leaves in release/ of the repository this CLI runs from, or of the working directory. */
export function findNewestRelease(dirs: readonly string[]): string | null {
  let best: { path: string; mtime: number } | null = null;
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue; // no release/ directory there: try the next candidate
    }
    for (const n of names) {
      if (!/^piswarm-.+\.tar\.gz$/.test(n)) continue;
      const p = join(dir, n);
      const m = statSync(p).mtimeMs;
      if (!best || m > best.mtime) best = { path: p, mtime: m };
    }
  }
  return best?.path ?? null;
}

function repoRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return null;
}

/** The flash command, with the host view injectable so refusal tests can model block devices. */
export function makeFlashCommand(host: HostView = realHostView): Command {
  return {
    name: 'flash',
    summary: 'Write a Pi OS image to an SD card with piswarm first-boot provisioning',
    usage: USAGE,
    async run(ctx: CommandContext) {
      const a = parseArgs(ctx.argv, {
        strings: ['image', 'target', 'cluster', 'hostname', 'hostname-prefix', 'ssh-key', 'wifi-ssid', 'wifi-password', 'wifi-country', 'timezone', 'release', 'node'],
        booleans: ['yes', 'help'],
      });
      if (a.values.help) {
        ctx.out(USAGE);
        return EXIT.OK;
      }
      const v = a.values as Record<string, string | undefined>;
      const problems = [...a.unknown.map((u) => `unknown flag ${u}`), ...a.missing.map((m) => `${m} needs a value`), ...a.positional.map((p) => `unexpected argument "${p}"`)];
      for (const req of ['image', 'target', 'cluster', 'ssh-key']) if (!v[req]) problems.push(`--${req} is required`);
      if (v.hostname && v['hostname-prefix']) problems.push('give --hostname or --hostname-prefix, not both');
      const wifiFlags = ['wifi-ssid', 'wifi-password', 'wifi-country'].filter((f) => v[f] !== undefined);
      if (wifiFlags.length > 0 && wifiFlags.length < 3) problems.push('Wi-Fi needs all three of --wifi-ssid, --wifi-password and --wifi-country');
      if (problems.length > 0) {
        ctx.err(`piswarm flash: ${problems.join('; ')}\n\n${USAGE}`);
        return EXIT.USAGE;
      }
      const abs = (p: string) => resolve(ctx.cwd, p);
      let cluster: ClusterFile;
      try {
        cluster = readClusterFile(abs(v.cluster!));
      } catch (err) {
        if (!isPiswarmError(err)) throw err;
        ctx.err(`piswarm flash: ${err.message} [${err.code}]`);
        return EXIT.CONFIG;
      }
      let sshPublicKey: string;
      try {
        sshPublicKey = readFileSync(abs(v['ssh-key']!), 'utf8');
      } catch (err) {
        ctx.err(`piswarm flash: cannot read SSH public key ${v['ssh-key']}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
        return EXIT.USAGE;
      }
      const hostname = v.hostname ?? `${(v['hostname-prefix'] ?? cluster.defaults.hostnamePrefix).toLowerCase()}${randomBytes(2).toString('hex')}`;
      const bad = validateHostname(hostname);
      if (bad) {
        ctx.err(`piswarm flash: ${bad}`);
        return EXIT.USAGE;
      }
      const root = repoRoot();
      const release = v.release ? abs(v.release) : findNewestRelease([...(root ? [join(root, 'release')] : []), join(ctx.cwd, 'release')]);
      if (!release) {
        ctx.err('piswarm flash: no piswarm release found (looked for release/piswarm-*.tar.gz); build one with `npm run package` or pass --release TARBALL');
        return EXIT.USAGE;
      }
      const wifi: Wifi | undefined = wifiFlags.length === 3 ? { ssid: v['wifi-ssid']!, password: v['wifi-password']!, country: v['wifi-country']! } : undefined;
      try {
        ctx.err(`flashing ${v.image} to ${v.target} as "${hostname}" (cluster "${cluster.name}", release ${release})`);
        const result = await flash(
          { image: abs(v.image!), target: abs(v.target!), cluster, hostname, sshPublicKey, release, ...(v.node ? { nodeBinary: abs(v.node) } : {}), timezone: v.timezone ?? cluster.defaults.timezone, yes: a.values.yes === true, ...(wifi ? { wifi } : {}) },
          { host, confirm: ctx.confirm, progress: (w, t) => ctx.err(`  ${(w / 1048576).toFixed(0)} / ${(t / 1048576).toFixed(0)} MiB`) },
        );
        ctx.out(`done: ${hostname} on ${v.target} (${result.bytesWritten} bytes; boot partition ${result.boot.index} at byte ${result.boot.offset}; wrote ${result.filesWritten.join(', ')}${result.cmdlinePatched ? '; memory cgroup enabled in cmdline.txt' : ''})`);
        ctx.out('first boot takes a few minutes (packages, Docker, agent); then: ssh pi@' + hostname + '.local piswarm doctor');
        return EXIT.OK;
      } catch (err) {
        if (!isPiswarmError(err)) throw err;
        ctx.err(`piswarm flash: ${err.message} [${err.code}]`);
        return err.code === 'PISWARM_ERR_CLUSTER_FILE' ? EXIT.CONFIG : err.code === 'PISWARM_ERR_TOOL_MISSING' ? EXIT.UNAVAILABLE : EXIT.FAILURE;
      }
    },
  };
}

export const flashCommand: Command = makeFlashCommand();
