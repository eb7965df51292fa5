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

/** The copies next to this module (npm run build puts them in dist/agent/dashboard/static). */
export const STATIC_DIR = new URL('./static/', import.meta.url);

export async function loadAssets(dir: URL = STATIC_DIR): Promise<Map<string, Asset>> {
  const out = new Map<string, Asset>();
  for (const [name, type] of Object.entries(ASSET_FILES)) {
    const body = await readFile(new URL(name, dir));
    out.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` });
  }
  return out;
}
