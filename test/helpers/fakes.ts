import type { DockerEngine } from '../../agent/docker/engine.js';
import { createLogger, type Logger } from '../../agent/log/logger.js';

/**
 * A Docker engine that models only what a test hands it. Any other call
 * throws `Not implemented: <method>` (balena-supervisor's mockerode idea),
 * so a test cannot pass by accident through an unmodelled path.
 */
export function fakeDocker(impl: Partial<DockerEngine>): DockerEngine {
  return new Proxy(impl as DockerEngine, {
    get(target, prop) {
      if (prop in target) return target[prop as keyof DockerEngine];
      if (prop === 'then') return undefined; // not a thenable
      return () => {
        throw new Error(`Not implemented: ${String(prop)}`);
      };
    },
  });
}

/** A logger whose lines are kept for assertions. */
export function memoryLogger(level = 'debug'): { log: Logger; lines: () => Array<Record<string, unknown>> } {
  const raw: string[] = [];
  const log = createLogger({ level, journal: false, write: (l) => raw.push(l) });
  return { log, lines: () => raw.flatMap((l) => l.split('\n').filter(Boolean)).map((l) => JSON.parse(l) as Record<string, unknown>) };
}
