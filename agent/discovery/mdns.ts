import { Bonjour, type Browser, type Service } from 'bonjour-service';
import { MDNS_SERVICE_TYPE } from '../../shared/constants.js';
import type { Logger } from '../log/logger.js';
import type { ClusterKeys } from '../identity/keys.js';
import type { NodeIdentity } from '../identity/identity.js';
import { encodeAdvert, type AdvertDropReason } from './advert.js';
import { AdvertBook, type Candidate, type Discovery, type ForeignSighting, type LocalAdvert } from './discovery.js';

export interface MdnsDiscoveryOptions {
  keys: ClusterKeys;
  identity: NodeIdentity;
  log: Logger;
  now: () => number;
  maxAgeMs: number;
  republishMs: number;
  /** Deadline for goodbye packets on stop. */
  stopTimeoutMs?: number;
}

/**
 * bonjour-service adapter. Known traps handled here:
 * - multicast-dns throws on a socket send error unless an error callback is
 *   given, which would kill the agent: we pass one and count it.
 * - with `interface` alone multicast-dns binds the socket to that unicast
 *   address and then never receives multicast: we also pass bind 0.0.0.0.
 * - A records are published for every interface (docker0, veths): peers take
 *   the address from our signed TXT instead.
 * - a crashed node's record lingers for hours: liveness never comes from here.
 */
export function createMdnsDiscovery(opts: MdnsDiscoveryOptions): Discovery & { errors(): number } {
  const log = opts.log.child({ mod: 'discovery' });
  const book = new AdvertBook(opts.keys, opts.identity.nodeId, opts.maxAgeMs);
  let bonjour: Bonjour | null = null;
  let browser: Browser | null = null;
  let service: Service | null = null;
  let boundAddr: string | null = null;
  let current: LocalAdvert | null = null;
  let lastTxtKey = '';
  let publishedAt = 0;
  let seq = 0;
  let sendErrors = 0;
  let refresh: NodeJS.Timeout | null = null;

  const onService = (s: Service) => {
    const referer = s.referer?.address ?? '?';
    const r = book.ingest(s.txt, referer, opts.now());
    if (!r.ok && r.reason !== 'self') log.debug({ reason: r.reason, referer }, 'advert dropped');
  };

  /** Goodbye packets (TTL 0) then close, bounded: a dead socket must not hold shutdown. */
  const teardown = async (b: Bonjour, timeoutMs: number): Promise<void> => {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      try {
        b.unpublishAll(() => {
          clearTimeout(t);
          resolve();
        });
      } catch (err) {
        log.debug({ err: { message: (err as Error).message } }, 'mdns unpublish failed');
        clearTimeout(t);
        resolve();
      }
    });
    try {
      b.destroy();
    } catch (err) {
      log.debug({ err: { message: (err as Error).message } }, 'mdns destroy failed');
    }
  };

  const detach = (): Bonjour | null => {
    const b = bonjour;
    bonjour = null;
    browser?.stop();
    browser = null;
    service = null;
    return b;
  };

  const open = (addr: string) => {
    bonjour = new Bonjour({ interface: addr, bind: '0.0.0.0' } as unknown as ConstructorParameters<typeof Bonjour>[0], (err: Error) => {
      sendErrors++;
      log.debug({ err: { message: err?.message, code: (err as NodeJS.ErrnoException)?.code } }, 'mdns socket error');
    });
    boundAddr = addr;
    browser = bonjour.find({ type: MDNS_SERVICE_TYPE, protocol: 'tcp' });
    browser.on('up', onService);
    browser.on('txt-update', onService);
    browser.on('down', (s: Service) => {
      const n = s.txt?.n;
      if (typeof n === 'string') book.forget(n);
    });
    refresh ??= setInterval(() => {
      browser?.update(); // re-query: a browser otherwise only hears announcements
      if (current && opts.now() - publishedAt >= opts.republishMs) doPublish(current, true);
    }, Math.max(1000, Math.floor(opts.republishMs / 4)));
    refresh.unref();
  };

  const doPublish = (a: LocalAdvert, force: boolean) => {
    const key = `${a.addr}|${a.port}|${a.role}|${a.swarmId ?? ''}`;
    if (!force && key === lastTxtKey && service) return;
    if (bonjour && boundAddr !== a.addr) {
      // DHCP gave us another address: say goodbye on the old one, start over on the new.
      const old = detach();
      if (old) void teardown(old, 500);
    }
    if (!bonjour) open(a.addr);
    const txt = encodeAdvert(opts.keys, { nodeId: opts.identity.nodeId, addr: a.addr, port: a.port, role: a.role, swarmId: a.swarmId, ts: opts.now(), seq: ++seq });
    const publishNew = () => {
      if (!bonjour) return;
      service = bonjour.publish({ name: `piswarm-${opts.identity.nodeId}`, type: MDNS_SERVICE_TYPE, protocol: 'tcp', port: a.port, txt, probe: false, disableIPv6: true });
      service.on('error', (err: Error) => log.debug({ err: { message: err.message } }, 'mdns publish error'));
    };
    const old = service;
    service = null;
    if (old) old.stop?.(publishNew);
    else publishNew();
    lastTxtKey = key;
    publishedAt = opts.now();
    log.debug({ role: a.role, swarmId: a.swarmId, addr: a.addr }, 'advert published');
  };

  return {
    publish(a) {
      current = a;
      doPublish(a, false);
    },
    candidates: (): Candidate[] => book.candidates(opts.now()),
    dropped: (): Record<AdvertDropReason, number> => book.dropped(),
    foreign: (): ForeignSighting[] => book.foreign(opts.now(), opts.maxAgeMs),
    errors: () => sendErrors,
    async stop() {
      if (refresh) clearInterval(refresh);
      refresh = null;
      const b = detach();
      if (b) await teardown(b, opts.stopTimeoutMs ?? 1000);
    },
  };
}
