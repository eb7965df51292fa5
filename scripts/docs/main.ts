import { readFileSync, writeFileSync } from 'node:fs';
import { fillReadme } from './tables.js';

// `npm run docs`: regenerates the README's settings and error-code tables.
const path = new URL('../../../README.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = fillReadme(before);
if (after !== before) writeFileSync(path, after);
process.stdout.write(after === before ? 'README tables already up to date\n' : 'README tables regenerated\n');
