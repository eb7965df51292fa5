import t from 'tap';
import type { HardwareFacts } from '../../../../agent/labels/labels-for.js';
import { countManaged, planLabels, type LabelledNode } from '../../../../agent/labels/planner.js';

const PI4_SD: HardwareFacts = { arch: 'arm64', rev: 'c03114', memMb: 3793, storage: 'sd', diskBps: 42e6 };
const PC: HardwareFacts = { arch: 'x64', rev: '', memMb: 15_890, storage: 'other', diskBps: 5e8 };
const PI4_LABELS = { 'piswarm.arch': 'arm64', 'piswarm.model': 'pi4', 'piswarm.memory_gb': '4', 'piswarm.storage': 'sd', 'piswarm.disk_speed': 'slow' };

const node = (id: string, labels: Record<string, string> = {}, version = 10): LabelledNode => ({ id, hostname: `host-${id}`, version, labels });
const facts = (entries: Record<string, HardwareFacts>) => new Map(Object.entries(entries));

t.test('a new node gets all its labels in one update, with the version it was listed at', async (t) => {
  const p = planLabels([node('n1', {}, 17)], facts({ n1: PI4_SD }));
  t.equal(p.updates.length, 1);
  t.match(p.updates[0], { nodeId: 'n1', hostname: 'host-n1', version: 17, labels: PI4_LABELS, set: PI4_LABELS, removed: [] });
});

t.test('labels already in step: no update (the node is settled)', async (t) => {
  const p = planLabels([node('n1', { ...PI4_LABELS, team: 'db' })], facts({ n1: PI4_SD }));
  t.same(p.updates, []);
  t.ok(p.settled.has('n1'));
});

t.test("a user's own labels and the autopilot's piswarm.* labels are copied unchanged", async (t) => {
  const own = { team: 'db', 'com.example.rack': '3', 'piswarm.autopilot-drained': 'true', 'piswarm.disk-bps': '1' };
  const p = planLabels([node('n1', { ...own, 'piswarm.storage': 'usb' })], facts({ n1: PI4_SD }));
  t.same(p.updates[0]!.labels, { ...own, ...PI4_LABELS });
  t.same(p.updates[0]!.set, { ...PI4_LABELS }, 'storage usb -> sd and the missing ones');
});

t.test('a fact that changes changes only its label, in one update of the whole map', async (t) => {
  const faster = { ...PI4_SD, storage: 'usb' as const, diskBps: 3.4e8 };
  const p = planLabels([node('n1', { ...PI4_LABELS, team: 'db' }, 42)], facts({ n1: faster }));
  t.equal(p.updates.length, 1);
  t.same(p.updates[0]!.set, { 'piswarm.storage': 'usb', 'piswarm.disk_speed': 'fast' });
  t.same(p.updates[0]!.labels, { ...PI4_LABELS, 'piswarm.storage': 'usb', 'piswarm.disk_speed': 'fast', team: 'db' });
  t.equal(p.updates[0]!.version, 42);
});

t.test('unknown facts: no label is added, and a stale one is kept', async (t) => {
  const unknown: HardwareFacts = { arch: 'arm64', rev: null, memMb: null, storage: null, diskBps: null };
  const p = planLabels([node('n1'), node('n2', PI4_LABELS)], facts({ n1: unknown, n2: unknown }));
  t.same(p.updates.map((u) => [u.nodeId, u.labels]), [['n1', { 'piswarm.arch': 'arm64' }]], 'only the known arch');
  t.ok(p.settled.has('n2'), 'an older agent that publishes less keeps the labels it had');
});

t.test('a fact known to be absent removes its label', async (t) => {
  const p = planLabels([node('n1', { ...PI4_LABELS, team: 'x' })], facts({ n1: PC }));
  t.same(p.updates[0]!.removed, ['piswarm.model'], 'the disk moved into a PC');
  t.same(p.updates[0]!.labels, { 'piswarm.arch': 'amd64', 'piswarm.memory_gb': '16', 'piswarm.storage': 'other', 'piswarm.disk_speed': 'fast', team: 'x' });
});

t.test('a node whose member gossip does not know is left alone', async (t) => {
  const p = planLabels([node('n1', { 'piswarm.storage': 'sd' }), node('n2')], facts({ n2: PC }));
  t.same(p.updates.map((u) => u.nodeId), ['n2']);
  t.notOk(p.settled.has('n1'));
});

t.test('labels change only when facts change: the same facts as last applied do nothing', async (t) => {
  const first = planLabels([node('n1', {}, 1)], facts({ n1: PI4_SD }));
  const applied = new Map([['n1', first.updates[0]!.desiredKey]]);
  // The next listing may still predate the update, or an operator removed a label by hand: no second update.
  t.same(planLabels([node('n1', {}, 1)], facts({ n1: PI4_SD }), applied).updates, []);
  t.same(planLabels([node('n1', { ...PI4_LABELS, 'piswarm.disk_speed': 'fast' }, 2)], facts({ n1: PI4_SD }), applied).updates, []);
  // A new fact: one new update.
  const moved = planLabels([node('n1', PI4_LABELS, 2)], facts({ n1: { ...PI4_SD, diskBps: 9e7 } }), applied);
  t.same(moved.updates.map((u) => [u.version, u.set]), [[2, { 'piswarm.disk_speed': 'medium' }]]);
  t.not(moved.updates[0]!.desiredKey, applied.get('n1'));
});

t.test('several nodes: one update each, none for the settled', async (t) => {
  const p = planLabels([node('a'), node('b', PI4_LABELS), node('c', { x: 'y' })], facts({ a: PI4_SD, b: PI4_SD, c: PC }));
  t.same(p.updates.map((u) => u.nodeId), ['a', 'c']);
  t.same([...p.settled.keys()], ['b']);
});

t.test('managed labels are counted, user labels not', async (t) => {
  t.equal(countManaged([node('a', { ...PI4_LABELS, team: 'db', 'piswarm.autopilot-drained': 'true' }), node('b', { 'piswarm.arch': 'amd64' })]), 6);
});
