/**
 * A CLI command. `agent/main.ts` is the only file that reads argv/env and
 * exits; it hands each command this context and exits with what run() returns
 * (see EXIT in shared/constants.ts). Commands print results to `out` and
 * problems to `err`, never to console directly, so tests can run them.
 */
export interface CommandContext {
  /** Words after the command name (flags included), e.g. ['--json']. */
  argv: string[];
  env: Readonly<Record<string, string | undefined>>;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Answers a yes/no question on a terminal; resolves false when there is no terminal. */
  confirm: (question: string) => Promise<boolean>;
  cwd: string;
}

export interface Command {
  /** One or two words: 'status', 'bench-disk', 'cluster create'. */
  name: string;
  summary: string;
  /** Full `--help` text. */
  usage: string;
  run(ctx: CommandContext): Promise<number>;
}

/** Splits `--flag value`, `--flag=value` and bare `--switch` words; the rest are positional. */
export function parseArgs(argv: readonly string[], spec: { strings?: string[]; booleans?: string[]; lists?: string[] }): {
  values: Record<string, string | boolean | string[]>;
  positional: string[];
  unknown: string[];
  missing: string[];
} {
  const values: Record<string, string | boolean | string[]> = {};
  const positional: string[] = [];
  const unknown: string[] = [];
  const missing: string[] = [];
  const strings = new Set(spec.strings ?? []);
  const booleans = new Set(spec.booleans ?? []);
  const lists = new Set(spec.lists ?? []);
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!word.startsWith('--')) {
      positional.push(word);
      continue;
    }
    const eq = word.indexOf('=');
    const name = (eq === -1 ? word : word.slice(0, eq)).slice(2);
    const inline = eq === -1 ? undefined : word.slice(eq + 1);
    if (booleans.has(name)) values[name] = inline === undefined ? true : !['0', 'false', 'no'].includes(inline);
    else if (strings.has(name) || lists.has(name)) {
      const v = inline ?? argv[++i];
      if (v === undefined) missing.push(`--${name}`);
      else if (lists.has(name)) values[name] = [...((values[name] as string[] | undefined) ?? []), v];
      else values[name] = v;
    } else unknown.push(word);
  }
  return { values, positional, unknown, missing };
}
