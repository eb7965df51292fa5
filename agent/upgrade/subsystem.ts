import { PiswarmError, errCode } from '../../shared/errors.js';
import { RELEASE_CHUNK_BYTES, type ChunkRequest, type ChunkResponse, type FetchRequest, type FetchResponse, type OfferRequest, type OfferResponse, type RefusalReason, type ReleaseSignature, type ReleaseStatus, type RevertRequest, type TargetRequest, type UpgradeState } from '../../shared/wire/release.js';
import type { Subsystem } from '../lifecycle/subsystem.js';
import type { Logger } from '../log/logger.js';
import type { PeerTarget, ReleaseClient } from '../peers/client.js';
import { checkSignature, ReleaseRefused } from './signature.js';
import { clearTarget, readInstalled, readState, readTarget, writeRequest, writeRevertRequest, writeState, writeTarget } from './state.js';
import { releaseStore, type ReleaseStore } from './store.js';
import { compareVersions } from './version.js';

/** A failed catch-up to the same release is tried again after this long. */
export const RETRY_AFTER_MS = 10 * 60_000;

/** States in which the root installer is (or should soon be) at work. */
const IN_PROGRESS: ReadonlySet<UpgradeState['state']> = new Set(['requested', 'installing', 'probing']);

export interface UpgradePeer extends PeerTarget {
  nodeId: string;
  name: string;
  /** The version its gossip facts name, when known. */
  version: string | null;
}

export interface UpgradeDeps {
  stateDir: string;
  /** The version this agent runs. */
  running: string;
  nodeId: string;
  releaseKey: string | undefined;
  /** How long the installer may take in all (request, install, probe): a state older than this is stale. */
  deadlineMs: number;
  catchUp: boolean;
  catchUpIntervalMs: number;
  log: Logger;
  /** Alive peers with the version they publish (catch-up). */
  peers: () => UpgradePeer[];
  client: () => ReleaseClient | null;
  now?: () => number;
  store?: ReleaseStore;
}

export interface ReleaseHandlers {
  offer(req: OfferRequest): OfferResponse;
  chunk(req: ChunkRequest): ChunkResponse;
  install(sha256: string): ReleaseStatus;
  target(req: TargetRequest): ReleaseStatus;
  revert(req: RevertRequest): ReleaseStatus;
  status(): ReleaseStatus;
  fetch(req: FetchRequest): FetchResponse;
}

export type UpgradeSubsystem = Subsystem & ReleaseHandlers & { catchUpOnce(): Promise<string> };

/**
 * A node's side of rolling upgrades: it verifies every release offered
 * against the cluster's release key before keeping a byte of it, stores it
 * in chunks (resumable: a resent offer answers how much it holds), and
 * installs it only by asking the root installer (piswarm-upgrade.path, a
 * request file: the agent stays unprivileged), which verifies it again,
 * keeps the previous release and puts it back when the new agent does not
 * become healthy. A node that was off during a rollout catches up: when a
 * peer publishes a newer version and names it the cluster's target, it reads
 * that release from the peer, verifies it and installs it.
 */
export function upgradeSubsystem(d: UpgradeDeps): UpgradeSubsystem {
  const log = d.log.child({ mod: 'upgrade' });
  const now = d.now ?? Date.now;
  const store = d.store ?? releaseStore(d.stateDir);
  const refusals = new Map<RefusalReason, number>();
  const catchUps = new Map<string, number>();
  let timer: NodeJS.Timeout | null = null;
  let catching = false;
  let failedAt: { sha256: string; at: number } | null = null;

  /** Refusals are counted and logged where they happen: every node says why it refused. */
  function refusing<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ReleaseRefused) {
        refusals.set(err.reason, (refusals.get(err.reason) ?? 0) + 1);
        log.warn({ code: err.code, reason: err.reason }, `release refused (${what}): ${err.message}`);
      }
      throw err;
    }
  }

  const verify = (s: ReleaseSignature) => checkSignature(d.releaseKey, s, d.running);

  const state = (): UpgradeState | null => readState(d.stateDir);
  const busy = (s: UpgradeState | null) => s !== null && IN_PROGRESS.has(s.state) && now() - Date.parse(s.at) < d.deadlineMs;

  const status = (): ReleaseStatus => ({ v: 1, nodeId: d.nodeId, running: d.running, upgrade: observe(), target: readTarget(d.stateDir) });

  function install(sha256: string): ReleaseStatus {
    const s = refusing('install', () => {
      const sig = store.signature(sha256);
      if (!sig || !store.complete(sha256)) throw new ReleaseRefused('truncated', `this node does not hold the whole release ${sha256.slice(0, 12)}: send the rest first`);
      verify(sig);
      return sig;
    });
    const cur = state();
    if (busy(cur)) throw new PiswarmError('PISWARM_ERR_BUSY', `an upgrade to ${cur!.version} is ${cur!.state} on this node since ${cur!.at}`);
    writeState(d.stateDir, { sha256, version: s.version, from: d.running, state: 'requested', at: new Date(now()).toISOString(), detail: 'asked the root installer (piswarm-upgrade.path)' });
    writeRequest(d.stateDir, sha256);
    log.info({ version: s.version, from: d.running, sha256: sha256.slice(0, 12) }, `upgrade to ${s.version} requested: the root installer takes over`);
    return status();
  }

  /** Reads the target release from a peer that holds it, chunk by chunk from what is already here. */
  async function fetchFrom(client: ReleaseClient, peer: UpgradePeer, s: ReleaseSignature): Promise<void> {
    let have = store.offered(s);
    while (have < s.size) {
      const r = await client.releaseFetch(peer, s.sha256, have);
      if (r.sha256 !== s.sha256 || r.offset !== have || r.data.length === 0) throw new PiswarmError('PISWARM_ERR_PEER_UNVERIFIED', `${peer.name} answered another part of the release`);
      have = refusing(`from ${peer.name}`, () => store.append(s.sha256, have, Buffer.from(r.data, 'base64'))).have;
    }
  }

  /** One catch-up round; answers what it did (for the log and tests). */
  async function catchUpOnce(): Promise<string> {
    const client = d.client();
    if (!client || !d.releaseKey) return 'off: no cluster key or no release key';
    if (catching) return 'busy';
    const cur = state();
    if (busy(cur)) return `an upgrade to ${cur!.version} is ${cur!.state}`;
    const newer = d.peers().filter((p) => p.version !== null && (compareVersions(p.version, d.running) ?? 0) > 0);
    if (newer.length === 0) return 'current';
    catching = true;
    try {
      for (const peer of newer) {
        let st: ReleaseStatus;
        try {
          st = await client.releaseStatus(peer);
        } catch (err) {
          log.debug({ peer: peer.name, code: errCode(err) }, 'catch-up: a newer peer did not answer');
          continue;
        }
        const t = st.target;
        if (!t || (compareVersions(t.version, d.running) ?? 0) <= 0 || t.version !== st.running) continue;
        // A release this node already failed is not tried again by itself (the operator can, with piswarm upgrade).
        // Nor one the operator took back (`piswarm upgrade --abort`) on this node.
        if (cur && cur.sha256 === t.sha256 && (cur.state === 'rolled-back' || cur.state === 'refused' || cur.state === 'reverted')) return `not again: ${t.version} ${cur.state} here`;
        const bump = (r: string) => catchUps.set(r, (catchUps.get(r) ?? 0) + 1);
        // A catch-up that failed (a peer serving bytes that are not the release, say) is tried again after a while, not every round.
        if (failedAt && failedAt.sha256 === t.sha256 && now() - failedAt.at < RETRY_AFTER_MS) return `waiting: the last catch-up to ${t.version} failed ${Math.round((now() - failedAt.at) / 1000)} s ago`;
        try {
          refusing(`target of ${peer.name}`, () => verify(t));
          log.info({ version: t.version, from: d.running, peer: peer.name }, `catching up: the cluster runs ${t.version}, fetching it from ${peer.name}`);
          await fetchFrom(client, peer, t);
          writeTarget(d.stateDir, t);
          install(t.sha256);
          bump('requested');
          return `installing ${t.version}`;
        } catch (err) {
          bump('failed');
          failedAt = { sha256: t.sha256, at: now() };
          log.warn({ peer: peer.name, code: errCode(err) }, `catch-up from ${peer.name} failed: ${(err as Error).message}`);
          return `failed: ${(err as Error).message}`;
        }
      }
      return 'no peer names a newer target';
    } finally {
      catching = false;
    }
  }

  /** The installer's final word, told in this agent's journal once (at start, and as it changes). */
  let told = '';
  function observe(): UpgradeState | null {
    const s = state();
    const key = s ? `${s.sha256}:${s.state}` : '';
    if (!s || key === told) return s;
    told = key;
    if (s.state === 'installed' && s.version === d.running) log.info({ version: s.version, from: s.from }, `running ${s.version}, upgraded from ${s.from} at ${s.at}: ${s.detail}`);
    else if (s.state === 'rolled-back' || s.state === 'refused') log.warn({ code: 'PISWARM_ERR_UPGRADE', version: s.version, from: s.from }, `the upgrade to ${s.version} was ${s.state} at ${s.at}: ${s.detail}`);
    return s;
  }

  return {
    name: 'upgrade',
    offer(req) {
      const s = req.signature;
      if (s.version === d.running) return { v: 1, nodeId: d.nodeId, running: d.running, state: 'current', have: 0 };
      refusing('offer', () => verify(s));
      const have = store.offered(s);
      // Releases offered but never installed (a rollout refused elsewhere) do not pile up.
      store.prune([s.sha256, readTarget(d.stateDir)?.sha256, state()?.sha256].filter((x): x is string => !!x));
      return { v: 1, nodeId: d.nodeId, running: d.running, state: have >= s.size ? 'ready' : 'receive', have };
    },
    chunk(req) {
      const r = refusing('chunk', () => store.append(req.sha256, req.offset, Buffer.from(req.data, 'base64')));
      return { v: 1, nodeId: d.nodeId, ...r };
    },
    install,
    target(req) {
      refusing('target', () => checkSignature(d.releaseKey, req.signature, '0.0.0'));
      writeTarget(d.stateDir, req.signature);
      log.info({ version: req.signature.version }, `the cluster's version is now ${req.signature.version}`);
      return status();
    },
    revert(req) {
      if (readTarget(d.stateDir)?.version === req.version) clearTarget(d.stateDir);
      const cur = state();
      if (busy(cur)) throw new PiswarmError('PISWARM_ERR_BUSY', `an upgrade to ${cur!.version} is ${cur!.state} on this node since ${cur!.at}`);
      // The last install that succeeded here, if it is what runs (a later attempt may have rolled back since).
      const done = readInstalled(d.stateDir);
      if (d.running === req.version && done?.version === req.version) {
        writeState(d.stateDir, { sha256: done.sha256, version: done.from, from: d.running, state: 'requested', at: new Date(now()).toISOString(), detail: `asked the root installer to put ${done.from} back` });
        writeRevertRequest(d.stateDir, done.sha256, done.from);
        log.info({ version: done.from, from: d.running }, `the operator takes ${d.running} back: ${done.from} requested`);
      }
      return status();
    },
    status,
    fetch(req) {
      const data = store.read(req.sha256, req.offset);
      return { v: 1, nodeId: d.nodeId, sha256: req.sha256, offset: req.offset, data: data.toString('base64') };
    },
    catchUpOnce,
    async start() {
      const s = observe();
      const target = readTarget(d.stateDir);
      store.prune([...(target ? [target.sha256] : []), ...(s ? [s.sha256] : [])]);
      if (d.releaseKey) {
        timer = setInterval(() => {
          observe();
          if (d.catchUp) {
            catchUpOnce().then(
              (r) => log.debug({ result: r }, 'catch-up round'),
              (err: unknown) => log.warn({ code: errCode(err) }, `catch-up round failed: ${(err as Error).message}`),
            );
          }
        }, d.catchUpIntervalMs);
        timer.unref();
      }
    },
    async stop() {
      if (timer) clearInterval(timer);
    },
    collectors: [
      {
        name: 'upgrade',
        collect: () => {
          const s = state();
          return [
            {
              name: 'piswarm_release_refusals_total',
              help: 'Releases this node refused since the agent started, by reason (unsigned, bad_signature, tampered, truncated, too_large, downgrade, no_release_key).',
              type: 'counter',
              samples: [...refusals].map(([reason, value]) => ({ labels: { reason }, value })),
            },
            {
              name: 'piswarm_upgrade_state',
              help: "The last upgrade on this node: 1 for its state (requested, installing, probing, installed, rolled-back, refused), with the version it went to and came from.",
              type: 'gauge',
              samples: s ? [{ labels: { state: s.state, version: s.version, from: s.from }, value: 1 }] : [],
            },
            {
              name: 'piswarm_upgrade_catchups_total',
              help: 'Catch-ups to the cluster version started by this node (requested) or failed, since the agent started.',
              type: 'counter',
              samples: [...catchUps].map(([result, value]) => ({ labels: { result }, value })),
            },
          ];
        },
      },
    ],
    checks: [
      {
        name: 'agent:upgrade',
        run: () => {
          const s = state();
          if (s && (s.state === 'rolled-back' || s.state === 'refused') && s.version !== d.running) {
            return [{ status: 'warn', observedValue: s.version, output: `the upgrade to ${s.version} was ${s.state} at ${s.at}: ${s.detail}. The rollout stopped here; fix the release and run piswarm upgrade again` }];
          }
          return [{ status: 'pass', observedValue: d.running }];
        },
      },
    ],
  };
}

/** Chunks of a release for a sender: [offset, bytes] from `from`. */
export function* chunksOf(bytes: Buffer, from: number): Generator<[number, Buffer]> {
  for (let o = from; o < bytes.length; o += RELEASE_CHUNK_BYTES) yield [o, bytes.subarray(o, Math.min(bytes.length, o + RELEASE_CHUNK_BYTES))];
}
