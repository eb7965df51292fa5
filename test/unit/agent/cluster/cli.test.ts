import t from 'tap';
import { buildApp } from '../../../../agent/http/app.js';
import type { HealthDocument } from '../../../../agent/health/aggregate.js';
import { clusterRoutes } from '../../../../agent/cluster/routes.js';
import { clusterExit, clusterTable, makeClusterStatusCommand } from '../../../../agent/cli/cluster-status.js';
import type { ClusterDocument, ClusterNode } from '../../../../shared/wire/cluster.js';
import { memoryLogger } from '../../../helpers/fakes.js';
import { testConfig } from '../formation/helpers.js';

const node = (hostname: string, over: Partial<ClusterNode> = {}): ClusterNode => ({
  id: hostname, hostname, addr: '10.0.0.1', self: false, gossip: { state: 'alive', sinceS: 10 },
  swarm: { nodeId: null, role: 'worker', state: 'ready', availability: 'active', managerStatus: null },
  health: { status: 'pass', checks: [] },
  facts: { version: '0.1.0', cpuPct: 12.4, memPct: 40, load1: 0.5, tempC: 48.5, undervoltage: false, throttledNow: false, rootFreePct: 71, diskReadMBps: 40, uptimeS: 100, model: null, arch: 'arm64', ageS: 3, stale: false },
  ...over,
});

const docOf = (nodes: ClusterNode[]): ClusterDocument => ({
  generatedAt: '2026-12-04T12:00:00.000Z', servedBy: { id: 'a', hostname: 'pi-0' },
  cluster: { name: 'farm', swarmId: 's', source: 'engine', engineListAgeS: 1, managers: 1, managersReachable: 1, managerTarget: 1, quorumMargin: 0, members: { alive: nodes.length, suspect: 0, dead: 0, left: 0 }, election: null, autopilot: null },
  nodes,
  services: null,
});

const healthy = docOf([
  node('pi-0', { self: true, swarm: { nodeId: 'x', role: 'manager', state: 'ready', availability: 'active', managerStatus: 'Leader' } }),
  node('pi-1', { health: { status: 'warn', checks: ['docker:ipvs'] } }),
]);

async function agent(t: { teardown(fn: () => unknown): void }, doc: () => ClusterDocument) {
  const { log } = memoryLogger();
  const hd: HealthDocument = { status: 'pass', version: '0', releaseId: '0', serviceId: 'x', description: 'x', checks: {} };
  const app = await buildApp({ log, bodyLimit: 16384, version: '0', health: () => hd, metrics: () => '', countError: () => undefined, plugins: [clusterRoutes({ view: doc, port: 7070 })] });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

const config = testConfig({});
const load = (argv: string[]) => ({ config, rest: argv });
async function run(argv: string[], rounds?: number) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await makeClusterStatusCommand(load, rounds ? { rounds } : {}).run({ argv, env: {}, out: (s) => out.push(s), err: (s) => err.push(s), confirm: async () => false, cwd: '/' });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

t.test('the table: one row a node', async (t) => {
  const lines = clusterTable(healthy);
  t.match(lines[0], /^cluster farm: 2 alive, 0 suspect, 0 dead; managers 1\/1 \(target 1\), quorum margin 0; seen from pi-0/);
  t.match(lines[1], /^NAME\s+ROLE\s+STATE\s+HEALTH\s+CPU\s+MEM\s+TEMP\s+DISK FREE\s+VERSION\s+AGE$/);
  t.match(lines[2], /^pi-0\*\s+leader\s+alive\s+pass\s+12%\s+40%\s+48.5°C\s+71%\s+0.1.0\s+3s$/);
  t.match(lines[3], /^pi-1\s+worker\s+alive\s+warn \(docker:ipvs\)/);
  t.equal(clusterExit(healthy), 0, 'warn is healthy enough');
  t.equal(clusterExit(docOf([node('a'), node('b', { gossip: { state: 'dead', sinceS: 3 } })])), 1);
  t.equal(clusterExit(docOf([node('a', { health: { status: 'fail', checks: ['docker:engine'] } })])), 1);
  t.equal(clusterExit(docOf([node('a', { gossip: null })])), 1, 'a node without an agent');
  t.equal(clusterExit(docOf([])), 1);
});

t.test('piswarm cluster status against a real agent: table, --json, --watch, exits', async (t) => {
  let doc = healthy;
  const url = await agent(t, () => doc);
  const a = await run(['--url', url]);
  t.equal(a.code, 0, a.err);
  t.match(a.out, /pi-1\s+worker\s+alive/);
  const j = await run(['--url', url, '--json']);
  t.same(JSON.parse(j.out), healthy);
  const w = await run(['--url', url, '--watch', '--interval', '0.5'], 2);
  t.equal(w.out.split('NAME').length - 1, 2, 'two rounds drawn');
  doc = docOf([node('pi-0'), node('pi-1', { gossip: { state: 'suspect', sinceS: 1 } })]);
  t.equal((await run(['--url', url])).code, 1, 'a suspect member');
  t.equal((await run(['--url', url, '--interval', '0'])).code, 64);
  t.equal((await run(['--bogus'])).code, 64);
});

t.test('no agent: exit 69', async (t) => {
  const r = await run(['--url', 'http://127.0.0.1:9']);
  t.equal(r.code, 69);
  t.match(r.err, /does not answer/);
});
