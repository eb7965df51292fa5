/**
 * A deliberately small YAML emitter for cloud-init files (the project has no
 * YAML dependency and needs none for writing). Scalars are emitted as JSON
 * double-quoted strings, which YAML 1.1 (PyYAML, cloud-init) reads verbatim,
 * so no user input (SSID, password, hostname) can change the document's shape.
 */
export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue | undefined };

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

function key(k: string): string {
  return PLAIN_KEY.test(k) ? k : JSON.stringify(k);
}

function scalar(v: string | number | boolean | null): string {
  if (v === null) return 'null';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot write ${v} as YAML`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return JSON.stringify(v);
}

function isMultiline(v: YamlValue): v is string {
  return typeof v === 'string' && v.includes('\n');
}

/** A literal block keeps scripts readable in the generated user-data. */
function block(v: string, indent: string): string {
  const chomp = v.endsWith('\n') ? '' : '-';
  const body = v.endsWith('\n') ? v.slice(0, -1) : v;
  // An indentation indicator is needed when the first line starts with a space.
  const indicator = body.startsWith(' ') ? '2' : '';
  return `|${indicator}${chomp}\n${body.split('\n').map((l) => (l === '' ? '' : `${indent}  ${l}`)).join('\n')}`;
}

function emit(v: YamlValue, indent: string): string {
  if (Array.isArray(v)) {
    if (v.length === 0) return ' []';
    return `\n${v.map((item) => {
      if (typeof item === 'object' && item !== null && !Array.isArray(item)) {
        const inner = emit(item, `${indent}  `).replace(/^\n/, '');
        return `${indent}- ${inner.slice(indent.length + 2)}`;
      }
      if (isMultiline(item)) return `${indent}- ${block(item, indent)}`;
      return `${indent}-${emit(item, `${indent}  `)}`;
    }).join('\n')}`;
  }
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined) as [string, YamlValue][];
    if (entries.length === 0) return ' {}';
    return `\n${entries.map(([k, x]) => {
      if (isMultiline(x)) return `${indent}${key(k)}: ${block(x, indent)}`;
      return `${indent}${key(k)}:${emit(x, `${indent}  `)}`;
    }).join('\n')}`;
  }
  return ` ${scalar(v)}`;
}

/** A whole document; `header` is e.g. '#cloud-config'. */
export function toYaml(doc: { [key: string]: YamlValue | undefined }, header?: string): string {
  const body = emit(doc, '').replace(/^\n/, '');
  return `${header ? `${header}\n` : ''}${body}\n`;
}
