import type { FastifyPluginAsync } from 'fastify';
import type { Collector } from '../metrics/types.js';
import type { HealthCheck } from '../health/types.js';

/**
 * A part of the agent with a life: started in order after the HTTP server
 * listens, stopped in reverse order on shutdown. What it knows is exposed
 * only through collectors, health checks and routes.
 */
export interface Subsystem {
  readonly name: string;
  start?(): Promise<void>;
  stop?(): Promise<void>;
  collectors?: Collector[];
  checks?: HealthCheck[];
  routes?: FastifyPluginAsync;
}

/** Runs `fn` but gives up after `ms`, so one stuck part cannot hold shutdown past systemd's deadline. */
export async function withDeadline<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
