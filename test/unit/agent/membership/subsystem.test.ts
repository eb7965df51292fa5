import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { membershipSubsystem } from '../../../../agent/membership/subsystem.js';
import { createNodeContext } from '../../../../agent/identity/context.js';
import type { EngineMonitor } from '../../../../agent/docker/monitor.js';
import { memoryLogger } from '../../../helpers/fakes.js';
import { KEY, freePort, testConfig } from '../formation/helpers.js';

/** The engine monitor as gossip metadata reads it: its last answer, nothing else. */
const monitor = new Proxy({ last: () => ({ info: null }) } as unknown as EngineMonitor, {
  get(target, prop) {
    if (prop in target) return (target as unknown as Record<string | symbol, unknown>)[prop];
    throw new Error(`Not implemented: monitor.${String(prop)}`);
  },
});

async function subsystem(t: { teardown(fn: () => unknown): void }, advertiseAddress: string) {
  const stateDir = mkdtempSync(join(tmpdir(), 'piswarm-gossip-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const config = testConfig({ clusterKey: KEY, nodeName: 'pi-1', stateDir, http: { port: await freePort() }, discovery: { advertiseAddress } });
  const { log, lines } = memoryLogger();
  const node = createNodeContext(config, log);
  const m = membershipSubsystem(config, { log, node, monitor, facts: () => ({}), confirmedPeers: () => [], refreshMs: 60_000 });
  return { m, lines };
}

t.test('no address yet (a late DHCP answer): start waits instead of failing the agent, /health says so, stop ends the wait', async (t) => {
  const { m, lines } = await subsystem(t, '192.0.2.77'); // TEST-NET-1: never this host's
  await t.resolves(m.start!(), 'start does not throw PISWARM_ERR_NO_ADDRESS');
  const check = m.checks![0]!.run!()[0]!;
  t.equal(check.status, 'warn');
  t.match(check.output, /gossip waits for an address: .*192\.0\.2\.77/);
  t.ok(lines().some((l) => l.msg === 'gossip waits for an address' && l.code === 'PISWARM_ERR_NO_ADDRESS'), 'a coded journal line');
  await new Promise((r) => setTimeout(r, 1200)); // a retry or two
  t.equal(lines().filter((l) => l.msg === 'gossip waits for an address').length, 1, 'logged once, not per retry');
  t.same(m.members(), [], 'no membership yet');
  await m.stop!();
  t.equal(m.checks![0]!.run!()[0]!.status, 'warn', 'still says why after stop');
});

t.test('with an address, gossip starts at once', async (t) => {
  const { m, lines } = await subsystem(t, '127.0.0.1');
  await m.start!();
  t.teardown(() => m.stop!());
  t.ok(lines().some((l) => l.msg === 'gossip membership started' && l.addr === '127.0.0.1'));
  t.equal(m.members().length, 1, 'itself');
  t.equal(m.checks![0]!.run!()[0]!.status, 'pass');
});
