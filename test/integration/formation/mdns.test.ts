import t from 'tap';
import { createMdnsDiscovery } from '../../../agent/discovery/mdns.js';
import { deriveClusterKeys } from '../../../agent/identity/keys.js';
import { detectAdvertiseAddress } from '../../../agent/net/address.js';
import { memoryLogger } from '../../helpers/fakes.js';

/**
 * Real bonjour-service over the host's real interface (multicast loops back
 * to the sending host, so two instances in one process hear each other).
 */
let addr: string | null = null;
try {
  addr = detectAdvertiseAddress({ discovery: {} }).address;
} catch {
  addr = null;
}

const KEY = 'mdns integration cluster key, 32+ characters';
const keys = deriveClusterKeys(KEY);

async function until<T>(fn: () => T | undefined | null | false, ms: number): Promise<T | null> {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > ms) return null;
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('signed adverts over real mDNS: found, role changes republished, other clusters dropped, goodbye on stop', { skip: addr ? false : 'no non-loopback IPv4 interface to multicast on' }, async (t) => {
  const { log, lines } = memoryLogger();
  const mk = (id: string, key = KEY) =>
    createMdnsDiscovery({ keys: deriveClusterKeys(key), identity: { nodeId: id.repeat(24), name: id, createdAt: '' }, log, now: Date.now, maxAgeMs: 60_000, republishMs: 60_000 });
  const a = mk('a');
  const b = mk('b');
  const x = mk('c', 'a completely different key, 32+ characters');
  t.teardown(async () => {
    await Promise.all([a.stop(), b.stop(), x.stop()]);
  });
  a.publish({ addr: addr!, port: 17070, role: 'none', swarmId: null });
  b.publish({ addr: addr!, port: 17071, role: 'none', swarmId: null });
  x.publish({ addr: addr!, port: 17072, role: 'manager', swarmId: 'foreignswarm' });
  const t0 = Date.now();
  const seen = await until(() => a.candidates().find((c) => c.nodeId === 'b'.repeat(24)), 5000);
  t.ok(seen, `a found b in ${Date.now() - t0} ms`);
  t.equal(seen?.port, 17071);
  t.equal(seen?.addr, addr, 'address from the signed TXT');
  t.notOk(a.candidates().some((c) => c.nodeId === 'c'.repeat(24)), 'the other cluster is never a candidate');
  const dropped = await until(() => a.dropped().wrong_cluster > 0 && a.dropped(), 5000);
  t.ok(dropped, 'its adverts are counted as wrong_cluster');
  t.ok(a.foreign().length > 0, 'and reported as a foreign cluster');

  b.publish({ addr: addr!, port: 17071, role: 'manager', swarmId: 'swarmid123' });
  const updated = await until(() => a.candidates().find((c) => c.nodeId === 'b'.repeat(24) && c.advert?.role === 'manager'), 5000);
  t.ok(updated, 'role change republished and heard');
  t.equal(updated?.advert?.swarmId, 'swarmid123');

  await b.stop();
  const gone = await until(() => !a.candidates().some((c) => c.nodeId === 'b'.repeat(24)), 5000);
  t.ok(gone, 'goodbye packets make the others forget it');
  t.notOk(JSON.stringify(lines()).includes(KEY));
});
