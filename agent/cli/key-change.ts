import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Config } from '../../shared/config-schema.js';
import { EXIT, OPERATOR_NODE_ID } from '../../shared/constants.js';
import { isPiswarmError } from '../../shared/errors.js';
import type { RevokeResponse, RotateResponse } from '../../shared/wire/keyring.js';
import { loadConfig } from '../config/load.js';
import { deriveClusterKeys } from '../identity/keys.js';
import { loadRing } from '../keyring/store.js';
import { createPeerClient, type KeyringClient, type PeerTarget } from '../peers/client.js';
import { newClusterFile, readClusterFile, writeClusterFile, type ClusterFile } from '../provision/cluster-file.js';
import { parseArgs, type Command, type CommandContext } from './command.js';
import { loadForCommand, localBaseUrl, type LoadConfig } from './local-api.js';

const defaultLoad: LoadConfig = (argv, env) => loadConfig({ argv, env, readFile: (p) => readFileSync(p, 'utf8'), hostname: hostname() });

const USAGE = `piswarm cluster rotate-key [--out FILE] [--cluster FILE] [--allow-missing] [--resume FILE] [--url URL]

Gives the running cluster a new random cluster key, with no downtime: the
agent asked runs the rotation over every node it knows (each accepts both
keys, then signs with the new one, then forgets the old one). A node that
was off meanwhile keeps the old key and is refused once back: give it a new
card, or run install.sh --cluster-key-file with the new key on it.

Run it on a node (as root: it reads the node's key), or from your computer
with --cluster FILE (the cluster file holds the key) and --url.

The new cluster file (for flashing more cards) is written before anything
changes, mode 0600, and removed again when the rotation is aborted.

  --out FILE       the new cluster file (default ./NAME-NEWID.cluster.json)
  --cluster FILE   the cluster's current file: its key, name and defaults
  --allow-missing  go on when a known node does not answer the first step
  --resume FILE    finish a rotation that stopped (outcome incomplete) to the key
                   in FILE, the new cluster file it wrote (nothing new is written)
  --url URL        the agent to ask (default http://127.0.0.1:<http.port>)

Exit 0: rotated (nodes that missed it are listed); 1: aborted or incomplete;
69: the agent does not answer; 64: usage; 78: no key to rotate.`;

/** Refusals that come before any step: the new key went nowhere. */
const NOTHING_CHANGED: ReadonlySet<string> = new Set(['PISWARM_ERR_WRONG_CLUSTER', 'PISWARM_ERR_KEYRING', 'PISWARM_ERR_BUSY', 'PISWARM_ERR_MISADDRESSED', 'PISWARM_ERR_PROTOCOL_VERSION']);

/** Pure: the lines printed for an answer. */
export function rotationReport(r: RotateResponse): string[] {
  const lines = [`cluster key ${r.from} -> ${r.to}: ${r.outcome}`];
  for (const n of r.nodes) lines.push(`  ${n.name.padEnd(20)} ${n.addr.padEnd(16)} ${n.reached.padEnd(8)}${n.error ? ` ${n.error}` : ''}`);
  if (r.outcome === 'aborted') lines.push('nothing changed: every node keeps the old key (the nodes listed without "stage" did not answer; --allow-missing goes on without them)');
  if (r.outcome === 'incomplete') lines.push('some nodes did not take every step: they accept both keys until the rotation is finished with `piswarm cluster rotate-key --resume NEW.cluster.json` (the file named below)');
  const missed = r.outcome === 'aborted' ? [] : r.nodes.filter((n) => n.reached === 'none');
  if (missed.length > 0) lines.push(`${missed.map((n) => n.name).join(', ')} missed it: they keep the old key and are refused once back; give them a card flashed with the new cluster file, or run install.sh --cluster-key-file with the new key there`);
  return lines;
}

/** The key to sign operator requests with: a cluster file's, or this node's current one (a past rotation's). */
export function currentKey(config: Readonly<Config>, cluster: ClusterFile | null): string | null {
  if (cluster) return cluster.key;
  if (!config.clusterKey) return null;
  return loadRing(config.stateDir, config.clusterKey).ring.primary;
}

/** What a key change sends, and what it made of the answer. */
interface KeyChange {
  /** Sends the new key; `positional` holds the command's one argument when it takes one. */
  send(client: KeyringClient, target: PeerTarget, key: string, allowMissing: boolean, positional: string | undefined): Promise<{ lines: string[]; outcome: RotateResponse['outcome'] }>;
}

/**
 * The part `cluster rotate-key` and `node revoke` share: the configuration,
 * the current key (the node's, or a cluster file's), the new cluster file
 * written first, the signed call, and what is kept when it fails.
 */
async function runKeyChange(ctx: CommandContext, load: LoadConfig, name: string, usage: string, takesName: boolean, change: KeyChange): Promise<number> {
  const loaded = loadForCommand(ctx, load);
  if (typeof loaded === 'number') return loaded;
  const a = parseArgs(loaded.rest, { strings: ['out', 'cluster', 'url', ...(takesName ? [] : ['resume'])], booleans: ['allow-missing', 'help'] });
  if (a.values.help) {
    ctx.out(usage);
    return EXIT.OK;
  }
  const unexpected = [...a.unknown, ...a.missing, ...a.positional.slice(takesName ? 1 : 0)];
  if (unexpected.length > 0 || (takesName && a.positional.length === 0)) {
    ctx.err(`piswarm ${name}: ${unexpected.length > 0 ? `unexpected ${unexpected.join(' ')}` : 'give the NAME of the node'}\n\n${usage}`);
    return EXIT.USAGE;
  }
  const config = loaded.config;
  let cluster: ClusterFile | null = null;
  try {
    if (a.values.cluster) cluster = readClusterFile(resolve(ctx.cwd, a.values.cluster as string));
  } catch (err) {
    if (!isPiswarmError(err)) throw err;
    ctx.err(`piswarm ${name}: ${err.message} [${err.code}]`);
    return EXIT.USAGE;
  }
  const key = currentKey(config, cluster);
  if (!key) {
    ctx.err(`piswarm ${name}: no cluster key here (run it on a node as root, or give --cluster FILE)`);
    return EXIT.CONFIG;
  }
  // --resume FILE: finish a rotation that stopped, to the key of the file it wrote (kept as it is).
  const resume = a.values.resume ? resolve(ctx.cwd, a.values.resume as string) : null;
  let next: ClusterFile;
  let out: string;
  try {
    if (resume) {
      next = readClusterFile(resume);
      out = resume;
    } else {
      next = newClusterFile({ name: cluster?.name ?? config.clusterName ?? 'piswarm', size: cluster?.size ?? config.formation.expect, keyBytes: randomBytes(32), now: new Date() });
      out = resolve(ctx.cwd, (a.values.out as string | undefined) ?? `${next.name}-${deriveClusterKeys(next.key).clusterId}.cluster.json`);
      writeClusterFile(out, cluster ? { ...cluster, key: next.key, created: next.created } : next, false);
    }
  } catch (err) {
    if (!isPiswarmError(err)) throw err;
    ctx.err(`piswarm ${name}: ${err.message} [${err.code}]`);
    return EXIT.FAILURE;
  }
  const dropOut = () => {
    if (!resume) unlinkSync(out);
  };
  const base = new URL(localBaseUrl(config, a.values.url as string | undefined));
  const client = createPeerClient({ keys: deriveClusterKeys(key), identity: { nodeId: OPERATOR_NODE_ID, name: 'operator', createdAt: '' }, timeoutMs: 10_000, windowMs: config.formation.authWindowMs });
  try {
    const r = await change.send(client, { addr: base.hostname.replace(/^\[|\]$/g, ''), port: Number(base.port) || 80 }, next.key, a.values['allow-missing'] === true, a.positional[0]);
    for (const l of r.lines) ctx.out(l);
    if (r.outcome === 'aborted') dropOut();
    else ctx.out(`the new cluster file: ${out} (mode 0600; flash new cards with it)`);
    return r.outcome === 'rotated' ? EXIT.OK : EXIT.FAILURE;
  } catch (err) {
    ctx.err(`piswarm ${name}: ${(err as Error).message}${isPiswarmError(err) ? ` [${err.code}]` : ''}`);
    if (isPiswarmError(err) && NOTHING_CHANGED.has(err.code)) {
      dropOut();
      ctx.err('nothing changed (refused before the first step)');
    } else ctx.err(`the new key is kept in ${out} in case some nodes took it: finish with \`piswarm cluster rotate-key --resume ${out}\``);
    return isPiswarmError(err) && err.code === 'PISWARM_ERR_PEER_UNREACHABLE' ? EXIT.UNAVAILABLE : EXIT.FAILURE;
  } finally {
    await client.close();
  }
}

export function rotateKeyCommand(load: LoadConfig = defaultLoad): Command {
  return {
    name: 'cluster rotate-key',
    summary: 'Give the running cluster a new cluster key (no downtime); writes the new cluster file',
    usage: USAGE,
    run: (ctx) =>
      runKeyChange(ctx, load, 'cluster rotate-key', USAGE, false, {
        async send(client, target, key, allowMissing) {
          const r = await client.rotate(target, key, allowMissing, 120_000);
          return { lines: rotationReport(r), outcome: r.outcome };
        },
      }),
  };
}

const REVOKE_USAGE = `piswarm node revoke NAME [--out FILE] [--cluster FILE] [--allow-missing] [--url URL]

Revokes a node whose card is lost or stolen, asking a swarm manager (the
local agent unless --url): first the cluster key is rotated on every other
node (so the card can no longer obtain a join grant), then the node is
demoted if it is a manager and removed from the swarm, then both swarm join
tokens are rotated. NAME is its hostname (or swarm node id). The new cluster
file is written as by \`piswarm cluster rotate-key\`. The revoked node, if it
is ever powered on again with that card, is another cluster to the others.

  --out FILE       the new cluster file (default ./NAME-NEWID.cluster.json)
  --cluster FILE   the cluster's current file: its key, name and defaults
  --allow-missing  go on when another node does not answer the first step
  --url URL        the manager to ask (default http://127.0.0.1:<http.port>)

Exit 0: revoked; 1: not done (the output says how far it got); 69: the agent
does not answer; 64: usage; 78: no key.`;

/** Pure: the lines printed for a revoke's answer. */
export function revokeReport(r: RevokeResponse): string[] {
  const lines = rotationReport(r.rotation);
  if (r.excluded.length > 0) lines.push(`left out of the new key: ${r.excluded.join(', ')}`);
  if (r.swarmNode) lines.push(`swarm node ${r.swarmNode.hostname} (${r.swarmNode.id})${r.swarmNode.wasManager ? ', a manager, demoted and' : ''} ${r.swarmNode.removed ? 'removed from the swarm' : 'NOT removed: the key rotation did not finish'}`);
  else lines.push(`no swarm node named ${r.name}: nothing to remove from the swarm`);
  lines.push(r.tokensRotated ? 'swarm join tokens rotated (worker and manager)' : 'swarm join tokens NOT rotated');
  return lines;
}

export function revokeCommand(load: LoadConfig = defaultLoad): Command {
  return {
    name: 'node revoke',
    summary: 'Revoke a lost card: new cluster key without it, out of the swarm, join tokens rotated',
    usage: REVOKE_USAGE,
    run: (ctx) =>
      runKeyChange(ctx, load, 'node revoke', REVOKE_USAGE, true, {
        async send(client, target, key, allowMissing, name) {
          const r = await client.revoke(target, name!, key, allowMissing, 120_000);
          const done = r.rotation.outcome === 'rotated' && (r.swarmNode === null || r.swarmNode.removed) && r.tokensRotated;
          return { lines: revokeReport(r), outcome: done ? 'rotated' : r.rotation.outcome === 'aborted' ? 'aborted' : 'incomplete' };
        },
      }),
  };
}
