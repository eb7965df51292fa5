import { createServer } from 'node:net';
import { Value } from '@sinclair/typebox/value';
import { ConfigSchema, type Config } from '../../../../shared/config-schema.js';

export const KEY = 'unit-test cluster key: 32 characters or more';
export const OTHER_KEY = 'a different cluster key, also 32+ characters';

/** A full config from the schema's defaults plus overrides (as the loader would build it). */
export function testConfig(over: Record<string, unknown>): Config {
  const merged = Value.Default(ConfigSchema, structuredClone(over)) as Config;
  if (!Value.Check(ConfigSchema, merged)) throw new Error(`bad test config: ${[...Value.Errors(ConfigSchema, merged)].map((e) => `${e.path} ${e.message}`).join('; ')}`);
  return merged;
}

/** A TCP port free on loopback right now (every node of a test cluster listens on it, each on its own 127.0.0.x). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}
