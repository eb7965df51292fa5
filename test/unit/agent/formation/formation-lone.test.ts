import t from 'tap';
import type { DockerEngine, SwarmAddresses } from '../../../../agent/docker/engine.js';
import { createFormation } from '../../../../agent/formation/controller.js';
import { createFileFormationStore, createMemoryFormationStore, type FormationStore } from '../../../../agent/formation/store.js';
import { renderFamilies } from '../../../../agent/metrics/format.js';
import { PiswarmError } from '../../../../shared/errors.js';
import type { HelloResponse } from '../../../../shared/wire/peer.js';
import type { Discovery } from '../../../../agent/discovery/discovery.js';
import { createMdnsDiscovery } from '../../../../agent/discovery/mdns.js';
import type { NodeIdentity } from '../../../../agent/identity/identity.js';
import { deriveClusterKeys } from '../../../../agent/identity/keys.js';
import type { Logger } from '../../../../agent/log/logger.js';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressChoice, InterfaceTable } from '../../../../agent/net/address.js';
import { fakeDocker, memoryLogger } from '../../../helpers/fakes.js';
import { FakeWorld } from './fake-swarm.js';
import { KEY, testConfig } from './helpers.js';

/**
 * One node (expect 1, no discovery): its clock is the test's and each tick
 * is run by hand, so every step of the election is observable. The engine
 * is a FakeWorld engine whose swarm init the test sees (and can make fail).
 * With `peer`, a seed answers every hello with what it returns (given the
 * clock), and expect is 2. `discovery` builds the discovery it runs with.
 */
function lone(
  opts: { address?: string; store?: FormationStore; host?: { address: () => AddressChoice; interfaces: () => InterfaceTable }; initFails?: () => boolean; nodeId?: string; peer?: (now: number) => HelloResponse; discovery?: (d: { now: () => number; log: Logger; identity: NodeIdentity }) => Discovery } = {},
) {
  let now = Date.parse('2026-03-01T10:00:00Z');
  const world = new FakeWorld();
  const base = world.engine('pi-1');
  const inits: SwarmAddresses[] = [];
  const docker: DockerEngine = fakeDocker({
    info: base.info,
    swarmInspect: base.swarmInspect,
    listNodes: base.listNodes,
    async swarmInit(a) {
      inits.push(a);
      if (opts.initFails?.()) throw new PiswarmError('PISWARM_ERR_DOCKER', 'swarm init: could not choose an IP address to advertise');
      return base.swarmInit(a);
    },
  });
  const { log, lines } = memoryLogger();
  const identity: NodeIdentity = { nodeId: opts.nodeId ?? 'a'.repeat(24), name: 'pi-1', createdAt: '' };
  const formation = createFormation({
    config: testConfig({
      clusterKey: KEY,
      nodeName: 'pi-1',
      discovery: { seeds: opts.peer ? ['10.0.0.2:7070'] : [] },
      formation: { expect: opts.peer ? 2 : 1, holdOffMs: 1000, initDeadlineMs: 20_000, tickMs: 1000 },
    }),
    log,
    docker,
    clock: { now: () => now, setTimeout: () => { throw new Error('Not implemented: setTimeout'); }, clearTimeout: () => undefined },
    identity,
    discovery: opts.discovery?.({ now: () => now, log, identity }) ?? null,
    peerClient: {
      hello: async () => {
        if (!opts.peer) throw new Error('Not implemented: hello');
        const response = opts.peer(now);
        return { nodeId: response.nodeId, response };
      },
      grant: async () => { throw new Error('Not implemented: grant'); },
      close: async () => undefined,
    },
    address: opts.host?.address ?? (() => ({ address: opts.address ?? '10.0.0.1', interface: 'eth0', reason: 'test' })),
    ...(opts.host ? { interfaces: opts.host.interfaces } : {}),
    store: opts.store ?? createMemoryFormationStore(),
    random: () => 0.5,
  });
  /** Advances the clock by `ms`, then runs one tick. */
  const step = async (ms: number) => {
    now += ms;
    await formation.tick();
  };
  return { formation, inits, world, lines, step };
}

t.test('an IPv6 advertise address: the listen address is [addr]:2377, advertise and data-path addresses stay bare', async (t) => {
  const { formation, inits, step } = lone({ address: 'fd00::21' });
  await step(0);
  await step(1000);
  t.same(inits, [{ advertiseAddr: 'fd00::21', listenAddr: '[fd00::21]:2377', dataPathAddr: 'fd00::21' }], 'what the engine (Go net.SplitHostPort, net.ParseIP) accepts');
  await step(1000);
  t.equal(formation.status().phase, 'manager');
});

t.test('the election result outlives the election: /v1/formation still names the winner and why once the swarm exists', async (t) => {
  const { formation, step } = lone();
  await step(0);
  t.match(formation.status().election, { winner: 'a'.repeat(24), why: /peer set stable for 0 of 1000 ms/ }, 'during the hold-off');
  await step(1000);
  await step(1000);
  const st = formation.status();
  t.equal(st.phase, 'manager', 'the swarm exists');
  t.same(st.election, { winner: 'a'.repeat(24), rank: ['a'.repeat(24)], why: 'lowest node id among confirmed peers', at: '2026-03-01T10:00:01.000Z' }, 'winner, why and when, kept');
  await step(60_000);
  t.equal(formation.status().election?.at, '2026-03-01T10:00:01.000Z', 'later ticks as a member change nothing');
});

t.test('the election result survives a restart of the agent: formation.json keeps it once the swarm exists', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-election-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const errors: unknown[] = [];
  const store = () => createFileFormationStore(dir, (err) => errors.push(err));
  const first = lone({ store: store() });
  await first.step(0);
  t.notOk(existsSync(join(dir, 'formation.json')), 'nothing written while the hold-off runs (its reason changes every tick)');
  await first.step(1000);
  await first.step(1000);
  const elected = first.formation.status().election;
  t.match(elected, { winner: 'a'.repeat(24), why: 'lowest node id among confirmed peers' });
  t.same(JSON.parse(readFileSync(join(dir, 'formation.json'), 'utf8')).election, elected, 'written once the swarm exists');
  const second = lone({ store: store() });
  t.same(second.formation.status().election, elected, 'a restarted agent answers who created the swarm and why before its first tick');

  // A hand-edited or older file: a malformed election is dropped, the rest kept.
  const file = JSON.parse(readFileSync(join(dir, 'formation.json'), 'utf8'));
  writeFileSync(join(dir, 'formation.json'), JSON.stringify({ ...file, election: { winner: 7, rank: 'x' } }));
  const third = lone({ store: store() });
  t.equal(third.formation.status().election, null, 'malformed: not trusted');
  t.same(store().load().seenSwarms, file.seenSwarms, 'the swarms seen are kept');
  t.same(errors, []);
});

t.test('a failing swarm init is retried with backoff, not every tick, and stays counted', async (t) => {
  let failing = true;
  const { formation, inits, lines, step } = lone({ initFails: () => failing });
  await step(0);
  for (let i = 0; i < 20; i++) await step(1000); // 20 ticks of 1 s: the whole 20 s turn
  t.ok(inits.length >= 3 && inits.length <= 8, `${inits.length} inits in 20 ticks (backoff from 1 s, capped at a quarter of the deadline)`);
  const st = formation.status();
  t.equal(st.phase, 'initialising', 'alone, it is always its turn: it keeps trying');
  t.match(st.reason, /^swarm init failed \(PISWARM_ERR_DOCKER\); retrying in \d+ ms/);
  t.equal(lines().filter((l) => l.msg === 'swarm init failed' && l.code === 'PISWARM_ERR_DOCKER').length, inits.length, 'one warn line per failure, with its code');
  t.match(renderFamilies(formation.collector.collect()), new RegExp(`piswarm_formation_init_failures_total ${inits.length}\\n`));
  failing = false;
  for (let i = 0; i < 6 && formation.status().phase !== 'manager'; i++) await step(1000);
  t.equal(formation.status().phase, 'manager', 'once the engine accepts, the swarm exists');
});

t.test('a takeover asks every peer again right before its init: a swarm that appeared meanwhile is joined, never doubled', async (t) => {
  // The winner (lower id) says it is creating the swarm for longer than a deadline, so this node's turn comes;
  // between this node's regular hello and its init, the winner's swarm appears (a second hello at the same instant sees it).
  const W = `${'0'.repeat(23)}1`;
  const creating: HelloResponse = { v: 1, nodeId: W, name: 'pi-0', addr: '10.0.0.2', port: 7070, phase: 'initialising', swarm: null, seenSwarms: [] };
  const created: HelloResponse = { ...creating, phase: 'manager', swarm: { id: 'S1', createdAt: '2026-03-01T10:00:21Z', role: 'manager', nodes: 1, managerAddrs: ['10.0.0.2:2377'], runningTasks: 0 }, seenSwarms: ['S1'] };
  let lastAt = -1;
  let appeared = false;
  const { formation, inits, lines, step } = lone({
    nodeId: 'b'.repeat(24),
    peer: (at) => {
      if (at === lastAt) appeared = true;
      lastAt = at;
      return appeared ? created : creating;
    },
  });
  await step(0);
  t.match(formation.status(), { phase: 'waiting', reason: new RegExp(`peer ${W} is creating a swarm`) });
  for (let i = 0; i < 20; i++) await step(1000);
  t.match(formation.status().reason, /waiting for 0+1 \(rank 0\)/, 'a deadline after it was seen to start, its turn is not over yet');
  t.equal(appeared, false, 'no second look until a takeover is due');
  await step(1000);
  t.equal(appeared, true, 'the takeover asked again');
  t.same(inits, [], 'and did not init');
  t.ok(lines().some((l) => l.msg === 'takeover called off: the peers answered otherwise'), 'the journal says why');
});

t.test('mDNS port held by another program: the agent keeps running, counts and logs the clash, /health warns; freeing the port recovers', async (t) => {
  // Another responder holding the port without SO_REUSEADDR: multicast-dns cannot bind it (EADDRINUSE).
  const holder = createSocket({ type: 'udp4', reuseAddr: false });
  await new Promise<void>((resolve, reject) => {
    holder.once('error', reject);
    holder.bind(0, '0.0.0.0', () => resolve());
  });
  const port = holder.address().port;
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  t.teardown(() => process.off('uncaughtException', onUncaught));
  const { formation, lines, step } = lone({
    address: '127.0.0.1',
    discovery: ({ now, log, identity }) => createMdnsDiscovery({ keys: deriveClusterKeys(KEY), identity, log, now, maxAgeMs: 600_000, republishMs: 4000, stopTimeoutMs: 300, port }),
  });
  t.teardown(() => formation.stop());
  const mdnsCheck = () => formation.healthChecks.find((c) => c.name === 'discovery:mdns')!.run()[0]!;
  t.equal(mdnsCheck().status, 'pass', 'nothing to say before the socket exists');
  await step(0); // publishes the advert: the socket is created and fails to bind
  const metric = () => renderFamilies(formation.collector.collect());
  await until(() => uncaught.length > 0 || /piswarm_discovery_mdns_errors_total\{reason="bind"\} 1\n/.test(metric()), 3000);
  t.same(uncaught, [], 'no uncaught exception: before, multicast-dns emitted an error nobody listened to and the process died');
  const warn = lines().filter((l) => l.code === 'PISWARM_ERR_MDNS_BIND');
  t.match(warn, [{ level: 40, errno: 'EADDRINUSE', port }], 'one warn line with the coded error');
  t.match(mdnsCheck(), { status: 'warn', observedValue: 'EADDRINUSE', output: /mDNS cannot bind UDP \d+ \(EADDRINUSE\).*discovery\.seeds.*piswarm doctor.*avahi-daemon/ });
  await step(1000); // hold-off over: init
  await step(1000);
  t.equal(formation.status().phase, 'manager', 'formation goes on without mDNS');
  await new Promise<void>((resolve) => holder.close(() => resolve()));
  await until(() => mdnsCheck().status === 'pass', 5000); // the next re-query binds again
  t.ok(lines().some((l) => l.msg === 'mDNS port bound: discovery over mDNS works again'), 'the journal says it recovered');
  t.match(metric(), /piswarm_discovery_mdns_errors_total\{reason="bind"\} 1\n/, 'still counted once');
  t.same(uncaught, []);
});

t.test('the advertise address stops being this host\'s (DHCP moved it): /health net:address warns, the journal and /metrics say so; it is re-checked every discovery.addressRecheckMs, and reported, never changed', async (t) => {
  let ip: string | null = '10.0.0.1';
  let readable = true;
  const host = {
    interfaces: (): InterfaceTable => {
      if (!readable) throw new Error('netlink refused');
      return { lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }], eth0: ip ? [{ address: ip, family: 'IPv4', internal: false }] : [] };
    },
    address: (): AddressChoice => {
      if (!ip) throw new PiswarmError('PISWARM_ERR_NO_ADDRESS', 'no interface other than loopback and container bridges has an IPv4 address (yet)');
      return { address: ip, interface: 'eth0', reason: 'default route via 10.0.0.254 (metric 0)' };
    },
  };
  const { formation, inits, lines, step } = lone({ host });
  const check = () => formation.healthChecks.find((c) => c.name === 'net:address')!.run();
  t.match(check(), [{ status: 'pass', observedValue: null, output: 'no advertise address chosen yet' }]);
  await step(0);
  await step(1000);
  await step(1000);
  t.equal(formation.status().phase, 'manager');
  t.equal(inits[0]?.advertiseAddr, '10.0.0.1');
  t.same(check().map((r) => [r.status, r.observedValue]), [['pass', '10.0.0.1']]);
  const metric = () => renderFamilies(formation.collector.collect());
  const warns = () => lines().filter((l) => l.code === 'PISWARM_ERR_ADDRESS_CHANGED');

  ip = '10.0.0.7'; // the lease moved
  await step(20_000);
  t.equal(check()[0]!.status, 'pass', 'not re-checked before addressRecheckMs (30 s) has passed');
  await step(10_000);
  const [r] = check();
  t.match(r, { status: 'warn', observedValue: '10.0.0.1' });
  t.match(r!.output, /^the advertise address 10\.0\.0\.1 \(eth0\) is no longer an address of this host: it now has 10\.0\.0\.7 \(eth0, default route via 10\.0\.0\.254 \(metric 0\)\), since 2026-03-01T10:00:32\.000Z\. Peers and the swarm still use 10\.0\.0\.1\. .*systemctl restart piswarm.*docker swarm leave.*docker node demote/);
  t.match(metric(), /piswarm_advertise_address_stale 1\n/);
  t.match(metric(), /piswarm_advertise_address_losses_total 1\n/);
  t.match(warns(), [{ level: 40, address: '10.0.0.1', now: '10.0.0.7', iface: 'eth0' }], 'one warn line with its code');
  t.equal(formation.status().phase, 'manager', 'the node stays in its swarm: nothing is changed');
  t.equal(inits.length, 1);

  await step(30_000);
  t.equal(warns().length, 1, 'the same change is logged once');
  ip = null; // cable pulled: no address at all
  await step(30_000);
  t.match(check()[0]!.output, /no longer an address of this host, and it has no other usable one: no interface other than loopback/);
  t.match(check()[0]!.output, /since 2026-03-01T10:00:32\.000Z/, 'since: when it was first lost');
  t.equal(warns().length, 2, 'a different state is logged again');
  t.match(metric(), /piswarm_advertise_address_losses_total 1\n/, 'still one loss');

  readable = false;
  await step(30_000);
  t.equal(check()[0]!.status, 'warn', 'interfaces that cannot be read change nothing');
  readable = true;
  ip = '10.0.0.1'; // the reservation gave the old address back
  await step(30_000);
  t.match(check(), [{ status: 'pass', observedValue: '10.0.0.1' }]);
  t.match(metric(), /piswarm_advertise_address_stale 0\n/);
  t.ok(lines().some((l) => l.msg === 'the advertise address is this host\'s again' && l.after === 120), 'the journal says it is back, and after how long');
});

t.test('a second address on the host is no reason to warn: only losing the one in use is', async (t) => {
  let second = false;
  const host = {
    interfaces: (): InterfaceTable => ({ eth0: [{ address: '10.0.0.1', family: 'IPv4', internal: false }], ...(second ? { wlan0: [{ address: '192.168.1.9', family: 'IPv4', internal: false }] } : {}) }),
    address: (): AddressChoice => (second ? { address: '192.168.1.9', interface: 'wlan0', reason: 'default route via 192.168.1.1 (metric 0)' } : { address: '10.0.0.1', interface: 'eth0', reason: 'test' }),
  };
  const { formation, step } = lone({ host });
  await step(0);
  second = true;
  await step(30_000);
  await step(30_000);
  t.match(formation.healthChecks.find((c) => c.name === 'net:address')!.run(), [{ status: 'pass', observedValue: '10.0.0.1' }]);
});

async function until(cond: () => boolean, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}
