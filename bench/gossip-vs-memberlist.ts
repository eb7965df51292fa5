/**
 * Gossip on the wire, side by side with hashicorp/memberlist in one run:
 * N members each, over real UDP on loopback, in one process per side.
 * For each side: bytes and datagrams sent per node per second while idle,
 * then one member crashes (stops without leaving) and we time until every
 * other member has it dead, and count the bytes per node per second of
 * that window. Prints a table with ratios; asserts nothing.
 *
 *   node dist/bench/gossip-vs-memberlist.js [--n 20] [--settle-s 20] [--idle-s 30] [--crash-wait-s 60]
 *                                           [--meta-every-s 0] [--no-memberlist] [--memberlist-bin PATH]
 *
 * --meta-every-s 5 has every member publish new metadata that often, shaped
 * as the agent's live facts (the cluster view's, about 230 bytes of JSON),
 * on both sides (memberlist: UpdateNode); 0 keeps it static.
 *
 * Our side is the agent's own core and UDP adapter (agent/membership) with
 * the shipped defaults. The memberlist side is bench/memberlist/main.go,
 * built here with Debian's golang-go and golang-github-hashicorp-memberlist-dev
 * (memberlist 0.2.2, DefaultLANConfig), run twice: without encryption, and
 * with a SecretKey (AES-GCM), since every piswarm datagram is authenticated.
 * Its bytes are counted by a transport wrapper (UDP payloads and TCP
 * push/pull streams); ours are the core's bytesSent (UDP payloads).
 * Without Go the memberlist rows say why and the ratios are left out.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Value } from '@sinclair/typebox/value';
import { systemClock, systemRandom } from '../agent/membership/clock.js';
import { createMembership, type Membership } from '../agent/membership/membership.js';
import { createUdpTransport, type UdpTransport } from '../agent/membership/udp-transport.js';
import { ConfigSchema, type Config } from '../shared/config-schema.js';
import { GOSSIP_WIRE_VERSION } from '../shared/wire/gossip.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '20' },
    'settle-s': { type: 'string', default: '20' },
    'idle-s': { type: 'string', default: '30' },
    'crash-wait-s': { type: 'string', default: '60' },
    'meta-every-s': { type: 'string', default: '0' },
    'no-memberlist': { type: 'boolean', default: false },
    'memberlist-bin': { type: 'string' },
  },
});
const N = Number(values.n);
const SETTLE_S = Number(values['settle-s']);
const IDLE_S = Number(values['idle-s']);
const CRASH_WAIT_S = Number(values['crash-wait-s']);
const META_EVERY_S = Number(values['meta-every-s']);
const KEY = 'bench gossip-vs-memberlist key, 32 characters or more';

/** The agent's live facts' shape (agent/cluster/facts.ts); bench/memberlist/main.go builds the same JSON. */
function liveFacts(name: string, seq: number) {
  return {
    diskBps: 41943040, hostname: name, role: 'worker', swarmNodeId: 'k3v9q2m1x8c7b6n5z4a0s1d2f', tempC: 40 + (seq % 50) / 10,
    x: [seq, '0.5.0', 'pass', [], seq % 97, 30 + (seq % 11), (seq % 300) / 100, false, 71, 3600 + 5 * seq, 'arm64', 'Raspberry Pi 4 Model B Rev 1.4', 'd03114s', 7809],
  };
}

/** What each side reports (the Go program prints the same fields as JSON). */
export interface SideResult {
  name: string;
  n: number;
  idleBytesPerNodeS: number;
  idleMsgsPerNodeS: number;
  crashSeenByAllMs: number | null;
  crashBytesPerNodeS: number;
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

async function ours(): Promise<SideResult> {
  const config = Value.Default(ConfigSchema, {}) as Config;
  const nodes: Array<{ m: Membership; t: UdpTransport; id: string }> = [];
  for (let i = 0; i < N; i++) {
    const t = await createUdpTransport({ host: '127.0.0.1', port: 0, onError: () => undefined });
    const { port } = t.address();
    const id = `pi-${String(i + 1).padStart(2, '0')}`;
    const m = createMembership({ config: { ...config.membership, port }, clusterKey: KEY, self: { id, addr: '127.0.0.1', port, meta: { hostname: id, role: 'worker' } }, transport: t, clock: systemClock, random: systemRandom, log: silent });
    m.start();
    nodes.push({ m, t, id });
  }
  const timers: NodeJS.Timeout[] = [];
  const crashed = new Set<Membership>();
  if (META_EVERY_S > 0) {
    nodes.forEach((x, i) => {
      let seq = 0;
      const publish = () => {
        if (!crashed.has(x.m)) x.m.updateMeta(liveFacts(x.id, ++seq));
      };
      timers.push(setTimeout(() => {
        publish();
        timers.push(setInterval(publish, META_EVERY_S * 1000));
      }, (i * META_EVERY_S * 1000) / N));
    });
  }
  try {
    const seed = nodes[0]!.t.address();
    for (const x of nodes.slice(1)) await x.m.join([seed]);
    await sleep(SETTLE_S * 1000);
    const alive = nodes.filter((x) => x.m.members().filter((m) => m.state === 'alive').length === N).length;
    if (alive !== N) throw new Error(`after ${SETTLE_S} s only ${alive} of ${N} members see all ${N} alive`);
    const sent = (xs: typeof nodes) => xs.reduce((a, x) => { const s = x.m.stats(); return { bytes: a.bytes + s.bytesSent, msgs: a.msgs + s.messagesSent }; }, { bytes: 0, msgs: 0 });
    const i0 = sent(nodes);
    const t0 = performance.now();
    await sleep(IDLE_S * 1000);
    const i1 = sent(nodes);
    const idleS = (performance.now() - t0) / 1000;

    // Crash the last member: no leave, timers stopped, socket closed.
    const victim = nodes.at(-1)!;
    const rest = nodes.slice(0, -1);
    crashed.add(victim.m);
    const c0 = sent(rest);
    const tc = performance.now();
    victim.m.stop();
    await victim.t.close();
    let seenByAll: number | null = null;
    while (performance.now() - tc < CRASH_WAIT_S * 1000) {
      if (rest.every((x) => x.m.member(victim.id)?.state === 'dead')) {
        seenByAll = performance.now() - tc;
        break;
      }
      await sleep(20);
    }
    const crashS = (performance.now() - tc) / 1000;
    const c1 = sent(rest);
    return {
      name: `piswarm (wire v${GOSSIP_WIRE_VERSION}, HMAC)${META_EVERY_S > 0 ? `, facts every ${META_EVERY_S}s` : ''}`, n: N,
      idleBytesPerNodeS: (i1.bytes - i0.bytes) / N / idleS, idleMsgsPerNodeS: (i1.msgs - i0.msgs) / N / idleS,
      crashSeenByAllMs: seenByAll, crashBytesPerNodeS: (c1.bytes - c0.bytes) / rest.length / crashS,
    };
  } finally {
    for (const h of timers) clearInterval(h);
    for (const x of nodes) {
      x.m.stop();
      await x.t.close().catch(() => undefined);
    }
  }
}

/** Builds bench/memberlist/main.go with Debian's Go and memberlist (GOPATH mode, offline). */
function buildMemberlist(): string {
  if (values['memberlist-bin']) return values['memberlist-bin'];
  const gocode = '/usr/share/gocode/src/github.com/hashicorp/memberlist';
  if (!fs.existsSync('/usr/bin/go') || !fs.existsSync(gocode)) throw new Error('needs golang-go and golang-github-hashicorp-memberlist-dev (apt-get install golang-go golang-github-hashicorp-memberlist-dev)');
  const out = path.join(os.tmpdir(), 'piswarm-bench-memberlist');
  const env = { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOFLAGS: '', GOPROXY: 'off', GOCACHE: path.join(os.tmpdir(), 'piswarm-go-cache') };
  execFileSync('go', ['build', '-o', out, path.join(ROOT, 'bench/memberlist/main.go')], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  return out;
}

function memberlist(bin: string, encrypt: boolean): SideResult {
  const args = ['-n', String(N), '-settle', `${SETTLE_S}s`, '-idle', `${IDLE_S}s`, '-crash-wait', `${CRASH_WAIT_S}s`, '-meta-every', `${META_EVERY_S}s`];
  if (encrypt) args.push('-encrypt');
  const run = spawnSync(bin, args, { encoding: 'utf8', timeout: (SETTLE_S + IDLE_S + CRASH_WAIT_S + 60) * 1000 });
  const line = run.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as SideResult;
  } catch {
    throw new Error(`memberlist bench printed no result (exit ${run.status}): ${run.stderr.slice(-500)}`);
  }
}

const f = (v: number | null, d = 0) => (v === null ? 'never' : v.toFixed(d));
const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? '' : (a / b).toFixed(2));

async function main(): Promise<void> {
  console.log(`gossip-vs-memberlist: N ${N}, real UDP on 127.0.0.1, settle ${SETTLE_S} s, idle ${IDLE_S} s, crash: one member stops without leaving; metadata ${META_EVERY_S > 0 ? `new live facts every ${META_EVERY_S} s` : 'static'}; ${os.cpus().length} CPUs, Node ${process.version}`);
  const rows: SideResult[] = [await ours()];
  if (!values['no-memberlist']) {
    try {
      const bin = buildMemberlist();
      rows.push(memberlist(bin, false), memberlist(bin, true));
    } catch (err) {
      rows.push({ name: 'memberlist', n: N, idleBytesPerNodeS: NaN, idleMsgsPerNodeS: NaN, crashSeenByAllMs: null, crashBytesPerNodeS: NaN, error: (err as Error).message });
    }
  }
  const w = [46, 14, 14, 18, 16, 24];
  const line = (cells: string[]) => console.log(cells.map((c, i) => c.padEnd(w[i] ?? 10)).join(' '));
  line(['', 'idle B/node/s', 'idle dgram/s', 'crash: dead by all', 'crash B/node/s', 'ratio piswarm / this']);
  const us = rows[0]!;
  for (const r of rows) {
    if (r.error) {
      line([r.name, `not run: ${r.error}`]);
      continue;
    }
    const seen = r.crashSeenByAllMs === null ? 'never' : `${(r.crashSeenByAllMs / 1000).toFixed(2)} s`;
    const ratios = r === us ? '' : `${ratio(us.idleBytesPerNodeS, r.idleBytesPerNodeS)} idle B, ${ratio(us.crashBytesPerNodeS, r.crashBytesPerNodeS)} crash B, ${ratio(us.crashSeenByAllMs, r.crashSeenByAllMs)} detection`;
    line([r.name, f(r.idleBytesPerNodeS), f(r.idleMsgsPerNodeS, 2), seen, f(r.crashBytesPerNodeS), ratios]);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
