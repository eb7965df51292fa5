import t from 'tap';
import { factsFrom, fitFacts, readFacts, troubledChecks, type NodeFacts } from '../../../../agent/cluster/facts.js';
import { busyPct } from '../../../../agent/cluster/cpu.js';
import type { HealthDocument } from '../../../../agent/health/aggregate.js';
import { emptySnapshot, type HostSnapshot } from '../../../../agent/host/types.js';
import { MAX_META_BYTES, metaBytes } from '../../../../shared/wire/gossip.js';
import { SimCluster } from '../../../../agent/membership/sim/cluster.js';

const doc = (checks: Record<string, Array<'pass' | 'warn' | 'fail'>>): HealthDocument => ({
  status: Object.values(checks).flat().includes('fail') ? 'fail' : Object.values(checks).flat().includes('warn') ? 'warn' : 'pass',
  version: '0', releaseId: '0.1.0', serviceId: 'n', description: '',
  checks: Object.fromEntries(Object.entries(checks).map(([k, v]) => [k, v.map((status) => ({ status }))])),
});

const snap: HostSnapshot = {
  ...emptySnapshot(),
  at: 1,
  memory: { totalBytes: 4e9, availableBytes: 1e9, freeBytes: 5e8, swapTotalBytes: 0, swapFreeBytes: 0 },
  load: { load1: 0.523, load5: 0.4, load15: 0.3 } as HostSnapshot['load'],
  rootFs: { device: '/dev/mmcblk0p2', fstype: 'ext4', sizeBytes: 32e9, availBytes: 8e9, freeBytes: 9e9 },
  throttling: { now: { under_voltage: false, freq_capped: true, throttled: false, soft_temp_limit: false }, sinceBoot: null } as unknown as HostSnapshot['throttling'],
};

// The largest metadata the membership publishes today besides the facts, with a 24-character hostname.
const BASE = { hostname: 'pi-rack-02-shelf-3-node7', role: 'manager', swarmNodeId: 'k3l2j4h5g6f7d8s9a0p1o2i3u', joinAddr: '192.168.100.100', diskBps: 123456789, undervoltage: false, tempC: 61.2 };

const full = (checks: string[]): NodeFacts => ({
  seq: 3456, version: '0.10.12', health: 'fail', checks, cpuPct: 100, memPct: 100, load1: 12.34, throttledNow: true,
  rootFreePct: 100, uptimeS: 31536000, arch: 'arm64', model: 'Raspberry Pi Compute Module 4 Rev 1.0', rev: 'b03140', memMb: 1849, storage: 'emmc',
});

t.test('facts from the host sample: percentages, load, throttling, failing checks first', async (t) => {
  const f = factsFrom({ seq: 3, version: '0.1.0', health: doc({ 'net:address': ['warn'], 'docker:engine': ['fail'], 'host:disk': ['pass'], 'a:b': ['warn', 'pass'] }), snapshot: snap, cpuPct: 12.6, uptimeS: 3600.4, arch: 'arm64', model: 'Raspberry Pi 4 Model B Rev 1.4' });
  t.same(f, { seq: 3, version: '0.1.0', health: 'fail', checks: ['docker:engine', 'a:b', 'net:address'], cpuPct: 13, memPct: 75, load1: 0.52, throttledNow: true, rootFreePct: 25, uptimeS: 3600, arch: 'arm64', model: 'Raspberry Pi 4 Model B Rev 1.4', rev: null, memMb: 3815, storage: null });
  const none = factsFrom({ seq: 1, version: 'v', health: null, snapshot: null, cpuPct: null, uptimeS: 1, arch: 'x64', model: null });
  t.same([none.health, none.memPct, none.load1, none.throttledNow, none.rootFreePct, none.checks], [null, null, null, null, null, []]);
  t.same(troubledChecks(doc({ x: ['pass'] })), []);
});

t.test('published facts read back the same', async (t) => {
  const f = factsFrom({ seq: 9, version: '0.1.0', health: doc({ 'docker:ipvs': ['warn'] }), snapshot: snap, cpuPct: 40, uptimeS: 60, arch: 'x64', model: 'Pi 4' });
  const x = fitFacts(f, 200);
  t.ok(x);
  t.same(readFacts({ ...BASE, ...x! }), f);
  t.equal(readFacts(fitFacts({ ...f, seq: 10_007 }, 200)!)!.seq, 7, 'the counter wraps');
  const bare = { ...f, arch: null, model: null, rev: null, memMb: null, storage: null };
  t.same(readFacts(fitFacts(bare, 200)!), bare, 'a missing tail reads as null');
});

t.test('the facts always fit the metadata limit, shortening model and check names first', async (t) => {
  const base = metaBytes(BASE);
  const budget = MAX_META_BYTES - base - 1;
  const many = ['docker:engine', 'docker:swarm', 'host:temperature', 'host:undervoltage', 'host:disk-space', 'net:address', 'cluster:members', 'formation:state'];
  const x = fitFacts(full(many), budget);
  t.ok(x, 'something fits');
  const meta = { ...BASE, ...x! };
  t.ok(metaBytes(meta) <= MAX_META_BYTES, `${metaBytes(meta)} <= ${MAX_META_BYTES}`);
  const back = readFacts(meta)!;
  t.equal(back.cpuPct, 100, 'figures are never dropped');
  t.equal(back.health, 'fail');
  t.match(back.checks.at(-1), /^\+\d+$/, 'dropped check names are counted');
  const kept = back.checks.slice(0, -1);
  t.same(kept, many.slice(0, kept.length), 'the first (failing) names are kept');
  t.equal(kept.length + Number(back.checks.at(-1)!.slice(1)), many.length);
  // With room, nothing is cut.
  t.same(readFacts(fitFacts(full(many), 1000)!)!.checks, many);
  t.equal(fitFacts(full([]), 40), null, 'null when even the figures do not fit');
  // A 63-character hostname leaves 34 bytes: the facts stay home rather than break the metadata.
  const longBase = { ...BASE, hostname: 'h'.repeat(63) };
  t.equal(fitFacts(full(many), MAX_META_BYTES - metaBytes(longBase) - 1), null);
});

t.test('whatever a peer publishes reads as facts or nulls, never throws', async (t) => {
  t.equal(readFacts({}), null);
  t.equal(readFacts({ x: 'nope' }), null);
  const r = readFacts({ x: [1, 5, 'z', [1, 'ok', 'x'.repeat(100)], 'hot', Infinity, null, 7, -1, 'up', 'a'.repeat(40), { m: 1 }] })!;
  t.same(r, { seq: 1, version: null, health: null, checks: ['ok'], cpuPct: null, memPct: null, load1: null, throttledNow: null, rootFreePct: -1, uptimeS: null, arch: null, model: null, rev: null, memMb: null, storage: null });
});

t.test('CPU busy share between two readings', async (t) => {
  const a = [{ user: 100, nice: 0, sys: 50, idle: 850, irq: 0 }, { user: 0, nice: 0, sys: 0, idle: 1000, irq: 0 }];
  const b = [{ user: 200, nice: 0, sys: 100, idle: 900, irq: 0 }, { user: 0, nice: 0, sys: 0, idle: 1200, irq: 0 }];
  t.equal(busyPct(a, b), 37.5); // 150 busy of 400
  t.equal(busyPct(a, a), null);
});

t.test('facts travel in real gossip metadata at the largest size and arrive at every member', async (t) => {
  const sim = new SimCluster({ n: 5, seed: 12 });
  const many = ['docker:engine', 'docker:swarm', 'host:temperature', 'net:address', 'cluster:members'];
  const x = fitFacts(full(many), MAX_META_BYTES - metaBytes(BASE) - 1)!;
  sim.nodes[2]!.membership.updateMeta({ ...BASE, ...x });
  const at = sim.runUntil(() => sim.nodes.every((n) => readFacts(n.membership.member('n2')!.meta)?.seq === 3456), 10_000);
  t.ok(at !== null, `every member has n2's facts after ${at} ms of simulated time`);
  t.equal(sim.nodes[4]!.membership.stats().dropped.oversize + sim.nodes[4]!.membership.stats().dropped.malformed, 0, 'no datagram refused');
});
