import t from 'tap';
import { FetchCache } from '../../../../agent/cluster/fetch-cache.js';

function setup(o: { maxInFlight?: number; maxEntries?: number } = {}) {
  let now = 1000;
  const cache = new FetchCache<string>({ ttlMs: 5000, maxInFlight: o.maxInFlight ?? 2, maxEntries: o.maxEntries ?? 10, now: () => now });
  return { cache, advance: (ms: number) => (now += ms) };
}

/** A fetch the test resolves or rejects by hand, counting its calls. */
function deferred() {
  let calls = 0;
  let resolve!: (v: string) => void;
  let reject!: (e: unknown) => void;
  const fetch = () => {
    calls++;
    return new Promise<string>((res, rej) => {
      resolve = res;
      reject = rej;
    });
  };
  return { fetch, calls: () => calls, resolve: (v: string) => resolve(v), reject: (e: unknown) => reject(e) };
}

t.test('one fetch per key per ttl, shared by concurrent callers', async (t) => {
  const { cache, advance } = setup();
  const d = deferred();
  const a = cache.get('k', d.fetch);
  const b = cache.get('k', d.fetch);
  t.equal(cache.inFlight, 1);
  await Promise.resolve();
  d.resolve('v1');
  t.same(await a, { value: 'v1', at: 1000 });
  t.same(await b, { value: 'v1', at: 1000 });
  advance(4999);
  t.same(await cache.get('k', d.fetch), { value: 'v1', at: 1000 }, 'fresh: from the cache');
  t.equal(d.calls(), 1);
  t.notOk(cache.due('k'));
  advance(1);
  t.ok(cache.due('k'), 'due once the ttl is over');
  const c = cache.get('k', d.fetch);
  await Promise.resolve();
  d.resolve('v2');
  t.same((await c).value, 'v2');
  t.equal(d.calls(), 2);
  t.equal(cache.inFlight, 0);
});

t.test('a failure is remembered for the ttl too, and last() keeps the last good answer', async (t) => {
  const { cache, advance } = setup();
  t.same(await cache.get('k', async () => 'good'), { value: 'good', at: 1000 });
  advance(6000);
  let calls = 0;
  const failing = async () => {
    calls++;
    throw new Error('peer down');
  };
  await t.rejects(cache.get('k', failing), /peer down/);
  await t.rejects(cache.get('k', failing), /peer down/, 'the same failure, not asked again');
  t.equal(calls, 1);
  t.equal(cache.last('k'), null, 'the last fetch failed');
  const sync = () => {
    throw new Error('thrown at once');
  };
  await t.rejects(cache.get('other', sync), /thrown at once/);
  t.equal(cache.inFlight, 0, 'a fetch that throws synchronously leaves nothing running');
});

t.test('at most maxInFlight fetches at once: one more is refused, not queued', async (t) => {
  const { cache } = setup({ maxInFlight: 2 });
  const d1 = deferred();
  const d2 = deferred();
  const p1 = cache.get('a', d1.fetch);
  const p2 = cache.get('b', d2.fetch);
  await t.rejects(cache.get('c', async () => 'never'), { code: 'PISWARM_ERR_UNAVAILABLE', statusCode: 503 });
  await Promise.resolve();
  d1.resolve('A');
  d2.resolve('B');
  await Promise.all([p1, p2]);
  t.same((await cache.get('c', async () => 'C')).value, 'C', 'room again once they finished');
});

t.test('memory bounded by maxEntries, oldest forgotten first', async (t) => {
  const { cache } = setup({ maxEntries: 2 });
  for (const k of ['a', 'b', 'c']) await cache.get(k, async () => k);
  t.equal(cache.size, 2);
  t.equal(cache.last('a'), null);
  t.same(cache.last('c')?.value, 'c');
});
