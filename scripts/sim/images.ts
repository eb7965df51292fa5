import { copyFile, mkdir, rmdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PiswarmError } from '../../shared/errors.js';
import { docker, engineAnswers, run } from './run.js';

/**
 * The operating systems a simulated Pi runs: Debian 13 "trixie" (what
 * Raspberry Pi OS is based on today: docker.io 26.1, systemd 257, nodejs
 * 20.19) and Debian 12 "bookworm" (docker.io 20.10, systemd 252, nodejs 18,
 * too old for the agent, so the host's node is copied in as `--node` would).
 */
export const SIM_OSES = ['trixie', 'bookworm'] as const;
export type SimOs = (typeof SIM_OSES)[number];
/** What a new user flashes today. */
export const DEFAULT_OS: SimOs = 'trixie';

/**
 * The OS asked for (an option), else PISWARM_SIM_OS (how the integration
 * suite is run once per OS), else DEFAULT_OS; anything else is a usage error.
 */
export function simOs(given: string | undefined = process.env.PISWARM_SIM_OS): SimOs {
  const os = given || DEFAULT_OS;
  if (!(SIM_OSES as readonly string[]).includes(os)) {
    throw new PiswarmError('PISWARM_ERR_BAD_REQUEST', `unknown simulated OS "${os}": use one of ${SIM_OSES.join(', ')}`);
  }
  return os as SimOs;
}

/** The images of one OS, and how the Dockerfile builds them. */
export interface OsImages {
  os: SimOs;
  /** The debootstrap base build-base.sh makes for this suite. */
  localBase: string;
  /** The Dockerfile's public base, which users with a registry pull. */
  publicBase: string;
  /** A simulated Pi: systemd, the engine and the agent. */
  pi: string;
  /** A Pi before its first boot: cloud-init, no engine, no node, no agent (Dockerfile target firstboot). */
  firstboot: string;
  /** The Dockerfile's `agent` target: the agent alone, for a host that runs it in a container. */
  agent: string;
  /** Packages the OS needs besides the Dockerfile's PI_PACKAGES (build argument OS_PACKAGES). */
  osPackages: string;
  /** Whether the host's node is staged into the image (the distribution's is too old). */
  hostNode: boolean;
}

export function imagesFor(os: SimOs): OsImages {
  return {
    os,
    localBase: `piswarm/base:${os}`,
    publicBase: `debian:${os}`,
    pi: `piswarm/pi:sim-${os}`,
    firstboot: `piswarm/pi-firstboot:sim-${os}`,
    agent: `piswarm/agent:sim-${os}`,
    // trixie splits the CLI out of docker.io; its nodejs (20.19) is new enough.
    osPackages: os === 'trixie' ? 'docker-cli nodejs' : '',
    hostNode: os === 'bookworm',
  };
}

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
  /** The simulated Pi's OS; default: simOs() (PISWARM_SIM_OS, else DEFAULT_OS). */
  os?: SimOs;
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
  /** The names of the OS's two bases (OsImages). */
  localBase: string;
  publicBase: string;
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
  const { localBase: local, publicBase: pub } = p;
  if (p.given) return { base: p.given, buildLocal: p.given === local, why: `given (${p.given})` };
  if (await p.localBaseCurrent()) return { base: local, buildLocal: false, why: `${local} is current` };
  if (await p.publicPresent()) return { base: pub, buildLocal: false, why: `${pub} is present` };
  const pull = await p.pullPublic();
  if (pull.ok) return { base: pub, buildLocal: false, why: `pulled ${pub}` };
  return { base: local, buildLocal: true, why: `${pub} cannot be pulled (${pull.reason}); building ${local} with debootstrap` };
}

/** build-base.sh for one OS: its suite and image name come from the environment. */
const buildBase = (root: string, img: OsImages, flag?: string) =>
  run('bash', [join(root, 'scripts/build-base.sh'), ...(flag ? [flag] : [])], {
    cwd: root, timeoutMs: 20 * 60_000, env: { ...process.env, PISWARM_SIM_OS: img.os, PISWARM_BASE_IMAGE: img.localBase },
  });

function hostProbes(root: string, img: OsImages, given: string | undefined): BaseProbes {
  return {
    given,
    localBase: img.localBase,
    publicBase: img.publicBase,
    localBaseCurrent: async () => (await buildBase(root, img, '--check')).code === 0,
    publicPresent: async () => (await run('docker', ['image', 'inspect', '-f', '{{.Id}}', img.publicBase])).code === 0,
    pullPublic: async () => {
      const r = await run('docker', ['pull', '-q', img.publicBase], { timeoutMs: 5 * 60_000 });
      const last = (r.stderr || r.stdout).trim().split('\n').pop() ?? '';
      return { ok: r.code === 0, reason: last || `exit ${r.code}` };
    },
  };
}

/**
 * The base for this process's image builds of one OS (`given` defaults to
 * PISWARM_SIM_BASE), chosen once per OS (a pull is asked at most once per
 * run) and logged with the reason.
 */
const chosen = new Map<SimOs, Promise<BaseChoice>>();
export function resolveBase(root: string, log: (m: string) => void = () => {}, given = process.env.PISWARM_SIM_BASE, os: SimOs = simOs()): Promise<BaseChoice> {
  const img = imagesFor(os);
  if (given) return chooseBase(hostProbes(root, img, given));
  let c = chosen.get(os);
  if (!c) {
    c = chooseBase(hostProbes(root, img, undefined)).then((choice) => {
      log(`base image (${os}): ${choice.why}`);
      return choice;
    });
    chosen.set(os, c);
    // A failed probe (no engine yet) must not stick: the next call asks again.
    c.catch(() => chosen.delete(os));
  }
  return c;
}

const buildArgs = (target: string, tag: string, base: string, img: OsImages, noCache?: boolean) => [
  'build', '-q', ...(noCache ? ['--no-cache'] : []), '--target', target,
  '--build-arg', `BASE=${base}`, '--build-arg', `OS_PACKAGES=${img.osPackages}`, '--build-arg', `NODE_FILE=${img.hostNode ? 'node' : 'no-host-node'}`,
  '--label', `io.piswarm.sim.os=${img.os}`, '-t', tag, '.',
];

/**
 * Stages release/node for an OS whose own node is too old (bookworm): the
 * host's node, which links against bookworm's glibc. An OS with a new enough
 * nodejs (trixie) is built with NODE_FILE naming no file, so nothing of the
 * host's is copied into its images; release/node is left alone for the
 * bookworm builds of other test files running at the same time.
 */
async function stageNode(root: string, img: OsImages): Promise<void> {
  const nodeDst = join(root, 'release/node');
  if (!img.hostNode) return;
  const [src, dst] = await Promise.all([stat(process.execPath), stat(nodeDst).catch(() => undefined)]);
  if (!dst || dst.size !== src.size || dst.mtimeMs < src.mtimeMs) await copyFile(process.execPath, nodeDst);
}

/**
 * Makes sure an engine answers and the simulated-Pi image matches the
 * current build (dist/): the release tarball is reproducible, so an
 * unchanged dist/ means an unchanged tarball and a fully cached docker build.
 * The JavaScript itself is compiled by `npm run build`, not here.
 */
export async function ensureImages(opts: EnsureImagesOptions): Promise<ImageTimings> {
  const log = opts.log ?? (() => {});
  const root = opts.root;
  const img = imagesFor(opts.os ?? simOs());
  const t: ImageTimings = { engineMs: 0, baseMs: 0, releaseMs: 0, buildMs: 0 };
  if (!(await engineAnswers())) {
    t.engineMs = await step(root, 'starting the Docker engine (scripts/setup-host.sh)', 'bash', [join(root, 'scripts/setup-host.sh')], log);
  }
  if (!existsSync(join(root, 'dist/agent/main.js'))) {
    throw new PiswarmError('PISWARM_ERR_TOOL_MISSING', 'dist/agent/main.js is missing: run `npm run build` first');
  }
  await mkdir(join(root, 'release'), { recursive: true });
  return withLock(join(root, 'release/.image-lock'), async () => {
    const { base, buildLocal } = await resolveBase(root, log, opts.base, img.os);
    if (buildLocal) {
      const t0 = performance.now();
      const r = await buildBase(root, img);
      if (r.code !== 0) throw new PiswarmError('PISWARM_ERR_DOCKER', `base image ${img.localBase} (scripts/build-base.sh) failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-15).join('\n')}`);
      t.baseMs = performance.now() - t0;
      log(`base image ${img.localBase} (scripts/build-base.sh): ${(t.baseMs / 1000).toFixed(1)}s`);
    }
    t.releaseMs = await step(root, 'release (scripts/package.sh)', 'bash', [join(root, 'scripts/package.sh'), '--skip-build'], log);
    // The build context cannot reach outside the repository: node is staged next to the release.
    await stageNode(root, img);
    t.buildMs = await step(root, `image ${img.pi}`, 'docker', buildArgs('pi', img.pi, base, img, opts.noCache), log);
    return t;
  });
}

/** What a node needs to know of its image before it is created. */
export interface ImageFacts {
  /** The numeric gid of the `piswarm` group (install.sh creates it). */
  gid: number;
  /** The Docker Engine installed in it, as `dockerd --version` says ("26.1.5+dfsg1"). */
  engine: string;
}

/** Asks an image (one throwaway container, no network) for its ImageFacts. */
export async function imageFacts(image: string): Promise<ImageFacts> {
  const out = await docker(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', image, '-c', 'getent group piswarm; dockerd --version']);
  const [group = '', version = ''] = out.split('\n');
  const gid = Number(group.split(':')[2]);
  const engine = /^Docker version ([^,\s]+)/.exec(version)?.[1];
  if (!Number.isInteger(gid) || !engine) throw new PiswarmError('PISWARM_ERR_DOCKER', `${image} has no piswarm group or no dockerd: ${out.trim()}`);
  return { gid, engine };
}

/**
 * Makes sure the OS's firstboot image is built (after ensureImages, whose
 * release and node the Dockerfile's earlier stages copy: the legacy builder
 * builds every stage before the target). The stage copies nothing of the
 * repository, so it is rebuilt only when the Dockerfile or the base changes.
 * Returns the image's tag.
 */
export async function ensureFirstbootImage(opts: EnsureImagesOptions): Promise<string> {
  return ensureTarget(opts, 'firstboot', (img) => img.firstboot);
}

/** Makes sure the OS's `agent` image is built from the current release; returns its tag. */
export async function ensureAgentImage(opts: EnsureImagesOptions): Promise<string> {
  return ensureTarget(opts, 'agent', (img) => img.agent);
}

async function ensureTarget(opts: EnsureImagesOptions, target: string, tagOf: (img: OsImages) => string): Promise<string> {
  const root = opts.root;
  const img = imagesFor(opts.os ?? simOs());
  await ensureImages({ ...opts, os: img.os });
  const { base } = await resolveBase(root, opts.log, opts.base, img.os);
  const tag = tagOf(img);
  await withLock(join(root, 'release/.image-lock'), async () => {
    await stageNode(root, img);
    await step(root, `image ${tag}`, 'docker', buildArgs(target, tag, base, img, opts.noCache), opts.log ?? (() => {}));
  });
  return tag;
}
