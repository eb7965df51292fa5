import type { FastifyInstance } from 'fastify';
import type { Config } from '../shared/config-schema.js';
import type { ErrorCode } from '../shared/errors.js';
import type { Logger } from './log/logger.js';
import type { Notifier } from './lifecycle/sd-notify.js';
import type { DockerEngine } from './docker/engine.js';
import { EngineMonitor } from './docker/monitor.js';
import { evaluate, type HealthDocument } from './health/aggregate.js';
import type { HealthCheck, HealthStatus } from './health/types.js';
import type { Collector, MetricFamily } from './metrics/types.js';
import { buildApp } from './http/app.js';
import { withDeadline, type Subsystem } from './lifecycle/subsystem.js';

/** What the host side (metrics sampler, host checks, disk benchmark) offers the agent. */
export interface HostPort {
  start(): Promise<void>;
  stop(): void;
  /** Samples the host again if the last sample is older than metrics.intervalMs (before a scrape or a health request). */
  fresh(): Promise<void>;
  /** Formats the cached host sample plus the families of `extra` collectors. */
  render(extra: Collector[]): string;
  checks: HealthCheck[];
  diskBench?: () => Promise<unknown>;
}

export interface AgentDeps {
  log: Logger;
  docker: DockerEngine;
  notifier: Notifier;
  host: HostPort;
  version: string;
  /** Further parts (formation, gossip, autopilot), started in this order after listening. */
  subsystems?: (ctx: { monitor: EngineMonitor; health: () => HealthDocument }) => Subsystem[];
}

export interface Agent {
  app: FastifyInstance;
  /** Samples the host and the engine once, so the first scrape has data. */
  prepare(): Promise<void>;
  /** Starts the subsystems (call after the app listens). */
  start(): Promise<void>;
  /** Ordered, bounded stop; never throws. */
  stop(deadlineMs: number): Promise<void>;
  health(): HealthDocument;
}

export async function buildAgent(config: Readonly<Config>, deps: AgentDeps): Promise<Agent> {
  const log = deps.log;
  const monitor = new EngineMonitor(deps.docker, log.child({ mod: 'docker' }), config.metrics.intervalMs);
  // health is defined below from the parts' checks; subsystems call it only once started.
  const parts = deps.subsystems?.({ monitor, health: () => health() }) ?? [];

  const httpErrors = new Map<string, number>();
  const checkErrors = new Map<string, number>();
  const countError = (code: ErrorCode) => httpErrors.set(code, (httpErrors.get(code) ?? 0) + 1);
  const agentCollector: Collector = {
    name: 'agent',
    collect: (): MetricFamily[] => [
      { name: 'piswarm_http_errors_total', help: 'HTTP error responses by error code.', type: 'counter', samples: [...httpErrors].map(([code, value]) => ({ labels: { code }, value })) },
      { name: 'piswarm_health_check_errors_total', help: 'Health checks that threw instead of reporting, by check.', type: 'counter', samples: [...checkErrors].map(([check, value]) => ({ labels: { check }, value })) },
    ],
  };

  const checks: HealthCheck[] = [...monitor.healthChecks(), ...deps.host.checks, ...parts.flatMap((p) => p.checks ?? [])];
  const collectors: Collector[] = [monitor.collector(), agentCollector, ...parts.flatMap((p) => p.collectors ?? [])];
  const healthLog = log.child({ mod: 'health' });
  let lastStatus: HealthStatus | null = null;
  const health = () => {
    const doc = evaluate(checks, { version: deps.version, serviceId: config.nodeName ?? 'piswarm' }, (name, err) => {
      checkErrors.set(name, (checkErrors.get(name) ?? 0) + 1);
      healthLog.error({ check: name, err }, 'health check threw');
    });
    if (doc.status !== lastStatus) {
      const failing = Object.entries(doc.checks).filter(([, rs]) => rs.some((r) => r.status !== 'pass')).map(([n]) => n);
      const level = doc.status === 'pass' ? 'info' : 'warn';
      healthLog[level]({ from: lastStatus, to: doc.status, checks: failing }, 'health status changed');
      lastStatus = doc.status;
    }
    return doc;
  };

  const app = await buildApp({
    log,
    bodyLimit: config.http.bodyLimit,
    version: deps.version,
    // The host is sampled when asked (a minimum age, no timer): idle costs nothing.
    health: async () => {
      await deps.host.fresh();
      return health();
    },
    metrics: async () => {
      await deps.host.fresh();
      return deps.host.render(collectors);
    },
    ...(deps.host.diskBench ? { diskBench: deps.host.diskBench } : {}),
    plugins: parts.flatMap((p) => (p.routes ? [p.routes] : [])),
    countError,
  });

  const started: Subsystem[] = [];
  return {
    app,
    health,
    async prepare() {
      await Promise.all([deps.host.start(), monitor.start()]);
    },
    async start() {
      for (const p of parts) {
        await p.start?.();
        started.push(p);
        log.debug({ subsystem: p.name }, 'subsystem started');
      }
    },
    async stop(deadlineMs) {
      const t0 = Date.now();
      const left = () => Math.max(100, deadlineMs - (Date.now() - t0));
      deps.notifier.stopping();
      // Reverse order: formation says goodbye on mDNS before the server closes.
      for (const p of started.reverse()) {
        try {
          await withDeadline(left(), `stopping ${p.name}`, async () => p.stop?.());
        } catch (err) {
          log.warn({ subsystem: p.name, err: (err as Error).message }, 'subsystem did not stop cleanly');
        }
      }
      monitor.stop();
      deps.host.stop();
      try {
        await withDeadline(left(), 'closing the HTTP server', () => app.close());
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'HTTP server did not close cleanly');
      }
    },
  };
}
