import { arch, uptime } from 'node:os';
import type { Config } from '../../shared/config-schema.js';
import type { ClusterDocument } from '../../shared/wire/cluster.js';
import type { NodeListing } from '../docker/engine.js';
import type { HealthDocument } from '../health/aggregate.js';
import type { HostSnapshot } from '../host/types.js';
import { readInventory } from '../host/inventory.js';
import { readRevision, readStorageKind, type HardwareOverride } from '../host/hardware.js';
import type { StorageKind } from '../host/storage.js';
import type { Subsystem } from '../lifecycle/subsystem.js';
import type { Logger } from '../log/logger.js';
import type { Member } from '../membership/types.js';
import { systemClock } from '../membership/clock.js';
import type { FormationStatus } from '../../shared/wire/peer.js';
import { cpuBusySampler } from './cpu.js';
import { FactsLedger } from './ledger.js';
import { createFactsPublisher, type FactsPublisher } from './publisher.js';
import { clusterRoutes } from './routes.js';
import { buildClusterView, type StepInput } from './view.js';
import { boundServices, summariseServices } from '../dashboard/services.js';
import type { ServiceSummary } from '../../shared/wire/cluster.js';
import { SERVICES_ANSWER_BYTES, SERVICES_MAX } from '../../shared/wire/peer.js';
import { PiswarmError, errFields } from '../../shared/errors.js';
import type { PeerReadClient } from '../peers/client.js';
import type { PeerRouteContext } from '../peers/routes.js';
import { nonPassingChecks } from './check-output.js';
import { createRemoteReads } from './remote.js';

/** Figures are re-gossiped this often (one alive update per node per period). */
export const FACTS_PERIOD_MS = 15_000;
export const SERVICES_EVERY_MS = 5_000;

export interface ClusterDeps {
  log: Logger;
  version: string;
  health: () => HealthDocument | null;
  snapshot: () => HostSnapshot | null;
  members: () => Member[];
  formation: () => FormationStatus | null;
  /** A manager's cached engine node list (the autopilot's last listing); null elsewhere. */
  engineNodes: () => NodeListing | null;
  autopilot: () => { role: string; target: number | null; steps: readonly StepInput[] } | null;
  now?: () => number;
  monoNow?: () => number;
  /** Raw services and tasks from this engine (managers only; listed when read, at most every SERVICES_EVERY_MS). */
  listServices?: () => Promise<{ services: unknown[]; tasks: unknown[] }>;
  /** Signed reads from other members (check outputs; a worker's services); null without a cluster key. */
  peerClient?: PeerReadClient | null;
  /** The board model; default: systeminformation's, read once at start. */
  model?: () => Promise<string | null>;
  /** Facts a simulated Pi claims instead of reading them (PISWARM_SIM_HARDWARE, agent/main.ts). */
  hardwareOverride?: HardwareOverride;
}

export type ClusterSubsystem = Subsystem & {
  publisher: FactsPublisher;
  /** `fetch`: a reader is looking, so a worker may ask a manager for services (cached, see remote.ts). */
  view(opts?: { fetch?: boolean }): ClusterDocument;
  /** What this node answers other members' on-demand reads with (agent/peers/routes.ts). */
  peerReads: Pick<PeerRouteContext, 'checks' | 'services'>;
  /** The membership changed (a member's metadata, state, or our own): dates new facts. */
  membersChanged(): void;
};

/**
 * The whole cluster as this node sees it: publishes this node's facts through
 * the membership's metadata (publisher.meta is handed to it) and answers
 * /v1/cluster and /v1/sd/prometheus from memory.
 */
export function clusterSubsystem(config: Readonly<Config>, d: ClusterDeps): ClusterSubsystem {
  const now = d.now ?? Date.now;
  const monoNow = d.monoNow ?? (() => systemClock.now());
  const log = d.log.child({ mod: 'cluster' });
  let model: string | null = null;
  let rev: string | null = null;
  // The storage kind of the boot disk, read again only when the host sample names another disk.
  let storage: { device: string; kind: StorageKind | null } | null = null;
  const hardware = () => {
    const o = d.hardwareOverride;
    if (o?.storage) return { rev, storage: o.storage };
    const dev = d.snapshot()?.bootDisk?.device ?? null;
    if (dev === null) return { rev, storage: null };
    if (storage?.device !== dev) storage = { device: dev, kind: readStorageKind(config.metrics.sysRoot, dev) };
    return { rev, storage: storage.kind };
  };
  const ledger = new FactsLedger();
  const publisher = createFactsPublisher({
    version: d.version,
    health: d.health,
    snapshot: d.snapshot,
    cpuPct: cpuBusySampler(),
    uptimeS: uptime,
    arch: arch(),
    model: () => model,
    hardware,
    now: monoNow,
    periodMs: FACTS_PERIOD_MS,
  });

  let services: ServiceSummary[] | null = null;
  let servicesAt = -Infinity;
  let listing: Promise<void> | null = null;
  /**
   * A manager lists services only when someone reads them (the page, a
   * peer, `piswarm cluster`), at most once per SERVICES_EVERY_MS: an idle
   * Pi asks its engine nothing for them.
   */
  const freshServices = (): Promise<void> => {
    const list = d.engineNodes();
    if (!list || !d.listServices) {
      services = null;
      return Promise.resolve();
    }
    if (monoNow() - servicesAt < SERVICES_EVERY_MS) return Promise.resolve();
    listing ??= d.listServices()
      .then((r) => {
        services = summariseServices(r.services, r.tasks, new Map(list.nodes.map((n) => [n.id, n.hostname])));
        servicesAt = monoNow();
      })
      .catch((err: unknown) => {
        services = null;
        log.debug({ code: (err as { code?: string }).code, err: (err as Error).message }, 'cannot list services');
      })
      .finally(() => {
        listing = null;
      });
    return listing;
  };

  const localChecks = () => {
    const h = d.health();
    if (!h) throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', 'health not evaluated yet');
    return nonPassingChecks(h);
  };
  const remote = createRemoteReads({
    client: d.peerClient ?? null,
    port: config.http.port,
    localChecks,
    now,
    onError: (what, err) => log.debug({ what, ...errFields(err) }, 'on-demand peer read failed'),
  });

  const view = (opts: { fetch?: boolean } = {}): ClusterDocument => {
    const members = d.members();
    const mono = monoNow();
    ledger.observe(members, mono);
    const f = d.formation();
    const engine = d.engineNodes();
    const doc = buildClusterView({
      now: now(),
      monoNow: mono,
      clusterName: config.clusterName,
      self: { id: f?.nodeId ?? '', hostname: config.nodeName ?? f?.name ?? '' },
      members,
      factsAgeMs: (id) => ledger.ageMs(id, mono),
      publishPeriodMs: FACTS_PERIOD_MS,
      engine,
      swarmId: f?.swarm?.id ?? null,
      election: f?.election ? { winner: f.election.winner, why: f.election.why, at: f.election.at } : null,
      autopilot: d.autopilot(),
      services: engine ? services : null,
    });
    // A worker's engine cannot list services: a manager's answer, fetched only while someone reads.
    if (!engine) doc.services = opts.fetch ? remote.workerServices(doc) : remote.lastWorkerServices();
    return doc;
  };

  // Facts are dated when the membership changes, not on a timer: a burst of
  // changes (a push/pull merge) is observed once, on the next turn of the loop.
  let observing: NodeJS.Immediate | null = null;
  const membersChanged = () => {
    observing ??= setImmediate(() => {
      observing = null;
      ledger.observe(d.members(), monoNow());
    });
  };
  return {
    name: 'cluster',
    publisher,
    view,
    membersChanged,
    peerReads: {
      checks: localChecks,
      services: async () => {
        if (!d.engineNodes()) throw new PiswarmError('PISWARM_ERR_NOT_MANAGER', 'this node is not a swarm manager');
        await freshServices();
        if (!services) throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', 'this manager cannot list services now');
        return boundServices(services, SERVICES_MAX, SERVICES_ANSWER_BYTES);
      },
    },
    routes: clusterRoutes({ view, fresh: freshServices, port: config.http.port, nodeChecks: (name) => remote.nodeChecks(view(), name) }),
    async start() {
      rev = d.hardwareOverride?.revision ?? readRevision(config.metrics.procRoot);
      // systeminformation spawns a few commands: not worth holding the start for.
      void (d.model ?? (async () => (await readInventory()).model || null))().then(
        (m) => {
          model = m;
        },
        (err: unknown) => log.debug({ err: (err as Error).message }, 'board model unknown'),
      );
    },
    async stop() {
      if (observing) clearImmediate(observing);
      observing = null;
    },
  };
}
