import { request } from 'undici';
import type { Config } from '../../shared/config-schema.js';
import { EXIT } from '../../shared/constants.js';
import { ConfigError } from '../config/load.js';
import { parseArgs } from './command.js';
import { joinHostPort } from '../net/address.js';

/** Where the CLI finds the local agent: loopback on the configured port. */
export function localBaseUrl(config: Readonly<Config>, override?: string): string {
  if (override) return override.replace(/\/$/, '');
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
  return `http://${joinHostPort(host, config.http.port)}`;
}

export interface LocalAnswer {
  status: number;
  text: string;
}

/** One call to the local agent with a deadline; throws only when it does not answer. */
export async function callLocal(base: string, path: string, opts: { method?: 'GET' | 'POST'; timeoutMs?: number } = {}): Promise<LocalAnswer> {
  const res = await request(`${base}${path}`, {
    method: opts.method ?? 'GET',
    headersTimeout: opts.timeoutMs ?? 5000,
    bodyTimeout: opts.timeoutMs ?? 5000,
    ...(opts.method === 'POST' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}),
  });
  return { status: res.statusCode, text: await res.body.text() };
}

/** callLocal for a command: an agent that does not answer is reported and becomes exit 69. */
export async function askLocal(
  ctx: { err: (t: string) => void },
  base: string,
  path: string,
  opts?: { method?: 'GET' | 'POST'; timeoutMs?: number },
): Promise<LocalAnswer | number> {
  try {
    return await callLocal(base, path, opts);
  } catch (err) {
    ctx.err(`the agent at ${base} does not answer: ${(err as Error).message}`);
    return EXIT.UNAVAILABLE;
  }
}

/** Loads the configuration for a CLI command: argv and environment in, config and the remaining words out. */
export type LoadConfig = (argv: string[], env: Readonly<Record<string, string | undefined>>) => { config: Readonly<Config>; rest: string[] };

/** The configuration for a command, or exit 78 with the reason printed. */
export function loadForCommand(
  ctx: { argv: string[]; env: Readonly<Record<string, string | undefined>>; err: (t: string) => void },
  load: LoadConfig,
): ReturnType<LoadConfig> | number {
  try {
    return load(ctx.argv, ctx.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    ctx.err(err.message);
    return EXIT.CONFIG;
  }
}

/**
 * The part every client of the local agent shares: the configuration (for the
 * port), `--json` and `--url`, and a usage error for anything else. Returns
 * an exit code when the command must stop there.
 */
export function localInvocation(
  ctx: { argv: string[]; env: Readonly<Record<string, string | undefined>>; err: (t: string) => void },
  load: LoadConfig,
  usage: string,
  opts: { json?: boolean } = {},
): { base: string; json: boolean; config: Readonly<Config> } | number {
  const loaded = loadForCommand(ctx, load);
  if (typeof loaded === 'number') return loaded;
  const a = parseArgs(loaded.rest, { booleans: opts.json === false ? [] : ['json'], strings: ['url'] });
  const unexpected = [...a.unknown, ...a.missing, ...a.positional];
  if (unexpected.length > 0) {
    ctx.err(`unexpected: ${unexpected.join(' ')}\n\n${usage}`);
    return EXIT.USAGE;
  }
  return { base: localBaseUrl(loaded.config, a.values.url as string | undefined), json: a.values.json === true, config: loaded.config };
}
