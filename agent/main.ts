#!/usr/bin/env node
/**
 * The one impure entry point: reads argv and the environment, picks the log
 * destination, listens, installs signal handlers, talks to systemd and exits.
 * Everything else is built from a frozen config and explicit dependencies.
 */
import { fstatSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline/promises';
import { EXIT } from '../shared/constants.js';
import { ConfigError, loadConfig, SETTINGS } from './config/load.js';
import { createLogger, stdoutIsJournal, type Logger } from './log/logger.js';
import { createNotifier } from './lifecycle/sd-notify.js';
import { createDockerEngine } from './docker/engine.js';
import { buildAgent } from './agent.js';
import type { Command, CommandContext } from './cli/command.js';
import { localCommands } from './cli/status.js';
import { createHostPort } from './host-port.js';
import { agentSubsystems } from './subsystems.js';
import { HARDWARE_OVERRIDE_ENV, parseHardwareOverride, type HardwareOverride } from './host/hardware.js';

const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
/** Shutdown must finish before systemd's TimeoutStopSec (20 s in our unit). */
const STOP_DEADLINE_MS = 12_000;

const load = (argv: string[]) =>
  loadConfig({ argv, env: process.env, readFile: (p) => readFileSync(p, 'utf8'), hostname: hostname() });

const agentCommand: Command = {
  name: 'agent',
  summary: 'run the daemon in the foreground (what the systemd unit starts)',
  usage: `piswarm agent [--config FILE] [--<setting> VALUE ...]\n\nRuns the agent in the foreground. Every setting can be given as a flag\n(see \`piswarm config --help\`), e.g. --port 7070 --log-level debug.\nExit 78 on invalid configuration.`,
  async run(ctx) {
    const { config, file, rest } = load(ctx.argv);
    if (rest.length > 0) {
      ctx.err(`unknown arguments: ${rest.join(' ')}\n\n${this.usage}`);
      return EXIT.USAGE;
    }
    const hw = parseHardwareOverride(process.env[HARDWARE_OVERRIDE_ENV] ?? '');
    if (!hw.ok) {
      ctx.err(hw.message);
      return EXIT.CONFIG;
    }
    const log = createLogger({ level: config.log.level, journal: stdoutIsJournal(process.env, () => fstatSync(1)), write: (l) => process.stdout.write(l), base: { node: config.nodeName } });
    if (Object.keys(hw.value).length > 0) log.warn({ override: hw.value }, `hardware facts overridden by ${HARDWARE_OVERRIDE_ENV} (simulated Pi)`);
    return runAgent(config, file, log, hw.value);
  },
};

async function runAgent(config: ReturnType<typeof load>['config'], file: string | null, log: Logger, hardware: HardwareOverride): Promise<number> {
  const notifier = createNotifier({ env: process.env, pid: process.pid, log: log.child({ mod: 'systemd' }) });
  let stopping = false;
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception; exiting so systemd restarts the agent');
    process.exit(EXIT.SOFTWARE);
  });
  let unhandled = 0;
  process.on('unhandledRejection', (reason) => {
    unhandled++;
    log.error({ err: reason, count: unhandled }, 'unhandled promise rejection');
  });

  const docker = createDockerEngine({ socketPath: config.docker.socketPath, timeoutMs: config.docker.timeoutMs, swarmTimeoutMs: config.docker.swarmTimeoutMs });
  const host = createHostPort(config, log.child({ mod: 'host' }), VERSION);
  const agent = await buildAgent(config, {
    log,
    docker,
    notifier,
    host,
    version: VERSION,
    subsystems: (ctx) => agentSubsystems(config, {
      log, docker, monitor: ctx.monitor, version: VERSION, health: ctx.health, snapshot: host.snapshot, hardwareOverride: hardware,
      facts: hardware.diskBps === undefined ? host.facts : () => ({ ...host.facts(), diskBps: hardware.diskBps! }),
    }),
  });

  const shutdown = async (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting at once');
      process.exit(EXIT.FAILURE);
    }
    stopping = true;
    log.info({ signal, deadlineMs: STOP_DEADLINE_MS }, 'stopping');
    await agent.stop(STOP_DEADLINE_MS);
    clearInterval(watchdog);
    notifier.close();
    log.info('stopped');
    log.flush();
    process.exitCode = EXIT.OK;
    // Anything still holding the loop (a stuck socket) must not outlive the deadline.
    setTimeout(() => process.exit(EXIT.OK), 500).unref();
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  // Watchdog pings come from the event loop: a blocked loop misses them and
  // systemd restarts us. Dependency health does not gate them.
  const watchdog = setInterval(() => notifier.watchdog(), Math.max(1000, notifier.watchdogUsec / 2000));
  if (notifier.watchdogUsec === 0) clearInterval(watchdog);

  try {
    await agent.prepare();
    const address = await agent.app.listen({ host: config.http.host, port: config.http.port });
    await agent.start();
    const status = agent.health().status;
    log.info({ version: VERSION, address, configFile: file, health: status, systemd: notifier.enabled }, 'agent ready');
    notifier.ready(`serving on ${address}, health ${status}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = { EADDRINUSE: `port ${config.http.port} is already taken`, EADDRNOTAVAIL: `${config.http.host} is not an address of this host (yet)`, EACCES: `not allowed to listen on port ${config.http.port}` }[code ?? ''];
    log.fatal({ err, code }, why ?? 'agent failed to start');
    await agent.stop(2000);
    notifier.close();
    // A taken port or a listen address not (yet) on the host may be transient
    // (another service stopping, DHCP late at boot): exit 69 so systemd retries
    // within its start limit. 78 stays for configuration that can never work.
    return code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL' ? EXIT.UNAVAILABLE : code === 'EACCES' ? EXIT.CONFIG : EXIT.SOFTWARE;
  }
  return new Promise<number>(() => {}); // runs until a signal
}

const configCommand: Command = {
  name: 'config',
  summary: 'print the effective configuration (secrets hidden) or every setting',
  usage: `piswarm config [--settings] [--config FILE] [--<setting> VALUE ...]\n\nPrints the configuration the agent would run with, after every layer:\ndefaults < ${'/etc/piswarm/config.json'} < PISWARM_* environment < flags.\n--settings lists every setting with its environment variable and flag.\nExit 78 on invalid configuration.`,
  async run(ctx) {
    if (ctx.argv.includes('--settings')) {
      for (const s of SETTINGS) ctx.out(`${s.path.join('.').padEnd(34)} ${s.env.padEnd(38)} ${s.flag.padEnd(36)} ${String((s.schema as { description?: string }).description ?? '')}`);
      return EXIT.OK;
    }
    const { config, file, rest } = load(ctx.argv);
    if (rest.length) {
      ctx.err(`unknown arguments: ${rest.join(' ')}`);
      return EXIT.USAGE;
    }
    ctx.out(JSON.stringify({ file, config: { ...config, clusterKey: config.clusterKey ? '[REDACTED]' : undefined } }, null, 2));
    return EXIT.OK;
  },
};

async function loadExtraCommands(): Promise<Command[]> {
  // Commands owned by other parts of the tree register here. Literal import()s, so the
  // release's one-file bundle (scripts/bundle) holds them too.
  const mods: Array<[() => Promise<Record<string, unknown>>, string[]]> = [
    [() => import('./cli/peers.js'), ['peersCommand']],
    [() => import('./cli/nodes.js'), ['nodesCommand']],
    [() => import('./cli/cluster.js'), ['clusterCreateCommand']],
    [() => import('./cli/cluster-status.js'), ['clusterStatusCommand']],
    [async () => {
      const m = await import('./cli/key-change.js');
      return { rotateKeyCommand: m.rotateKeyCommand(), revokeCommand: m.revokeCommand() };
    }, ['rotateKeyCommand', 'revokeCommand']],
    [async () => {
      const m = await import('./cli/upgrade.js');
      // The release this bundle belongs to: dist/agent/main.js two levels below it.
      const prefix = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
      return { upgradeCommand: m.upgradeCommand(), upgradeApplyCommand: m.upgradeApplyCommand(VERSION, prefix), releaseKeygenCommand: m.releaseKeygenCommand, releaseSignCommand: m.releaseSignCommand };
    }, ['upgradeCommand', 'releaseKeygenCommand', 'releaseSignCommand', 'upgradeApplyCommand']],
    [() => import('./cli/flash.js'), ['flashCommand']],
    [() => import('./cli/doctor.js'), ['doctorCommand']],
  ];
  const found: Command[] = [];
  for (const [load, names] of mods) {
    const mod = (await load()) as Record<string, Command | undefined>;
    for (const n of names) {
      const c = mod[n];
      if (c) found.push(c);
    }
  }
  return found;
}

function helpText(commands: Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    `piswarm ${VERSION}: zero-touch Docker Swarm for Raspberry Pi clusters`,
    '',
    'usage: piswarm <command> [options]   (piswarm <command> --help for details)',
    '',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    `exit codes: 0 ok, 1 failure, ${EXIT.USAGE} usage, ${EXIT.UNAVAILABLE} agent unreachable, ${EXIT.SOFTWARE} internal error, ${EXIT.CONFIG} invalid configuration`,
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const commands = [agentCommand, ...localCommands(load), configCommand, ...(await loadExtraCommands())];
  const ctx = (rest: string[]): CommandContext => ({
    argv: rest,
    env: process.env,
    out: (t) => process.stdout.write(`${t}\n`),
    err: (t) => process.stderr.write(`${t}\n`),
    confirm: async (q) => {
      if (!process.stdin.isTTY) return false;
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return /^y(es)?$/i.test((await rl.question(`${q} [y/N] `)).trim());
      } finally {
        rl.close();
      }
    },
    cwd: process.cwd(),
  });
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    process.stdout.write(`${helpText(commands)}\n`);
    return argv.length === 0 ? EXIT.USAGE : EXIT.OK;
  }
  if (argv[0] === '--version' || argv[0] === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return EXIT.OK;
  }
  // Two-word commands ("cluster create") win over one-word ones.
  const cmd = commands.find((c) => c.name === argv.slice(0, 2).join(' ')) ?? commands.find((c) => c.name === argv[0]);
  if (!cmd) {
    process.stderr.write(`unknown command: ${argv[0]}\n\n${helpText(commands)}\n`);
    return EXIT.USAGE;
  }
  const rest = argv.slice(cmd.name.split(' ').length);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${cmd.usage}\n`);
    return EXIT.OK;
  }
  return cmd.run(ctx(rest));
}

// `piswarm metrics | head` closes our stdout early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.OK);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`piswarm: ${err.message}\n`);
      process.exitCode = EXIT.CONFIG;
    } else {
      process.stderr.write(`piswarm: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = EXIT.SOFTWARE;
    }
  },
);
