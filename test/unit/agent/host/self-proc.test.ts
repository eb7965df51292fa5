import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { parseLimits, parseStatVsize, readSelfProc } from '../../../../agent/host/self-proc.js';

// Recorded from `cat /proc/self/stat` and `cat /proc/self/limits` (Linux 6.x).
const STAT = '21856 (cat) R 21832 21832 1160 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 874749 3133440 392 18446744073709551615 94088437604352 94088437624233 140729114217744 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 94088437640240 94088437641856 94089396854784 140729114221077 140729114221097 140729114221097 140729114222571 0\n';
const LIMITS = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max stack size            8388608              unlimited            bytes     
Max open files            1024                 524288               files     
Max address space         unlimited            unlimited            bytes     
`;

t.test('vsize is field 23, counted after the command name', async (t) => {
  t.equal(parseStatVsize(STAT), 3133440);
  t.equal(parseStatVsize(STAT.replace('(cat)', '(node (my) agent)')), 3133440, 'a name with spaces and parentheses');
  t.equal(parseStatVsize('123 (x) R 1 2'), null, 'too few fields');
  t.equal(parseStatVsize('garbage'), null);
});

t.test('soft limits by name; unlimited is the largest uint64, as procfs reads it', async (t) => {
  const l = parseLimits(LIMITS);
  t.equal(l.get('Max open files'), 1024, 'the soft limit, not the hard one');
  t.equal(l.get('Max stack size'), 8388608);
  t.equal(l.get('Max address space'), 18446744073709551615);
  t.equal(l.has('Limit'), false, 'the header is no row');
  t.equal(parseLimits('').size, 0);
});

t.test('this process, read for real; a missing directory gives nulls, never a throw', async (t) => {
  const me = readSelfProc();
  t.ok(me.vsizeBytes !== null && me.vsizeBytes > process.memoryUsage.rss(), 'virtual size exceeds the resident size');
  t.ok(me.openFds !== null && me.openFds >= 3, `open descriptors (${me.openFds})`);
  const before = me.openFds!;
  const fd = fs.openSync(process.execPath, 'r');
  t.equal(readSelfProc().openFds, before + 1, 'one more descriptor counted');
  fs.closeSync(fd);
  t.ok(me.maxFds !== null && me.maxFds > 0);
  const gone = path.join(os.tmpdir(), `piswarm-no-proc-${process.pid}`);
  t.same(readSelfProc(gone), { vsizeBytes: null, openFds: null, maxFds: null, maxAddressSpaceBytes: null });
});
