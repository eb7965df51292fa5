import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildApp } from '../../../../agent/http/app.js';
import type { HealthDocument } from '../../../../agent/health/aggregate.js';
import { dashboardSubsystem, HISTORY_POINTS } from '../../../../agent/dashboard/subsystem.js';
import { ClusterHistory } from '../../../../agent/dashboard/history.js';
import { boundServices, summariseServices } from '../../../../agent/dashboard/services.js';
import { ASSET_FILES } from '../../../../agent/dashboard/assets.js';
import type { ClusterDocument, ClusterNode } from '../../../../shared/wire/cluster.js';
import { memoryLogger } from '../../../helpers/fakes.js';

const node = (id: string, cpu: number, stale = false): ClusterNode => ({
  id, hostname: `h-${id}`, addr: '10.0.0.1', self: false, gossip: { state: 'alive', sinceS: 1 },
  swarm: { nodeId: null, role: 'worker', state: null, availability: null, managerStatus: null }, health: { status: 'pass', checks: [] },
  facts: { version: null, cpuPct: cpu, memPct: 50, load1: null, tempC: 40, undervoltage: null, throttledNow: null, rootFreePct: null, diskReadMBps: null, uptimeS: null, model: null, arch: null, ageS: 1, stale },
});
const doc = (nodes: ClusterNode[]): ClusterDocument => ({
  generatedAt: '', servedBy: { id: 'a', hostname: 'h-a' },
  cluster: { name: 'c', swarmId: null, source: 'gossip', engineListAgeS: null, managers: 0, managersReachable: null, managerTarget: null, quorumMargin: null, members: { alive: nodes.length, suspect: 0, dead: 0, left: 0 }, election: null, autopilot: null },
  nodes, services: null,
});

t.test('history stays bounded: points per node, node count, forgotten nodes', async (t) => {
  const h = new ClusterHistory({ points: 3, maxNodes: 2, intervalS: 10 });
  for (let i = 0; i < 5; i++) h.record(doc([node('a', i), node('b', 10 + i, i === 4), node('c', 0)]), 100 + i);
  const j = h.toJSON();
  t.same(Object.keys(j.nodes), ['a', 'b'], 'at most maxNodes');
  t.same(j.nodes.a!.points, [[102, 2, 50, 40], [103, 3, 50, 40], [104, 4, 50, 40]]);
  t.same(j.nodes.b!.points.at(-1), [104, null, null, null], 'stale figures are not drawn');
  h.record(doc([node('b', 1)]), 200);
  t.same(Object.keys(h.toJSON().nodes), ['b']);
});

t.test('services: names, images, replicas, ports and nodes only', async (t) => {
  const services = [
    { ID: 's1', Spec: { Name: 'web', Mode: { Replicated: { Replicas: 3 } }, TaskTemplate: { ContainerSpec: { Image: 'nginx:1.25@sha256:abc123', Env: ['PASSWORD=hunter2'], Secrets: [{ SecretName: 'db' }] } }, Labels: { secret: 'x' } }, Endpoint: { Ports: [{ PublishedPort: 80, TargetPort: 8000, Protocol: 'tcp', PublishMode: 'host' }, { TargetPort: 9000 }] } },
    { ID: 's2', Spec: { Name: 'agent', Mode: { Global: {} }, TaskTemplate: { ContainerSpec: { Image: 'busybox' } } } },
  ];
  const tasks = [
    { ServiceID: 's1', NodeID: 'n1', Status: { State: 'running' } },
    { ServiceID: 's1', NodeID: 'n2', Status: { State: 'running' } },
    { ServiceID: 's1', NodeID: 'n2', Status: { State: 'preparing' } },
    { ServiceID: 's2', NodeID: 'n9', Status: { State: 'running' } },
  ];
  const out = summariseServices(services, tasks, new Map([['n1', 'pi-1'], ['n2', 'pi-2']]));
  t.same(out, [
    { name: 'agent', image: 'busybox', mode: 'global', desired: null, running: 1, ports: [], nodes: ['n9'] },
    { name: 'web', image: 'nginx:1.25', mode: 'replicated', desired: 3, running: 2, ports: ['80:8000/tcp (host)'], nodes: ['pi-1', 'pi-2'] },
  ]);
  t.notMatch(JSON.stringify(out), /hunter2|db|secret/);
  t.same(summariseServices([null, {}], [null], new Map()).map((s) => s.running), [0, 0], 'garbage in, no throw');
});

async function agent(t: { teardown(fn: () => unknown): void }, assetsDir?: URL) {
  const { log } = memoryLogger();
  const hd: HealthDocument = { status: 'pass', version: '0', releaseId: '0', serviceId: 'x', description: 'x', checks: {} };
  const dash = dashboardSubsystem({ log, view: () => doc([node('a', 5)]), ...(assetsDir ? { assetsDir } : {}) });
  const app = await buildApp({ log, bodyLimit: 16384, version: '0', health: () => hd, metrics: () => '', countError: () => undefined, plugins: [dash.routes!] });
  await dash.start!();
  t.teardown(async () => {
    await dash.stop!();
    await app.close();
  });
  return app;
}

t.test('the page for a browser at /, JSON for everyone else; files with ETags; history', async (t) => {
  const app = await agent(t);
  const page = await app.inject({ url: '/', headers: { accept: 'text/html,application/xhtml+xml' } });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-type'], /^text\/html/);
  t.match(page.body, /<script type="module" src="\/ui\/app.js">/);
  t.notMatch(page.body, /https?:\/\//, 'nothing from the internet');
  const json = await app.inject('/');
  t.equal(json.json().name, 'piswarm', 'the JSON index stays for scripts');
  for (const f of Object.keys(ASSET_FILES)) {
    const r = await app.inject(`/ui/${f === 'index.html' ? '' : f}`);
    t.equal(r.statusCode, 200, f);
    t.equal(r.headers['content-type'], ASSET_FILES[f]);
    const again = await app.inject({ url: `/ui/${f === 'index.html' ? '' : f}`, headers: { 'if-none-match': String(r.headers.etag) } });
    t.equal(again.statusCode, 304, `${f} revalidates`);
  }
  t.equal((await app.inject('/ui/../package.json')).statusCode, 404);
  t.equal((await app.inject('/ui/app.js?v=1')).statusCode, 400);
  const h = await app.inject('/v1/cluster/history');
  t.same(Object.keys(h.json().nodes), ['a']);
  t.equal(h.json().nodes.a.points.length, 1);
  t.equal((await app.inject('/v1/cluster/history?all=1')).statusCode, 400);
  t.ok(HISTORY_POINTS * 10 >= 600, 'ten minutes kept');
});

t.test('files missing from the release: the JSON index still answers, /ui/ says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dash-'));
  writeFileSync(join(dir, 'index.html'), '<p>only this</p>');
  const app = await agent(t, pathToFileURL(`${dir}/`));
  t.equal((await app.inject({ url: '/', headers: { accept: 'text/html' } })).json().name, 'piswarm');
  const r = await app.inject('/ui/');
  t.equal(r.statusCode, 503);
  t.equal(r.json().code, 'PISWARM_ERR_UNAVAILABLE');
});

t.test('services for a peer: at most max services and maxBytes of JSON, long lists cut, the rest counted', async (t) => {
  const svc = (k: number, nodes = 1) => ({ name: `s${k}`, image: 'busybox', mode: 'replicated' as const, desired: 1, running: 1, ports: Array.from({ length: 70 }, (_, i) => `${i}:${i}/tcp`), nodes: Array.from({ length: nodes }, (_, i) => `pi-${i}`) });
  const list = Array.from({ length: 10 }, (_, k) => svc(k));
  const few = boundServices(list, 4, 1 << 20);
  t.same(few.services.map((s) => s.name), ['s0', 's1', 's2', 's3']);
  t.equal(few.omitted, 6);
  t.equal(few.services[0]!.ports.length, 64, 'ports cut to 64');
  t.equal(boundServices([svc(0, 300)], 4, 1 << 20).services[0]!.nodes.length, 256, 'nodes cut to 256');
  const one = Buffer.byteLength(JSON.stringify(boundServices([svc(0)], 1, 1 << 20).services[0]));
  const sized = boundServices(list, 100, 2 + 3 * (one + 1));
  t.equal(sized.services.length, 3, 'as many as fit the byte budget');
  t.equal(sized.omitted, 7);
  t.ok(Buffer.byteLength(JSON.stringify(sized.services)) <= 2 + 3 * (one + 1));
});
