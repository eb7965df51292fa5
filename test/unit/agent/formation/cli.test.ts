import t from 'tap';
import { buildApp } from '../../../../agent/http/app.js';
import type { HealthDocument } from '../../../../agent/health/aggregate.js';
import { makePeersCommand as peersCommand } from '../../../../agent/cli/peers.js';
import { makeNodesCommand as nodesCommand, nodesCommand as registered } from '../../../../agent/cli/nodes.js';
import { createFormation } from '../../../../agent/formation/controller.js';
import { createMemoryFormationStore } from '../../../../agent/formation/store.js';
import { memoryLogger } from '../../../helpers/fakes.js';
import { FakeWorld } from './fake-swarm.js';
import { KEY, testConfig } from './helpers.js';

const doc: HealthDocument = { status: 'pass', version: '0', releaseId: '0', serviceId: 'x', description: 'x', checks: {} };

async function agent(t: { teardown(fn: () => unknown): void }, manager: boolean, formation: Record<string, unknown> = {}) {
  const world = new FakeWorld();
  const engine = world.engine('pi-1');
  if (manager) await engine.swarmInit({ advertiseAddr: '127.0.0.1', listenAddr: '127.0.0.1:2377', dataPathAddr: '127.0.0.1' });
  const { log } = memoryLogger();
  const config = testConfig({ clusterKey: KEY, nodeName: 'pi-1', formation });
  const f = createFormation({
    config, log, docker: engine, clock: { now: Date.now, setTimeout, clearTimeout },
    identity: { nodeId: 'a'.repeat(24), name: 'pi-1', createdAt: '' }, discovery: null,
    peerClient: { hello: async () => { throw new Error('Not implemented: hello'); }, grant: async () => { throw new Error('Not implemented: grant'); }, close: async () => undefined },
    address: () => ({ address: '127.0.0.1', interface: 'lo', reason: 'test' }), store: createMemoryFormationStore(),
  });
  await f.tick();
  const app = await buildApp({ log, bodyLimit: 16384, version: '0', health: () => doc, metrics: () => '', countError: () => undefined, plugins: [f.routes] });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const port = (app.server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, config, formation: f };
}

async function run(cmd: ReturnType<typeof peersCommand>, config: ReturnType<typeof testConfig>, argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await cmd.run({ argv, env: {}, out: (s) => out.push(s), err: (s) => err.push(s), confirm: async () => false, cwd: '/' });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

t.test('piswarm peers and piswarm nodes against a manager', async (t) => {
  const { url, config } = await agent(t, true);
  const load = (argv: string[]) => ({ config, rest: argv });
  const p = await run(peersCommand(load), config, ['--url', url]);
  t.equal(p.code, 0, p.err);
  t.match(p.out, /pi-1 .* manager/);
  t.match(p.out, /no confirmed peers/);
  const pj = await run(peersCommand(load), config, ['--url', url, '--json']);
  t.equal(JSON.parse(pj.out).phase, 'manager');
  const n = await run(nodesCommand(load), config, ['--url', url]);
  t.equal(n.code, 0, n.err);
  t.match(n.out, /^ID\s+HOSTNAME\s+STATUS/);
  t.match(n.out, /ready\s+active\s+Leader/);
  const nj = await run(nodesCommand(load), config, ['--url', url, '--json']);
  t.equal(JSON.parse(nj.out).length, 1);
  t.equal((await run(peersCommand(load), config, ['--bogus'])).code, 64, 'usage error');
});

t.test('piswarm nodes on a non-manager names the problem; no agent is exit 69', async (t) => {
  const { url, config } = await agent(t, false);
  const load = (argv: string[]) => ({ config, rest: argv });
  const n = await run(nodesCommand(load), config, ['--url', url]);
  t.equal(n.code, 1);
  t.match(n.err, /PISWARM_ERR_NOT_MANAGER/);
  const down = await run(peersCommand(load), config, ['--url', 'http://127.0.0.1:1']);
  t.equal(down.code, 69);
  t.equal(registered.name, 'nodes', 'the object main.ts registers');
  const viaEnv = await run(registered, config, ['--url', url, '--json']);
  t.equal(viaEnv.code, 1, 'the registered command loads config itself and reaches the agent');
  const bad = await registered.run({ argv: ['--http-port', 'x'], env: {}, out: () => undefined, err: () => undefined, confirm: async () => false, cwd: '/' });
  t.equal(bad, 78, 'invalid configuration is exit 78');
});

t.test('piswarm peers still names the election winner and why after the swarm exists', async (t) => {
  // No hold-off: the first tick elects this lone node and creates the swarm, the second finds it a manager.
  const { url, config, formation } = await agent(t, false, { holdOffMs: 0 });
  await formation.tick();
  t.equal(formation.status().phase, 'manager');
  const load = (argv: string[]) => ({ config, rest: argv });
  const p = await run(peersCommand(load), config, ['--url', url]);
  t.equal(p.code, 0, p.err);
  t.match(p.out, new RegExp(`election: winner ${'a'.repeat(24)} \\(pi-1\\) — lowest node id among confirmed peers \\(decided \\d{4}-\\d\\d-\\d\\dT`));
  const pj = JSON.parse((await run(peersCommand(load), config, ['--url', url, '--json'])).out);
  t.match(pj.election, { winner: 'a'.repeat(24), why: 'lowest node id among confirmed peers', at: String }, 'the JSON document keeps it too');
});
