/**
 * The join relay over real loopback sockets: "managers" are TCP echo
 * servers that prefix what they echo with their name, so the test sees which
 * one a connection reached.
 */
import net from 'node:net';
import t from 'tap';
import { createJoinRelay, relayTargets } from '../../../../agent/formation/join-relay.js';
import { renderFamilies } from '../../../../agent/metrics/format.js';
import { memoryLogger } from '../../../helpers/fakes.js';

async function manager(name: string): Promise<{ addr: string; close: () => Promise<void> }> {
  const conns = new Set<net.Socket>();
  const srv = net.createServer((c) => {
    conns.add(c);
    c.on('data', (d) => c.write(`${name}:${d.toString()}`));
    c.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    addr: `127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => {
      for (const c of conns) c.destroy();
      srv.close(() => r());
    }),
  };
}

/** A port nothing listens on (bound, then closed). */
async function deadAddr(): Promise<string> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return `127.0.0.1:${port}`;
}

/** Connects to the relay, sends `msg`, resolves with the first answer ('' when the relay closed the connection). */
function ask(addr: string, msg: string): Promise<string> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port }, () => s.write(msg));
    s.once('data', (d) => {
      resolve(d.toString());
      s.destroy();
    });
    s.once('close', () => resolve(''));
    // Closed by the relay after our bytes: a reset, which is the same answer as a close.
    s.once('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve('') : reject(err)));
  });
}

t.test('relayTargets: a join goes only to its managers; otherwise the engine\'s, the last that answered first', async (t) => {
  t.same(relayTargets(['a:2377', 'b:2377'], ['c:2377'], 'c:2377'), ['a:2377', 'b:2377'], 'during a join: the grant\'s managers, in order');
  t.same(relayTargets(null, ['a:2377', 'b:2377', 'c:2377'], 'b:2377'), ['b:2377', 'a:2377', 'c:2377']);
  t.same(relayTargets(null, ['a:2377', 'a:2377', 'c:2377'], 'x:2377'), ['a:2377', 'c:2377'], 'a last one the engine no longer names is not tried; duplicates once');
  t.same(relayTargets(null, [], null), []);
});

t.test('forwards to a live manager, skipping one that does not answer; during a join only to the join\'s', async (t) => {
  const m1 = await manager('m1');
  const m2 = await manager('m2');
  const dead = await deadAddr();
  let managers: string[] = [dead, m1.addr];
  const { log, lines } = memoryLogger('info');
  const relay = createJoinRelay({ port: 0, log, managers: () => managers, connectTimeoutMs: 500 });
  t.equal(relay.address(), null, 'no address before start');
  // Port 0 asks the kernel for one; the relay reports what it listens on.
  await relay.start();
  t.teardown(async () => {
    await relay.stop();
    await m1.close();
    await m2.close();
  });
  const addr = relay.address();
  t.match(addr, /^127\.0\.0\.1:\d+$/, 'listens on loopback');
  t.equal(await ask(addr!, 'hello'), 'm1:hello', 'the dead manager skipped, the live one reached');
  relay.joining([m2.addr]);
  t.equal(await ask(addr!, 'join'), 'm2:join', 'during a join: the granting manager, whatever the engine knew');
  relay.joining(null);
  managers = [m1.addr, m2.addr];
  t.equal(await ask(addr!, 'again'), 'm2:again', 'the manager that answered last comes first');
  await m2.close();
  t.equal(await ask(addr!, 'later'), 'm1:later', 'that manager gone: the next');
  managers = [dead];
  t.equal(await ask(addr!, 'nobody'), '', 'none answers: the connection is closed, the engine tries again');
  const text = renderFamilies(relay.collector.collect());
  t.match(text, /piswarm_join_relay_connections_total\{result="forwarded"\} 4\n/);
  t.match(text, /piswarm_join_relay_connections_total\{result="failed"\} 1\n/);
  t.ok(lines().some((l) => l.msg === 'the engine connected through the join relay' && l.to === m2.addr), 'each forward is logged with its manager');
  t.ok(lines().some((l) => l.msg === 'join relay: no manager answered; the engine will try again'));
});

t.test('a connection stays piped until either side closes; stop() ends open ones and the listener', async (t) => {
  const m = await manager('m');
  const relay = createJoinRelay({ port: 0, log: memoryLogger().log, managers: () => [m.addr] });
  await relay.start();
  const addr = relay.address()!;
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  const s = net.connect({ host: '127.0.0.1', port });
  const got: string[] = [];
  s.on('data', (d) => got.push(d.toString()));
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write('one');
  await new Promise((r) => setTimeout(r, 100));
  s.write('two');
  await new Promise((r) => setTimeout(r, 100));
  t.same(got, ['m:one', 'm:two'], 'both ways, on one connection');
  t.match(renderFamilies(relay.collector.collect()), /piswarm_join_relay_open_connections 1\n/);
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  await relay.stop();
  await closed;
  t.equal(relay.address(), null, 'no address after stop');
  await t.rejects(ask(addr, 'x'), { code: 'ECONNREFUSED' }, 'nothing listens any more');
  await m.close();
});

t.test('a port already taken: the relay says so and stays off (joins go to managers directly)', async (t) => {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => holder.close(() => r())));
  const port = (holder.address() as net.AddressInfo).port;
  const { log, lines } = memoryLogger();
  const relay = createJoinRelay({ port, log, managers: () => [] });
  await relay.start();
  t.equal(relay.address(), null, 'not listening');
  t.ok(lines().some((l) => l.code === 'EADDRINUSE' && String(l.msg).includes('join relay cannot listen')), 'logged with the reason');
  await relay.stop();
});
