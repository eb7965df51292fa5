/**
 * `npm run sim -- demo`: the walkthrough's service on a simulated cluster.
 * The walkthrough runs
 *   docker service create --name http-server --publish 80:8000 python:3-alpine python3 -m http.server 8000
 * Here the image is built locally (scripts/sim/demo-image/) and pushed to
 * the cluster's own registry node, and the port is published in host mode:
 * the build machines' kernel has no IPVS, so the ingress routing mesh
 * accepts `-p 80:8000` but nothing answers (shared/ENVIRONMENT.md). On a Pi
 * the walkthrough's `-p 80:8000` works as written.
 *
 * The integration test (test/integration/cluster-at-work/service.test.ts)
 * deploys through deployDemo, as the CLI does.
 */
import { PiswarmError } from '../../shared/errors.js';
import * as sim from './cluster.js';
import { simOs, type SimOs } from './images.js';
import { buildSimImage, httpText } from './registry.js';
import { docker } from './run.js';

export const DEMO_SERVICE = 'http-server';
/** In the cluster's registry; never a public image's name. */
export const DEMO_REPOSITORY = 'piswarm-demo/http-server';
export const DEMO_VERSION = '1';
export const DEMO_PUBLISHED = 80;
export const DEMO_TARGET = 8000;

/** The local build on the host's engine (like the sim's other images). */
export const demoLocalImage = (os: SimOs) => `piswarm/demo-http-server:sim-${os}`;
/** What the nodes pull: "<registry>/piswarm-demo/http-server:1-trixie". */
export const demoImage = (registry: string, os: SimOs) => `${registry}/${DEMO_REPOSITORY}:${DEMO_VERSION}-${os}`;

/** The walkthrough's step, adapted (replicas, host-mode publish, the local image), as run on a manager. */
export function serviceCreateArgs(image: string, replicas: number): string[] {
  return [
    'docker', 'service', 'create', '--detach', '--name', DEMO_SERVICE, '--replicas', String(replicas),
    '--publish', `mode=host,target=${DEMO_TARGET},published=${DEMO_PUBLISHED}`,
    image, 'python3', '-m', 'http.server', String(DEMO_TARGET),
  ];
}

export interface DemoTask {
  id: string;
  /** The node's hostname (a simulated node's name); '' while unassigned. */
  node: string;
  /** `docker service ps` CurrentState, e.g. "Running 3 seconds ago". */
  state: string;
  error: string;
}

/** Parses `docker service ps --format '{{.ID}}|{{.Node}}|{{.CurrentState}}|{{.Error}}'`. */
export function parseTasks(out: string): DemoTask[] {
  return out.split('\n').filter((l) => l.trim()).map((l) => {
    const [id = '', node = '', state = '', ...error] = l.split('|');
    return { id, node, state, error: error.join('|') };
  });
}

/** The container name the demo page shows (name-page.py), or undefined for any other page. */
export function pageContainer(html: string): string | undefined {
  return /<b id="container">([^<]+)<\/b>/.exec(html)?.[1];
}

export interface ReplicaAnswer {
  task: string;
  node: string;
  state: string;
  url: string;
  /** HTTP status from the host; 0 when nothing answered. */
  status: number;
  /** The container the page names, when it answered with the demo page. */
  container?: string;
  error?: string;
}

export const answered = (a: ReplicaAnswer) => a.status === 200 && a.container !== undefined;

/** One line per replica that does not answer, for errors and test messages. */
export function describeMissing(answers: readonly ReplicaAnswer[], replicas: number): string {
  const bad = answers.filter((a) => !answered(a)).map((a) =>
    `task ${a.task.slice(0, 12)} on ${a.node || '(no node)'} (${a.state}${a.error ? `; ${a.error}` : ''}): ${a.url || '-'} ${a.status ? `HTTP ${a.status}` : 'no answer'}`);
  const missing = replicas - answers.length;
  return [...bad, ...(missing > 0 ? [`${missing} replica(s) without a running task`] : [])].join('\n  ');
}

/** The first running node whose engine is a swarm manager. */
export async function findManager(ref: sim.ClusterRef): Promise<string> {
  const nodes = (await sim.status(ref)).filter((n) => n.running);
  if (nodes.length === 0) throw new PiswarmError('PISWARM_ERR_NOT_FOUND', `cluster "${ref.name ?? sim.DEFAULT_CLUSTER}" has no running node (run \`npm run sim -- up --nodes N\`)`);
  for (const n of nodes) {
    const r = await sim.exec(ref, n.name, ['docker', 'info', '--format', '{{.Swarm.ControlAvailable}}'], { timeoutMs: 10_000 });
    if (r.code === 0 && r.stdout.trim() === 'true') return n.name;
  }
  throw new PiswarmError('PISWARM_ERR_NOT_FOUND', `no swarm manager among the running nodes of "${ref.name ?? sim.DEFAULT_CLUSTER}" (${nodes.map((n) => n.name).join(', ')}): has the swarm formed? (\`npm run sim -- exec ${nodes[0]!.name} -- docker node ls\`)`);
}

async function onManager(ref: sim.ClusterRef, manager: string, cmd: string[]): Promise<string> {
  const r = await sim.exec(ref, manager, cmd, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new PiswarmError('PISWARM_ERR_DOCKER', `${cmd.slice(0, 4).join(' ')} on ${manager} failed: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** The service's tasks that should run, as a manager sees them. */
export async function demoTasks(ref: sim.ClusterRef, manager: string): Promise<DemoTask[]> {
  return parseTasks(await onManager(ref, manager, [
    'docker', 'service', 'ps', DEMO_SERVICE, '--filter', 'desired-state=running', '--no-trunc', '--format', '{{.ID}}|{{.Node}}|{{.CurrentState}}|{{.Error}}',
  ]));
}

/** Asks every task's node, from the host over the cluster network, for the demo page. */
export async function probeReplicas(ref: sim.ClusterRef, manager: string): Promise<ReplicaAnswer[]> {
  const [tasks, nodes] = await Promise.all([demoTasks(ref, manager), sim.status(ref)]);
  const ipOf = new Map(nodes.map((n) => [n.name, n.ip]));
  return Promise.all(tasks.map(async (t): Promise<ReplicaAnswer> => {
    const ip = ipOf.get(t.node);
    const a: ReplicaAnswer = { task: t.id, node: t.node, state: t.state, url: ip ? `http://${ip}${DEMO_PUBLISHED === 80 ? '' : `:${DEMO_PUBLISHED}`}/` : '', status: 0, ...(t.error ? { error: t.error } : {}) };
    if (!ip) return a;
    const r = await httpText(a.url, 2000);
    const container = pageContainer(r.text);
    return { ...a, status: r.status, ...(container ? { container } : {}), ...(r.error && !a.error ? { error: r.error } : {}) };
  }));
}

/** Builds the demo image on the cluster's OS and pushes it to the cluster's registry; returns the reference the nodes pull. */
export async function pushDemoImage(ref: sim.ClusterRef): Promise<string> {
  const log = ref.log ?? (() => {});
  const reg = await sim.registry(ref);
  const os = simOs((await sim.status(ref))[0]?.os || undefined);
  const local = await buildSimImage(ref.root ?? sim.repoRoot(), os, 'demo-image', demoLocalImage(os), log);
  // The host's engine reaches the registry through its loopback port; the
  // repository and tag are the same ones the nodes pull by the registry's LAN address.
  const viaHost = demoImage(reg.hostAddress, os);
  const t0 = performance.now();
  await docker(['tag', local, viaHost]);
  try {
    await docker(['push', '-q', viaHost], { timeoutMs: 5 * 60_000 });
  } finally {
    await docker(['rmi', viaHost]).catch(() => undefined); // only the tag: the local build stays cached
  }
  const image = demoImage(reg.address, os);
  log(`pushed ${image} in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  return image;
}

export interface DemoOptions extends sim.ClusterRef {
  /** Default: every Ready node whose availability is active (one task per node: port 80 is published on the host). */
  replicas?: number;
  /** How long to wait for every replica to answer (default 180 s). */
  timeoutMs?: number;
}

export interface DemoResult {
  manager: string;
  image: string;
  replicas: number;
  /** The command run on the manager. */
  command: string[];
  answers: ReplicaAnswer[];
  /** From `docker service create` to every replica answering. */
  readyMs: number;
}

/** Waits until `replicas` tasks run and each answers with the demo page; the error names those that do not. */
export async function waitForReplicas(ref: sim.ClusterRef, manager: string, replicas: number, timeoutMs: number): Promise<ReplicaAnswer[]> {
  const end = Date.now() + timeoutMs;
  let last: ReplicaAnswer[] = [];
  for (;;) {
    last = await probeReplicas(ref, manager).catch(() => last);
    if (last.length === replicas && last.every(answered)) return last;
    if (Date.now() >= end) {
      throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', `timed out after ${timeoutMs} ms: ${last.filter(answered).length} of ${replicas} replica(s) of ${DEMO_SERVICE} answer; not answering:\n  ${describeMissing(last, replicas)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Ready nodes whose availability is active, as the manager sees them. */
async function activeNodes(ref: sim.ClusterRef, manager: string): Promise<number> {
  const out = await onManager(ref, manager, ['docker', 'node', 'ls', '--format', '{{.Status}} {{.Availability}}']);
  return out.split('\n').filter((l) => l.trim() === 'Ready Active').length;
}

/**
 * Pushes the image and runs the walkthrough's step on a manager (replacing a
 * service of that name), then waits until every replica answers from the host.
 */
export async function deployDemo(o: DemoOptions): Promise<DemoResult> {
  const log = o.log ?? (() => {});
  const manager = await findManager(o);
  const image = await pushDemoImage(o);
  if ((await sim.exec(o, manager, ['docker', 'service', 'inspect', DEMO_SERVICE])).code === 0) {
    log(`replacing the existing ${DEMO_SERVICE} service`);
    await removeDemo(o);
  }
  const replicas = o.replicas ?? (await activeNodes(o, manager));
  if (replicas < 1) throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', `no Ready node with availability active in the swarm (\`npm run sim -- exec ${manager} -- docker node ls\`)`);
  const command = serviceCreateArgs(image, replicas);
  log(`on ${manager}: ${command.join(' ')}`);
  const t0 = Date.now();
  await onManager(o, manager, command);
  const answers = await waitForReplicas(o, manager, replicas, o.timeoutMs ?? 180_000);
  return { manager, image, replicas, command, answers, readyMs: Date.now() - t0 };
}

/** `docker service rm http-server` on a manager; false when there was no such service. */
export async function removeDemo(ref: sim.ClusterRef): Promise<boolean> {
  const manager = await findManager(ref);
  if ((await sim.exec(ref, manager, ['docker', 'service', 'inspect', DEMO_SERVICE])).code !== 0) return false;
  await onManager(ref, manager, ['docker', 'service', 'rm', DEMO_SERVICE]);
  // Its containers release port 80 on their nodes once stopped.
  await sim.waitFor(async () => (await Promise.all((await sim.status(ref)).filter((n) => n.running).map(async (n) =>
    (await sim.exec(ref, n.name, ['docker', 'ps', '-q', '--filter', `label=com.docker.swarm.service.name=${DEMO_SERVICE}`])).stdout.trim() === '',
  ))).every(Boolean), { timeoutMs: 60_000, what: `the ${DEMO_SERVICE} containers to stop` });
  return true;
}
