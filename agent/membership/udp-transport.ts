import { createSocket, type Socket } from 'node:dgram';
import { PiswarmError } from '../../shared/errors.js';
import { MAX_DATAGRAM_BYTES } from '../../shared/wire/gossip.js';
import type { PeerAddress, Transport } from './types.js';

export interface UdpTransportOptions {
  /** Address to bind (udp4), e.g. '0.0.0.0' or the advertised address. */
  host: string;
  /** 0 picks a free port (tests); the agent passes config.membership.port. */
  port: number;
  /** Send and socket errors land here; they never throw. */
  onError?: (err: Error & { code?: string }, context: { op: 'send' | 'socket'; to?: PeerAddress }) => void;
}

export interface UdpTransport extends Transport {
  /** The bound address (with the real port when 0 was asked for). */
  address(): PeerAddress;
  close(): Promise<void>;
  readonly counters: { sendErrors: number; socketErrors: number; oversizeReceived: number };
}

/**
 * The gossip membership's datagram adapter over node:dgram (udp4). Binding
 * failures reject with PISWARM_ERR_GOSSIP_BIND; after that nothing throws:
 * send errors (EHOSTUNREACH, ENETUNREACH, a closed socket...) are counted and
 * reported through onError, because a probe to a dead host failing is normal.
 */
export async function createUdpTransport(opts: UdpTransportOptions): Promise<UdpTransport> {
  const socket: Socket = createSocket({ type: 'udp4', reuseAddr: false });
  const counters = { sendErrors: 0, socketErrors: 0, oversizeReceived: 0 };
  let handler: ((data: Uint8Array, from: PeerAddress) => void) | null = null;
  let closed = false;
  const report = (err: Error & { code?: string }, context: { op: 'send' | 'socket'; to?: PeerAddress }) => {
    try {
      opts.onError?.(err, context);
    } catch {
      // The error callback is the end of the line; a throwing one must not kill the socket loop.
    }
  };

  await new Promise<void>((resolve, reject) => {
    const onBindError = (err: Error & { code?: string }) => {
      socket.close();
      reject(new PiswarmError('PISWARM_ERR_GOSSIP_BIND', `cannot bind gossip UDP ${opts.host}:${opts.port}: ${err.code ?? err.message}`, { cause: err, details: { host: opts.host, port: opts.port } }));
    };
    socket.once('error', onBindError);
    socket.bind({ address: opts.host, port: opts.port, exclusive: true }, () => {
      socket.off('error', onBindError);
      resolve();
    });
  });

  socket.on('error', (err: Error & { code?: string }) => {
    counters.socketErrors++;
    report(err, { op: 'socket' });
  });
  socket.on('message', (msg, rinfo) => {
    // The core drops oversize datagrams too; counting here shows what the kernel handed us.
    if (msg.length > MAX_DATAGRAM_BYTES) counters.oversizeReceived++;
    handler?.(msg, { addr: rinfo.address, port: rinfo.port });
  });

  const bound = socket.address();
  return {
    counters,
    address: () => ({ addr: bound.address, port: bound.port }),
    onMessage(h) {
      handler = h;
    },
    send(to, data) {
      if (closed) {
        counters.sendErrors++;
        report(Object.assign(new Error('gossip socket is closed'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' }), { op: 'send', to });
        return;
      }
      try {
        socket.send(data, to.port, to.addr, (err) => {
          if (err) {
            counters.sendErrors++;
            report(err, { op: 'send', to });
          }
        });
      } catch (err) {
        // Synchronous throws: bad port/address arguments.
        counters.sendErrors++;
        report(err as Error, { op: 'send', to });
      }
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}
