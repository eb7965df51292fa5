#!/usr/bin/env node
/**
 * `npm run sim -- <verb>`: a simulated Raspberry Pi cluster on this machine's
 * Docker Engine. The entry point of the simulator: it alone reads argv,
 * prints and exits; the work is in cluster.ts.
 */
import { spawn } from 'node:child_process';
import { EXIT } from '../../shared/constants.js';
import { PiswarmError } from '../../shared/errors.js';
import * as sim from './cluster.js';
import { deployDemo, DEMO_SERVICE, removeDemo } from './demo.js';
import { DEFAULT_OS, ensureImages, simOs, SIM_OSES, type SimOs } from './images.js';

const USAGE = `usage: npm run sim -- <verb> [options]

  up --nodes N [--cluster-key K] [--env KEY=VALUE ...]   power on N nodes (builds what is missing) and
     [--os OS] [--no-wait]                               watch them form one swarm (expect = min(N, 3));
                                                         --cluster-key/--env/--os apply to new nodes only
  add [--cluster-key K] [--env KEY=VALUE ...] [--os OS]  power on one more node
  stop NODE | start NODE | restart NODE                  clean shutdown / power on / reboot
  kill NODE                                              power cut (SIGKILL)
  disconnect NODE | connect NODE                         pull / plug the network cable
  status [--json]                                        list nodes (name, IP, state, container id, URLs)
  exec NODE -- CMD...                                    run a command on a node
  logs NODE [-n LINES] [-f]                              the agent's journal on a node
  build [--os OS]                                        prepare the engine and images only
  demo [--replicas N] [--remove]                         the walkthrough's http-server service: push the demo
                                                         image to the cluster's registry, docker service create
                                                         on a manager, wait until every replica answers
  down [--all]                                           remove the cluster (or every simulated cluster)
                                                         and its .sim/<name>/ state

  --name NAME   the cluster (default: piswarm, or the one NODE belongs to); several clusters coexist
                (--cluster NAME says the same)
  --os OS       the simulated Pi's OS: ${SIM_OSES.join(' or ')} (default: PISWARM_SIM_OS, else ${DEFAULT_OS},
                what Raspberry Pi OS is based on today)

Run \`npm run build\` first: the nodes install the agent compiled in dist/.`;

interface Parsed {
  verb: string;
  node?: string;
  name?: string;
  nodes?: number;
  clusterKey?: string;
  os?: SimOs;
  env: Record<string, string>;
  json: boolean;
  all: boolean;
  follow: boolean;
  noWait: boolean;
  remove: boolean;
  replicas?: number;
  lines?: number;
  rest: string[];
}

function usageError(msg: string): never {
  throw new PiswarmError('PISWARM_ERR_BAD_REQUEST', `${msg}\n\n${USAGE}`);
}

/** A count option: a whole number of at least 1, or a usage error. */
function count(option: string, v: string): number {
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(n) || n < 1) usageError(`${option} wants a whole number of at least 1, got "${v}"`);
  return n;
}

/** An --os value: one of SIM_OSES, or a usage error. */
function osOption(v: string): SimOs {
  try {
    return simOs(v);
  } catch (err) {
    return usageError((err as Error).message);
  }
}

function parse(argv: string[]): Parsed {
  const p: Parsed = { verb: argv[0] ?? '', env: {}, json: false, all: false, follow: false, noWait: false, remove: false, rest: [] };
  const positional: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) usageError(`${a} needs a value`);
      return v;
    };
    if (a === '--') { p.rest = argv.slice(i + 1); break; }
    else if (a === '--name' || a === '--cluster') p.name = value();
    else if (a === '--replicas') p.replicas = count(a, value());
    else if (a === '--remove') p.remove = true;
    else if (a === '--nodes') p.nodes = count(a, value());
    else if (a === '--cluster-key') p.clusterKey = value();
    else if (a === '--os') p.os = osOption(value());
    else if (a === '--env') {
      const kv = value();
      const eq = kv.indexOf('=');
      if (eq < 1) usageError(`--env wants KEY=VALUE, got "${kv}"`);
      p.env[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else if (a === '--json') p.json = true;
    else if (a === '--all') p.all = true;
    else if (a === '--no-wait') p.noWait = true;
    else if (a === '-f' || a === '--follow') p.follow = true;
    else if (a === '-n' || a === '--lines') p.lines = count(a, value());
    else if (a.startsWith('-')) usageError(`unknown option ${a}`);
    else positional.push(a);
  }
  p.node = positional[0];
  if (positional.length > 1) usageError(`unexpected argument ${positional[1]}`);
  return p;
}

function needNode(p: Parsed): string {
  if (!p.node) usageError(`${p.verb} needs a NODE (see \`status\`)`);
  return p.node;
}

/** Hands the terminal to a command inside a node (shells, `journalctl -f`). */
function interactive(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const tty = process.stdin.isTTY ? ['-it'] : ['-i'];
    const child = spawn('docker', ['exec', ...tty, ...args], { stdio: 'inherit' });
    child.on('error', () => resolve(EXIT.UNAVAILABLE));
    child.on('close', (code) => resolve(code ?? EXIT.FAILURE));
  });
}

function printNodes(nodes: sim.NodeStatus[]): void {
  for (const n of nodes) {
    process.stdout.write(
      `${n.name}  ${n.ip}${n.connected ? '' : ' (disconnected)'}  ${n.running ? 'running' : 'stopped'}  container ${n.containerId.slice(0, 12)}` +
        `  ${n.os || '?'}, Docker ${n.engine ?? '(none yet)'}\n` +
        `  health:  ${n.apiUrl}/health\n  metrics: ${n.apiUrl}/metrics\n` +
        `  shell:   npm run sim -- exec ${n.name} -- bash    (or: docker exec -it ${n.name} bash)\n` +
        `  journal: npm run sim -- logs ${n.name} -f         (or: docker exec ${n.name} journalctl -u piswarm -f)\n`,
    );
  }
}

/**
 * `up` on a cluster that already has nodes: --cluster-key and --env go into
 * the cards of the nodes it creates, never into those that exist (a Pi keeps
 * what was flashed on it). Says so rather than letting them pass unnoticed.
 */
function warnExisting(existing: sim.NodeStatus[], p: Parsed, log: (m: string) => void): void {
  const given = [...(p.clusterKey === undefined ? [] : ['--cluster-key']), ...(p.os === undefined ? [] : ['--os']), ...Object.keys(p.env).map((k) => `--env ${k}`)];
  if (existing.length === 0 || given.length === 0) return;
  const created = Math.max(0, p.nodes! - existing.length);
  log(`warning: ${given.join(', ')} ignored for the ${existing.length} existing node(s) (${existing.map((n) => n.name).join(', ')}): ` +
    `they keep the key and env they were created with; ` +
    (created > 0 ? `only the ${created} new node(s) get them. ` : 'no node is created, so nothing gets them. ') +
    `To change them, \`down\` the cluster and \`up\` it again`);
}

/**
 * Nobody types `docker swarm init`: watch the agents do it. Polls every node's
 * engine until one swarm holds every node Ready, then prints `docker node ls`.
 */
async function watchFormation(ref: { name?: string | undefined }, nodes: sim.NodeStatus[], t0: number, log: (m: string) => void): Promise<boolean> {
  log(`waiting for the agents to form one swarm of ${nodes.length} (nobody runs docker swarm init)...`);
  // Workers know no cluster id; one swarm = a manager's node list holds every node's own id.
  const swarmOf = async (n: sim.NodeStatus) => {
    const r = await sim.exec(ref, n.name, ['docker', 'info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}} {{.Swarm.ControlAvailable}}']);
    const [state, id, manager] = r.stdout.trim().split(' ');
    return { name: n.name, id: state === 'active' ? id : undefined, manager: manager === 'true' };
  };
  try {
    const manager = await sim.waitFor(async () => {
      const seen = await Promise.all(nodes.map(swarmOf));
      const m = seen.find((s) => s.manager);
      if (!m || seen.some((s) => !s.id)) return undefined;
      const ls = await sim.exec(ref, m.name, ['docker', 'node', 'ls', '--format', '{{.ID}} {{.Status}}']);
      const ready = new Set(ls.stdout.split('\n').map((l) => l.trim().split(' ')).filter(([, st]) => st === 'Ready').map(([id]) => id));
      return seen.every((s) => ready.has(s.id!)) ? m.name : undefined;
    }, { timeoutMs: 180_000, intervalMs: 1000, what: `one swarm with ${nodes.length} Ready node(s)` });
    log(`one swarm, ${nodes.length} node(s) Ready, ${((Date.now() - t0) / 1000).toFixed(1)}s after power-on:`);
    const ls = await sim.exec(ref, manager, ['docker', 'node', 'ls']);
    process.stdout.write(ls.stdout);
    process.stdout.write(`  formation: curl -s ${nodes[0]!.apiUrl}/v1/formation\n`);
    return true;
  } catch (err) {
    log(`${(err as Error).message}; each node's last journal lines:`);
    for (const n of nodes) process.stderr.write(`--- ${n.name}\n${await sim.logs(ref, n.name, { lines: 15 })}`);
    return false;
  }
}

async function main(argv: string[]): Promise<number> {
  const p = parse(argv);
  const log = (m: string) => process.stderr.write(`sim: ${m}\n`);
  // A node's name says which cluster it is in: `logs demo-2` needs no --name demo.
  if (p.name === undefined && p.node !== undefined) p.name = await sim.clusterOf(p.node);
  const ref = { name: p.name, log };
  switch (p.verb) {
    case 'up': {
      if (p.nodes === undefined) usageError('up needs --nodes N');
      // As a flashed card would (`piswarm cluster create --size N`): Pis powered on
      // together expect each other, up to three, so one slow Pi cannot stall formation.
      const env = { PISWARM_FORMATION_EXPECT: String(Math.min(p.nodes, 3)), ...p.env };
      // The engine first: on a fresh machine none answers until ensureImages
      // starts it, and the existing nodes can only be listed after that.
      const os = simOs(p.os);
      await ensureImages({ root: sim.repoRoot(), log, os });
      warnExisting(await sim.status(ref), p, log);
      const t0 = Date.now();
      const r = await sim.up({ ...ref, nodes: p.nodes, clusterKey: p.clusterKey, env, os, skipImages: true });
      log(`cluster ${r.cluster}: ${r.nodes.length} node(s) on ${r.network} (${r.subnet}); ` +
        `${r.started.length} booted in ${(r.bootMs / 1000).toFixed(1)}s`);
      printNodes(r.nodes);
      if (p.noWait) return EXIT.OK;
      return (await watchFormation(ref, r.nodes, t0, log)) ? EXIT.OK : EXIT.FAILURE;
    }
    case 'add': {
      printNodes([await sim.add({ ...ref, clusterKey: p.clusterKey, env: p.env, os: p.os })]);
      return EXIT.OK;
    }
    case 'stop': await sim.stop(ref, needNode(p)); return EXIT.OK;
    case 'start': await sim.start(ref, needNode(p)); return EXIT.OK;
    case 'restart': await sim.restart(ref, needNode(p)); return EXIT.OK;
    case 'kill': await sim.kill(ref, needNode(p)); return EXIT.OK;
    case 'disconnect': await sim.disconnect(ref, needNode(p)); return EXIT.OK;
    case 'connect': await sim.connect(ref, needNode(p)); return EXIT.OK;
    case 'status': {
      const nodes = await sim.status(ref);
      if (p.json) process.stdout.write(JSON.stringify(nodes, null, 2) + '\n');
      else if (nodes.length === 0) log(`cluster ${p.name ?? sim.DEFAULT_CLUSTER} has no nodes`);
      else printNodes(nodes);
      return EXIT.OK;
    }
    case 'exec': {
      const node = needNode(p);
      if (p.rest.length === 0) usageError('exec needs a command after --');
      await sim.status(ref).then((ns) => ns.some((n) => n.name === node) || usageError(`no node ${node}`));
      return interactive([node, ...p.rest]);
    }
    case 'logs': {
      const node = needNode(p);
      if (p.follow) return interactive([node, 'journalctl', '-u', 'piswarm', '-f', ...(p.lines ? ['-n', String(p.lines)] : [])]);
      process.stdout.write(await sim.logs(ref, node, { lines: p.lines }));
      return EXIT.OK;
    }
    case 'build': {
      await ensureImages({ root: sim.repoRoot(), log, os: simOs(p.os) });
      return EXIT.OK;
    }
    case 'demo': {
      if (p.remove) {
        log((await removeDemo(ref)) ? `removed the ${DEMO_SERVICE} service` : `no ${DEMO_SERVICE} service to remove`);
        return EXIT.OK;
      }
      const r = await deployDemo({ ...ref, replicas: p.replicas });
      log(`${r.replicas} replica(s) of ${DEMO_SERVICE} answer, ${(r.readyMs / 1000).toFixed(1)}s after docker service create:`);
      for (const a of r.answers) process.stdout.write(`${a.url}  ${a.node}  container ${a.container}\n`);
      process.stdout.write(`  try:    curl -s ${r.answers[0]!.url}\n  remove: npm run sim -- demo --remove${p.name ? ` --name ${p.name}` : ''}\n`);
      return EXIT.OK;
    }
    case 'down': {
      const r = await sim.down({ ...ref, all: p.all });
      log(`removed ${r.containers} container(s), ${r.volumes} volume(s), ${r.networks} network(s)`);
      return EXIT.OK;
    }
    case '':
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE + '\n');
      return p.verb === '' ? EXIT.USAGE : EXIT.OK;
    default:
      return usageError(`unknown verb "${p.verb}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as PiswarmError;
    process.stderr.write(`sim: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
    process.exit(e.code === 'PISWARM_ERR_BAD_REQUEST' ? EXIT.USAGE : EXIT.FAILURE);
  },
);
