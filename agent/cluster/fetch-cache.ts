import { PiswarmError } from '../../shared/errors.js';

export interface Fetched<V> {
  value: V;
  /** When it was fetched (the cache's clock, ms). */
  at: number;
}

export interface FetchCacheOptions {
  /** An answer, or a failure, is reused this long: at most one fetch per key per ttl. */
  ttlMs: number;
  /** Fetches running at once, over all keys; one more is refused (UNAVAILABLE), not queued. */
  maxInFlight: number;
  /** Keys remembered; the oldest is forgotten first. */
  maxEntries: number;
  now: () => number;
}

type Entry<V> = { at: number; ok: true; value: V } | { at: number; ok: false; err: unknown };

/**
 * On-demand fetches from peers, so that a dashboard (or many) cannot turn
 * into a peer-request storm: per key one fetch per `ttlMs` (failures are
 * remembered as long as answers, so a member that does not answer is not
 * asked again by every poll), callers of a key being fetched share that
 * fetch, and at most `maxInFlight` fetches run at once. Memory is bounded by
 * `maxEntries`.
 */
export class FetchCache<V> {
  private readonly done = new Map<string, Entry<V>>();
  private readonly running = new Map<string, Promise<Fetched<V>>>();

  constructor(private readonly o: FetchCacheOptions) {}

  get(key: string, fetch: () => Promise<V>): Promise<Fetched<V>> {
    const e = this.done.get(key);
    if (e && this.o.now() - e.at < this.o.ttlMs) return e.ok ? Promise.resolve({ value: e.value, at: e.at }) : Promise.reject(e.err);
    const shared = this.running.get(key);
    if (shared) return shared;
    if (this.running.size >= this.o.maxInFlight) {
      return Promise.reject(new PiswarmError('PISWARM_ERR_UNAVAILABLE', `${this.running.size} peer reads already running; retry in a moment`));
    }
    const p = this.run(key, fetch);
    this.running.set(key, p);
    return p;
  }

  /** Whether get(key) would start a fetch now (no fresh answer or failure, none running). */
  due(key: string): boolean {
    const e = this.done.get(key);
    return !this.running.has(key) && !(e && this.o.now() - e.at < this.o.ttlMs);
  }

  /** The last successful answer for a key, however old (null when none or the last fetch failed). */
  last(key: string): Fetched<V> | null {
    const e = this.done.get(key);
    return e?.ok ? { value: e.value, at: e.at } : null;
  }

  get inFlight(): number {
    return this.running.size;
  }

  get size(): number {
    return this.done.size;
  }

  private async run(key: string, fetch: () => Promise<V>): Promise<Fetched<V>> {
    try {
      // Never synchronously: `running` must hold this promise before `finally` removes it.
      const value = await Promise.resolve().then(fetch);
      const at = this.o.now();
      this.remember(key, { at, ok: true, value });
      return { value, at };
    } catch (err) {
      this.remember(key, { at: this.o.now(), ok: false, err });
      throw err;
    } finally {
      this.running.delete(key);
    }
  }

  private remember(key: string, e: Entry<V>): void {
    this.done.delete(key);
    this.done.set(key, e);
    while (this.done.size > this.o.maxEntries) this.done.delete(this.done.keys().next().value!);
  }
}
