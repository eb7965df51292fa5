import t from 'tap';
import { ADVERT_DROP_REASONS, TXT_MAX_BYTES, encodeAdvert, txtWireSize, verifyAdvert, type Advert } from '../../../../agent/discovery/advert.js';
import { AdvertBook, parseSeed, seedCandidates } from '../../../../agent/discovery/discovery.js';
import { deriveClusterKeys } from '../../../../agent/identity/keys.js';

const KEY = 'correct horse battery staple, 32+ characters long';
const keys = deriveClusterKeys(KEY);
const other = deriveClusterKeys('another cluster key that is 32+ characters');
const NOW = 1_800_000_000_000;
const base: Advert = { nodeId: 'a'.repeat(24), addr: '192.168.1.20', port: 7070, role: 'manager', swarmId: 'qwertyuiopasdfghjklzxcvbn', ts: NOW, seq: 4_000_000_000 };
const opts = { maxAgeMs: 600_000 };

t.test('round trip: a signed advert verifies and says what was published', async (t) => {
  const txt = encodeAdvert(keys, base);
  const v = verifyAdvert(keys, txt, NOW + 1000, opts);
  t.ok(v.ok);
  if (v.ok) t.same(v.advert, base);
  t.notOk(JSON.stringify(txt).includes(KEY), 'the cluster key is not in the record');
  t.not(txt.c, KEY.slice(0, 11));
});

t.test('TXT record stays within 200 bytes even with the longest IPv6 address and sequence', async (t) => {
  const worst = { ...base, addr: 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255'.slice(0, 45), seq: Number.MAX_SAFE_INTEGER, ts: 9_999_999_999_999, swarmId: 'z'.repeat(25) };
  const txt = encodeAdvert(keys, worst);
  t.ok(txtWireSize(txt) <= TXT_MAX_BYTES, `worst case is ${txtWireSize(txt)} bytes`);
  t.throws(() => encodeAdvert(keys, { ...base, swarmId: 'z'.repeat(120) }), RangeError, 'an oversized record is refused, not truncated');
});

t.test('rejections: each reason is distinguished', async (t) => {
  const txt = encodeAdvert(keys, base);
  const cases: Array<[string, unknown, string]> = [
    ['unsigned', { ...txt, g: undefined }, 'unsigned'],
    ['another cluster', encodeAdvert(other, base), 'wrong_cluster'],
    ['tampered address', { ...txt, a: '10.6.6.6' }, 'bad_signature'],
    ['tampered role', { ...txt, r: 'w' }, 'bad_signature'],
    ['tampered swarm', { ...txt, s: 'evilswarm' }, 'bad_signature'],
    ['signature truncated', { ...txt, g: txt.g!.slice(0, 10) }, 'bad_signature'],
    ['forged cluster id with our id but wrong key', { ...encodeAdvert(other, base), c: keys.clusterId }, 'bad_signature'],
    ['other protocol version', { ...txt, v: '2' }, 'version'],
    ['no version', { n: 'x' }, 'malformed'],
    ['not an object', 'hello', 'malformed'],
    ['null', null, 'malformed'],
  ];
  for (const [what, raw, reason] of cases) {
    const v = verifyAdvert(keys, raw, NOW, opts);
    t.equal(v.ok ? 'accepted' : v.reason, reason, what);
  }
  t.equal((verifyAdvert(keys, txt, NOW + 600_001, opts) as { reason: string }).reason, 'stale', 'too old');
  t.equal((verifyAdvert(keys, txt, NOW - 600_001, opts) as { reason: string }).reason, 'stale', 'from the future');
  t.equal((verifyAdvert(keys, txt, NOW, { ...opts, selfNodeId: base.nodeId }) as { reason: string }).reason, 'self');
  const malformedSigned = encodeAdvert(keys, { ...base, nodeId: 'NOT-HEX' });
  t.equal((verifyAdvert(keys, malformedSigned, NOW, opts) as { reason: string }).reason, 'malformed', 'signed but malformed node id');
});

t.test('Buffer values (bonjour binary TXT) are read like strings', async (t) => {
  const txt = encodeAdvert(keys, base);
  const asBuffers = Object.fromEntries(Object.entries(txt).map(([k, v]) => [k, Buffer.from(v)]));
  t.ok(verifyAdvert(keys, asBuffers, NOW, opts).ok);
});

t.test('AdvertBook: drops are counted by reason, never become candidates; foreign clusters are remembered', async (t) => {
  const book = new AdvertBook(keys, 'f'.repeat(24), 600_000);
  t.ok(book.ingest(encodeAdvert(keys, base), '192.168.1.20', NOW).ok);
  t.notOk(book.ingest(encodeAdvert(other, { ...base, nodeId: 'b'.repeat(24) }), '192.168.1.99', NOW).ok);
  t.notOk(book.ingest({ ...encodeAdvert(keys, { ...base, nodeId: 'c'.repeat(24) }), a: '6.6.6.6' }, '6.6.6.6', NOW).ok);
  t.notOk(book.ingest(encodeAdvert(keys, { ...base, ts: NOW - 10 }), '192.168.1.20', NOW).ok, 'older advert after newer is dropped');
  t.notOk(book.ingest(encodeAdvert(keys, { ...base, nodeId: 'f'.repeat(24) }), '192.168.1.1', NOW).ok, 'own advert');
  const c = book.candidates(NOW);
  t.equal(c.length, 1);
  t.equal(c[0]!.addr, '192.168.1.20', 'address from the signed TXT');
  const d = book.dropped();
  t.same(Object.keys(d).sort(), [...ADVERT_DROP_REASONS].sort());
  t.equal(d.wrong_cluster, 1);
  t.equal(d.bad_signature, 1);
  t.equal(d.stale, 1);
  t.equal(d.self, 0, 'own adverts are not counted as drops');
  t.same(book.foreign(NOW, 1000).map((f) => [f.clusterId, f.addr]), [[other.clusterId, '192.168.1.99']]);
  t.same(book.candidates(NOW + 600_001), [], 'candidates expire with their advert');
  book.ingest(encodeAdvert(keys, { ...base, ts: NOW + 5 }), '192.168.1.20', NOW);
  book.forget(base.nodeId);
  t.same(book.candidates(NOW), [], 'goodbye forgets');
});

t.test('another cluster\'s advert: what it can make /health show is bounded (a well-formed id or a hash, the 8 latest)', async (t) => {
  const book = new AdvertBook(keys, 'f'.repeat(24), 600_000);
  const forged = { ...encodeAdvert(other, { ...base, nodeId: 'b'.repeat(24) }), c: '<img src=x onerr' };
  book.ingest(forged, '192.168.1.66', NOW);
  const [f] = book.foreign(NOW, 1000);
  t.match(f!.clusterId, /^unverifiable-[0-9a-f]{12}$/, 'markup claimed as a cluster id is shown as its hash');
  t.notOk(JSON.stringify(book.foreign(NOW, 1000)).includes('<'), 'no markup anywhere');
  for (let i = 0; i < 40; i++) book.ingest({ ...encodeAdvert(other, base), c: `cluster${String(i).padStart(4, '0')}` }, `192.168.2.${i}`, NOW + i);
  const shown = book.foreign(NOW + 40, 1000);
  t.equal(shown.length, 8, 'at most 8 shown');
  t.equal(shown[0]!.addr, '192.168.2.39', 'the latest first');
  t.ok(shown.every((x) => /^[A-Za-z0-9_-]{11}$/.test(x.clusterId)), 'well-formed ids are shown as they are');
});

t.test('seeds', async (t) => {
  t.same(parseSeed('10.0.0.5', 7070), { addr: '10.0.0.5', port: 7070 });
  t.same(parseSeed('pi1.local:8080', 7070), { addr: 'pi1.local', port: 8080 });
  t.same(parseSeed('[fd00::1]:9000', 7070), { addr: 'fd00::1', port: 9000 });
  t.equal(parseSeed('a:b:c', 7070), null);
  t.equal(parseSeed('host:99999', 7070), null);
  t.same(seedCandidates(['10.0.0.5', 'bad:port:x'], 7070, 1).map((c) => c.key), ['seed:10.0.0.5:7070']);
});
