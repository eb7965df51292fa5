import t from 'tap';
import { readFileSync } from 'node:fs';
import { fillReadme } from '../../scripts/docs/tables.js';

// The README documents every setting and every error code; this keeps it true.
t.test('the README tables match the config schema and the error codes', async (t) => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  t.equal(fillReadme(readme), readme, 'run `npm run docs` to regenerate the README tables');
});
