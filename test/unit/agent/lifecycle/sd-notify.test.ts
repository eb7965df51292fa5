import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNotifier } from '../../../../agent/lifecycle/sd-notify.js';
import { memoryLogger } from '../../../helpers/fakes.js';

/**
 * A real AF_UNIX datagram receiver standing in for systemd's notify socket
 * (perl, because Node cannot bind one). It prints each datagram as one JSON
 * string per line, so embedded newlines survive.
 */
function receiver(path: string) {
  const p = spawn('perl', ['-MSocket', '-e', String.raw`
    my $path = $ARGV[0]; $path =~ s/^@/\0/;
    socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
    bind($s, pack_sockaddr_un($path)) or die "bind: $!";
    $| = 1; print "READY\n";
    while (1) { my $m; defined(recv($s, $m, 4096, 0)) or die "recv: $!"; $m =~ s/\\/\\\\/g; $m =~ s/\n/\\n/g; $m =~ s/"/\\"/g; print "\"$m\"\n"; }
  `, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const got: string[] = [];
  let buf = '';
  const ready = new Promise<void>((resolve) => {
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === 'READY') resolve();
        else got.push(JSON.parse(line) as string);
      }
    });
  });
  return { ready, got, stop: () => p.kill() };
}

const waitFor = async (cond: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return cond();
};

t.test('without NOTIFY_SOCKET every call is a silent no-op', async (t) => {
  const { log, lines } = memoryLogger();
  const n = createNotifier({ env: {}, pid: 1, log, spawnSender: () => { throw new Error('must not spawn'); } });
  t.equal(n.enabled, false);
  n.ready(); n.watchdog(); n.stopping(); n.status('x'); n.close();
  t.same(lines(), []);
});

for (const abstract of [false, true]) {
  t.test(`messages reach a real ${abstract ? 'abstract' : 'filesystem'} notify socket in order`, async (t) => {
    const path = abstract ? `@piswarm-test-${process.pid}-${Date.now()}` : join(mkdtempSync(join(tmpdir(), 'sdn-')), 'notify.sock');
    const r = receiver(path);
    t.teardown(r.stop);
    await r.ready;
    const { log } = memoryLogger();
    const n = createNotifier({ env: { NOTIFY_SOCKET: path, WATCHDOG_USEC: '30000000', PATH: process.env.PATH }, pid: process.pid, log });
    t.teardown(() => n.close());
    t.equal(n.enabled, true);
    t.equal(n.watchdogUsec, 30_000_000);
    n.ready('serving on :7070');
    n.watchdog();
    n.stopping();
    t.ok(await waitFor(() => r.got.length >= 3), 'three datagrams arrived');
    t.same(r.got, ['READY=1\nSTATUS=serving on :7070', 'WATCHDOG=1', 'STOPPING=1']);
  });
}

t.test('a watchdog armed for another PID is not ours', async (t) => {
  const { log } = memoryLogger();
  const n = createNotifier({ env: { NOTIFY_SOCKET: '/nonexistent', WATCHDOG_USEC: '1000000', WATCHDOG_PID: '1' }, pid: 4242, log });
  t.teardown(() => n.close());
  t.equal(n.watchdogUsec, 0);
});

t.test('a sender that cannot start is reported once and never throws', async (t) => {
  const { log, lines } = memoryLogger();
  const n = createNotifier({ env: { NOTIFY_SOCKET: '/run/none', PATH: '/nonexistent-bin' }, pid: 1, log });
  n.ready();
  t.ok(await waitFor(() => lines().some((l) => l.msg === 'systemd notification sender failed')));
  n.watchdog();
  n.close();
  t.equal(lines().filter((l) => l.msg === 'systemd notification sender failed').length, 1);
});
