import t from 'tap';
import { retransmitLimit, suspicionDeadline, suspicionTimeout } from '../../../../agent/membership/core.js';
import {
  HEADER_BYTES,
  MAC_BYTES,
  MAX_DATAGRAM_BYTES,
  MAX_PAYLOAD_BYTES,
  decodeMessage,
  deriveGossipKeys,
  encodeWithUpdates,
  open,
  seal,
} from '../../../../shared/wire/gossip.js';

const KEY = 'a-cluster-key-that-is-long-enough-0001';
const keys = deriveGossipKeys(KEY);
const ping = JSON.stringify({ t: 'p', s: 7, f: 'n1', n: 'n2' });

t.test('seal then open round-trips, and the layout is header + payload + 32-byte MAC', async (t) => {
  const d = seal(keys, ping)!;
  t.equal(d.length, HEADER_BYTES + Buffer.byteLength(ping) + MAC_BYTES);
  t.equal(d.subarray(0, 2).toString('latin1'), 'PG');
  const o = open(keys, d);
  t.same(o, { ok: true, payload: ping });
  t.same(decodeMessage(ping), { t: 'p', s: 7, f: 'n1', n: 'n2' });
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

  const v2 = Buffer.from(d);
  v2[2] = 2;
  t.same(open(keys, v2), { ok: false, reason: 'version' });
});

t.test('seal refuses a payload over the budget', async (t) => {
  t.equal(seal(keys, 'x'.repeat(MAX_PAYLOAD_BYTES + 1)), null);
  t.equal(seal(keys, 'x'.repeat(MAX_PAYLOAD_BYTES))!.length, MAX_DATAGRAM_BYTES);
});

t.test('decodeMessage accepts valid shapes and rejects everything else', async (t) => {
  t.ok(decodeMessage('{"t":"a","s":1,"f":"n1","u":[["a","n3",2,"10.0.0.3",7070,{"role":"manager"}],["s","n4",0,"n1"],["d","n5",1,"n2"],["l","n6",3]]}'));
  t.ok(decodeMessage('{"t":"r","s":1,"f":"n1","n":"n2","h":"10.0.0.2","o":7070}'));
  t.ok(decodeMessage('{"t":"y","s":1,"f":"n1","m":[["a","n1",0,"10.0.0.1",7070,{}]]}'));
  const bad = [
    'not json',
    'null',
    '[]',
    '{"t":"p","s":1,"f":"n1"}', // no target
    '{"t":"p","s":-1,"f":"n1","n":"n2"}',
    '{"t":"p","s":1.5,"f":"n1","n":"n2"}',
    '{"t":"z","s":1,"f":"n1"}',
    '{"t":"a","s":1,"f":"bad id with spaces"}',
    '{"t":"a","s":1,"f":"n1","u":[["a","n3",2,"10.0.0.3",70700,{}]]}', // port
    '{"t":"a","s":1,"f":"n1","u":[["a","n3",-1,"10.0.0.3",7070,{}]]}', // incarnation
    '{"t":"a","s":1,"f":"n1","u":[["a","n3",1,"10.0.0.3",7070,[]]]}', // meta not a record
    `{"t":"a","s":1,"f":"n1","u":[["a","n3",1,"10.0.0.3",7070,{"x":"${'y'.repeat(300)}"}]]}`, // meta too big
    '{"t":"a","s":1,"f":"n1","u":[["q","n3",1]]}',
    '{"t":"a","s":1,"f":"n1","u":[["l","n3"]]}',
    '{"t":"a","s":1,"f":"n1","u":{}}',
    '{"t":"r","s":1,"f":"n1","n":"n2","h":"10.0.0.2"}',
  ];
  for (const b of bad) t.equal(decodeMessage(b), null, b.slice(0, 60));
});

t.test('encodeWithUpdates never exceeds the budget and skips what does not fit', async (t) => {
  const big = { json: JSON.stringify(['a', 'n9', 1, '10.0.0.9', 7070, { x: 'y'.repeat(200) }]), bytes: 0 };
  big.bytes = Buffer.byteLength(big.json);
  const small = { json: '["l","n7",1]', bytes: 12 };
  const items = [big, big, big, big, big, big, small, big, small];
  const out = encodeWithUpdates({ t: 'g', f: 'n1' }, 'u', items)!;
  t.ok(Buffer.byteLength(out.payload) <= MAX_PAYLOAD_BYTES, `payload ${Buffer.byteLength(out.payload)} B`);
  t.ok(out.taken.includes(6) && out.taken.includes(8), 'small updates after a too-big one still go in');
  t.ok(out.taken.length < items.length);
  const msg = decodeMessage(out.payload);
  t.ok(msg && msg.t === 'g' && msg.u?.length === out.taken.length);
  t.same(encodeWithUpdates({ t: 'g', f: 'n1' }, 'u', []), { payload: '{"t":"g","f":"n1"}', taken: [] });
  t.equal(encodeWithUpdates({ t: 'g', f: 'x'.repeat(2000) }, 'u', []), null);
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
