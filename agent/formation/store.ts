import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { ElectionResult } from '../../shared/wire/peer.js';
import { writeFileAtomic } from '../lifecycle/state-file.js';

/**
 * What formation must remember across reboots: the swarms of this cluster
 * this node has seen (once any exists, creating a new one is off) and the
 * swarm it joined (a worker cannot ask its engine for the swarm id); and the
 * election that made the swarm, so /v1/formation still answers "who created
 * it and why" after a restart.
 */
export interface PersistedFormation {
  seenSwarms: Array<{ id: string; createdAt: string | null; firstSeen: string }>;
  /**
   * joinAddr: the manager address the engine joined through (first of RemoteAddrs), when known;
   * nodeId: this node's swarm node id in it (an engine in error names none, also after a reboot);
   * managers: the managers (host:port) the engine last named, for the join relay after a restart
   * (an engine in error, or just started, names none).
   */
  joined: { id: string; createdAt: string | null; joinAddr?: string | null; nodeId?: string | null; managers?: string[] } | null;
  /** Absent in files written before it was kept. */
  election?: ElectionResult | null;
}

export interface FormationStore {
  load(): PersistedFormation;
  save(state: PersistedFormation): void;
}

export function emptyFormation(): PersistedFormation {
  return { seenSwarms: [], joined: null };
}

const HOST_PORT = /^[0-9A-Za-z.:[\]-]{1,62}:\d{1,5}$/;

/** A kept manager list as read back: addresses only (host:port), at most 16; anything else is dropped, never dialled. */
function managerList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((a): a is string => typeof a === 'string' && HOST_PORT.test(a)).slice(0, 16) : [];
}

export function createFileFormationStore(stateDir: string, onError: (err: unknown) => void): FormationStore {
  const file = join(stateDir, 'formation.json');
  return {
    load() {
      try {
        const p = JSON.parse(readFileSync(file, 'utf8')) as Partial<PersistedFormation>;
        return {
          seenSwarms: Array.isArray(p.seenSwarms) ? p.seenSwarms.filter((s) => typeof s?.id === 'string').slice(-16) : [],
          joined: p.joined && typeof p.joined.id === 'string'
            ? { id: p.joined.id, createdAt: p.joined.createdAt ?? null, joinAddr: typeof p.joined.joinAddr === 'string' ? p.joined.joinAddr : null, nodeId: typeof p.joined.nodeId === 'string' ? p.joined.nodeId : null, managers: managerList(p.joined.managers) }
            : null,
          // A hand-edited or older file: a malformed election is dropped, never trusted.
          election: Value.Check(ElectionResult, p.election) ? p.election : null,
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onError(err);
        return emptyFormation();
      }
    },
    save(state) {
      try {
        mkdirSync(stateDir, { recursive: true, mode: 0o700 });
        writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`);
      } catch (err) {
        onError(err);
      }
    },
  };
}

/** In-memory store for tests and for a node without a writable state dir. */
export function createMemoryFormationStore(initial: PersistedFormation = emptyFormation()): FormationStore & { state: PersistedFormation } {
  const box = { state: structuredClone(initial) };
  return {
    get state() {
      return box.state;
    },
    load: () => structuredClone(box.state),
    save: (s) => {
      box.state = structuredClone(s);
    },
  };
}
