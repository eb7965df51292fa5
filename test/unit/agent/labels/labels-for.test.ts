import t from 'tap';
import { factsBySwarmNode, labelsFor, type HardwareFacts } from '../../../../agent/labels/labels-for.js';
import type { Member } from '../../../../agent/membership/types.js';

const UNKNOWN: HardwareFacts = { arch: null, rev: null, memMb: null, storage: null, diskBps: null };
const PI5_NVME: HardwareFacts = { arch: 'arm64', rev: 'd04170', memMb: 8052, storage: 'nvme', diskBps: 820_000_000 };

t.test('a Pi 5 with an NVMe drive: one value per key, written as a constraint compares it', async (t) => {
  t.same(labelsFor(PI5_NVME), {
    'piswarm.arch': 'arm64', 'piswarm.model': 'pi5', 'piswarm.memory_gb': '8', 'piswarm.storage': 'nvme', 'piswarm.disk_speed': 'fast',
  });
});

t.test('RAM: a Pi as sold (its code), anything else the total in whole GiB', async (t) => {
  t.equal(labelsFor({ ...UNKNOWN, rev: 'c03114', memMb: 3793 })['piswarm.memory_gb'], '4', 'MemTotal of a 4 GB Pi 4 is 3.7 GiB');
  t.equal(labelsFor({ ...UNKNOWN, rev: '902120', memMb: 427 })['piswarm.memory_gb'], '0.5', 'Zero 2 W');
  t.equal(labelsFor({ ...UNKNOWN, rev: '', memMb: 15_890 })['piswarm.memory_gb'], '16', 'a PC with 15.5 GiB visible');
  t.equal(labelsFor({ ...UNKNOWN, memMb: 3793 })['piswarm.memory_gb'], '4', 'a Pi whose code is unknown: rounded total');
  t.notOk('piswarm.memory_gb' in labelsFor({ ...UNKNOWN, rev: '', memMb: 400 }), 'less than half a GiB rounds to nothing: no label');
  t.notOk('piswarm.memory_gb' in labelsFor(UNKNOWN));
});

t.test('architecture in image-platform names', async (t) => {
  t.equal(labelsFor({ ...UNKNOWN, arch: 'x64' })['piswarm.arch'], 'amd64');
  t.equal(labelsFor({ ...UNKNOWN, arch: 'arm' })['piswarm.arch'], 'arm');
  t.notOk('piswarm.arch' in labelsFor({ ...UNKNOWN, arch: 'mips' }), 'an unmapped name is no label, not a made-up one');
});

t.test('model: known, known absent (not a Pi: remove) or unknown (leave)', async (t) => {
  t.equal(labelsFor({ ...UNKNOWN, rev: 'b03140' })['piswarm.model'], 'cm4');
  const notPi = labelsFor({ ...UNKNOWN, rev: '' });
  t.ok('piswarm.model' in notPi);
  t.equal(notPi['piswarm.model'], null, 'null: remove a stale one');
  t.notOk('piswarm.model' in labelsFor({ ...UNKNOWN, rev: 'c031f4' }), 'a code of a board newer than this table: leave it');
  t.notOk('piswarm.model' in labelsFor(UNKNOWN), 'an old peer that does not publish the code: leave it');
});

t.test('disk speed classes: slow < 50 MB/s <= medium < 200 MB/s <= fast', async (t) => {
  const speed = (bps: number | null) => labelsFor({ ...UNKNOWN, diskBps: bps })['piswarm.disk_speed'];
  t.equal(speed(42_000_000), 'slow', 'an SD card in a Pi 4');
  t.equal(speed(49_999_999), 'slow');
  t.equal(speed(50_000_000), 'medium');
  t.equal(speed(90_000_000), 'medium', 'a fast card in a Pi 5');
  t.equal(speed(200_000_000), 'fast');
  t.equal(speed(350_000_000), 'fast', 'a USB 3 SSD');
  t.equal(speed(null), undefined, 'never benchmarked: no label');
  t.equal(speed(0), undefined);
});

t.test('every fact unknown: nothing to set or remove', async (t) => {
  t.same(labelsFor(UNKNOWN), {});
});

const member = (id: string, meta: Record<string, unknown>, state: Member['state'] = 'alive'): Member =>
  ({ id, addr: '10.0.0.1', port: 7070, incarnation: 1, state, meta, stateChangedAt: 0, self: false });

t.test('facts by swarm node id from what members publish', async (t) => {
  // The facts array as fitFacts writes it: 12 figures, then revision code and storage letter, MemTotal.
  const x = [5, '0.2.0', 'p', [], 3, 40, 0.2, 0, 70, 100, 'arm64', 'Pi 5 r1.0', 'd04170n', 8052];
  const oldPeer = x.slice(0, 12);
  const m = factsBySwarmNode([
    member('a', { swarmNodeId: 'n1', diskBps: 820_000_000, x }),
    member('b', { swarmNodeId: 'n2', x: oldPeer }),
    member('c', { swarmNodeId: 'n3' }),
    member('d', { swarmNodeId: 'n4', x }, 'dead'),
    member('e', { x }),
    member('f', { swarmNodeId: 'n6', x }, 'suspect'),
  ]);
  t.same(m.get('n1'), PI5_NVME);
  t.same(m.get('n2'), { ...UNKNOWN, arch: 'arm64' }, 'an older agent: only what it publishes');
  t.same(m.get('n3'), UNKNOWN, 'no facts array (it did not fit): every fact unknown');
  t.notOk(m.has('n4'), 'a dead member is not known now');
  t.ok(m.has('n6'), 'a suspect member still is');
  t.same([...m.keys()].sort(), ['n1', 'n2', 'n3', 'n6'], 'a member without a swarm node id labels nothing');
});

t.test('a swarm node id two live members claim labels nothing', async (t) => {
  const m = factsBySwarmNode([member('a', { swarmNodeId: 'n1', diskBps: 1 }), member('b', { swarmNodeId: 'n1', diskBps: 9e8 }), member('c', { swarmNodeId: 'n1' }), member('d', { swarmNodeId: 'n2' })]);
  t.same([...m.keys()], ['n2']);
});
