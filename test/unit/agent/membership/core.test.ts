import { createHmac } from 'node:crypto';
import t from 'tap';
import { seededRandom } from '../../../../agent/membership/clock.js';
import { createMembership, parseSeed } from '../../../../agent/membership/membership.js';
import { DEFAULT_SIM_CONFIG, SimCluster } from '../../../../agent/membership/sim/cluster.js';
import { VirtualClock } from '../../../../agent/membership/sim/virtual-clock.js';
import { isPiswarmError } from '../../../../shared/errors.js';
import { MAX_DATAGRAM_BYTES, MAX_PAYLOAD_BYTES, deriveGossipKeys, encodeMessage, seal, type Update } from '../../../../shared/wire/gossip.js';
import { CaptureTransport, KEY, ackPings, addrOf, harness, silent } from './harness.js';

const hasUpdate = (u: readonly Update[] | undefined, pred: (x: Update) => boolean) => (u ?? []).some(pred);

t.test('probe/ack: pings members round-robin, records RTT, suspects nobody', async (t) => {
  const h = harness(['n1', 'n2', 'n3']);
  ackPings(h, () => true);
  const rtts: number[] = [];
  h.m.on('rtt', (ms) => rtts.push(ms));
  h.clock.runFor(9_000);
  const pings = h.sentOf('p');
  t.ok(pings.length >= 8 && pings.length <= 10, `${pings.length} probes in 9 s at 1/s`);
  const firstRound = pings.slice(0, 3).map((p) => (p.msg.t === 'p' ? p.msg.n : '')).sort();
  t.same(firstRound, ['n1', 'n2', 'n3'], 'each member once per round');
  for (const p of pings) t.same(p.to, addrOf(p.msg.t === 'p' ? p.msg.n : ''), 'sent to the target address');
  const st = h.m.stats();
  t.equal(st.acksReceived, st.probesSent);
  t.equal(st.rtt.count, st.probesSent);
  t.ok(rtts.length === st.probesSent && rtts.every((r) => r === 2), 'rtt events carry the 2 ms round trip');
  t.equal(h.sentOf('r').length, 0, 'no indirect probe needed');
  t.same(h.events.filter((e) => e.type !== 'joined'), []);
});

t.test('answers a ping with an ack to the sender, ignores one meant for someone else', async (t) => {
  const h = harness(['n1', 'n2'], { start: false });
  h.m.start();
  h.deliver('n1', { t: 'p', s: 99, n: 'n0' });
  const ack = h.sentOf('a');
  t.equal(ack.length, 1);
  t.same(ack[0]!.to, addrOf('n1'));
  t.match(ack[0]!.msg, { t: 'a', s: 99, f: 'n0' });
  h.deliver('n1', { t: 'p', s: 100, n: 'n7' });
  t.equal(h.sentOf('a').length, 1, 'no ack for a ping addressed to another node id');
  t.equal(h.m.stats().dropped.misdirected, 1);
});

t.test('indirect probe: a member that only relays answer reach is not suspected', async (t) => {
  const h = harness(['n1', 'n2', 'n3', 'n4']);
  h.transport.respond = (s) => {
    if (s.msg.t === 'p' && s.msg.n !== 'n1') h.deliver(s.msg.n, { t: 'a', s: s.msg.s }, 2);
    // The relays can reach n1 (the path from n0 to n1 is broken).
    if (s.msg.t === 'r') h.deliver(s.msg.f === 'n0' ? idOf(s.to) : 'n9', { t: 'a', s: s.msg.s }, 6);
  };
  const idOf = (a: { addr: string }) => `n${a.addr.split('.')[3]}`;
  h.clock.runFor(20_000);
  const reqs = h.sentOf('r');
  t.ok(reqs.length >= 3, `${reqs.length} ping-reqs`);
  for (const r of reqs) {
    t.match(r.msg, { t: 'r', n: 'n1', h: '10.0.0.1', o: 7070 });
    t.not(idOf(r.to), 'n1', 'the target is not its own relay');
  }
  const first = reqs[0]!;
  const ping = h.sentOf('p').find((p) => p.msg.t === 'p' && first.msg.t === 'r' && p.msg.s === first.msg.s)!;
  t.equal(first.at - ping.at, 500, 'indirect probes start at the probe timeout');
  t.same(h.events, [], 'n1 never suspected');
  t.equal(h.m.stats().indirectProbesSent, reqs.length);
});

t.test('failed probe -> suspect -> dead after the unconfirmed (max) suspicion timeout', async (t) => {
  const h = harness(['n1', 'n2', 'n3', 'n4']);
  h.transport.respond = (s) => {
    if (s.msg.t === 'p' && s.msg.n !== 'n1') h.deliver(s.msg.n, { t: 'a', s: s.msg.s }, 2);
    if (s.msg.t === 'r') h.deliver('n2', { t: 'n', s: s.msg.s }, 6); // relays nack: they are fine, n1 is not
  };
  h.clock.runFor(60_000);
  const sus = h.events.find((e) => e.type === 'suspect' && e.member.id === 'n1');
  const dead = h.events.find((e) => e.type === 'dead' && e.member.id === 'n1');
  t.ok(sus && dead, 'suspected, then declared dead');
  // n = 5 members: min = 4 * max(1, log10 5) * 1 s = 4 s, max = 6 * min = 24 s; nobody confirmed.
  t.equal(dead!.member.stateChangedAt - sus!.member.stateChangedAt, 24_000);
  t.equal(h.m.member('n1')?.state, 'dead');
  const st = h.m.stats();
  t.equal(st.suspicionsRaised, 1);
  t.equal(st.deathsDeclared, 1);
  t.equal(st.healthScore, 0, 'every expected nack arrived: local health untouched');
  const pingsAfter = h.sentOf('p').filter((p) => p.at > dead!.member.stateChangedAt && p.msg.t === 'p' && p.msg.n === 'n1');
  t.equal(pingsAfter.length, 0, 'dead members are not probed');
});

t.test('independent confirmations shorten the suspicion to the minimum (Lifeguard)', async (t) => {
  const h = harness(['n1', 'n2', 'n3', 'n4']);
  ackPings(h, (id) => id !== 'n1');
  let at = -1;
  let score = -1;
  h.m.on('suspect', (ev) => {
    if (ev.member.id !== 'n1') return;
    at = h.clock.now();
    score = h.m.stats().healthScore;
    h.deliver('n2', { t: 'g', u: [['s', 'n1', 0, 'n2']] }, 100);
    h.deliver('n3', { t: 'g', u: [['s', 'n1', 0, 'n3']] }, 200);
  });
  h.clock.runFor(30_000);
  const dead = h.events.find((e) => e.type === 'dead' && e.member.id === 'n1');
  t.ok(at >= 0 && dead);
  t.equal(dead!.member.stateChangedAt - at, 4_000, 'k = 2 confirmations: min timeout');
  t.equal(score, 3, 'none of the 3 expected nacks came back: our own health score rose by 3');
  t.equal(h.m.stats().healthScore, 0, 'and healed with later successful probes');
});

t.test('suspicion of self is refuted with a higher incarnation, carried on the next message', async (t) => {
  const h = harness(['n1', 'n2']);
  h.deliver('n1', { t: 'g', u: [['s', 'n0', 0, 'n1']] });
  const st = h.m.stats();
  t.equal(st.incarnation, 1);
  t.equal(st.refutations, 1);
  t.equal(st.healthScore, 1, 'being suspected lowers our own health (Lifeguard)');
  h.deliver('n2', { t: 'p', s: 5, n: 'n0' });
  const ack = h.sentOf('a').at(-1)!;
  t.ok(hasUpdate(ack.msg.t === 'a' ? ack.msg.u : [], (u) => u[0] === 'a' && u[1] === 'n0' && u[2] === 1), 'the ack carries alive n0@1');
  h.deliver('n1', { t: 'g', u: [['d', 'n0', 3, 'n1']] });
  t.equal(h.m.stats().incarnation, 4, 'a death certificate at 3 is out-bid with 4');
  t.equal(h.m.member('n0')?.state, 'alive');
});

t.test('buddy system: a ping to a suspect carries the suspicion', async (t) => {
  const h2 = harness(['n1', 'n2', 'n3']);
  ackPings(h2, () => true);
  h2.deliver('n2', { t: 'g', u: [['s', 'n1', 0, 'n2']] });
  h2.clock.runFor(4_000);
  const toN1 = h2.sentOf('p').filter((p) => p.msg.t === 'p' && p.msg.n === 'n1');
  t.ok(toN1.length > 0);
  t.ok(toN1.every((p) => p.msg.t === 'p' && hasUpdate(p.msg.u, (u) => u[0] === 's' && u[1] === 'n1')), 'each ping to n1 tells it it is suspected');
});

t.test('a suspect that refutes is alive again; dead then alive again rejoins', async (t) => {
  const h = harness(['n1', 'n2', 'n3']);
  ackPings(h, () => true);
  h.deliver('n2', { t: 'g', u: [['s', 'n1', 0, 'n2']] });
  t.equal(h.m.member('n1')?.state, 'suspect');
  h.deliver('n1', { t: 'g', u: [['a', 'n1', 0, '10.0.0.1', 7070, { role: 'worker' }]] });
  t.equal(h.m.member('n1')?.state, 'suspect', 'same incarnation does not clear a suspicion');
  h.deliver('n1', { t: 'g', u: [['a', 'n1', 1, '10.0.0.1', 7070, { role: 'worker' }]] });
  t.equal(h.m.member('n1')?.state, 'alive');
  h.clock.runFor(40_000);
  t.notOk(h.events.some((e) => e.type === 'dead'), 'the cancelled suspicion never fires');
  h.deliver('n3', { t: 'g', u: [['d', 'n2', 0, 'n3']] });
  t.equal(h.m.member('n2')?.state, 'dead');
  h.deliver('n2', { t: 'g', u: [['a', 'n2', 1, '10.0.0.2', 7070, { role: 'worker' }]] });
  t.same(
    h.events.map((e) => `${e.type}:${e.member.id}:${e.previous}`),
    ['suspect:n1:alive', 'alive:n1:suspect', 'dead:n2:alive', 'joined:n2:dead'],
  );
});

t.test('leave: others learn "left"; our own leave is broadcast and probing stops', async (t) => {
  const h = harness(['n1', 'n2', 'n3']);
  ackPings(h, () => true);
  h.deliver('n3', { t: 'g', u: [['l', 'n3', 1]] });
  t.equal(h.m.member('n3')?.state, 'left');
  t.same(h.events.map((e) => e.type), ['left']);
  h.clock.runFor(2_000);
  const before = h.transport.sent.length;
  const done = h.m.leave();
  h.clock.runFor(5_000);
  await done;
  const after = h.transport.sent.slice(before);
  const carriers = after.filter((s) => 'u' in s.msg && hasUpdate(s.msg.u, (u) => u[0] === 'l' && u[1] === 'n0' && u[2] === 1));
  t.ok(carriers.length >= 2, `left@1 sent ${carriers.length} times`);
  t.equal(after.filter((s) => s.msg.t === 'p').length, 0, 'no probes after leaving');
  t.equal(h.m.member('n0')?.state, 'left');
  h.deliver('n1', { t: 'g', u: [['s', 'n0', 1, 'n1']] });
  t.equal(h.m.stats().refutations, 0, 'a leaving node does not refute');
});

t.test('meta updates: bump the incarnation, piggyback a bounded number of times, and are applied', async (t) => {
  const h = harness(['n1', 'n2', 'n3', 'n4']);
  ackPings(h, () => true);
  h.clock.runFor(10_000); // the start-up self-announcement retires first
  h.m.updateMeta({ role: 'manager', health: 0.9 });
  t.equal(h.m.stats().incarnation, 1);
  h.clock.runFor(20_000);
  const carriers = h.transport.sent.filter((s) => 'u' in s.msg && hasUpdate(s.msg.u, (u) => u[0] === 'a' && u[1] === 'n0' && u[2] === 1));
  // retransmitMult 5 * ceil(log10(5 + 1)) = 5
  t.equal(carriers.length, 5, 'sent exactly retransmitLimit times');
  t.same(h.m.member('n0')?.meta, { role: 'manager', health: 0.9 });

  h.deliver('n2', { t: 'g', u: [['a', 'n2', 1, '10.0.0.2', 7070, { role: 'manager' }]] });
  h.deliver('n2', { t: 'g', u: [['a', 'n2', 1, '10.0.0.2', 7070, { role: 'manager' }]] });
  h.deliver('n2', { t: 'g', u: [['a', 'n2', 0, '10.0.0.2', 7070, { role: 'stale' }]] });
  t.same(h.m.member('n2')?.meta, { role: 'manager' });
  t.same(h.events.map((e) => `${e.type}:${e.member.id}`), ['updated:n2'], 'one event; duplicates and stale updates ignored');
  t.throws(() => h.m.updateMeta({ blob: 'x'.repeat(300) }), { code: 'PISWARM_ERR_GOSSIP_META_TOO_LARGE' });
  t.equal(h.m.stats().incarnation, 1, 'a refused update changes nothing');
});

t.test('piggyback dissemination: a member learned from one peer is passed on', async (t) => {
  const h = harness(['n1', 'n2', 'n3']);
  ackPings(h, () => true);
  h.deliver('n1', { t: 'g', u: [['a', 'n7', 0, '10.0.0.7', 7070, { role: 'worker' }]] });
  t.equal(h.events[0]?.type, 'joined');
  h.clock.runFor(3_000);
  const forwarded = h.transport.sent.filter((s) => 'u' in s.msg && hasUpdate(s.msg.u, (u) => u[0] === 'a' && u[1] === 'n7'));
  t.ok(forwarded.length >= 2, `forwarded ${forwarded.length} times`);
  t.ok(new Set(forwarded.map((f) => f.to.addr)).size >= 2, 'to more than one member');
  t.ok(h.sentOf('g').length > 0, 'by gossip rounds as well as on probes');
});

t.test('bad datagrams are dropped and counted; nothing changes, nothing is answered', async (t) => {
  const h = harness(['n1', 'n2']);
  const ping = encodeMessage({ t: 'g', f: 'n1', u: [['d', 'n2', 5, 'n1'], ['s', 'n0', 0, 'n1']] });
  const wrongKey = seal(deriveGossipKeys('some-other-cluster-key-0123456789abc'), ping)!;
  const good = seal(deriveGossipKeys(KEY), ping)!;
  const tampered = Buffer.from(good);
  tampered[20]! ^= 0x01;
  const oversize = Buffer.concat([good, Buffer.alloc(MAX_DATAGRAM_BYTES)]);
  const badPayload = seal(deriveGossipKeys(KEY), ping.subarray(0, ping.length - 3))!; // authentic, but cut inside an update
  const inputs = [wrongKey, tampered, good.subarray(0, 20), good.subarray(0, good.length - 5), oversize, Buffer.from('GET / HTTP/1.1\r\nHost: 10.0.0.0:7070\r\nAccept: */*\r\n\r\n'), new Uint8Array(0), badPayload];
  for (const d of inputs) h.deliverRaw(d);
  const st = h.m.stats();
  t.same(st.dropped, { oversize: 1, truncated: 2, version: 0, wrongCluster: 1, auth: 2, malformed: 2, misdirected: 0, unsendable: 0, rateLimited: 0 });
  t.equal(st.messagesReceived, 0);
  t.equal(st.incarnation, 0, 'no forged suspicion got through');
  t.equal(h.m.member('n2')?.state, 'alive');
  t.same(h.events, []);
  t.equal(h.transport.sent.length, 0, 'nothing answered');
});

t.test('a node of the old wire version is refused as version, said once per sender, never misread', async (t) => {
  const warned: Array<Record<string, unknown>> = [];
  const fail = (level: string) => () => {
    throw new Error(`unexpected ${level} log`);
  };
  const log = { debug: () => undefined, info: fail('info'), error: fail('error'), warn: (o: Record<string, unknown>) => void warned.push(o) };
  const h = harness(['n1', 'n2'], { log });
  const keys = deriveGossipKeys(KEY);
  // Version 1 as it was: JSON payload, 32-byte HMAC-SHA256.
  const head = Buffer.concat([Buffer.from('PG'), Buffer.from([1, 0]), keys.tag, Buffer.from(JSON.stringify({ t: 'g', f: 'n1', u: [['d', 'n2', 5, 'n1']] }))]);
  const v1 = Buffer.concat([head, createHmac('sha256', keys.authKey).update(head).digest()]);
  h.deliverRaw(v1);
  h.deliverRaw(v1);
  h.deliverRaw(v1, addrOf('n2'));
  t.equal(h.m.stats().dropped.version, 3);
  t.equal(h.m.member('n2')?.state, 'alive', 'its update was not read');
  t.same(warned.map((w) => [w.peer, w.code, w.theirs, w.ours]), [['10.0.0.1:7070', 'PISWARM_ERR_GOSSIP_VERSION', 1, 2], ['10.0.0.2:7070', 'PISWARM_ERR_GOSSIP_VERSION', 1, 2]]);
});

t.test('every datagram fits the budget, however much is queued', async (t) => {
  const peers = Array.from({ length: 40 }, (_, i) => `n${i + 1}`);
  const h = harness(peers);
  ackPings(h, () => true);
  const fat = { role: 'manager', note: 'z'.repeat(200) };
  for (const id of peers) h.deliver(id, { t: 'g', u: [['a', id, 1, addrOf(id).addr, 7070, fat]] });
  h.deliver('n1', { t: 'y', s: 1, m: [] }); // a full-state answer: 41 fat entries, several datagrams
  h.clock.runFor(10_000);
  const max = Math.max(...h.transport.sent.map((s) => s.bytes));
  t.ok(max <= MAX_DATAGRAM_BYTES, `largest datagram ${max} B`);
  const fullest = Math.max(...h.transport.sent.map((s) => s.payloadBytes));
  t.ok(fullest > 1000 && fullest <= MAX_PAYLOAD_BYTES, `piggyback fills the payload budget (${fullest} B before compression)`);
  const chunks = h.sentOf('Y');
  t.ok(chunks.length >= 5, `full state split into ${chunks.length} datagrams`);
  const ids = new Set(chunks.flatMap((c) => (c.msg.t === 'Y' ? (c.msg.m ?? []).map((u) => u[1]) : [])));
  t.equal(ids.size, 41, 'every member (and self) in the state transfer');
});

t.test('relay: forwards the ack of an indirect probe, or a nack after the timeout', async (t) => {
  const h = harness(['n1', 'n2', 'n3']);
  h.deliver('n1', { t: 'r', s: 77, n: 'n2', h: '10.0.0.2', o: 7070 });
  const fwd = h.sentOf('p').at(-1)!;
  t.match(fwd.msg, { t: 'p', n: 'n2' });
  t.same(fwd.to, addrOf('n2'));
  h.deliver('n2', { t: 'a', s: fwd.msg.t === 'p' ? fwd.msg.s : -1 });
  t.match(h.sentOf('a').at(-1), { to: addrOf('n1'), msg: { t: 'a', s: 77 } });
  h.deliver('n1', { t: 'r', s: 78, n: 'n3', h: '10.0.0.3', o: 7070 });
  h.clock.runFor(600);
  t.match(h.sentOf('n').at(-1), { to: addrOf('n1'), msg: { t: 'n', s: 78 } });
  t.equal(h.m.stats().nacksSent, 1);
});

t.test('join over push/pull converges a cluster started from one seed', async (t) => {
  const c = new SimCluster({ n: 12, seed: 3, bootstrap: 'join', tuning: { pushPullIntervalMs: 1e9 } });
  const t0 = c.runUntil(() => c.nodes.every((nd) => nd.membership.members().filter((m) => m.state === 'alive').length === 12), 10_000);
  t.ok(t0 !== null, `converged at ${t0} ms`);
  const seed = c.nodes[0]!.membership.stats();
  t.ok(seed.messagesReceived > 0);
  c.runFor(1_000); // past the per-address limit on full-state answers
  const r = await (async () => {
    const p = c.nodes[5]!.membership.join(['10.0.0.0', '10.0.0.1:7070', 'not a host', { addr: '10.0.0.2', port: 99999 }]);
    c.runFor(3_100); // the join deadline, so the promise settles either way
    return p;
  })();
  t.same(r, { contacted: 2, responded: 2, invalid: ['not a host', '10.0.0.2:99999'] });
});

t.test('createMembership refuses bad arguments with coded errors', async (t) => {
  const clock = new VirtualClock();
  const base = {
    config: { ...DEFAULT_SIM_CONFIG },
    clusterKey: KEY,
    self: { id: 'n0', addr: '10.0.0.0', port: 7070 },
    transport: new CaptureTransport(clock),
    clock,
    random: seededRandom(1),
    log: silent,
  };
  t.ok(createMembership(base));
  const code = (fn: () => unknown) => {
    try {
      fn();
      return 'no error';
    } catch (e) {
      return isPiswarmError(e) ? e.code : 'not coded';
    }
  };
  t.equal(code(() => createMembership({ ...base, self: { ...base.self, id: 'bad id' } })), 'PISWARM_ERR_GOSSIP_BAD_ADDRESS');
  t.equal(code(() => createMembership({ ...base, self: { ...base.self, port: 0 } })), 'PISWARM_ERR_GOSSIP_BAD_ADDRESS');
  t.equal(code(() => createMembership({ ...base, config: { ...base.config, probeTimeoutMs: 1000 } })), 'PISWARM_ERR_CONFIG_INVALID');
  t.equal(code(() => createMembership({ ...base, self: { ...base.self, meta: { x: 'y'.repeat(400) } } })), 'PISWARM_ERR_GOSSIP_META_TOO_LARGE');
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  t.equal(code(() => createMembership({ ...base, self: { ...base.self, meta: cyclic } })), 'PISWARM_ERR_GOSSIP_META_TOO_LARGE');
  t.same(parseSeed('10.1.2.3', 7070), { addr: '10.1.2.3', port: 7070 });
  t.same(parseSeed('pi-1.local:7071', 7070), { addr: 'pi-1.local', port: 7071 });
  t.same(parseSeed('[fe80::1]:7072', 7070), { addr: 'fe80::1', port: 7072 });
  t.equal(parseSeed('host:port', 7070), null);
  t.equal(parseSeed('', 7070), null);
});

t.test('a throwing listener is logged and does not break the protocol', async (t) => {
  const errors: string[] = [];
  const h = harness(['n1', 'n2']);
  const m2 = createMembership({
    config: { ...DEFAULT_SIM_CONFIG },
    clusterKey: KEY,
    self: { id: 'n0', addr: '10.0.0.0', port: 7070 },
    transport: h.transport, // takes over the handler of the harness transport
    clock: h.clock,
    random: seededRandom(2),
    log: { ...silent, error: (_o, msg) => errors.push(msg) },
  });
  m2.installSnapshot([{ id: 'n1', ...addrOf('n1'), incarnation: 0, state: 'alive', meta: {} }]);
  m2.start();
  m2.on('dead', () => {
    throw new Error('listener bug');
  });
  h.deliver('n1', { t: 'g', u: [['d', 'n1', 0, 'n1'], ['a', 'n5', 0, '10.0.0.5', 7070, {}]] });
  t.equal(m2.member('n1')?.state, 'dead');
  t.equal(m2.member('n5')?.state, 'alive', 'the rest of the datagram was still applied');
  t.same(errors, ['membership listener threw']);
});

t.test('stop() settles a pending join without counting it as answered', async (t) => {
  const h = harness(['n1']);
  const p = h.m.join(['10.0.0.9']);
  h.clock.runFor(100);
  h.m.stop();
  t.same(await p, { contacted: 1, responded: 0, invalid: [] });
  t.equal(h.sentOf('y').length, 1, 'the seed was asked');
});

t.test('a ping-req about ourselves is answered by us; our own datagram is not processed', async (t) => {
  const h = harness(['n1', 'n2']);
  h.deliver('n1', { t: 'r', s: 31, n: 'n0', h: '10.0.0.0', o: 7070 });
  t.match(h.sentOf('a').at(-1), { to: addrOf('n1'), msg: { t: 'a', s: 31, f: 'n0' } });
  t.equal(h.sentOf('p').length, 0, 'no relay ping to ourselves');
  h.deliver('n0', { t: 'g', u: [['d', 'n1', 0, 'n0']] });
  t.equal(h.m.member('n1')?.state, 'alive', 'a datagram claiming to be from us is ignored');
  t.equal(h.m.stats().dropped.misdirected, 1);
});

t.test('start() after leave() comes back alive with a higher incarnation', async (t) => {
  const h = harness(['n1']);
  const p = h.m.leave();
  h.clock.runFor(4_000);
  await p;
  h.m.stop();
  t.equal(h.m.member('n0')?.state, 'left');
  h.m.start();
  t.match(h.m.member('n0'), { state: 'alive', incarnation: 2 });
});

t.test('full-state answers are rate-limited per address (no reflection amplifier)', async (t) => {
  const h = harness(['n1', 'n2']);
  h.deliver('n1', { t: 'y', s: 1, m: [] });
  h.deliver('n1', { t: 'y', s: 2, m: [] });
  t.equal(h.sentOf('Y').length, 1, 'the replayed request got nothing');
  t.equal(h.m.stats().dropped.rateLimited, 1);
  h.deliver('n2', { t: 'y', s: 3, m: [] });
  t.equal(h.sentOf('Y').length, 2, 'another address is answered');
  h.clock.runFor(1_000);
  h.deliver('n1', { t: 'y', s: 4, m: [] });
  t.equal(h.sentOf('Y').length, 3, 'and the same one again a second later');
});

t.test('gossip rounds run only while something is queued and someone can be told, on the same grid', async (t) => {
  // A lone member: the probe timer (1 s) is all that wakes it; a free-running
  // 200 ms gossip ticker would add 300 wake-ups a minute.
  const lone = harness([]);
  lone.clock.runFor(60_000);
  t.ok(lone.clock.executed <= 65, `a lone member ran ${lone.clock.executed} timer events in a minute (probe ticks only)`);

  const h = harness(['n1', 'n2', 'n3', 'n4']);
  ackPings(h, () => true);
  h.clock.runFor(10_000); // the start-up self-announcement retires first
  const e0 = h.clock.executed;
  h.clock.runFor(60_000);
  const idle = h.clock.executed - e0;
  // 60 probe ticks and 60 delivered acks; nothing queued, so no gossip round.
  t.ok(idle <= 125, `idle with peers: ${idle} timer events in a minute`);
  t.equal(h.sentOf('g').filter((s) => s.at >= 10_000).length, 0, 'no gossip datagram while idle');

  const at = h.clock.now() + 37; // off the grid on purpose
  h.clock.runFor(37);
  h.m.updateMeta({ role: 'manager' });
  h.clock.runFor(10_000);
  const rounds = [...new Set(h.sentOf('g').filter((s) => s.at >= at).map((s) => s.at))];
  t.ok(rounds.length >= 2, `the update went out in ${rounds.length} rounds`);
  t.ok(rounds[0]! - at <= 200, `first round ${rounds[0]! - at} ms after the update (at most one interval)`);
  t.ok(rounds.every((r) => (r - rounds[0]!) % 200 === 0), `rounds stay on one 200 ms grid: ${rounds.map((r) => r - rounds[0]!).join(', ')}`);
  const e1 = h.clock.executed;
  h.clock.runFor(60_000);
  t.ok(h.clock.executed - e1 <= 125, `idle again once retransmitted: ${h.clock.executed - e1} timer events in a minute`);
});
