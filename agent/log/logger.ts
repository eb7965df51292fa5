import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Paths pino blanks out wherever they appear in a log object. */
export const REDACT_PATHS = [
  'clusterKey', '*.clusterKey', 'config.clusterKey',
  'token', '*.token', 'joinToken', '*.joinToken', 'JoinTokens', '*.JoinTokens', 'workerToken', '*.workerToken',
  'secret', '*.secret', 'key', '*.key',
  'req.headers.authorization', 'req.headers["x-piswarm-auth"]',
];

// Syslog priorities journald understands as a line prefix (sd-daemon(3)).
const PRIORITY: Record<number, string> = { 10: '<7>', 20: '<7>', 30: '<6>', 40: '<4>', 50: '<3>', 60: '<2>' };
const SWARM_TOKEN = /SWMTKN-[0-9A-Za-z-]+/g;

/**
 * The write side of logging. Under systemd (JOURNAL_STREAM set) every line
 * starts with its syslog priority so `journalctl -p warning` filters by level.
 * Whatever the path-based redaction missed, a Docker join token never leaves
 * this function in clear: it is the last line of defence, not the first.
 */
export function journalDestination(write: (line: string) => void, journal: boolean): DestinationStream {
  return {
    write(line: string) {
      let out = line.includes('SWMTKN-') ? line.replace(SWARM_TOKEN, 'SWMTKN-[REDACTED]') : line;
      if (journal) {
        const m = /^\{"level":(\d+)/.exec(out);
        out = (PRIORITY[Number(m?.[1])] ?? '<6>') + out;
      }
      write(out);
    },
  };
}

/**
 * Whether stdout is the journal stream systemd connected us to. sd-daemon(3):
 * compare JOURNAL_STREAM's "device:inode" with fstat(1), because the variable
 * is inherited by children whose stdout may be a pipe or a file (a shell under
 * a user service, `piswarm agent > log`), where a `<6>` prefix is noise.
 */
export function stdoutIsJournal(env: Readonly<Record<string, string | undefined>>, fstatStdout: () => { dev: number; ino: number }): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fstatStdout();
    return st.dev === Number(m[1]) && st.ino === Number(m[2]);
  } catch {
    return false;
  }
}

export interface LoggerOptions {
  level: string;
  journal: boolean;
  write: (line: string) => void;
  base?: Record<string, unknown>;
}

/** The one root logger; subsystems take `log.child({ mod: 'name' })`. */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: opts.base ?? {},
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
    },
    journalDestination(opts.write, opts.journal),
  );
}
