import t from 'tap';
import { factsFrom, fitFacts, readFacts, type NodeFacts } from '../../../../agent/cluster/facts.js';
import { emptySnapshot } from '../../../../agent/host/types.js';
import { factsBySwarmNode, labelsFor } from '../../../../agent/labels/labels-for.js';
import { MAX_META_BYTES, metaBytes } from '../../../../shared/wire/gossip.js';

// The largest metadata the membership publishes besides the facts (as in test/unit/agent/cluster/facts.test.ts).
const BASE = { hostname: 'pi-rack-02-shelf-3-node7', role: 'manager', swarmNodeId: 'k3l2j4h5g6f7d8s9a0p1o2i3u', joinAddr: '192.168.100.100', diskBps: 123456789, undervoltage: false, tempC: 61.2 };
const BUDGET = MAX_META_BYTES - metaBytes(BASE) - 1;

const facts = (over: Partial<NodeFacts> = {}): NodeFacts => ({
  seq: 12, version: '0.10.12', health: 'pass', checks: [], cpuPct: 7, memPct: 31, load1: 0.25, throttledNow: false,
  rootFreePct: 64, uptimeS: 86400, arch: 'arm64', model: 'Raspberry Pi 5 Model B Rev 1.0', rev: 'd04170', memMb: 8052, storage: 'nvme', ...over,
});

t.test('the hardware facts come from the host sample and the hardware read at start', async (t) => {
  const snapshot = { ...emptySnapshot(), memory: { totalBytes: 8052 * 2 ** 20, availableBytes: 2 ** 30, freeBytes: 2 ** 29, swapTotalBytes: 0, swapFreeBytes: 0 } };
  const f = factsFrom({ seq: 1, version: 'v', health: null, snapshot, cpuPct: null, uptimeS: 1, arch: 'arm64', model: null, hardware: { rev: 'd04170', storage: 'nvme' } });
  t.same([f.rev, f.memMb, f.storage], ['d04170', 8052, 'nvme']);
  const none = factsFrom({ seq: 1, version: 'v', health: null, snapshot: null, cpuPct: null, uptimeS: 1, arch: 'arm64', model: null });
  t.same([none.rev, none.memMb, none.storage], [null, null, null], 'not read yet: unknown');
});

// A typical node: short hostname, no joinAddr (Docker 27+).
const TYPICAL = { hostname: 'pi5-nvme', role: 'worker', swarmNodeId: 'k3l2j4h5g6f7d8s9a0p1o2i3u', diskBps: 823456789, undervoltage: false, tempC: 51.2 };

t.test('round trip through the datagram, not-a-Pi included', async (t) => {
  const f = facts();
  const x = fitFacts(f, MAX_META_BYTES - metaBytes(TYPICAL) - 1);
  t.ok(x);
  t.same(readFacts({ ...TYPICAL, ...x! }), f, 'a typical node publishes every fact, the full model name included');
  for (const storage of ['sd', 'emmc', 'usb', 'nvme', 'other'] as const) t.equal(readFacts(fitFacts(facts({ storage }), 200)!)!.storage, storage);
  const pc = facts({ arch: 'x64', model: 'Standard PC', rev: '', memMb: 15890, storage: 'other' });
  t.same(readFacts(fitFacts(pc, 200)!), pc, "'' (known not a Pi) survives as ''");
});

t.test('the first twelve positions are where an older agent reads them', async (t) => {
  const x = fitFacts(facts(), 200)!.x;
  t.equal(x.length, 14);
  t.same(x.slice(10), ['arm64', 'Raspberry Pi 5 Model B Rev 1.0', 'd04170n', 8052], 'appended after the model: revision code and storage letter, MemTotal');
  const hw = (over: Partial<NodeFacts>) => fitFacts(facts({ ...over, memMb: null }), 200)!.x[12];
  t.same([hw({ rev: '', storage: 'other' }), hw({ rev: null, storage: 'sd' }), hw({ storage: null }), hw({ rev: null, storage: null })], ['o', '?s', 'd04170?', undefined]);
});

t.test('an older peer (no hardware facts) reads as unknown, and so sets no label', async (t) => {
  const old = fitFacts(facts(), BUDGET)!.x.slice(0, 12);
  const back = readFacts({ x: old })!;
  t.same([back.rev, back.memMb, back.storage], [null, null, null]);
  t.equal(back.arch, 'arm64', 'what it did publish still reads');
  const byNode = factsBySwarmNode([{ id: 'm', addr: '10.0.0.2', port: 7070, incarnation: 1, state: 'alive', meta: { swarmNodeId: 'n1', x: old }, stateChangedAt: 0, self: false }]);
  t.same(labelsFor(byNode.get('n1')!), { 'piswarm.arch': 'arm64' });
});

t.test('malformed hardware facts read as unknown, never throw', async (t) => {
  const bad = (hw: unknown, memMb: unknown) => {
    const r = readFacts({ x: [...fitFacts(facts(), 200)!.x.slice(0, 12), hw, memMb] })!;
    return [r.rev, r.storage, r.memMb];
  };
  t.same(bad('D04170n', -1), [null, null, null], 'upper case, negative');
  t.same(bad('d04170x', 'big'), [null, null, null], 'an unknown storage letter spoils the pair');
  t.same(bad('nvme', Infinity), [null, null, null], 'the long name is not the code');
  t.same(bad('123456789n', 0), [null, null, null], 'too long');
  t.same(bad(7, null), [null, null, null]);
  t.same(bad('', 1), [null, null, 1], 'empty');
  t.same(bad('e', 512), ['', 'emmc', 512], 'not a Pi, eMMC');
  t.same(bad('??', 512), [null, null, 512]);
});

t.test('under budget pressure the hardware facts go after the model and before the architecture', async (t) => {
  const many = ['docker:engine', 'docker:swarm', 'host:temperature', 'host:undervoltage', 'host:disk-space', 'net:address', 'cluster:members', 'formation:state'];
  const f = facts({ checks: many, health: 'fail', model: 'Raspberry Pi Compute Module 5 Lite Rev 1.0' });
  const x = fitFacts(f, BUDGET)!;
  t.ok(metaBytes({ ...BASE, ...x }) <= MAX_META_BYTES, `${metaBytes({ ...BASE, ...x })} <= ${MAX_META_BYTES}`);
  const back = readFacts(x)!;
  t.same([back.rev, back.storage, back.arch, back.model], ['d04170', 'nvme', 'arm64', null], 'the largest metadata today carries what the labels need');
  t.equal(back.memMb, null, "a Pi's MemTotal goes first: its revision code says how much RAM it has");
  // Less room: the model first, then a Pi's MemTotal, then the other hardware facts, then the architecture.
  const kept = (budget: number) => {
    const r = readFacts(fitFacts(f, budget) ?? {});
    return r === null ? 'nothing' : [r.model, r.memMb, r.rev, r.arch].map((v) => (v === null ? 0 : 1)).join('');
  };
  const seen = new Set<string>();
  for (let b = 400; b >= 30; b--) seen.add(kept(b));
  t.same([...seen], ['1111', '0111', '0011', '0001', '0000', 'nothing'], 'model, MemTotal, hardware, arch, then nothing');
  const over: number[] = [];
  for (let b = 30; b <= 400; b++) {
    const y = fitFacts(f, b);
    if (y && metaBytes(y) - 2 > b) over.push(b);
  }
  t.same(over, [], 'never over the budget');
});
