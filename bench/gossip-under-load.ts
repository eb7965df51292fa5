/**
 * Does an outsider's HTTP load on the agent's port starve its failure
 * detector? (issue 10, item 3.) One process plays the agent: the real HTTP
 * app (buildApp, with its connection bounds) and a real gossip member on
 * UDP loopback, sharing one event loop as in the daemon. A second process is
 * a peer member that probes it; a third is the outsider, holding
 * `--connections` connections of GET /metrics for `--seconds`. The peer
 * reports its probe round trips to the agent and every time it found the
 * agent suspect, quiet and under load, side by side:
 *
 *   node dist/bench/gossip-under-load.js [--connections 300] [--seconds 15] [--metrics-kb 33] [--unbounded]
 *
 * --unbounded lifts the API's connection bounds, to compare.
 *
 * It asserts nothing. On a 2-core machine shared with other work the
 * figures are upper bounds; say so when quoting them.
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { buildApp } from '../agent/http/app.js';
import { createLogger } from '../agent/log/logger.js';
import { systemClock, systemRandom } from '../agent/membership/clock.js';
import { createMembership, type Membership } from '../agent/membership/membership.js';
import { createUdpTransport } from '../agent/membership/udp-transport.js';
import { ConfigSchema, type Config } from '../shared/config-schema.js';
import { Value } from '@sinclair/typebox/value';

const KEY = 'bench gossip-under-load key, 32 characters or more';
const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'agent' },
    connections: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '15' },
    'metrics-kb': { type: 'string', default: '33' },
    'agent-port': { type: 'string' },
    'peer-port': { type: 'string' },
    unbounded: { type: 'boolean', default: false },
  },
});
const config = Value.Default(ConfigSchema, {}) as Config;
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

async function member(id: string, port: number): Promise<Membership> {
  const transport = await createUdpTransport({ host: '127.0.0.1', port, onError: () => undefined });
  return createMembership({ config: { ...config.membership, port }, clusterKey: KEY, self: { id, addr: '127.0.0.1', port, meta: { hostname: id } }, transport, clock: systemClock, random: systemRandom, log: silent });
}

const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN);

if (values.role === 'peer') {
  // Probes the agent; reports its round trips and suspicions per phase on request.
  const m = await member(randomBytes(12).toString('hex'), Number(values['peer-port']));
  m.start();
  await m.join([{ addr: '127.0.0.1', port: Number(values['agent-port']) }]);
  let rtt: number[] = [];
  let suspect = 0;
  let failedBefore = 0;
  m.on('rtt', (ms: number) => rtt.push(ms));
  m.on('change', (ev) => {
    if (ev.type === 'suspect' || ev.type === 'dead') suspect++;
  });
  process.on('message', (msg: string) => {
    if (msg === 'report') {
      const failed = m.stats().probesFailed;
      process.send!({ probes: rtt.length, p50: pct(rtt, 50), p99: pct(rtt, 99), max: Math.max(0, ...rtt), suspect, failed: failed - failedBefore });
      failedBefore = failed;
      rtt = [];
      suspect = 0;
    } else if (msg === 'stop') {
      m.stop();
      process.exit(0);
    }
  });
  process.send!('ready');
} else if (values.role === 'load') {
  // The outsider: `connections` keep-alive connections of GET /metrics, as fast as they are answered.
  const url = `http://127.0.0.1:${values['agent-port']}/metrics`;
  const n = Number(values.connections);
  const dispatcher = new Agent({ connections: n, pipelining: 1 });
  const until = Date.now() + Number(values.seconds) * 1000;
  const counts = { ok: 0, refused: 0, failed: 0 };
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (Date.now() < until) {
        try {
          const r = await request(url, { dispatcher, headersTimeout: 10_000, bodyTimeout: 10_000 });
          await r.body.dump();
          if (r.statusCode === 200) counts.ok++;
          else counts.refused++;
        } catch {
          counts.failed++;
          await new Promise((res) => setTimeout(res, 10));
        }
      }
    }),
  );
  process.send!(counts);
  await dispatcher.close();
  process.exit(0);
} else {
  const agentPort = 20_000 + Math.floor(Math.random() * 20_000);
  const peerPort = agentPort + 1;
  // A /metrics answer of about the agent's size (node_exporter-style series).
  const lines: string[] = [];
  for (let i = 0; lines.join('\n').length < Number(values['metrics-kb']) * 1024; i++) lines.push(`# HELP node_bench_${i} a series\n# TYPE node_bench_${i} gauge\nnode_bench_${i}{device="sda",mode="idle"} ${Math.random() * 1e6}`);
  const body = `${lines.join('\n')}\n`;
  const log = createLogger({ level: 'error', journal: false, write: () => undefined });
  const app = await buildApp({ log, bodyLimit: 16384, version: 'bench', health: () => ({ status: 'pass', version: 'bench', releaseId: 'bench', serviceId: 'bench', description: 'bench', checks: {} }), metrics: () => body.replace(/ [0-9.]+$/gm, () => ` ${Math.random()}`), countError: () => undefined, ...(values.unbounded ? { connectionLimits: { total: 100_000, perClient: 100_000 } } : {}) });
  await app.listen({ host: '127.0.0.1', port: agentPort });
  const self = await member(randomBytes(12).toString('hex'), agentPort);
  self.start();
  const here = fileURLToPath(import.meta.url);
  const peer = fork(here, ['--role', 'peer', '--agent-port', String(agentPort), '--peer-port', String(peerPort)]);
  await new Promise((r) => peer.once('message', r));
  const report = () => new Promise<Record<string, number>>((r) => { peer.once('message', (m) => r(m as Record<string, number>)); peer.send('report'); });
  const seconds = Number(values.seconds);
  await new Promise((r) => setTimeout(r, 3000)); // settle: join, first probes
  await report();

  await new Promise((r) => setTimeout(r, seconds * 1000));
  const quiet = await report();
  const load = fork(here, ['--role', 'load', '--agent-port', String(agentPort), '--connections', values.connections!, '--seconds', String(seconds)]);
  const served = await new Promise<Record<string, number>>((r) => load.once('message', (m) => r(m as Record<string, number>)));
  const loaded = await report();

  console.log(`gossip probes of the agent by a peer, ${seconds} s each, agent port serving /metrics of ${values['metrics-kb']} KB; ${values.unbounded ? 'no connection bound' : 'connection bound 32 per client, 256 in all'}`);
  console.log('phase                        probes  rtt_p50_ms  rtt_p99_ms  rtt_max_ms  failed  suspect/dead  http_ok  http_refused  http_failed');
  const row = (name: string, r: Record<string, number>, h?: Record<string, number>) =>
    console.log(`${name.padEnd(27)}  ${String(r.probes).padStart(6)}  ${r.p50!.toFixed(2).padStart(10)}  ${r.p99!.toFixed(2).padStart(10)}  ${r.max!.toFixed(2).padStart(10)}  ${String(r.failed).padStart(6)}  ${String(r.suspect).padStart(12)}  ${String(h?.ok ?? '-').padStart(7)}  ${String(h?.refused ?? '-').padStart(12)}  ${String(h?.failed ?? '-').padStart(11)}`);
  row('quiet', quiet);
  row(`${values.connections} connections of /metrics`, loaded, served);
  console.log(`p99 ratio loaded/quiet: ${(loaded.p99! / quiet.p99!).toFixed(1)}`);
  peer.send('stop');
  self.stop();
  await app.close();
  process.exit(0);
}
