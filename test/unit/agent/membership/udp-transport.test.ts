import t from 'tap';
import { systemClock, systemRandom } from '../../../../agent/membership/clock.js';
import { createMembership, type Membership } from '../../../../agent/membership/membership.js';
import { createUdpTransport, type UdpTransport } from '../../../../agent/membership/udp-transport.js';
import { isPiswarmError } from '../../../../shared/errors.js';
import { silent } from './harness.js';

/** Real sockets on loopback, real time: short protocol periods so it settles in about a second. */
const FAST = {
  port: 0,
  probeIntervalMs: 200,
  probeTimeoutMs: 100,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  gossipNodes: 3,
  gossipIntervalMs: 50,
  retransmitMult: 5,
};
const KEY = 'udp-test-cluster-key-0123456789abcdef';

async function node(id: string, key: string, t: { teardown(fn: () => unknown): void }): Promise<{ m: Membership; tr: UdpTransport; errors: string[] }> {
  const errors: string[] = [];
  const tr = await createUdpTransport({ host: '127.0.0.1', port: 0, onError: (e) => errors.push(e.code ?? e.message) });
  const { port } = tr.address();
  const m = createMembership({
    config: { ...FAST, port },
    clusterKey: key,
    self: { id, addr: '127.0.0.1', port, meta: { role: 'worker' } },
    transport: tr,
    clock: systemClock,
    random: systemRandom,
    log: silent,
    tuning: { joinTimeoutMs: 1000, leaveTimeoutMs: 1000 },
  });
  t.teardown(async () => {
    m.stop();
    await tr.close();
  });
  m.start();
  return { m, tr, errors };
}

async function until(pred: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return pred();
}

const aliveIds = (m: Membership) => m.members().filter((x) => x.state === 'alive').map((x) => x.id).sort();

t.test('three agents on 127.0.0.1 converge over real UDP; a wrong-key agent never appears', async (t) => {
  const a = await node('a', KEY, t);
  const b = await node('b', KEY, t);
  const c = await node('c', KEY, t);
  const evil = await node('evil', 'another-cluster-key-0123456789abcdef', t);
  const seedA = `127.0.0.1:${a.tr.address().port}`;
  const jb = await b.m.join([seedA]);
  t.same(jb, { contacted: 1, responded: 1, invalid: [] });
  await c.m.join([`127.0.0.1:${b.tr.address().port}`]);
  const je = await evil.m.join([seedA, `127.0.0.1:${c.tr.address().port}`]);
  t.same(je, { contacted: 2, responded: 0, invalid: [] }, 'nobody answers the wrong key');

  const ok = await until(() => [a, b, c].every((n) => aliveIds(n.m).join() === 'a,b,c'), 5000);
  t.ok(ok, `converged: ${[a, b, c].map((n) => aliveIds(n.m).join('')).join(' ')}`);
  for (const n of [a, b, c]) t.notOk(n.m.member('evil'), 'the wrong-key node is not a member');
  t.same(aliveIds(evil.m), ['evil'], 'and it learned nobody');
  t.ok(a.m.stats().dropped.wrongCluster >= 1 && c.m.stats().dropped.wrongCluster >= 1, 'its datagrams were counted as another cluster');

  a.m.updateMeta({ role: 'manager' });
  t.ok(await until(() => b.m.member('a')?.meta.role === 'manager' && c.m.member('a')?.meta.role === 'manager', 3000), 'meta update spread');
  const st = b.m.stats();
  t.ok(st.probesSent > 0 && st.acksReceived > 0 && st.rtt.count > 0, `b probed ${st.probesSent}, rtt samples ${st.rtt.count}`);

  await c.m.leave();
  t.ok(await until(() => a.m.member('c')?.state === 'left' && b.m.member('c')?.state === 'left', 3000), 'graceful leave seen as left');
  t.same([...a.errors, ...b.errors], [], 'no socket errors');
});

t.test('the adapter never throws on send and reports errors; binding a taken port is a coded error', async (t) => {
  const errors: string[] = [];
  const tr = await createUdpTransport({ host: '127.0.0.1', port: 0, onError: (e, ctx) => errors.push(`${ctx.op}:${e.code ?? 'no code'}`) });
  t.doesNotThrow(() => tr.send({ addr: '127.0.0.1', port: 0 }, Buffer.from('x')), 'port 0 is refused, not thrown');
  t.doesNotThrow(() => tr.send({ addr: 'no such host..invalid', port: 7070 }, Buffer.from('x')));
  await new Promise((r) => setTimeout(r, 300));
  t.ok(tr.counters.sendErrors >= 2, `send errors counted: ${errors.join(', ')}`);
  let code = 'no error';
  try {
    await createUdpTransport({ host: '127.0.0.1', port: tr.address().port });
  } catch (e) {
    code = isPiswarmError(e) ? e.code : 'not coded';
  }
  t.equal(code, 'PISWARM_ERR_GOSSIP_BIND');
  await tr.close();
  await tr.close();
  t.doesNotThrow(() => tr.send({ addr: '127.0.0.1', port: 9 }, Buffer.from('x')), 'sending on a closed transport does not throw');
  t.ok(errors.some((e) => e === 'send:ERR_SOCKET_DGRAM_NOT_RUNNING'));
});
