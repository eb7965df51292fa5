import { execFile } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { release } from 'node:os';
import { parseProcNet } from './checks.js';
import { DEFAULT_HTTP_PORT } from '../../shared/constants.js';
import { AGENT_CONFIG, CMD_AGENT_PID, modulesBuiltin, modulesDep, PROC_NET, STATE_COMMANDS, stateFiles, type CommandOutput, type ProcessRef, type SystemState } from './state.js';

/** Only these lines of modules.dep / modules.builtin matter; the whole files are megabytes on a Pi. */
const MODULE_LINE = /(^|\/)(vxlan|ip_vs)\.ko/;

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null; // absent or unreadable: the checks treat null as "not there"
  }
}

function runCommand(line: string, timeoutMs: number): Promise<CommandOutput | null> {
  const [cmd, ...args] = line.split(' ');
  return new Promise((resolve) => {
    execFile(cmd!, args, { timeout: timeoutMs, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } }, (err, stdout) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(null);
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ exitCode: code, stdout });
    });
  });
}

/** Maps socket inodes to processes by scanning /proc/PID/fd (complete only as root). */
async function socketOwners(inodes: Set<string>, procRoot: string): Promise<Record<string, ProcessRef[]>> {
  const out: Record<string, ProcessRef[]> = {};
  if (inodes.size === 0) return out;
  const pids = (await readdir(procRoot).catch(() => [] as string[])).filter((n) => /^\d+$/.test(n));
  for (const pid of pids) {
    const fds = await readdir(`${procRoot}/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const link = await readlink(`${procRoot}/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (!m || !inodes.has(m[1]!)) continue;
      const comm = ((await readOrNull(`${procRoot}/${pid}/comm`)) ?? '?').trim();
      const list = (out[m[1]!] ??= []);
      if (!list.some((p) => p.pid === Number(pid))) list.push({ pid: Number(pid), comm });
    }
  }
  return out;
}

export interface GatherOptions {
  /** PIDs that are the agent itself (inside the agent: [process.pid]); by default asked from systemd. */
  agentPids?: number[];
  commandTimeoutMs?: number;
}

/** Records the real machine's state for doctorChecks(). Never throws for a missing file or program. */
export async function gatherState(opts: GatherOptions = {}): Promise<SystemState> {
  const kernelRelease = release();
  const files: Record<string, string | null> = {};
  await Promise.all(stateFiles(kernelRelease).map(async (p) => {
    let text = await readOrNull(p);
    if (text !== null && (p === modulesDep(kernelRelease) || p === modulesBuiltin(kernelRelease))) {
      text = text.split('\n').filter((l) => MODULE_LINE.test(l.split(':')[0] ?? '')).join('\n');
    }
    files[p] = text;
  }));
  const commands: Record<string, CommandOutput | null> = {};
  for (const c of STATE_COMMANDS) commands[c] = await runCommand(c, opts.commandTimeoutMs ?? 5000);

  let agentPids = opts.agentPids;
  if (!agentPids) {
    const pid = Number(commands[CMD_AGENT_PID]?.stdout.trim());
    agentPids = Number.isInteger(pid) && pid > 0 ? [pid] : [];
  }
  const inodes = new Set<string>();
  const ports = new Set([5353, httpPortOf(files) ?? DEFAULT_HTTP_PORT]);
  for (const p of PROC_NET) for (const e of parseProcNet(files[p])) if (ports.has(e.port)) inodes.add(e.inode);
  return { kernelRelease, files, commands, socketOwners: await socketOwners(inodes, '/proc'), agentPids };
}

function httpPortOf(files: Record<string, string | null>): number | null {
  try {
    const cfg = JSON.parse(files[AGENT_CONFIG] ?? 'null') as { http?: { port?: unknown } } | null;
    return typeof cfg?.http?.port === 'number' ? cfg.http.port : null;
  } catch {
    return null; // a broken config is the config loader's to report
  }
}
