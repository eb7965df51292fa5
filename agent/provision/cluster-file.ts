import { closeSync, constants as fsConstants, fchmodSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { PiswarmError } from '../../shared/errors.js';

/**
 * The cluster file: what every card of one cluster shares (name, key, size,
 * defaults). It holds the cluster key, so it is written 0600 and never printed.
 */
export const CLUSTER_FILE_FORMAT = 'piswarm-cluster';
export const CLUSTER_FILE_VERSION = 1;
/** 32 random bytes, base64url without padding. */
const KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** Same rule as the config schema's clusterName. */
const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const MAX_CLUSTER_SIZE = 1000;

export interface ClusterDefaults {
  /** Prefix for generated hostnames (`piswarm flash --hostname-prefix` overrides). */
  hostnamePrefix: string;
  timezone: string;
  /** Partial agent configuration merged into every node's /etc/piswarm/config.json. */
  config: Record<string, unknown>;
}

export interface ClusterFile {
  format: typeof CLUSTER_FILE_FORMAT;
  version: typeof CLUSTER_FILE_VERSION;
  name: string;
  key: string;
  size: number;
  defaults: ClusterDefaults;
  created: string;
}

export function isValidClusterName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

/** Builds a new cluster description; randomness and time come from the caller. */
export function newClusterFile(input: { name: string; size: number; keyBytes: Uint8Array; now: Date }): ClusterFile {
  if (!isValidClusterName(input.name)) {
    throw new PiswarmError('PISWARM_ERR_CLUSTER_FILE', `cluster name "${input.name}" must be 1-63 characters of a-z, 0-9 and "-", starting with a letter or digit`);
  }
  if (!Number.isInteger(input.size) || input.size < 1 || input.size > MAX_CLUSTER_SIZE) {
    throw new PiswarmError('PISWARM_ERR_CLUSTER_FILE', `cluster size must be an integer from 1 to ${MAX_CLUSTER_SIZE}`);
  }
  if (input.keyBytes.length !== 32) throw new PiswarmError('PISWARM_ERR_CLUSTER_FILE', 'the cluster key needs exactly 32 random bytes');
  return {
    format: CLUSTER_FILE_FORMAT,
    version: CLUSTER_FILE_VERSION,
    name: input.name,
    key: Buffer.from(input.keyBytes).toString('base64url'),
    size: input.size,
    defaults: {
      hostnamePrefix: `${input.name.slice(0, 50)}-`,
      timezone: 'Etc/UTC',
      // The first swarm is created once this many agents (self included) see each other.
      config: { formation: { expect: Math.min(input.size, 3) } },
    },
    created: input.now.toISOString(),
  };
}

/** Validates parsed JSON; lists every problem at once with its field. */
export function parseClusterFile(text: string, source: string): ClusterFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new PiswarmError('PISWARM_ERR_CLUSTER_FILE', `${source} is not a piswarm cluster file: not valid JSON (${(err as Error).message})`);
  }
  const problems: string[] = [];
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new PiswarmError('PISWARM_ERR_CLUSTER_FILE', `${source} is not a piswarm cluster file: expected a JSON object`);
  }
  const o = data as Record<string, unknown>;
  if (o.format !== CLUSTER_FILE_FORMAT) problems.push(`format: expected "${CLUSTER_FILE_FORMAT}"`);
  if (o.version !== CLUSTER_FILE_VERSION) problems.push(`version: expected ${CLUSTER_FILE_VERSION}, got ${JSON.stringify(o.version)} (created by another piswarm version?)`);
  if (typeof o.name !== 'string' || !isValidClusterName(o.name)) problems.push('name: 1-63 characters of a-z, 0-9 and "-"');
  if (typeof o.key !== 'string' || !KEY_PATTERN.test(o.key)) problems.push('key: expected 32 bytes in base64url (43 characters); recreate the file with `piswarm cluster create`');
  if (!Number.isInteger(o.size) || (o.size as number) < 1 || (o.size as number) > MAX_CLUSTER_SIZE) problems.push(`size: an integer from 1 to ${MAX_CLUSTER_SIZE}`);
  if (typeof o.created !== 'string' || Number.isNaN(Date.parse(o.created))) problems.push('created: an ISO 8601 timestamp');
  const d = o.defaults as Record<string, unknown> | undefined;
  if (typeof d !== 'object' || d === null || Array.isArray(d)) problems.push('defaults: an object');
  else {
    if (typeof d.hostnamePrefix !== 'string' || !/^[a-z0-9][a-z0-9-]{0,50}$/i.test(d.hostnamePrefix)) problems.push('defaults.hostnamePrefix: letters, digits and "-", at most 51');
    if (typeof d.timezone !== 'string' || !/^[A-Za-z0-9_+\-/]+$/.test(d.timezone)) problems.push('defaults.timezone: a tz database name such as Europe/Berlin');
    if (typeof d.config !== 'object' || d.config === null || Array.isArray(d.config)) problems.push('defaults.config: an object (partial agent configuration)');
  }
  const extra = Object.keys(o).filter((k) => !['format', 'version', 'name', 'key', 'size', 'defaults', 'created'].includes(k));
  for (const k of extra) problems.push(`${k}: unknown field`);
  if (problems.length > 0) {
    throw new PiswarmError('PISWARM_ERR_CLUSTER_FILE', `${source} is not a valid piswarm cluster file:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
  return data as ClusterFile;
}

export function readClusterFile(path: string): ClusterFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new PiswarmError('PISWARM_ERR_CLUSTER_FILE', `cannot read cluster file ${path}: ${code}${code === 'ENOENT' ? ' (create one with `piswarm cluster create NAME`)' : ''}`);
  }
  return parseClusterFile(text, path);
}

/**
 * Writes the file 0600 from the first byte (never briefly world-readable);
 * O_EXCL unless `force`, so an existing cluster's key is not lost by accident.
 */
export function writeClusterFile(path: string, cluster: ClusterFile, force: boolean): void {
  const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | (force ? fsConstants.O_TRUNC : fsConstants.O_EXCL);
  let fd: number;
  try {
    fd = openSync(path, flags, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new PiswarmError('PISWARM_ERR_CLUSTER_FILE', `${path} already exists; it may hold the key of a running cluster. Use --force to replace it`);
    throw new PiswarmError('PISWARM_ERR_CLUSTER_FILE', `cannot write cluster file ${path}: ${code ?? (err as Error).message}`);
  }
  try {
    // --force over an older, looser file: O_TRUNC keeps its mode, so set it again.
    fchmodSync(fd, 0o600);
    writeSync(fd, `${JSON.stringify(cluster, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
