import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import type { UpgradeState } from '../../shared/wire/release.js';
import type { Logger } from '../log/logger.js';
import { probeVerdict, type AgentSample } from './probe.js';
import { checkBytes, checkSignature, ReleaseRefused } from './signature.js';
import { clearInstalled, takeRequest, writeInstalled, writeState } from './state.js';
import { releaseStore } from './store.js';

const execFileP = promisify(execFile);

/**
 * The root installer: `piswarm upgrade-apply`, started by
 * piswarm-upgrade.path when the agent leaves STATE/upgrade/request.json.
 * It trusts nothing the agent wrote but the hash it asks for: it copies the
 * release out of the agent's directory, verifies size, hash, signature
 * (the release key in /etc/piswarm, root's) and that it is newer than what
 * runs, keeps the running release in PREFIX.prev, runs the new release's
 * install.sh, restarts the agent and waits for it to be healthy
 * (agent/upgrade/probe.ts); otherwise it puts the previous release back.
 * Every step is written to STATE/upgrade/state.json for the agent to report.
 */
export interface ApplyDeps {
  stateDir: string;
  prefix: string;
  /** The release that runs now (PREFIX's package.json). */
  running: string;
  releaseKey: string | undefined;
  deadlineMs: number;
  httpBase: string;
  log: Logger;
  run?: (cmd: string, args: string[], timeoutMs: number) => Promise<void>;
  sample?: () => Promise<AgentSample>;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

const defaultRun = async (cmd: string, args: string[], timeoutMs: number) => {
  await execFileP(cmd, args, { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' } });
};

async function getText(url: string): Promise<string | null> {
  try {
    const r = await request(url, { headersTimeout: 3000, bodyTimeout: 3000 });
    return await r.body.text();
  } catch {
    return null;
  }
}

/** The local agent as the probe sees it (every part null when it does not answer). */
export async function sampleAgent(base: string, run: NonNullable<ApplyDeps['run']>): Promise<AgentSample> {
  const active = await run('systemctl', ['is-active', '--quiet', 'piswarm.service'], 5000).then(() => true, () => false);
  const parse = (t: string | null) => {
    try {
      return t ? (JSON.parse(t) as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  };
  const h = parse(await getText(`${base}/health`));
  const f = parse(await getText(`${base}/v1/formation`));
  const m = /^piswarm_gossip_members\{state="alive"\} (\d+)$/m.exec((await getText(`${base}/metrics`)) ?? '');
  return {
    active,
    version: typeof h?.releaseId === 'string' ? h.releaseId : null,
    health: h?.status === 'pass' || h?.status === 'warn' || h?.status === 'fail' ? h.status : null,
    phase: typeof f?.phase === 'string' ? f.phase : null,
    alive: m ? Number(m[1]) : null,
  };
}

export async function applyUpgrade(d: ApplyDeps): Promise<UpgradeState | null> {
  const run = d.run ?? defaultRun;
  const sample = d.sample ?? (() => sampleAgent(d.httpBase, run));
  const sleep = d.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = d.now ?? Date.now;
  const log = d.log.child({ mod: 'upgrade-apply' });
  const req = takeRequest(d.stateDir);
  if (!req) {
    log.warn('no valid upgrade request: nothing to do');
    return null;
  }
  const sha = req.sha256;
  const store = releaseStore(d.stateDir);
  const sig = store.signature(sha);
  const prev = `${d.prefix}.prev`;
  const base = { sha256: sha, version: req.revertTo ?? sig?.version ?? '0.0.0', from: d.running };
  const record = (state: UpgradeState['state'], detail: string): UpgradeState => {
    const s: UpgradeState = { ...base, state, at: new Date(now()).toISOString(), detail: detail.slice(0, 500) };
    writeState(d.stateDir, s);
    log[state === 'rolled-back' || state === 'refused' ? 'warn' : 'info']({ version: base.version, from: d.running, state }, `${req.revertTo ? 'revert' : 'upgrade'} to ${base.version}: ${state}: ${detail}`);
    return s;
  };
  const install = (dir: string) => run('bash', [join(dir, 'scripts', 'install.sh'), '--release', dir, '--no-start'], 300_000);
  const restart = () => run('systemctl', ['restart', 'piswarm.service'], 120_000);

  /**
   * Installs `src` (expected to run `version`), the running release copied
   * to PREFIX.keep first; when the new agent is not healthy in time, that
   * copy goes back (recorded before the restart that puts it back, so the
   * agent that comes back reports it from its first line). `commit` runs
   * once the new agent is healthy.
   */
  async function swap(src: string, version: string, done: UpgradeState['state'], commit: (keep: string) => void): Promise<UpgradeState> {
    const keep = `${d.prefix}.keep`;
    const before = await sample().catch(() => null);
    record('installing', `keeping ${d.running} aside, running the install.sh of ${version}`);
    rmSync(keep, { recursive: true, force: true });
    cpSync(d.prefix, keep, { recursive: true, preserveTimestamps: true });
    writeFileSync(join(keep, '.piswarm-previous'), `${d.running}\n`);
    const putBack = async (why: string) => {
      try {
        await install(keep);
        rmSync(keep, { recursive: true, force: true });
        const s = record('rolled-back', `${why}; ${d.running} is back`);
        await restart();
        return s;
      } catch (err) {
        return record('rolled-back', `${why}; putting ${d.running} back failed too: ${(err as Error).message}`);
      }
    };
    try {
      await install(src);
      await restart();
    } catch (err) {
      return await putBack(`${version} did not install or start: ${(err as Error).message.split('\n')[0]}`);
    }
    record('probing', `waiting up to ${Math.round(d.deadlineMs / 1000)} s for the agent of ${version} to be healthy`);
    const until = now() + d.deadlineMs;
    let verdict = { ok: false, why: 'not sampled' };
    // `systemctl restart` returned once the agent sent READY: the first sample is taken at once.
    for (;;) {
      verdict = probeVerdict(before, await sample(), version);
      if (verdict.ok) {
        commit(keep);
        return record(done, verdict.why);
      }
      if (now() >= until) break;
      await sleep(1000);
    }
    return await putBack(`the agent of ${version} was not healthy within ${Math.round(d.deadlineMs / 1000)} s: ${verdict.why}`);
  }

  const work = mkdtempSync(join(tmpdir(), 'piswarm-upgrade-'));
  try {
    if (req.revertTo) {
      // piswarm upgrade --abort: the release kept before this one went in, root's own copy.
      let kept: string | null = null;
      let inside: string | null = null;
      try {
        kept = readFileSync(join(prev, '.piswarm-previous'), 'utf8').trim();
        inside = String((JSON.parse(readFileSync(join(prev, 'package.json'), 'utf8')) as { version?: unknown }).version);
      } catch {
        inside = null;
      }
      if (kept !== req.revertTo || inside !== req.revertTo) return record('refused', `no release ${req.revertTo} kept in ${prev} (it holds ${inside ?? 'nothing'}): nothing to put back`);
      // PREFIX.prev stays: it is what runs now. Nothing older is kept, so nothing more to take back.
      return await swap(prev, req.revertTo, 'reverted', (keep) => {
        rmSync(keep, { recursive: true, force: true });
        clearInstalled(d.stateDir);
      });
    }
    // Verified as root from a copy the agent cannot change any more.
    let src: string;
    try {
      if (!sig) throw new ReleaseRefused('unsigned', `no signature for ${sha.slice(0, 12)}`);
      const copy = join(work, 'release.tar.gz');
      cpSync(store.releasePath(sha), copy);
      checkBytes(sig, readFileSync(copy));
      checkSignature(d.releaseKey, sig, d.running);
      await run('tar', ['-xzf', copy, '-C', work, '--no-same-owner'], 120_000);
      const dirs = readdirSync(work, { withFileTypes: true }).filter((e) => e.isDirectory());
      if (dirs.length !== 1) throw new ReleaseRefused('tampered', 'the release does not hold exactly one top-level directory');
      src = join(work, dirs[0]!.name);
      const inside = (JSON.parse(readFileSync(join(src, 'package.json'), 'utf8')) as { version?: unknown }).version;
      if (inside !== sig.version) throw new ReleaseRefused('tampered', `the release's package.json says ${String(inside)}, its signature ${sig.version}`);
    } catch (err) {
      return record('refused', (err as Error).message);
    }
    // Once healthy, what ran before becomes PREFIX.prev: what --abort puts back (a failed attempt leaves PREFIX.prev as it was).
    const result = await swap(src, sig.version, 'installed', (keep) => {
      rmSync(prev, { recursive: true, force: true });
      renameSync(keep, prev);
    });
    if (result.state === 'installed') writeInstalled(d.stateDir, result);
    return result;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
