import { spawn } from 'node:child_process';
import { PiswarmError } from '../../shared/errors.js';

/** Which Debian package provides each host tool the flasher spawns. */
export const TOOL_PACKAGES: Readonly<Record<string, string>> = Object.freeze({
  xz: 'xz-utils',
  mcopy: 'mtools',
  mtype: 'mtools',
  mdir: 'mtools',
});

export function toolMissing(tool: string): PiswarmError {
  const pkg = TOOL_PACKAGES[tool];
  return new PiswarmError('PISWARM_ERR_TOOL_MISSING', `"${tool}" is not installed${pkg ? `: install Debian's ${pkg} package (sudo apt-get install ${pkg})` : ''}`);
}

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs a tool to completion; a missing binary becomes PISWARM_ERR_TOOL_MISSING instead of a raw ENOENT. */
export function run(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: Buffer } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? toolMissing(cmd) : e));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8').trim() }));
    if (opts.input) child.stdin!.end(opts.input);
  });
}
