import fs from 'node:fs';
import path from 'node:path';

const MISSING = new Set(['ENOENT', 'ENOTDIR']);
// sysfs answers EINVAL/ENODATA/EOPNOTSUPP for an attribute the device does not have right now
// (speed of a link that is down, PSI on a kernel booted with psi=0): no value, not a failure.
const NO_VALUE = new Set([...MISSING, 'EINVAL', 'ENODATA', 'EOPNOTSUPP', 'EAGAIN', 'ENXIO', 'ENODEV', 'EIO']);

const code = (err: unknown) => (err as NodeJS.ErrnoException | null)?.code ?? '';

/**
 * procfs/sysfs access under configurable roots for the node_exporter-style
 * collectors. Synchronous like reader.ts: these files are generated in memory
 * and read once per sampling interval, never on a scrape.
 */
export function createNodeFiles(procRoot: string, sysRoot: string) {
  return {
    proc: (...p: string[]) => path.join(procRoot, ...p),
    sys: (...p: string[]) => path.join(sysRoot, ...p),
    read: (file: string) => fs.readFileSync(file, 'utf8'),
    /** null when the file does not exist (the series is then absent). */
    optional(file: string): string | null {
      try {
        return fs.readFileSync(file, 'utf8');
      } catch (err) {
        if (MISSING.has(code(err))) return null;
        throw err;
      }
    },
    /** A sysfs attribute: null when it is missing or has no value now. */
    attr(file: string): string | null {
      try {
        return fs.readFileSync(file, 'utf8').trim();
      } catch (err) {
        if (NO_VALUE.has(code(err)) || code(err) === 'EACCES') return null;
        throw err;
      }
    },
    /** The first bytes of a file (e.g. /proc/self/smaps, which is long); null when missing. */
    head(file: string, bytes: number): string | null {
      let fd: number;
      try {
        fd = fs.openSync(file, 'r');
      } catch (err) {
        if (MISSING.has(code(err))) return null;
        throw err;
      }
      try {
        const buf = Buffer.alloc(bytes);
        return buf.subarray(0, fs.readSync(fd, buf, 0, bytes, 0)).toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    },
    list(dir: string): string[] | null {
      try {
        return fs.readdirSync(dir);
      } catch (err) {
        if (MISSING.has(code(err))) return null;
        throw err;
      }
    },
    realpath(p: string): string | null {
      try {
        return fs.realpathSync(p);
      } catch (err) {
        if (MISSING.has(code(err))) return null;
        throw err;
      }
    },
  };
}

export type NodeFiles = ReturnType<typeof createNodeFiles>;
