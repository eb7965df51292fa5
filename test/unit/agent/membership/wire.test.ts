import t from 'tap';
import { createHmac, randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { retransmitLimit, suspicionDeadline, suspicionTimeout } from '../../../../agent/membership/core.js';
import {
  COMPRESS_FROM_BYTES,
  HEADER_BYTES,
  MAC_BYTES,
  MAX_DATAGRAM_BYTES,
  MAX_PAYLOAD_BYTES,
  decodeMessage,
  deriveGossipKeys,
  encodeMessage,
  encodeUpdate,
  encodeWithUpdates,
  open,
  seal,
  type GossipMessage,
} from '../../../../shared/wire/gossip.js';

const KEY = 'a-cluster-key-that-is-long-enough-0001';
const keys = deriveGossipKeys(KEY);
const ping = encodeMessage({ t: 'p', s: 7, f: 'n1', n: 'n2' });

t.test('seal then open round-trips, and the layout is header + payload + 16-byte MAC', async (t) => {
  const d = seal(keys, ping)!;
  t.equal(d.length, HEADER_BYTES + ping.length + MAC_BYTES);
  t.equal(d.subarray(0, 2).toString('latin1'), 'PG');
  t.equal(d[2], 2, 'wire version 2');
  const o = open(keys, d);
  t.ok(o.ok && o.payload.equals(ping));
  t.same(decodeMessage(ping), { t: 'p', s: 7, f: 'n1', n: 'n2' });
  const full = createHmac('sha256', keys.authKey).update(d.subarray(0, d.length - MAC_BYTES)).digest();
  t.ok(d.subarray(d.length - MAC_BYTES).equals(full.subarray(0, 16)), 'the MAC is HMAC-SHA256 truncated to its first 128 bits');
});

t.test('a ping and its ack are small: about half of memberlist\'s msgpack ping alone', async (t) => {
  const p = seal(keys, encodeMessage({ t: 'p', s: 123456, f: 'pi-node-17', n: 'pi-node-03' }))!;
  const a = seal(keys, encodeMessage({ t: 'a', s: 123456, f: 'pi-node-03' }))!;
  t.equal(p.length, 12 + 1 + 3 + 11 + 11 + 1 + 16, `ping ${p.length} B`);
  t.equal(a.length, 12 + 1 + 3 + 11 + 1 + 16, `ack ${a.length} B`);
});

t.test('every message and update kind round-trips', async (t) => {
  const msgs: GossipMessage[] = [
    { t: 'p', s: 0, f: 'n1', n: 'n2', u: [['a', 'n3', 2, '10.0.0.3', 7070, { role: 'manager', tempC: 41.5, ok: true }]] },
    { t: 'a', s: 0xffffffff, f: 'n1', u: [['s', 'n4', 0, 'n1'], ['d', 'n5', Number.MAX_SAFE_INTEGER, 'n2'], ['l', 'n6', 3]] },
    { t: 'n', s: 1, f: 'fe80::1%eth0' },
    { t: 'r', s: 1, f: 'n1', n: 'n2', h: '10.0.0.2', o: 65535 },
    { t: 'g', f: 'n1', u: [['l', 'n6', 128]] },
    { t: 'y', s: 9, f: 'n1', m: [['a', 'n1', 0, '10.0.0.1', 7070, {}]] },
    { t: 'Y', s: 9, f: 'n1' },
  ];
  for (const m of msgs) t.same(decodeMessage(encodeMessage(m)), m, m.t);
});

t.test('keys are derived deterministically and differ per cluster key', async (t) => {
  const again = deriveGossipKeys(KEY);
  t.ok(again.authKey.equals(keys.authKey));
  t.ok(again.tag.equals(keys.tag));
  const other = deriveGossipKeys('another-cluster-key-that-is-long-0002');
  t.notOk(other.authKey.equals(keys.authKey));
  t.notOk(other.tag.equals(keys.tag));
  t.notOk(keys.tag.equals(keys.authKey.subarray(0, 8)), 'the public tag is not a prefix of the secret key');
});

t.test('rejections: wrong key, tampering, truncation, oversize, garbage, version', async (t) => {
  const d = seal(keys, ping)!;
  t.same(open(deriveGossipKeys('another-cluster-key-that-is-long-0002'), d), { ok: false, reason: 'wrongCluster' });

  const tamperedPayload = Buffer.from(d);
  tamperedPayload[HEADER_BYTES + 3]! ^= 1;
  t.same(open(keys, tamperedPayload), { ok: false, reason: 'auth' });

  const tamperedMac = Buffer.from(d);
  tamperedMac[tamperedMac.length - 1]! ^= 0x80;
  t.same(open(keys, tamperedMac), { ok: false, reason: 'auth' });

  t.same(open(keys, d.subarray(0, d.length - 1)), { ok: false, reason: 'auth' }, 'one byte short: MAC misaligned');
  t.same(open(keys, d.subarray(0, 20)), { ok: false, reason: 'truncated' });
  t.same(open(keys, new Uint8Array(0)), { ok: false, reason: 'truncated' });
  t.same(open(keys, Buffer.alloc(MAX_DATAGRAM_BYTES + 1, 0x41)), { ok: false, reason: 'oversize' });
  t.same(open(keys, Buffer.from('this is not a gossip datagram at all, just text')), { ok: false, reason: 'malformed' });

  const v3 = Buffer.from(d);
  v3[2] = 3;
  t.same(open(keys, v3), { ok: false, reason: 'version' });
});

t.test('a version-1 datagram (JSON payload, 32-byte MAC) is refused as version, never misread', async (t) => {
  const json = Buffer.from(JSON.stringify({ t: 'p', s: 7, f: 'n1', n: 'n2' }));
  const v1 = Buffer.concat([Buffer.from('PG'), Buffer.from([1, 0]), keys.tag, json]);
  const mac = createHmac('sha256', keys.authKey).update(v1).digest();
  t.same(open(keys, Buffer.concat([v1, mac])), { ok: false, reason: 'version' });
});

t.test('a large payload travels deflated when that is smaller; bad deflate and bombs are refused', async (t) => {
  const state = encodeMessage({ t: 'y', s: 1, f: 'pi-01', m: Array.from({ length: 15 }, (_, i) => ['a', `pi-${String(i + 1).padStart(2, '0')}`, 3, `10.0.0.${i + 1}`, 7070, { hostname: `pi-${i + 1}`, role: 'worker' }] as const) });
  t.ok(state.length >= COMPRESS_FROM_BYTES, `state payload ${state.length} B`);
  const d = seal(keys, state)!;
  t.equal(d[3], 1, 'flag 0x01: deflated');
  t.ok(d.length < HEADER_BYTES + state.length + MAC_BYTES, `${state.length} B payload sent as ${d.length} B`);
  const o = open(keys, d);
  t.ok(o.ok && o.payload.equals(state), 'inflated back to the same bytes');
  t.equal(seal(keys, ping)![3], 0, 'a small payload is sent as it is');
  const random = randomBytes(400);
  t.ok(open(keys, seal(keys, random)!).ok, 'an incompressible payload goes plain and opens');

  const sealRaw = (flags: number, body: Buffer) => {
    const head = Buffer.concat([Buffer.from('PG'), Buffer.from([2, flags]), keys.tag, body]);
    return Buffer.concat([head, createHmac('sha256', keys.authKey).update(head).digest().subarray(0, MAC_BYTES)]);
  };
  t.same(open(keys, sealRaw(1, Buffer.from('not deflate at all, but authentic'))), { ok: false, reason: 'malformed' });
  t.same(open(keys, sealRaw(1, deflateRawSync(Buffer.alloc(MAX_PAYLOAD_BYTES + 1)))), { ok: false, reason: 'malformed' }, 'inflating past the budget stops');
  t.same(open(keys, sealRaw(2, ping)), { ok: false, reason: 'version' }, 'an unknown flag');
  t.ok(open(keys, sealRaw(1, deflateRawSync(ping))).ok, 'the hand-sealed frame is valid as built');
});

t.test('seal refuses a payload over the budget', async (t) => {
  t.equal(seal(keys, Buffer.alloc(MAX_PAYLOAD_BYTES + 1)), null);
  const incompressible = randomBytes(MAX_PAYLOAD_BYTES);
  t.equal(seal(keys, incompressible)!.length, MAX_DATAGRAM_BYTES);
});

t.test('decodeMessage rejects everything that is not one whole valid message', async (t) => {
  const good = encodeMessage({ t: 'a', s: 1, f: 'n1', u: [['a', 'n3', 2, '10.0.0.3', 7070, { role: 'manager' }]] });
  const patch = (at: number, v: number) => {
    const b = Buffer.from(good);
    b[at] = v;
    return b;
  };
  const withMeta = (meta: string) => {
    const m = Buffer.from(meta);
    const head = encodeMessage({ t: 'a', s: 1, f: 'n1' }).subarray(0, -1); // without its count
    const u = Buffer.concat([Buffer.from([0x61, 2, 0x6e, 0x33, 2, 8]), Buffer.from('10.0.0.3'), Buffer.from([0x1b, 0x9e, m.length]), m]);
    return Buffer.concat([head, Buffer.from([1]), u]);
  };
  t.ok(decodeMessage(withMeta('{"role":"manager"}')), 'the hand-built message is valid as built');
  const bad: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['unknown type', patch(0, 0x7a)],
    ['cut short', good.subarray(0, good.length - 1)],
    ['trailing byte', Buffer.concat([good, Buffer.from([0])])],
    ['bad id', encodeMessage({ t: 'a', s: 1, f: 'bad id' })],
    ['port 0', encodeMessage({ t: 'r', s: 1, f: 'n1', n: 'n2', h: '10.0.0.2', o: 0 })],
    ['seq over 32 bits', encodeMessage({ t: 'a', s: 2 ** 32, f: 'n1' })],
    ['meta not JSON', withMeta('{"role":')],
    ['meta not a record', withMeta('[1,2]')],
    ['unknown update kind', Buffer.concat([encodeMessage({ t: 'g', f: 'n1' }).subarray(0, -1), Buffer.from([1, 0x71, 2, 0x6e, 0x33, 1])])],
    ['count over 256', Buffer.concat([encodeMessage({ t: 'g', f: 'n1' }).subarray(0, -1), Buffer.from([0x81, 0x02])])],
    ['endless varint', Buffer.concat([Buffer.from([0x61]), Buffer.alloc(9, 0xff)])],
  ];
  for (const [why, b] of bad) t.equal(decodeMessage(b), null, why);
  t.throws(() => encodeMessage({ t: 'a', s: -1, f: 'n1' }), RangeError, 'the encoder refuses what it cannot represent');
});

t.test('encodeWithUpdates never exceeds the budget and skips what does not fit', async (t) => {
  const enc = (u: Parameters<typeof encodeUpdate>[0]) => {
    const bin = encodeUpdate(u);
    return { bin, bytes: bin.length };
  };
  const big = enc(['a', 'n9', 1, '10.0.0.9', 7070, { x: 'y'.repeat(240) }]);
  const small = enc(['l', 'n7', 1]);
  const items = [big, big, big, big, big, big, small, big, small];
  const out = encodeWithUpdates({ t: 'g', f: 'n1' }, items)!;
  t.ok(out.payload.length <= MAX_PAYLOAD_BYTES, `payload ${out.payload.length} B`);
  t.ok(out.taken.includes(6) && out.taken.includes(8), 'small updates after a too-big one still go in');
  t.ok(out.taken.length < items.length);
  const msg = decodeMessage(out.payload);
  t.ok(msg && msg.t === 'g' && msg.u?.length === out.taken.length);
  t.same(decodeMessage(encodeWithUpdates({ t: 'g', f: 'n1' }, [])!.payload), { t: 'g', f: 'n1' });
  t.equal(encodeWithUpdates({ t: 'g', f: 'n1' }, [], 3), null, 'a head that does not fit');
});

t.test('timeouts follow memberlist and Lifeguard', async (t) => {
  t.equal(suspicionTimeout(4, 1, 1000), 4000, 'small clusters: at least mult * interval');
  t.equal(suspicionTimeout(4, 10, 1000), 4000);
  t.equal(suspicionTimeout(4, 100, 1000), 8000);
  t.equal(suspicionTimeout(4, 1000, 1000), 12000);
  t.equal(retransmitLimit(4, 9), 4);
  t.equal(retransmitLimit(4, 10), 8);
  t.equal(retransmitLimit(4, 1000), 16);
  t.equal(suspicionDeadline(0, 2, 4000, 24000), 24000, 'no confirmation: max');
  t.equal(suspicionDeadline(2, 2, 4000, 24000), 4000, 'all expected confirmations: min');
  const mid = suspicionDeadline(1, 2, 4000, 24000);
  t.ok(mid > 4000 && mid < 24000, `one confirmation: ${mid}`);
  t.equal(suspicionDeadline(0, 0, 4000, 24000), 4000, 'nobody to confirm: min');
});
