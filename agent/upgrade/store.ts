import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { RELEASE_CHUNK_BYTES, type ReleaseSignature } from '../../shared/wire/release.js';
import { writeFileAtomic } from '../lifecycle/state-file.js';
import { checkBytes, parseSignature, ReleaseRefused } from './signature.js';

/**
 * Releases a node holds, in STATE/upgrade/releases: `<sha>.sig` (the
 * signature, written when the release is offered), `<sha>.part` while it
 * arrives, `<sha>.tar.gz` once whole and matching its signature. Bounded:
 * one release arrives at a time (another offer drops the partial one), and
 * at most KEEP whole releases stay (the running one, for peers that catch
 * up, and the next).
 */
export const KEEP = 2;

export interface ReleaseStore {
  readonly dir: string;
  /** Bytes held of the release: its size when whole. */
  have(s: ReleaseSignature): number;
  /** Records the signature of a release about to arrive; drops other partial releases. */
  offered(s: ReleaseSignature): number;
  /** Appends a chunk at `offset` (== have); an offset not at the end is not written (the caller resends from `have`). */
  append(sha256: string, offset: number, data: Buffer): { have: number; complete: boolean };
  /** A whole release's bytes [offset, offset + RELEASE_CHUNK_BYTES). */
  read(sha256: string, offset: number): Buffer;
  signature(sha256: string): ReleaseSignature | null;
  complete(sha256: string): boolean;
  releasePath(sha256: string): string;
  /** Drops whole releases beyond KEEP (oldest first), never one of `keep`. */
  prune(keep: readonly string[]): void;
}

export function releaseStore(stateDir: string): ReleaseStore {
  const dir = join(stateDir, 'upgrade', 'releases');
  const path = (sha: string, ext: string) => join(dir, `${sha}.${ext}`);
  const size = (p: string) => {
    try {
      return statSync(p).size;
    } catch {
      return 0;
    }
  };
  const remove = (p: string) => {
    try {
      unlinkSync(p);
    } catch {
      // Already gone.
    }
  };
  const ensure = () => mkdirSync(dir, { recursive: true, mode: 0o750 });
  const signature = (sha: string): ReleaseSignature | null => {
    const p = path(sha, 'sig');
    if (!existsSync(p)) return null;
    try {
      return parseSignature(readFileSync(p, 'utf8'), p);
    } catch {
      return null;
    }
  };
  const complete = (sha: string) => existsSync(path(sha, 'tar.gz')) && signature(sha) !== null;

  return {
    dir,
    have: (s) => (complete(s.sha256) ? s.size : size(path(s.sha256, 'part'))),
    offered(s) {
      ensure();
      if (complete(s.sha256)) return s.size;
      for (const f of readdirSync(dir)) if (f.endsWith('.part') && f !== `${s.sha256}.part`) remove(join(dir, f));
      writeFileAtomic(path(s.sha256, 'sig'), `${JSON.stringify(s)}\n`, 0o640);
      return size(path(s.sha256, 'part'));
    },
    append(sha, offset, data) {
      const s = signature(sha);
      if (!s) throw new ReleaseRefused('unsigned', `no release ${sha.slice(0, 12)} was offered to this node: offer it (with its signature) first`);
      if (complete(sha)) return { have: s.size, complete: true };
      const part = path(sha, 'part');
      const have = size(part);
      if (offset !== have) return { have, complete: false };
      if (have + data.length > s.size) {
        remove(part);
        throw new ReleaseRefused('too_large', `the release grows past the ${s.size} bytes signed: dropped`);
      }
      const fd = openSync(part, 'a', 0o640);
      try {
        writeSync(fd, data);
      } finally {
        closeSync(fd);
      }
      const now = have + data.length;
      if (now < s.size) return { have: now, complete: false };
      try {
        checkBytes(s, readFileSync(part));
      } catch (err) {
        remove(part);
        throw err;
      }
      renameSync(part, path(sha, 'tar.gz'));
      return { have: now, complete: true };
    },
    read(sha, offset) {
      if (!complete(sha)) throw new ReleaseRefused('unsigned', `this node holds no whole release ${sha.slice(0, 12)}`);
      const fd = openSync(path(sha, 'tar.gz'), 'r');
      try {
        const buf = Buffer.alloc(RELEASE_CHUNK_BYTES);
        const n = readSync(fd, buf, 0, buf.length, offset);
        return buf.subarray(0, n);
      } finally {
        closeSync(fd);
      }
    },
    signature,
    complete,
    releasePath: (sha) => path(sha, 'tar.gz'),
    prune(keep) {
      if (!existsSync(dir)) return;
      const whole = readdirSync(dir)
        .filter((f) => f.endsWith('.tar.gz'))
        .map((f) => ({ sha: f.slice(0, -'.tar.gz'.length), at: statSync(join(dir, f)).mtimeMs }))
        .sort((a, b) => b.at - a.at);
      // The ones named stay; the newest others fill what is left of KEEP.
      let room = KEEP - whole.filter((r) => keep.includes(r.sha)).length;
      for (const r of whole) {
        if (keep.includes(r.sha)) continue;
        if (room-- > 0) continue;
        remove(path(r.sha, 'tar.gz'));
        remove(path(r.sha, 'sig'));
      }
    },
  };
}
