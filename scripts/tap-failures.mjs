// Reads TAP (tap --reporter=tap) on stdin and prints each failed assertion
// with the path of subtests that lead to it, and the first lines of its
// diagnostic. CI keeps only the end of the log, and a failing scenario's
// journals can push tap's own "not ok" out of it: scripts/test.sh prints
// these lines just above the totals.
import { createInterface } from 'node:readline';

const DIAG_LINES = 24;
// where the assertion is in the source: the path already says which one it is
const SKIPPED_KEYS = new Set(['at', 'stack', 'source', 'compare']);
const stack = []; // subtest names by depth
const failed = []; // { path, diag }
let diag = null; // the diag block being read: { indent, lines, skipping }
for await (const line of createInterface({ input: process.stdin })) {
  if (diag) {
    if (line.trim() === '...' || !line.startsWith(diag.indent)) diag = null;
    else if (line.trim() !== '---') keep(diag, line.slice(diag.indent.length));
    continue;
  }
  const m = /^( *)(# Subtest: (.*)|not ok \d+ - (.*?)(?: # time=.*)?)$/.exec(line);
  if (!m) continue;
  const depth = m[1].length / 4;
  if (m[3] !== undefined) {
    stack.length = depth;
    stack[depth] = m[3];
    continue;
  }
  const path = [...stack.slice(0, depth), m[4]];
  // a failed subtest repeats the name its "# Subtest:" line gave: keep leaves only
  const leaf = failed.at(-1)?.path;
  if (leaf && path.length < leaf.length && path.every((p, i) => leaf[i] === p)) continue;
  const entry = { path, diag: [] };
  failed.push(entry);
  diag = { indent: `${m[1]}  `, lines: entry.diag, skipping: false };
}

function keep(block, text) {
  const key = /^([\w-]+):/.exec(text);
  if (key) block.skipping = SKIPPED_KEYS.has(key[1]);
  if (!block.skipping && text.trim()) block.lines.push(text.slice(0, 200));
}
const limit = 30;
for (const { path, diag: lines } of failed.slice(0, limit)) {
  console.log(`FAILED: ${path.join(' > ')}`);
  for (const l of lines.slice(0, DIAG_LINES)) console.log(`  | ${l}`);
}
if (failed.length > limit) console.log(`FAILED: ... and ${failed.length - limit} more`);
