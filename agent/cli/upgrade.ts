import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, resolve } from 'node:path';
import { promisify } from 'node:util';
import { EXIT, OPERATOR_NODE_ID } from '../../shared/constants.js';
import { errCode, isPiswarmError } from '../../shared/errors.js';
import type { ClusterDocument } from '../../shared/wire/cluster.js';
import { loadConfig } from '../config/load.js';
import { deriveClusterKeys } from '../identity/keys.js';
import { createLogger } from '../log/logger.js';
import { createPeerClient } from '../peers/client.js';
import { readClusterFile, writeClusterFile, type ClusterFile } from '../provision/cluster-file.js';
import { applyUpgrade } from '../upgrade/apply.js';
import { runAbort, runRollout } from '../upgrade/rollout-run.js';
import { generateReleaseKey, parseSignature, releaseKeyId, signRelease } from '../upgrade/signature.js';
import { parseArgs, type Command, type CommandContext } from './command.js';
import { currentKey } from './key-change.js';
import { callLocal, loadForCommand, localBaseUrl, type LoadConfig } from './local-api.js';
import { joinHostPort } from '../net/address.js';

const execFileP = promisify(execFile);
const defaultLoad: LoadConfig = (argv, env) => loadConfig({ argv, env, readFile: (p) => readFileSync(p, 'utf8'), hostname: hostname() });

const fail = (ctx: CommandContext, name: string, err: unknown): number => {
  if (!isPiswarmError(err) && !(err as NodeJS.ErrnoException).code) throw err;
  ctx.err(`piswarm ${name}: ${(err as Error).message}${isPiswarmError(err) ? ` [${err.code}]` : ''}`);
  return EXIT.FAILURE;
};

/** The version inside a release tarball (its one top-level directory's package.json). */
async function tarballVersion(path: string): Promise<string> {
  const { stdout } = await execFileP('tar', ['-xzOf', path, '--wildcards', '*/package.json'], { maxBuffer: 1024 * 1024 });
  const v = (JSON.parse(stdout) as { version?: unknown }).version;
  if (typeof v !== 'string') throw new Error(`${path} holds no package.json with a version: not a piswarm release`);
  return v;
}

const KEYGEN_USAGE = `piswarm release keygen [--out FILE] [--cluster FILE]

Makes the cluster's release key (ed25519): the private half in FILE (default
./release.key, mode 0600: keep it with the cluster file, never on a card),
the public half printed. With --cluster FILE it is also written into the
cluster file's defaults (upgrade.releaseKey), so every card flashed from it
accepts releases signed with this key.`;

export const releaseKeygenCommand: Command = {
  name: 'release keygen',
  summary: 'Make the ed25519 key that signs piswarm releases (the public half goes to every node)',
  usage: KEYGEN_USAGE,
  async run(ctx) {
    const a = parseArgs(ctx.argv, { strings: ['out', 'cluster'], booleans: ['help'] });
    if (a.values.help) return ctx.out(KEYGEN_USAGE), EXIT.OK;
    if ([...a.unknown, ...a.missing, ...a.positional].length > 0) return ctx.err(KEYGEN_USAGE), EXIT.USAGE;
    const out = resolve(ctx.cwd, (a.values.out as string | undefined) ?? 'release.key');
    try {
      let cluster: ClusterFile | null = null;
      if (a.values.cluster) cluster = readClusterFile(resolve(ctx.cwd, a.values.cluster as string));
      if (existsSync(out)) throw Object.assign(new Error(`${out} exists: it may be the key of a running cluster; remove it first`), { code: 'EEXIST' });
      const k = generateReleaseKey();
      writeFileSync(out, k.privatePem, { mode: 0o600, flag: 'wx' });
      ctx.out(`release key ${releaseKeyId(k.publicKey)}: private half in ${out} (0600)`);
      ctx.out(`public half (config upgrade.releaseKey, or PISWARM_UPGRADE_RELEASE_KEY): ${k.publicKey}`);
      if (cluster) {
        const config = { ...cluster.defaults.config, upgrade: { ...((cluster.defaults.config.upgrade as object | undefined) ?? {}), releaseKey: k.publicKey } };
        writeClusterFile(resolve(ctx.cwd, a.values.cluster as string), { ...cluster, defaults: { ...cluster.defaults, config } }, true);
        ctx.out(`written into ${a.values.cluster as string} (defaults.config.upgrade.releaseKey): cards flashed from it accept releases signed with it`);
      }
      return EXIT.OK;
    } catch (err) {
      return fail(ctx, 'release keygen', err);
    }
  },
};

const SIGN_USAGE = `piswarm release sign RELEASE.tar.gz --key FILE [--out FILE]

Signs a release (npm run package builds it) with the cluster's release key:
writes RELEASE.tar.gz.sig (its version, size, sha256 and the ed25519
signature), which piswarm upgrade sends with it.`;

export const releaseSignCommand: Command = {
  name: 'release sign',
  summary: 'Sign a release tarball with the release key (writes RELEASE.tar.gz.sig)',
  usage: SIGN_USAGE,
  async run(ctx) {
    const a = parseArgs(ctx.argv, { strings: ['key', 'out'], booleans: ['help'] });
    if (a.values.help) return ctx.out(SIGN_USAGE), EXIT.OK;
    if ([...a.unknown, ...a.missing].length > 0 || a.positional.length !== 1 || !a.values.key) return ctx.err(SIGN_USAGE), EXIT.USAGE;
    const tarball = resolve(ctx.cwd, a.positional[0]!);
    const out = resolve(ctx.cwd, (a.values.out as string | undefined) ?? `${tarball}.sig`);
    try {
      const s = signRelease(readFileSync(resolve(ctx.cwd, a.values.key as string), 'utf8'), { version: await tarballVersion(tarball), bytes: readFileSync(tarball) });
      writeFileSync(out, `${JSON.stringify(s, null, 2)}\n`);
      ctx.out(`signed ${basename(tarball)}: version ${s.version}, ${s.size} bytes, key ${s.keyId} -> ${out}`);
      return EXIT.OK;
    } catch (err) {
      return fail(ctx, 'release sign', err);
    }
  },
};

const UPGRADE_USAGE = `piswarm upgrade RELEASE.tar.gz [--abort] [--sig FILE] [--cluster FILE] [--url URL] [--node-timeout S] [--json]

Rolls a signed release over the whole cluster, one node at a time: workers
first, then managers, the Raft leader last, a manager only while every
manager is reachable. Every node verifies the signature (its release key,
upgrade.releaseKey) before anything is installed anywhere; each node's root
installer keeps the previous release and puts it back when the new agent is
not healthy in time, and the rollout stops at the first node that does.
Run it again to resume (nodes on the version are skipped); Ctrl-C stops it
(the node being installed finishes or rolls back by itself, no other is asked).
With --abort it takes the release back instead: every node that installed it
puts back the release it kept before, one at a time in the same order, and
no node catches up to it any more. Nodes that are off catch up when back.

Run it on a node (as root: it reads the node's cluster key), or from your
computer with --cluster FILE and --url http://A-NODE:7070.

  --abort             take RELEASE back where it was installed (its signature names the version)
  --sig FILE          the signature (default RELEASE.tar.gz.sig)
  --cluster FILE      the cluster file (its key signs the requests)
  --url URL           the node whose view of the cluster is used (default the local agent)
  --node-timeout S    longest wait for one node (default 420)
  --json              print the result as JSON

Exit 0: every live node runs the release (--abort: none does); 1: refused or stopped (the output
says where and why); 69: the node does not answer; 64: usage; 78: no key.`;

export function upgradeCommand(load: LoadConfig = defaultLoad): Command {
  return {
    name: 'upgrade',
    summary: 'Roll a signed piswarm release over the cluster, one node at a time, with rollback',
    usage: UPGRADE_USAGE,
    async run(ctx) {
      const loaded = loadForCommand(ctx, load);
      if (typeof loaded === 'number') return loaded;
      const a = parseArgs(loaded.rest, { strings: ['sig', 'cluster', 'url', 'node-timeout'], booleans: ['json', 'help', 'abort'] });
      if (a.values.help) return ctx.out(UPGRADE_USAGE), EXIT.OK;
      const nodeTimeoutS = Number(a.values['node-timeout'] ?? 420);
      if ([...a.unknown, ...a.missing].length > 0 || a.positional.length !== 1 || !(nodeTimeoutS >= 30)) return ctx.err(`piswarm upgrade: give one RELEASE.tar.gz\n\n${UPGRADE_USAGE}`), EXIT.USAGE;
      const tarball = resolve(ctx.cwd, a.positional[0]!);
      const sigPath = resolve(ctx.cwd, (a.values.sig as string | undefined) ?? `${tarball}.sig`);
      let bytes: Buffer;
      let key: string | null;
      let sig;
      try {
        // --abort needs only the version, from the signature: the release itself may be gone.
        bytes = a.values.abort ? Buffer.alloc(0) : readFileSync(tarball);
        sig = parseSignature(existsSync(sigPath) ? readFileSync(sigPath, 'utf8') : null, sigPath);
        key = currentKey(loaded.config, a.values.cluster ? readClusterFile(resolve(ctx.cwd, a.values.cluster as string)) : null);
      } catch (err) {
        return fail(ctx, 'upgrade', err);
      }
      if (!key) return ctx.err('piswarm upgrade: no cluster key here (run it on a node as root, or give --cluster FILE)'), EXIT.CONFIG;
      const base = new URL(localBaseUrl(loaded.config, a.values.url as string | undefined));
      const port = Number(base.port) || 80;
      const client = createPeerClient({ keys: deriveClusterKeys(key), identity: { nodeId: OPERATOR_NODE_ID, name: 'operator', createdAt: '' }, timeoutMs: 10_000, windowMs: loaded.config.formation.authWindowMs });
      const cluster = () => engineView(base, port);
      try {
        const deps = { client, port, cluster, out: a.values.json ? () => {} : ctx.out, nodeTimeoutMs: nodeTimeoutS * 1000 };
        const result = a.values.abort ? await runAbort(deps, sig.version) : await runRollout(deps, sig, bytes);
        if (a.values.json) ctx.out(JSON.stringify(result, null, 2));
        else for (const n of result.nodes.filter((x) => !['installed', 'reverted', 'current'].includes(x.result))) ctx.out(`  ${n.hostname.padEnd(20)} ${n.result.padEnd(12)} ${n.detail}`);
        if (!a.values.json) ctx.out(`${a.values.abort ? 'abort of' : 'upgrade to'} ${result.version}: ${result.outcome}`);
        return result.outcome === 'done' ? EXIT.OK : EXIT.FAILURE;
      } catch (err) {
        ctx.err(`piswarm upgrade: ${(err as Error).message}${isPiswarmError(err) ? ` [${errCode(err)}]` : ''}`);
        return EXIT.UNAVAILABLE;
      } finally {
        await client.close();
      }
    },
  };
}

async function getCluster(url: URL): Promise<ClusterDocument> {
  const r = await callLocal(url.origin, '/v1/cluster', { timeoutMs: 10_000 });
  if (r.status !== 200) throw new Error(`GET ${url.host}/v1/cluster answered ${r.status}`);
  return JSON.parse(r.text) as ClusterDocument;
}

/**
 * The cluster as a manager's engine lists it (who leads, which managers are
 * reachable): the node asked when it is a manager, else the first manager
 * it knows of that answers; the node's own (gossip) view when none does.
 */
async function engineView(base: URL, port: number): Promise<ClusterDocument> {
  const doc = await getCluster(base);
  if (doc.cluster.source === 'engine') return doc;
  for (const n of doc.nodes.filter((x) => x.swarm.role === 'manager' && x.addr && x.gossip?.state === 'alive')) {
    const other = await getCluster(new URL(`http://${joinHostPort(n.addr!, port)}`)).catch(() => null);
    if (other?.cluster.source === 'engine') return other;
  }
  return doc;
}

/** `piswarm upgrade-apply`: the root installer (piswarm-upgrade.service runs it; see agent/upgrade/apply.ts). */
export function upgradeApplyCommand(running: string, prefix: string, load: LoadConfig = defaultLoad): Command {
  return {
    name: 'upgrade-apply',
    summary: 'Install the release the agent asked for (run as root by piswarm-upgrade.service)',
    usage: 'piswarm upgrade-apply\n\nRun by piswarm-upgrade.service (as root) when the agent leaves STATE/upgrade/request.json.',
    async run(ctx) {
      const loaded = loadForCommand(ctx, load);
      if (typeof loaded === 'number') return loaded;
      const config = loaded.config;
      const log = createLogger({ level: 'info', journal: false, write: (l) => ctx.out(l.trimEnd()) });
      const s = await applyUpgrade({
        stateDir: config.stateDir,
        prefix,
        running,
        releaseKey: config.upgrade.releaseKey,
        deadlineMs: config.upgrade.healthDeadlineS * 1000,
        httpBase: localBaseUrl(config),
        log,
      });
      return s === null || s.state === 'installed' ? EXIT.OK : EXIT.FAILURE;
    },
  };
}

