import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PiswarmError } from '../../shared/errors.js';
import { writeFileAtomic } from '../lifecycle/state-file.js';

/**
 * A node's identity: a random id generated once and kept in
 * `stateDir/identity.json`, so a reboot or an agent restart is the same node
 * (same election rank, no duplicate peers). It is not the Docker node id:
 * that one only exists once the engine is in a swarm.
 */
export interface NodeIdentity {
  readonly nodeId: string;
  readonly name: string;
  readonly createdAt: string;
}

export const NODE_ID_PATTERN = /^[0-9a-f]{24}$/;

export function newNodeId(random: (n: number) => Buffer = randomBytes): string {
  return random(12).toString('hex');
}

export function loadOrCreateIdentity(stateDir: string, name: string, now: () => Date = () => new Date()): NodeIdentity {
  const file = join(stateDir, 'identity.json');
  let text: string | null = null;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new PiswarmError('PISWARM_ERR_CONFIG_FILE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
    }
  }
  if (text !== null) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new PiswarmError('PISWARM_ERR_CONFIG_FILE', `${file} is not valid JSON; move it away to generate a new identity`, { cause: err });
    }
    const p = parsed as { nodeId?: unknown; createdAt?: unknown };
    if (typeof p.nodeId !== 'string' || !NODE_ID_PATTERN.test(p.nodeId)) {
      throw new PiswarmError('PISWARM_ERR_CONFIG_FILE', `${file} holds no valid nodeId; move it away to generate a new identity`);
    }
    return Object.freeze({ nodeId: p.nodeId, name, createdAt: typeof p.createdAt === 'string' ? p.createdAt : '' });
  }
  const identity = { nodeId: newNodeId(), createdAt: now().toISOString() };
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileAtomic(file, `${JSON.stringify(identity, null, 2)}\n`);
  } catch (err) {
    throw new PiswarmError('PISWARM_ERR_CONFIG_FILE', `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'} (is stateDir writable?)`, { cause: err });
  }
  return Object.freeze({ ...identity, name });
}
