/**
 * `npm run bench -- <name> [args...]` runs one benchmark (dist/bench/<name>.js)
 * with its arguments; with no name it lists them. Each benchmark prints its own
 * figures and asserts nothing.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const benches = fs.readdirSync(here).filter((f) => f.endsWith('.js') && f !== 'run.js').map((f) => f.slice(0, -3)).sort();
const [name, ...args] = process.argv.slice(2);
if (!name || name === '--help') {
  console.log(`usage: npm run bench -- <name> [args...]\n\nbenchmarks: ${benches.join(', ')}\n(each one's header comment in bench/<name>.ts lists its options)`);
  process.exit(name ? 0 : 64);
}
if (!benches.includes(name)) {
  console.error(`no benchmark "${name}"; one of: ${benches.join(', ')}`);
  process.exit(64);
}
const r = spawnSync(process.execPath, [path.join(here, `${name}.js`), ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
