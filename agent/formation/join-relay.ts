import net from 'node:net';
import type { Logger } from '../log/logger.js';
import type { Collector } from '../metrics/types.js';
import { hostOf } from '../net/address.js';

/**
 * The address a worker's engine joins through: a TCP relay on this node's
 * loopback that forwards to a live manager's swarm port.
 *
 * Why: an engine keeps the address it joined through and dials it again
 * when it is promoted. Docker 20.10 dials only that address, for good
 * (moby PR #47854); 26.1.5 dials it once more before its own swarm restart
 * forgets it, about 20 s when that manager is gone. A worker that joined
 * through the first manager could therefore not be promoted quickly once
 * that Pi died. Joined through this relay, the address it dials is its own
 * agent, which forwards to a manager that is alive: promoted after the
 * manager it joined through lost power, a 20.10 worker was Reachable 9 s
 * after `docker node promote`, without leaving the swarm (tried by hand on
 * the simulated cluster, 2026-12-07). The bytes are the engines' own mutual
 * TLS; the relay only copies them and listens on loopback alone.
 *
 * The engine also keeps its first dispatcher session through the address
 * it joined through, so a worker's session runs through the relay until it
 * reconnects: an agent restart breaks it and the engine reconnects to a
 * manager it knows (its tasks keep running).
 */
export interface JoinRelay {
  /** `127.0.0.1:PORT` once listening; null before start, after stop, or when it could not listen. */
  address(): string | null;
  /** During a join: forward only to these managers (host:port, the granting one first); null after it. */
  joining(managers: readonly string[] | null): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  collector: Collector;
}

export interface JoinRelayDeps {
  port: number;
  /** Where to forward outside a join (host:port, in order): formation.relayManagers(). */
  managers: () => readonly string[];
  log: Logger;
  connectTimeoutMs?: number;
  host?: string;
}

/** Pure: where to forward a connection, in order. During a join only the join's managers; otherwise the engine's, the last that answered first. */
export function relayTargets(joining: readonly string[] | null, managers: readonly string[], lastGood: string | null): string[] {
  const list = joining ?? managers;
  const out = [...new Set(list)];
  if (joining !== null || lastGood === null || !out.includes(lastGood)) return out;
  return [lastGood, ...out.filter((a) => a !== lastGood)];
}

function dial(target: string, timeoutMs: number): Promise<net.Socket | null> {
  const host = hostOf(target);
  const port = Number(target.slice(target.lastIndexOf(':') + 1));
  return new Promise((resolve) => {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return resolve(null);
    const s = net.connect({ host, port });
    const fail = () => {
      s.destroy();
      resolve(null);
    };
    s.setTimeout(timeoutMs, fail);
    s.once('error', fail);
    s.once('connect', () => {
      s.setTimeout(0);
      s.removeListener('error', fail);
      resolve(s);
    });
  });
}

export function createJoinRelay(deps: JoinRelayDeps): JoinRelay {
  const log = deps.log.child({ mod: 'join-relay' });
  const host = deps.host ?? '127.0.0.1';
  const timeoutMs = deps.connectTimeoutMs ?? 1500;
  const open = new Set<net.Socket>();
  let server: net.Server | null = null;
  let listening: string | null = null;
  let joiningList: readonly string[] | null = null;
  let lastGood: string | null = null;
  let forwarded = 0;
  let failed = 0;
  let piped = 0;

  const track = (s: net.Socket) => {
    open.add(s);
    s.once('close', () => open.delete(s));
  };

  async function forward(client: net.Socket): Promise<void> {
    track(client);
    client.on('error', () => client.destroy());
    const targets = relayTargets(joiningList, deps.managers(), lastGood);
    for (const t of targets) {
      const up = await dial(t, timeoutMs);
      if (!up) continue;
      if (client.destroyed) {
        up.destroy();
        return;
      }
      track(up);
      lastGood = t;
      forwarded++;
      log.info({ to: t }, 'the engine connected through the join relay');
      piped++;
      client.once('close', () => piped--);
      up.on('error', () => up.destroy());
      up.once('close', () => client.destroy());
      client.once('close', () => up.destroy());
      client.pipe(up);
      up.pipe(client);
      client.resume();
      return;
    }
    failed++;
    log.warn({ tried: targets }, 'join relay: no manager answered; the engine will try again');
    client.destroy();
  }

  return {
    address: () => listening,
    joining(managers) {
      joiningList = managers && managers.length > 0 ? [...managers] : null;
    },
    async start() {
      if (server) return;
      const srv = net.createServer({ pauseOnConnect: true }, (c) => void forward(c));
      try {
        await new Promise<void>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen(deps.port, host, () => {
            srv.removeListener('error', reject);
            resolve();
          });
        });
      } catch (err) {
        // The agent works without it: joins go to the manager directly, as before the relay.
        log.error({ port: deps.port, code: (err as NodeJS.ErrnoException).code }, 'join relay cannot listen; workers join managers directly (formation.joinRelayPort)');
        return;
      }
      srv.on('error', (err) => log.warn({ code: (err as NodeJS.ErrnoException).code }, 'join relay error'));
      server = srv;
      listening = `${host}:${(srv.address() as net.AddressInfo).port}`;
    },
    async stop() {
      const srv = server;
      server = null;
      listening = null;
      for (const s of open) s.destroy();
      if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
    collector: {
      name: 'join-relay',
      collect: () => [
        { name: 'piswarm_join_relay_connections_total', help: 'Engine connections through the join relay, by result (forwarded to a manager, or none answered).', type: 'counter', samples: [{ labels: { result: 'forwarded' }, value: forwarded }, { labels: { result: 'failed' }, value: failed }] },
        { name: 'piswarm_join_relay_open_connections', help: 'Connections the join relay is copying now (the engine\'s session after a join, a Raft join after a promotion).', type: 'gauge', samples: [{ value: piped }] },
      ],
    },
  };
}
