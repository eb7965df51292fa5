import type { EventEmitter } from 'node:events';
import { Bonjour, type Browser, type Service } from 'bonjour-service';
import { MDNS_SERVICE_TYPE } from '../../shared/constants.js';
import type { Logger } from '../log/logger.js';
import type { ClusterKeys } from '../identity/keys.js';
import type { NodeIdentity } from '../identity/identity.js';
import { encodeAdvert, type AdvertDropReason } from './advert.js';
import { AdvertBook, type Candidate, type Discovery, type ForeignSighting, type LocalAdvert, type MdnsErrorKind, type MdnsSocketState } from './discovery.js';

export interface MdnsDiscoveryOptions {
  keys: ClusterKeys;
  identity: NodeIdentity;
  log: Logger;
  now: () => number;
  maxAgeMs: number;
  republishMs: number;
  /** Deadline for goodbye packets on stop. */
  stopTimeoutMs?: number;
  /** UDP port of mDNS: 5353 unless a test says otherwise. */
  port?: number;
}

/**
 * bonjour-service adapter. Known traps handled here:
 * - multicast-dns throws on a socket send error unless an error callback is
 *   given, which would kill the agent: we pass one and count it.
 * - when UDP 5353 cannot be bound (EADDRINUSE, EACCES: another responder
 *   holds it without SO_REUSEADDR) multicast-dns emits 'error' on its
 *   emitter, and with no listener that is an uncaught exception: systemd
 *   would restart the agent forever. We listen (see watchSocket).
 * - with `interface` alone multicast-dns binds the socket to that unicast
 *   address and then never receives multicast: we also pass bind 0.0.0.0.
 * - A records are published for every interface (docker0, veths): peers take
 *   the address from our signed TXT instead.
 * - a crashed node's record lingers for hours: liveness never comes from here.
 */
export function createMdnsDiscovery(opts: MdnsDiscoveryOptions): Discovery & { socket(): MdnsSocketState } {
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
  const errors: Record<MdnsErrorKind, number> = { bind: 0, send: 0 };
  let unbound: MdnsSocketState['unbound'] = null;
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

  /**
   * The agent keeps running when the mDNS port cannot be bound: peers are
   * then found through discovery.seeds and the hellos of peers that found
   * us, /health warns (discovery:peers), and multicast-dns tries to bind
   * again on its next send (a re-query or republish), so freeing the port
   * is enough.
   */
  const watchSocket = (b: Bonjour) => {
    const mdns = (b as unknown as { server?: { mdns?: EventEmitter } }).server?.mdns;
    if (!mdns) return void log.warn({ code: 'PISWARM_ERR_MDNS_BIND' }, 'bonjour-service no longer exposes its multicast-dns instance (server.mdns): a port clash would go unhandled');
    let last: unknown = null;
    mdns.on('error', (err: NodeJS.ErrnoException) => {
      if (err === last) return; // one failed bind reaches this listener twice
      last = err;
      errors.bind++;
      const errno = err?.code ?? 'error';
      if (unbound) return void log.debug({ errno }, 'mDNS port still cannot be bound');
      unbound = { code: errno, port: opts.port ?? 5353, since: opts.now() };
      log.warn(
        { code: 'PISWARM_ERR_MDNS_BIND', errno, port: unbound.port, detail: err?.message },
        'mDNS cannot bind its UDP port (another mDNS responder holds it?): discovery relies on discovery.seeds and peers that say hello; piswarm doctor names the program',
      );
    });
    mdns.on('warning', (err: NodeJS.ErrnoException) => log.debug({ err: { message: err?.message, code: err?.code } }, 'mdns socket warning'));
    const bound = () => {
      if (!unbound) return;
      log.info({ after: unbound.code }, 'mDNS port bound: discovery over mDNS works again');
      unbound = null;
    };
    // 'ready' after the first bind; 'networkInterface' and 'packet' only ever on a bound socket.
    for (const ev of ['ready', 'networkInterface', 'packet']) mdns.on(ev, bound);
  };

  const open = (addr: string) => {
    const mdnsOpts = { interface: addr, bind: '0.0.0.0', ...(opts.port === undefined ? {} : { port: opts.port }) };
    bonjour = new Bonjour(mdnsOpts as unknown as ConstructorParameters<typeof Bonjour>[0], (err: Error) => {
      errors.send++;
      log.debug({ err: { message: err?.message, code: (err as NodeJS.ErrnoException)?.code } }, 'mdns socket error');
    });
    watchSocket(bonjour);
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
    socket: (): MdnsSocketState => ({ errors: { ...errors }, unbound: unbound && { ...unbound } }),
    async stop() {
      if (refresh) clearInterval(refresh);
      refresh = null;
      const b = detach();
      if (b) await teardown(b, opts.stopTimeoutMs ?? 1000);
    },
  };
}
