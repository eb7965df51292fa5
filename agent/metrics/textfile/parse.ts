import type { MetricFamily, MetricSample } from '../types.js';

/**
 * The Prometheus text format (0.0.4) as node_exporter's textfile collector
 * accepts it (collector/textfile.go, which uses expfmt.TextParser): HELP and
 * TYPE lines, samples with optional labels, no client-side timestamps (a file
 * with one is refused whole, as there). Pure: text in, families or an error
 * naming the line out.
 */

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set(['counter', 'gauge', 'untyped', 'histogram', 'summary']);
const SUFFIXES: Record<string, readonly string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count'] };

export class TextfileParseError extends Error {
  constructor(readonly line: number, reason: string) {
    super(`line ${line}: ${reason}`);
  }
}

export type ParseResult = { ok: true; families: MetricFamily[] } | { ok: false; error: string };

/** "1.5", "+Inf", "-Inf", "NaN", "1e3": what Go's ParseFloat takes in this format. */
function parseValue(s: string): number | null {
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return null;
  return Number(s);
}

function unescapeHelp(s: string): string {
  return s.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
}

/** `{a="x",b="y"}` from position 0 of s: the labels and the rest of the line. */
function parseLabels(s: string, line: number): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  const fail = (why: string): never => {
    throw new TextfileParseError(line, why);
  };
  for (;;) {
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (s[i] === '}') return { labels, rest: s.slice(i + 1) };
    const name = LABEL_NAME.exec(s.slice(i))?.[0] ?? fail(`invalid label name at column ${i + 1}`);
    if (name.startsWith('__')) fail(`reserved label name ${name}`);
    if (Object.hasOwn(labels, name)) fail(`label ${name} given twice`);
    i += name.length;
    while (s[i] === ' ') i++;
    if (s[i] !== '=' || s[i + 1] !== '"') fail(`expected ="value" after label ${name}`);
    i += 2;
    let value = '';
    for (;;) {
      const c = s[i];
      if (c === undefined) fail(`unterminated value of label ${name}`);
      if (c === '"') break;
      if (c === '\\') {
        const e = s[i + 1];
        if (e === 'n') value += '\n';
        else if (e === '\\' || e === '"') value += e;
        else fail(`invalid escape \\${e ?? ''} in label ${name}`);
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels[name] = value;
    i++;
    while (s[i] === ' ') i++;
    if (s[i] === ',') i++;
    else if (s[i] !== '}') fail(`expected , or } after label ${name}`);
  }
}

interface Declared {
  help?: string;
  type?: string;
  family?: MetricFamily;
}

/** Parses one file's text; `source` names it in the HELP of families that have none (as node_exporter does). */
export function parseTextfile(text: string, source: string): ParseResult {
  try {
    return { ok: true, families: parse(text, source) };
  } catch (err) {
    if (err instanceof TextfileParseError) return { ok: false, error: err.message };
    throw err;
  }
}

function parse(text: string, source: string): MetricFamily[] {
  const declared = new Map<string, Declared>();
  const families: MetricFamily[] = [];
  const seen = new Set<string>();
  const decl = (name: string) => declared.get(name) ?? declared.set(name, {}).get(name)!;
  const familyFor = (sampleName: string): { family: MetricFamily; suffix?: string } => {
    for (const [base, d] of declared) {
      const suffixes = d.type ? SUFFIXES[d.type] : undefined;
      const suffix = suffixes?.find((x) => sampleName === base + x);
      if (suffix !== undefined) return { family: ensure(base, d), suffix };
    }
    return { family: ensure(sampleName, decl(sampleName)) };
  };
  const ensure = (name: string, d: Declared): MetricFamily => {
    if (!d.family) {
      d.family = { name, help: d.help ?? `Metric read from ${source}`, type: (d.type ?? 'untyped') as MetricFamily['type'], samples: [] };
      families.push(d.family);
    }
    return d.family;
  };

  text.split('\n').forEach((raw, idx) => {
    const line = idx + 1;
    const s = raw.trim();
    if (s === '') return;
    if (s.startsWith('#')) {
      const m = /^#\s*(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(s);
      if (!m) return; // a plain comment
      const [, kind, name, arg = ''] = m as unknown as [string, 'HELP' | 'TYPE', string, string?];
      if (!METRIC_NAME.test(name) || METRIC_NAME.exec(name)![0] !== name) throw new TextfileParseError(line, `invalid metric name ${JSON.stringify(name)}`);
      const d = decl(name);
      if (kind === 'HELP') {
        if (d.help !== undefined) throw new TextfileParseError(line, `second HELP line for ${name}`);
        d.help = unescapeHelp(arg);
        if (d.family) d.family.help = d.help;
      } else {
        if (d.type !== undefined) throw new TextfileParseError(line, `second TYPE line for ${name}`);
        if (!TYPES.has(arg.trim())) throw new TextfileParseError(line, `unknown metric type ${JSON.stringify(arg.trim())}`);
        if (d.family) throw new TextfileParseError(line, `TYPE line for ${name} after its samples`);
        d.type = arg.trim();
      }
      return;
    }
    const name = METRIC_NAME.exec(s)?.[0];
    if (!name) throw new TextfileParseError(line, 'a sample line must start with a metric name');
    let rest = s.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, line));
    const fields = rest.trim().split(/\s+/);
    if (fields.length === 0 || fields[0] === '') throw new TextfileParseError(line, `no value for ${name}`);
    const value = parseValue(fields[0]!);
    if (value === null) throw new TextfileParseError(line, `expected a float as the value of ${name}, got ${JSON.stringify(fields[0])}`);
    if (fields.length === 2 && /^-?\d+$/.test(fields[1]!)) throw new TextfileParseError(line, `${name} has a timestamp: client-side timestamps are not supported, the whole file is skipped`);
    if (fields.length > 1) throw new TextfileParseError(line, `unexpected ${JSON.stringify(fields.slice(1).join(' '))} after the value of ${name}`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new TextfileParseError(line, `${name} with these labels given twice`);
    seen.add(key);
    const { family, suffix } = familyFor(name);
    const sample: MetricSample = { value, ...(Object.keys(labels).length > 0 ? { labels } : {}), ...(suffix ? { suffix } : {}) };
    family.samples.push(sample);
  });
  return families;
}
