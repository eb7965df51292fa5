import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../log/logger.js';

/**
 * systemd notification (sd_notify(3)) without a native addon.
 *
 * Node has no AF_UNIX datagram sockets, and spawning `systemd-notify` per
 * message races: systemd attributes a message to a unit by the sender's PID,
 * and a sender that already exited is dropped (systemd#2739, fixed only with
 * the BARRIER protocol of systemd 254). So we keep one small sender alive for
 * the agent's whole life: a perl one-liner (perl-base is Essential on Debian,
 * Ubuntu and Raspberry Pi OS) reading lines on stdin and sending each as a
 * datagram to $NOTIFY_SOCKET. It lives in the unit's cgroup, so
 * `NotifyAccess=all` attributes its messages to us. Without NOTIFY_SOCKET
 * every call is a silent no-op; any failure is logged once and soft.
 */
const SENDER = String.raw`
use strict; use warnings; use Socket;
my $path = $ENV{NOTIFY_SOCKET}; $path =~ s/^@/\0/;
socket(my $sock, AF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\n";
my $addr = pack_sockaddr_un($path);
while (my $line = <STDIN>) {
  chomp $line; $line =~ s/\\n/\n/g;
  defined(send($sock, $line, 0, $addr)) or print STDERR "send: $!\n";
}
`;

export interface Notifier {
  readonly enabled: boolean;
  /** Microseconds between watchdog deadlines, or 0 when no watchdog is armed. */
  readonly watchdogUsec: number;
  ready(status?: string): void;
  status(text: string): void;
  stopping(): void;
  watchdog(): void;
  close(): void;
}

export interface NotifierDeps {
  env: Readonly<Record<string, string | undefined>>;
  pid: number;
  log: Logger;
  spawnSender?: (env: Record<string, string>) => ChildProcess;
}

const defaultSpawn = (env: Record<string, string>) =>
  spawn('perl', ['-e', SENDER], { env, stdio: ['pipe', 'ignore', 'pipe'] });

export function createNotifier(deps: NotifierDeps): Notifier {
  const socket = deps.env.NOTIFY_SOCKET;
  const wdPid = deps.env.WATCHDOG_PID;
  const watchdogUsec = socket && (!wdPid || Number(wdPid) === deps.pid) ? Number(deps.env.WATCHDOG_USEC ?? 0) || 0 : 0;
  if (!socket) {
    const noop = () => {};
    return { enabled: false, watchdogUsec: 0, ready: noop, status: noop, stopping: noop, watchdog: noop, close: noop };
  }
  const log = deps.log;
  let child: ChildProcess | null = null;
  let failed = false;

  const start = () => {
    try {
      const c = (deps.spawnSender ?? defaultSpawn)({ NOTIFY_SOCKET: socket, PATH: deps.env.PATH ?? '/usr/bin:/bin' });
      c.on('error', (err) => {
        if (!failed) log.warn({ err: err.message, code: 'PISWARM_ERR_SD_NOTIFY' }, 'systemd notification sender failed');
        failed = true;
        child = null;
      });
      c.stderr?.on('data', (d: Buffer) => log.warn({ detail: d.toString().trim() }, 'systemd notification sender reported an error'));
      c.on('exit', () => { child = null; });
      c.stdin?.on('error', () => { child = null; });
      child = c;
    } catch (err) {
      failed = true;
      log.warn({ err: (err as Error).message }, 'cannot start the systemd notification sender');
    }
  };
  start();

  const send = (msg: string) => {
    if (!child && !failed) start();
    child?.stdin?.write(msg.replace(/\n/g, '\\n') + '\n');
  };

  return {
    enabled: true,
    watchdogUsec,
    ready: (status) => send(status ? `READY=1\nSTATUS=${status}` : 'READY=1'),
    status: (text) => send(`STATUS=${text}`),
    stopping: () => send('STOPPING=1'),
    watchdog: () => send('WATCHDOG=1'),
    close: () => {
      child?.stdin?.end();
      child = null;
      failed = true;
    },
  };
}
