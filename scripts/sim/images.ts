import { copyFile, mkdir, rmdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PiswarmError } from '../../shared/errors.js';
import { docker, engineAnswers, run } from './run.js';

export const PI_IMAGE = 'piswarm/pi:sim';
/** The debootstrap base build-base.sh makes (its IMAGE: the same variable, the same default). */
export const LOCAL_BASE = process.env.PISWARM_BASE_IMAGE || 'piswarm/base:bookworm';
/** The Dockerfile's default base, which users with a registry pull. */
export const PUBLIC_BASE = 'debian:bookworm';
/** A Pi before its first boot: cloud-init, no engine, no node, no agent (Dockerfile target firstboot). */
export const FIRSTBOOT_IMAGE = 'piswarm/pi-firstboot:sim';
/** The Dockerfile's `agent` target: the agent alone, for a host that runs it in a container. */
export const AGENT_IMAGE = 'piswarm/agent:sim';

export interface ImageTimings {
  /** Starting the engine with setup-host.sh (0 when it already answered). */
  engineMs: number;
  /** build-base.sh (a label check when the base is current). */
  baseMs: number;
  /** package.sh: the release tarball the Pi image installs. */
  releaseMs: number;
  /** docker build --target pi (cached layers when nothing changed). */
  buildMs: number;
}

export interface EnsureImagesOptions {
  /** The repository root (holds package.json and dist/). */
  root: string;
  log?: (msg: string) => void;
  /** Base image to build on; default: PISWARM_SIM_BASE, else what chooseBase picks. */
  base?: string;
  /** Build without Docker's layer cache (a cold build, for benchmarks). */
  noCache?: boolean;
}

async function step(root: string, what: string, cmd: string, args: string[], log: (m: string) => void): Promise<number> {
  const t0 = performance.now();
  const r = await run(cmd, args, { cwd: root, timeoutMs: 20 * 60_000 });
  if (r.code !== 0) {
    throw new PiswarmError('PISWARM_ERR_DOCKER', `${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n')}`);
  }
  const ms = performance.now() - t0;
  log(`${what}: ${(ms / 1000).toFixed(1)}s`);
  return ms;
}

/**
 * A directory lock: concurrent test files and CLI runs share the release/
 * staging area and the image tag. mkdir is atomic; a lock older than ten
 * minutes is a crashed holder's and is taken over.
 */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      await mkdir(dir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = Date.now() - (await stat(dir).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > 10 * 60_000) await rmdir(dir).catch(() => undefined);
      if (Date.now() > deadline) throw new PiswarmError('PISWARM_ERR_BUSY', `image preparation lock ${dir} held for too long`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await rmdir(dir).catch(() => undefined);
  }
}

/** What chooseBase asks of the host; each answer is one docker or build-base.sh call. */
export interface BaseProbes {
  /** An explicit base (an option or PISWARM_SIM_BASE): used as it is. */
  given: string | undefined;
  /** `build-base.sh --check`: the local base exists and matches its recipe. */
  localBaseCurrent(): Promise<boolean>;
  /** The public base is already in the engine's image store. */
  publicPresent(): Promise<boolean>;
  /** `docker pull` of the public base; reason is the engine's one-line answer on failure. */
  pullPublic(): Promise<{ ok: boolean; reason: string }>;
}

export interface BaseChoice {
  base: string;
  /** Run build-base.sh (it skips the work when the local base is current). */
  buildLocal: boolean;
  why: string;
}

/**
 * Which base the simulated Pi is built on. An explicit one wins. A current
 * local base is used without asking any registry (the same image every time,
 * no network). Otherwise the public Debian image, as users with a registry
 * get it from the Dockerfile's default; only where it cannot be pulled does
 * build-base.sh make the local one with debootstrap.
 */
export async function chooseBase(p: BaseProbes): Promise<BaseChoice> {
  if (p.given) return { base: p.given, buildLocal: p.given === LOCAL_BASE, why: `given (${p.given})` };
  if (await p.localBaseCurrent()) return { base: LOCAL_BASE, buildLocal: false, why: `${LOCAL_BASE} is current` };
  if (await p.publicPresent()) return { base: PUBLIC_BASE, buildLocal: false, why: `${PUBLIC_BASE} is present` };
  const pull = await p.pullPublic();
  if (pull.ok) return { base: PUBLIC_BASE, buildLocal: false, why: `pulled ${PUBLIC_BASE}` };
  return { base: LOCAL_BASE, buildLocal: true, why: `${PUBLIC_BASE} cannot be pulled (${pull.reason}); building ${LOCAL_BASE} with debootstrap` };
}

function hostProbes(root: string, given: string | undefined): BaseProbes {
  return {
    given,
    localBaseCurrent: async () => (await run('bash', [join(root, 'scripts/build-base.sh'), '--check'], { cwd: root })).code === 0,
    publicPresent: async () => (await run('docker', ['image', 'inspect', '-f', '{{.Id}}', PUBLIC_BASE])).code === 0,
    pullPublic: async () => {
      const r = await run('docker', ['pull', '-q', PUBLIC_BASE], { timeoutMs: 5 * 60_000 });
      const last = (r.stderr || r.stdout).trim().split('\n').pop() ?? '';
      return { ok: r.code === 0, reason: last || `exit ${r.code}` };
    },
  };
}

/**
 * The base for this process's image builds (`given` defaults to
 * PISWARM_SIM_BASE), chosen once (a pull is asked at most once per run) and
 * logged with the reason.
 */
let chosen: Promise<BaseChoice> | undefined;
export function resolveBase(root: string, log: (m: string) => void = () => {}, given = process.env.PISWARM_SIM_BASE): Promise<BaseChoice> {
  if (given) return chooseBase(hostProbes(root, given));
  chosen ??= chooseBase(hostProbes(root, undefined)).then((c) => {
    log(`base image: ${c.why}`);
    return c;
  });
  // A failed probe (no engine yet) must not stick: the next call asks again.
  chosen.catch(() => { chosen = undefined; });
  return chosen;
}

const buildArgs = (target: string, tag: string, base: string, noCache?: boolean) =>
  ['build', '-q', ...(noCache ? ['--no-cache'] : []), '--target', target, '--build-arg', `BASE=${base}`, '-t', tag, '.'];

/**
 * Makes sure an engine answers and the simulated-Pi image matches the
 * current build (dist/): the release tarball is reproducible, so an
 * unchanged dist/ means an unchanged tarball and a fully cached docker build.
 * The JavaScript itself is compiled by `npm run build`, not here.
 */
export async function ensureImages(opts: EnsureImagesOptions): Promise<ImageTimings> {
  const log = opts.log ?? (() => {});
  const root = opts.root;
  const t: ImageTimings = { engineMs: 0, baseMs: 0, releaseMs: 0, buildMs: 0 };
  if (!(await engineAnswers())) {
    t.engineMs = await step(root, 'starting the Docker engine (scripts/setup-host.sh)', 'bash', [join(root, 'scripts/setup-host.sh')], log);
  }
  if (!existsSync(join(root, 'dist/agent/main.js'))) {
    throw new PiswarmError('PISWARM_ERR_TOOL_MISSING', 'dist/agent/main.js is missing: run `npm run build` first');
  }
  await mkdir(join(root, 'release'), { recursive: true });
  return withLock(join(root, 'release/.image-lock'), async () => {
    const { base, buildLocal } = await resolveBase(root, log, opts.base);
    if (buildLocal) {
      t.baseMs = await step(root, 'base image (scripts/build-base.sh)', 'bash', [join(root, 'scripts/build-base.sh')], log);
    }
    t.releaseMs = await step(root, 'release (scripts/package.sh)', 'bash', [join(root, 'scripts/package.sh'), '--skip-build'], log);
    // The image runs the same node as this host: copy it next to the release
    // (the build context cannot reach outside the repository).
    const nodeDst = join(root, 'release/node');
    const [src, dst] = await Promise.all([stat(process.execPath), stat(nodeDst).catch(() => undefined)]);
    if (!dst || dst.size !== src.size || dst.mtimeMs < src.mtimeMs) await copyFile(process.execPath, nodeDst);
    t.buildMs = await step(root, `image ${PI_IMAGE}`, 'docker', buildArgs('pi', PI_IMAGE, base, opts.noCache), log);
    return t;
  });
}

/** The numeric gid of the `piswarm` group inside an image (install.sh creates it). */
export async function serviceGid(image: string): Promise<number> {
  const out = await docker(['run', '--rm', '--network', 'none', '--entrypoint', 'getent', image, 'group', 'piswarm']);
  const gid = Number(out.split(':')[2]);
  if (!Number.isInteger(gid)) throw new PiswarmError('PISWARM_ERR_DOCKER', `no piswarm group in ${image}`);
  return gid;
}

/**
 * Makes sure FIRSTBOOT_IMAGE is built (after ensureImages, whose release and
 * node the Dockerfile's earlier stages copy: the legacy builder builds every
 * stage before the target). The stage copies nothing of the repository, so it
 * is rebuilt only when the Dockerfile or the base changes.
 */
export async function ensureFirstbootImage(opts: EnsureImagesOptions): Promise<number> {
  return ensureTarget(opts, 'firstboot', FIRSTBOOT_IMAGE);
}

/** Makes sure AGENT_IMAGE (the `agent` target) is built from the current release. */
export async function ensureAgentImage(opts: EnsureImagesOptions): Promise<number> {
  return ensureTarget(opts, 'agent', AGENT_IMAGE);
}

async function ensureTarget(opts: EnsureImagesOptions, target: string, tag: string): Promise<number> {
  const root = opts.root;
  await ensureImages(opts);
  const { base } = await resolveBase(root, opts.log, opts.base);
  return withLock(join(root, 'release/.image-lock'), () =>
    step(root, `image ${tag}`, 'docker', buildArgs(target, tag, base, opts.noCache), opts.log ?? (() => {})));
}
