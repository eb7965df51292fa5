import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../log/logger.js';
import type { SampledCollector } from '../sampler.js';
import type { MetricFamily } from '../types.js';
import { gauge } from '../node/families.js';
import { parseTextfile } from './parse.js';

/** A text file larger than this is refused (node_exporter has no bound; a Pi's agent should). */
export const MAX_TEXTFILE_BYTES = 1024 * 1024;
/** At most this many `*.prom` files are read, in name order. */
export const MAX_TEXTFILES = 64;

export interface TextfileOptions {
  /** The directory; '' reads nothing and reports no error (node_exporter without --collector.textfile.directory). */
  dir: string;
  log: Pick<Logger, 'warn'>;
  /** Names the agent serves itself, asked once per sample: a text file cannot replace or extend them. */
  ownNames: () => ReadonlySet<string>;
}

interface Sample {
  families: MetricFamily[];
  mtimes: Array<{ file: string; seconds: number }>;
  errored: boolean;
}

/**
 * node_exporter's textfile collector (collector/textfile.go): every `*.prom`
 * file of the directory, read on the sampling interval, its families served
 * next to the agent's, `node_textfile_mtime_seconds{file}` for each file read
 * and `node_textfile_scrape_error` 1 when a file or the directory could not be
 * read or parsed. A bad file is skipped whole and logged once per change; the
 * others still count. Same-named families of two files are merged, a sample
 * given twice is dropped by the formatter.
 */
export function createTextfileCollector(opts: TextfileOptions): SampledCollector {
  let last: Sample = { families: [], mtimes: [], errored: false };
  const told = new Map<string, string>();
  const tell = (file: string, problem: string | null) => {
    if (problem === null) {
      told.delete(file);
      return;
    }
    if (told.get(file) === problem) return;
    told.set(file, problem);
    opts.log.warn({ code: 'PISWARM_ERR_TEXTFILE', file, problem }, 'a metrics text file was skipped');
  };

  function readOne(file: string, out: Sample, own: ReadonlySet<string>): void {
    const st = fs.statSync(file);
    if (!st.isFile()) return;
    if (st.size > MAX_TEXTFILE_BYTES) throw new Error(`larger than ${MAX_TEXTFILE_BYTES} bytes (${st.size})`);
    const parsed = parseTextfile(fs.readFileSync(file, 'utf8'), file);
    if (!parsed.ok) throw new Error(parsed.error);
    const taken = parsed.families.find((f) => f.name.startsWith('piswarm_') || own.has(f.name));
    if (taken) throw new Error(`${taken.name} is a series the agent serves itself`);
    out.families.push(...parsed.families);
    out.mtimes.push({ file, seconds: Math.floor(st.mtimeMs / 1000) }); // whole seconds, as node_exporter's mtime.Unix()
  }

  return {
    name: 'textfile',
    sample() {
      const out: Sample = { families: [], mtimes: [], errored: false };
      if (opts.dir !== '') {
        let names: string[] = [];
        try {
          names = fs.readdirSync(opts.dir).filter((n) => n.endsWith('.prom')).sort();
          tell(opts.dir, null);
        } catch (err) {
          out.errored = true;
          tell(opts.dir, `the directory cannot be read: ${(err as Error).message}`);
        }
        if (names.length > MAX_TEXTFILES) {
          out.errored = true;
          tell(opts.dir, `${names.length} files; only the first ${MAX_TEXTFILES} are read`);
        }
        const own = names.length > 0 ? opts.ownNames() : new Set<string>();
        for (const name of names.slice(0, MAX_TEXTFILES)) {
          const file = path.join(opts.dir, name);
          try {
            readOne(file, out, own);
            tell(file, null);
          } catch (err) {
            out.errored = true;
            tell(file, (err as Error).message);
          }
        }
      }
      for (const file of told.keys()) if (file !== opts.dir && !out.mtimes.some((m) => m.file === file) && !fs.existsSync(file)) told.delete(file);
      last = out;
    },
    collect: () => [
      ...last.families,
      ...(last.mtimes.length === 0 ? [] : [gauge('node_textfile_mtime_seconds', 'Unixtime mtime of textfiles successfully read.',
        last.mtimes.map((m) => ({ labels: { file: m.file }, value: m.seconds })))]),
      gauge('node_textfile_scrape_error', '1 if there was an error opening or reading a file, 0 otherwise', [{ value: last.errored ? 1 : 0 }]),
    ],
  };
}
