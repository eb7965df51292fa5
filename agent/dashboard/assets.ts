import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** The dashboard's files, a fixed list (no path from a request ever reaches the file system). */
export const ASSET_FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/**
 * Where the copies are: next to this module (tsc's dist/agent/dashboard/static), or, in the
 * release's one-file bundle at dist/agent/main.js, in dashboard/static beside the bundle.
 */
export const STATIC_DIRS: readonly URL[] = [new URL('./static/', import.meta.url), new URL('./dashboard/static/', import.meta.url)];

export async function loadAssets(dir?: URL): Promise<Map<string, Asset>> {
  if (!dir) {
    const found = STATIC_DIRS.find((d) => existsSync(new URL('index.html', d)));
    if (!found) throw new Error(`dashboard files not found in ${STATIC_DIRS.map((d) => d.pathname).join(' or ')}`);
    dir = found;
  }
  const out = new Map<string, Asset>();
  for (const [name, type] of Object.entries(ASSET_FILES)) {
    const body = await readFile(new URL(name, dir));
    out.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` });
  }
  return out;
}
