import type { Logger } from '../log/logger.js';
import type { Collector, MetricFamily } from '../metrics/types.js';
import type { CheckResult, HealthCheck } from '../health/types.js';
import { isPiswarmError } from '../../shared/errors.js';
import type { DockerEngine, EngineInfo } from './engine.js';

export interface EngineSample {
  at: number;
  info: EngineInfo | null;
  /** Error code of the last failed sample, null when it answered. */
  errorCode: string | null;
  latencySeconds: number;
}

const STATES = ['inactive', 'pending', 'active', 'error', 'locked'] as const;

/**
 * Polls the engine's /info on an interval and caches it, so /health and
 * /metrics never wait on dockerd. A slow or dead engine makes the sample say
 * so; it never blocks a scrape.
 */
export class EngineMonitor {
  private sample: EngineSample = { at: 0, info: null, errorCode: 'PISWARM_ERR_DOCKER_UNREACHABLE', latencySeconds: 0 };
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private failures = 0;
  private listeners: Array<(s: EngineSample) => void> = [];

  constructor(
    private readonly docker: DockerEngine,
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes the first sample, then keeps sampling on the interval. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  last(): EngineSample {
    return this.sample;
  }

  onSample(fn: (s: EngineSample) => void): void {
    this.listeners.push(fn);
  }

  /** Samples now (coalescing concurrent calls); never throws. */
  refresh(): Promise<void> {
    this.running ??= this.doRefresh().finally(() => { this.running = null; });
    return this.running;
  }

  private async doRefresh(): Promise<void> {
    const t0 = performance.now();
    const before = this.sample;
    try {
      const info = await this.docker.info();
      this.sample = { at: this.now(), info, errorCode: null, latencySeconds: (performance.now() - t0) / 1000 };
      if (before.errorCode !== null && before.at !== 0) this.log.info({ version: info.serverVersion }, 'docker engine answers again');
    } catch (err) {
      this.failures++;
      const code = isPiswarmError(err) ? err.code : 'PISWARM_ERR_DOCKER';
      this.sample = { at: this.now(), info: null, errorCode: code, latencySeconds: (performance.now() - t0) / 1000 };
      if (before.errorCode === null || before.at === 0) this.log.warn({ code, err: (err as Error).message }, 'docker engine does not answer');
    }
    const s = this.sample;
    if (before.info?.swarm.state !== s.info?.swarm.state || before.info?.swarm.isManager !== s.info?.swarm.isManager) {
      if (s.info) this.log.info({ state: s.info.swarm.state, manager: s.info.swarm.isManager, nodeId: s.info.swarm.nodeId }, 'swarm state observed');
    }
    for (const fn of this.listeners) fn(s);
  }

  collector(): Collector {
    return {
      name: 'docker',
      collect: (): MetricFamily[] => {
        const s = this.sample;
        const sw = s.info?.swarm;
        const fams: MetricFamily[] = [
          { name: 'piswarm_docker_up', help: 'Whether the Docker engine answered the last sample (1) or not (0).', type: 'gauge', samples: [{ value: s.info ? 1 : 0 }] },
          { name: 'piswarm_docker_sample_failures_total', help: 'Engine samples that failed since the agent started.', type: 'counter', samples: [{ value: this.failures }] },
          { name: 'piswarm_docker_info_latency_seconds', help: 'Duration of the last engine /info call.', type: 'gauge', samples: [{ value: s.latencySeconds }] },
          {
            name: 'piswarm_swarm_state',
            help: 'Local swarm state of this node as a state set (1 for the current state).',
            type: 'gauge',
            samples: STATES.map((st) => ({ labels: { state: st }, value: sw?.state === st ? 1 : 0 })),
          },
          {
            name: 'piswarm_swarm_role',
            help: 'Swarm role of this node as a state set (1 for the current role).',
            type: 'gauge',
            samples: (['manager', 'worker', 'none'] as const).map((r) => ({
              labels: { role: r },
              value: (sw?.state === 'active' ? (sw.isManager ? 'manager' : 'worker') : 'none') === r ? 1 : 0,
            })),
          },
        ];
        if (s.info) {
          fams.push({ name: 'piswarm_docker_info', help: 'Docker engine version (always 1).', type: 'gauge', samples: [{ labels: { version: s.info.serverVersion }, value: 1 }] });
          if (sw?.isManager) {
            fams.push(
              { name: 'piswarm_swarm_managers', help: 'Managers in the swarm, as seen by this manager.', type: 'gauge', samples: [{ value: sw.managers }] },
              { name: 'piswarm_swarm_nodes', help: 'Nodes in the swarm, as seen by this manager.', type: 'gauge', samples: [{ value: sw.nodes }] },
            );
          }
        }
        return fams;
      },
    };
  }

  healthChecks(): HealthCheck[] {
    const iso = () => new Date(this.sample.at || this.now()).toISOString();
    return [
      {
        name: 'docker:engine',
        run: (): CheckResult[] => {
          const s = this.sample;
          return s.info
            ? [{ status: 'pass', componentType: 'system', observedValue: s.info.serverVersion, time: iso() }]
            : [{ status: 'fail', componentType: 'system', observedValue: null, output: `the Docker engine does not answer (${s.errorCode}); check \`systemctl status docker\``, time: iso() }];
        },
      },
      {
        name: 'swarm:membership',
        run: (): CheckResult[] => {
          const sw = this.sample.info?.swarm;
          if (!sw) return [{ status: 'warn', componentType: 'system', observedValue: null, output: 'unknown while the Docker engine does not answer', time: iso() }];
          const base = { componentType: 'system', observedValue: sw.state, time: iso() } as const;
          if (sw.state === 'active') return [{ ...base, status: 'pass', output: sw.isManager ? 'manager' : 'worker' }];
          if (sw.state === 'error' || sw.state === 'locked') return [{ ...base, status: 'fail', output: sw.error ?? `swarm is ${sw.state}` }];
          return [{ ...base, status: 'warn', output: sw.state === 'pending' ? 'joining a swarm' : 'not in a swarm yet' }];
        },
      },
    ];
  }
}
