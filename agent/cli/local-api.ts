import { request } from 'undici';
import type { Config } from '../../shared/config-schema.js';

/** Where the CLI finds the local agent: loopback on the configured port. */
export function localBaseUrl(config: Readonly<Config>, override?: string): string {
  if (override) return override.replace(/\/$/, '');
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
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
