import fs from 'node:fs';
import t from 'tap';
import { createLogger, stdoutIsJournal } from '../../../../agent/log/logger.js';

const capture = (journal: boolean, level = 'trace') => {
  const lines: string[] = [];
  const log = createLogger({ level, journal, write: (l) => lines.push(l) });
  return { log, lines };
};

t.test('under journald every line carries its syslog priority', async (t) => {
  const { log, lines } = capture(true);
  log.trace('t'); log.debug('d'); log.info('i'); log.warn('w'); log.error('e'); log.fatal('f');
  t.same(lines.map((l) => l.slice(0, 3)), ['<7>', '<7>', '<6>', '<4>', '<3>', '<2>']);
  const body = JSON.parse(lines[2]!.slice(3));
  t.equal(body.msg, 'i');
  t.equal(body.level, 30);
});

t.test('without journald lines are plain JSON', async (t) => {
  const { log, lines } = capture(false);
  log.info({ peer: 'a' }, 'hello');
  const body = JSON.parse(lines[0]!);
  t.equal(body.peer, 'a');
  t.ok(body.time, 'has a timestamp');
});

t.test('secrets never reach the log', async (t) => {
  const { log, lines } = capture(false);
  const token = 'SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx';
  log.info({ clusterKey: 'super-secret-cluster-key', grant: { token, joinToken: token } }, 'grant issued');
  log.warn({ detail: `docker said: join with ${token}` }, 'engine message');
  log.error({ config: { clusterKey: 'super-secret-cluster-key' } }, 'boom');
  const all = lines.join('');
  t.notMatch(all, /super-secret-cluster-key/);
  t.notMatch(all, /3pu6hszjas19/);
  t.match(all, /SWMTKN-\[REDACTED\]/, 'a token inside a free-text field is masked too');
});

t.test('the journal prefix is used only when stdout is the stream JOURNAL_STREAM names', async (t) => {
  const stdout = { dev: 2049, ino: 123456 };
  t.equal(stdoutIsJournal({ JOURNAL_STREAM: '2049:123456' }, () => stdout), true, 'systemd connected stdout to the journal');
  t.equal(stdoutIsJournal({ JOURNAL_STREAM: '2049:999' }, () => stdout), false, 'inherited variable, stdout redirected elsewhere');
  t.equal(stdoutIsJournal({}, () => stdout), false, 'no variable');
  t.equal(stdoutIsJournal({ JOURNAL_STREAM: 'garbage' }, () => stdout), false, 'malformed variable');
  t.equal(stdoutIsJournal({ JOURNAL_STREAM: '2049:123456' }, () => { throw new Error('EBADF'); }), false, 'stdout closed');
  // This process: whatever JOURNAL_STREAM says, the answer follows fstat(1).
  const real = fs.fstatSync(1);
  t.equal(stdoutIsJournal({ JOURNAL_STREAM: `${real.dev}:${real.ino}` }, () => fs.fstatSync(1)), true);
});
