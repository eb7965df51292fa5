/**
 * Running programs of an arm64 Debian 13 root (scripts/build-arm64-root.sh)
 * on an x86-64 machine: qemu-user-static, registered with binfmt_misc with
 * the F flag, runs every arm64 binary of the chroot, the distribution's own
 * arm64 `node` included. Each call gets a private mount namespace (unshare),
 * so the mounts it needs (/dev, /proc and the test's work directory at
 * /work) vanish with it and the cached root is never changed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';

export const ARM64_ROOT = process.env.PISWARM_ARM64_ROOT || '/var/cache/piswarm/arm64-trixie';
const BINFMT = '/proc/sys/fs/binfmt_misc/qemu-aarch64';

/** Why arm64 programs cannot be run here, or false when they can. */
export function arm64SkipReason(): string | false {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'not root: debootstrap, chroot and mount namespaces need root (run the suite as root, as CI does)';
  for (const tool of ['unshare', 'chroot', 'mount']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) return `${tool} is missing (util-linux, coreutils)`;
  }
  if (process.arch === 'arm64') return false;
  if (!existsSync(BINFMT)) {
    return existsSync('/proc/sys/fs/binfmt_misc/status')
      ? 'no aarch64 interpreter in binfmt_misc: install qemu-user-static and binfmt-support (scripts/setup-host.sh does)'
      : 'binfmt_misc is not mounted here (a container without it cannot run foreign binaries)';
  }
  const entry = readFileSync(BINFMT, 'utf8');
  if (!/^enabled/m.test(entry)) return `${BINFMT} is disabled (update-binfmts --enable qemu-aarch64)`;
  if (!/^flags: .*F/m.test(entry)) return `${BINFMT} lacks the F flag, so the interpreter is not found inside a chroot`;
  return false;
}

const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8' };

/** The sh script that sets up the namespace's mounts and runs `args` in the chroot. */
function script(work: string): string {
  const r = ARM64_ROOT;
  return [
    'set -e',
    `mount --rbind /dev ${r}/dev`,
    `mount -t proc proc ${r}/proc`,
    `mkdir -p ${r}/work`,
    `mount --bind ${work} ${r}/work`,
    // A clean environment: tap's process tracking adds NODE_OPTIONS=--import
    // of a host path to every child, which the chroot's node cannot resolve.
    `exec env -i PATH=${ENV.PATH} HOME=/root LANG=C.UTF-8 chroot ${r} "$@"`,
  ].join('; ');
}

function argv(work: string, args: readonly string[]): string[] {
  return ['--mount', '--propagation', 'private', '--', 'sh', '-c', script(work), 'arm64', ...args];
}

/** Runs a command in the arm64 root with `work` at /work; waits for it. */
export function runArm64(work: string, args: readonly string[], timeoutMs = 120_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('unshare', argv(work, args), { env: ENV, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 32 << 20 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/** Starts a long-running command in the arm64 root (the agent); the caller stops it. */
export function spawnArm64(work: string, args: readonly string[]): ChildProcess {
  return spawn('unshare', argv(work, args), { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The machine an ELF file of the root is built for, from its header. */
export function elfMachine(path: string): string {
  const h = Buffer.alloc(20);
  const fd = openSync(join(ARM64_ROOT, path), 'r');
  try {
    readSync(fd, h, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  const machine = h.readUInt16LE(18);
  return machine === 0xb7 ? 'aarch64' : machine === 0x3e ? 'x86-64' : `machine ${machine}`;
}
