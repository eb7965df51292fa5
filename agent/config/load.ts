import { Kind, type TSchema, type TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ConfigSchema, type Config } from '../../shared/config-schema.js';
import { DEFAULT_CONFIG_FILE } from '../../shared/constants.js';

/** One invalid field: where it came from, its path and what is wrong with it. */
export interface ConfigIssue {
  path: string;
  source: 'file' | 'env' | 'flag' | 'default';
  message: string;
}

export class ConfigError extends Error {
  readonly code = 'PISWARM_ERR_CONFIG_INVALID';
  constructor(readonly issues: ConfigIssue[]) {
    super(`invalid configuration:\n${issues.map((i) => `  - ${i.path} (${i.source}): ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface ConfigSources {
  /** Command-line words after the command, e.g. ['--port', '8080']. */
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  /** Reads a file as UTF-8; throws an error with code ENOENT when missing. */
  readFile: (path: string) => string;
  hostname: string;
}

export interface LoadedConfig {
  config: Readonly<Config>;
  /** The configuration file read, or null when none was present. */
  file: string | null;
  /** Words of argv that were not configuration flags (positional arguments). */
  rest: string[];
}

/** A leaf setting of the schema with the names it goes by in each layer. */
export interface Setting {
  path: string[];
  env: string;
  flag: string;
  schema: TSchema;
}

const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
const kebab = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();

function leaves(schema: TObject, prefix: string[] = []): Setting[] {
  const out: Setting[] = [];
  for (const [key, sub] of Object.entries(schema.properties)) {
    const path = [...prefix, key];
    if ((sub as TSchema)[Kind] === 'Object') out.push(...leaves(sub as TObject, path));
    else out.push({ path, env: `PISWARM_${path.map(snake).join('_')}`, flag: `--${path.map(kebab).join('-')}`, schema: sub as TSchema });
  }
  return out;
}

/** Every setting, in schema order: the source of the README's table and of `--help`. */
export const SETTINGS: readonly Setting[] = Object.freeze(leaves(ConfigSchema));
const BY_ENV = new Map(SETTINGS.map((s) => [s.env, s]));
const BY_FLAG = new Map(SETTINGS.map((s) => [s.flag, s]));
/** Short spellings users expect. */
const FLAG_ALIASES: Record<string, string> = { '--port': '--http-port', '--host': '--http-host', '--log': '--log-level' };
const CONFIG_ENV = 'PISWARM_CONFIG';
/**
 * Environment variables of ours that are not agent settings: the config file
 * path (read here) and the build and simulator scripts' own knobs, which a
 * user may well have exported in the shell that runs `piswarm`.
 */
const NON_SETTING_ENV = new Set([CONFIG_ENV, 'PISWARM_SIM_BASE', 'PISWARM_SIM_OS', 'PISWARM_ARM64_ROOT', 'PISWARM_BASE_IMAGE', 'PISWARM_DOCKERD_LOG', 'PISWARM_DOCKERD_WAIT_SECONDS',
  // Read by agent/main.ts: the hardware facts a simulated Pi claims (agent/host/hardware.ts).
  'PISWARM_SIM_HARDWARE']);

type Coerced = { ok: true; value: unknown } | { ok: false; message: string };

/** Turns a string from the environment or a flag into the type the schema wants. */
function coerce(raw: string, schema: TSchema): Coerced {
  const kind = schema[Kind];
  if (kind === 'Integer' || kind === 'Number') {
    const n = Number(raw.trim());
    return raw.trim() !== '' && Number.isFinite(n) ? { ok: true, value: n } : { ok: false, message: `expected a number, got "${raw}"` };
  }
  if (kind === 'Boolean') {
    const v = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return { ok: true, value: true };
    if (['0', 'false', 'no', 'off'].includes(v)) return { ok: true, value: false };
    return { ok: false, message: `expected true or false, got "${raw}"` };
  }
  if (kind === 'Array') return { ok: true, value: raw.split(',').map((s) => s.trim()).filter(Boolean) };
  return { ok: true, value: raw };
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isPlainObject(v) && isPlainObject(out[k]) ? merge(out[k] as Record<string, unknown>, v) : v;
  return out;
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Splits argv into configuration flags and the rest; reports unknown flags and missing values. */
function parseFlags(argv: readonly string[], issues: ConfigIssue[]): { layer: Record<string, unknown>; configFile?: string; rest: string[] } {
  const layer: Record<string, unknown> = {};
  const rest: string[] = [];
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (!word.startsWith('--')) {
      rest.push(word);
      continue;
    }
    if (word === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    const eq = word.indexOf('=');
    let name = eq === -1 ? word : word.slice(0, eq);
    name = FLAG_ALIASES[name] ?? name;
    const inline = eq === -1 ? undefined : word.slice(eq + 1);
    if (name === '--config') {
      configFile = inline ?? argv[++i];
      if (configFile === undefined) issues.push({ path: 'config', source: 'flag', message: '--config needs a file path' });
      continue;
    }
    const setting = BY_FLAG.get(name);
    if (!setting) {
      rest.push(word); // left to the command: --help, --json, ... or reported by it as unknown
      continue;
    }
    let raw = inline;
    if (raw === undefined && setting.schema[Kind] === 'Boolean' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'))) raw = 'true';
    if (raw === undefined) raw = argv[++i];
    if (raw === undefined) {
      issues.push({ path: setting.path.join('.'), source: 'flag', message: `${name} needs a value` });
      continue;
    }
    const c = coerce(raw, setting.schema);
    if (c.ok) setPath(layer, setting.path, c.value);
    else issues.push({ path: setting.path.join('.'), source: 'flag', message: c.message });
  }
  return { layer, rest, ...(configFile !== undefined ? { configFile } : {}) };
}

function envLayer(env: ConfigSources['env'], issues: ConfigIssue[]): Record<string, unknown> {
  const layer: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('PISWARM_') || raw === undefined || NON_SETTING_ENV.has(name)) continue;
    const setting = BY_ENV.get(name);
    if (!setting) {
      issues.push({ path: name, source: 'env', message: 'unknown setting' });
      continue;
    }
    const c = coerce(raw, setting.schema);
    if (c.ok) setPath(layer, setting.path, c.value);
    else issues.push({ path: setting.path.join('.'), source: 'env', message: c.message });
  }
  return layer;
}

function fileLayer(path: string, explicit: boolean, read: ConfigSources['readFile'], issues: ConfigIssue[]): { layer: Record<string, unknown>; found: boolean } {
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) return { layer: {}, found: false };
    issues.push({ path: 'config', source: 'file', message: `cannot read ${path}: ${code ?? (err as Error).message}` });
    return { layer: {}, found: false };
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isPlainObject(parsed)) {
      issues.push({ path: 'config', source: 'file', message: `${path} must hold a JSON object` });
      return { layer: {}, found: true };
    }
    return { layer: parsed, found: true };
  } catch (err) {
    issues.push({ path: 'config', source: 'file', message: `${path} is not valid JSON: ${(err as Error).message}` });
    return { layer: {}, found: true };
  }
}

/** TypeBox's messages, made to say what is allowed. */
function describe(schema: TSchema, message: string): string {
  if (message === 'Unexpected property') return 'unknown setting';
  const anyOf = (schema as { anyOf?: Array<{ const?: unknown }> }).anyOf;
  if (anyOf?.every((s) => s.const !== undefined)) return `must be one of ${anyOf.map((s) => String(s.const)).join(', ')}`;
  return message.toLowerCase();
}

/**
 * Builds the one frozen configuration from every layer, or throws a
 * ConfigError listing every invalid field at once.
 */
export function loadConfig(sources: ConfigSources): LoadedConfig {
  const issues: ConfigIssue[] = [];
  const flags = parseFlags(sources.argv, issues);
  const explicitFile = flags.configFile ?? sources.env[CONFIG_ENV];
  const filePath = explicitFile ?? DEFAULT_CONFIG_FILE;
  const file = fileLayer(filePath, explicitFile !== undefined, sources.readFile, issues);
  const env = envLayer(sources.env, issues);

  const merged = merge(merge(file.layer, env), flags.layer);
  // Which layer a path's value came from, so every issue names its source.
  const sourceOf = (path: string): ConfigIssue['source'] => {
    const keys = path.split('.');
    const has = (layer: Record<string, unknown>) => {
      let node: unknown = layer;
      for (const k of keys) {
        if (!isPlainObject(node) || !(k in node)) return false;
        node = node[k];
      }
      return true;
    };
    return has(flags.layer) ? 'flag' : has(env) ? 'env' : has(file.layer) ? 'file' : 'default';
  };
  const withDefaults = Value.Default(ConfigSchema, structuredClone(merged)) as Record<string, unknown>;
  const schemaBad = new Set<string>();
  for (const e of Value.Errors(ConfigSchema, withDefaults)) {
    const path = e.path.replace(/^\//, '').replace(/\//g, '.') || '(root)';
    schemaBad.add(path);
    // An unknown key reports at its parent; name the key itself.
    const extra = e.schema.additionalProperties === false && isPlainObject(e.value)
      ? Object.keys(e.value).filter((k) => !(k in ((e.schema as TObject).properties ?? {})))
      : [];
    if (extra.length > 0) {
      for (const k of extra) {
        const full = path === '(root)' ? k : `${path}.${k}`;
        issues.push({ path: full, source: sourceOf(full), message: 'unknown setting' });
      }
    } else issues.push({ path, source: sourceOf(path), message: describe(e.schema, e.message) });
  }

  // The checks the schema cannot express run even when it found errors, on
  // every field it did not already reject, so one run lists every problem.
  const cfg = withDefaults as Config;
  const ok = (...paths: string[]) => paths.every((p) => !schemaBad.has(p));
  const post = (path: string, message: string) => issues.push({ path, source: sourceOf(path), message });
  if (ok('clusterKeyFile', 'clusterKey') && typeof cfg.clusterKeyFile === 'string' && cfg.clusterKey === undefined) {
    try {
      const key = sources.readFile(cfg.clusterKeyFile).trim();
      if (key.length < 32) post('clusterKeyFile', 'the key in the file is shorter than 32 characters');
      else cfg.clusterKey = key;
    } catch (err) {
      post('clusterKeyFile', `cannot read the cluster key file: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  const h = isPlainObject(cfg.health) ? cfg.health : null;
  if (h && ok('health.diskFreeFailPercent', 'health.diskFreeWarnPercent') && h.diskFreeFailPercent > h.diskFreeWarnPercent) {
    post('health.diskFreeFailPercent', 'must not exceed health.diskFreeWarnPercent');
  }
  if (h && ok('health.temperatureFailCelsius', 'health.temperatureWarnCelsius') && h.temperatureFailCelsius < h.temperatureWarnCelsius) {
    post('health.temperatureFailCelsius', 'must not be below health.temperatureWarnCelsius');
  }
  if (issues.length === 0) cfg.nodeName ??= sources.hostname;
  // Deduplicate: TypeBox can report one field twice (e.g. type and pattern).
  const seen = new Set<string>();
  const unique = issues.filter((i) => {
    const k = `${i.path}|${i.message}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
  if (unique.length > 0) throw new ConfigError(unique);
  return { config: deepFreeze(withDefaults as Config), file: file.found ? filePath : null, rest: flags.rest };
}
