import { spawn } from 'node:child_process';
import { PiswarmError } from '../../shared/errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Runs a program without a shell and collects its output; never throws for a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    const timer = opts.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
      : undefined;
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        e.code === 'ENOENT'
          ? new PiswarmError('PISWARM_ERR_TOOL_MISSING', `${cmd} is not installed (run scripts/setup-host.sh)`, { cause: e })
          : e,
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 + 9 : 1),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/** `docker ...`; throws a PISWARM_ERR_DOCKER carrying docker's own message on a non-zero exit. */
export async function docker(args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run('docker', args, opts);
  if (r.code !== 0) {
    // No engine at all: say so and how to get one (only `up` and `build` start it).
    const hint = /Cannot connect to the Docker daemon/.test(r.stderr) ? ' (no Docker Engine answers: `npm run sim -- up` or scripts/setup-host.sh starts one)' : '';
    throw new PiswarmError('PISWARM_ERR_DOCKER', `docker ${args.slice(0, 3).join(' ')} failed: ${r.stderr.trim() || `exit ${r.code}`}${hint}`, {
      details: { args, code: r.code },
    });
  }
  return r.stdout;
}

/** Whether a Docker Engine answers within a few seconds. */
export async function engineAnswers(): Promise<boolean> {
  try {
    return (await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 10_000 })).code === 0;
  } catch {
    // no docker CLI at all: the engine cannot be reached either
    return false;
  }
}
