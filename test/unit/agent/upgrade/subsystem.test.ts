import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { upgradeSubsystem, type UpgradePeer } from '../../../../agent/upgrade/subsystem.js';
import { generateReleaseKey, signRelease } from '../../../../agent/upgrade/signature.js';
import { releaseStore } from '../../../../agent/upgrade/store.js';
import { readState, readTarget, requestPath, writeInstalled, writeState, writeTarget } from '../../../../agent/upgrade/state.js';
import type { ReleaseClient } from '../../../../agent/peers/client.js';
import type { ReleaseStatus } from '../../../../shared/wire/release.js';
import { memoryLogger } from '../../../helpers/fakes.js';

const key = generateReleaseKey();
const NODE = 'a'.repeat(24);
const bytes = Buffer.alloc(1000, 3);
const sig = signRelease(key.privatePem, { version: '1.1.0', bytes });

/** Only what a test names; anything else throws (the fake models nothing more). */
function fakeClient(impl: Partial<ReleaseClient>): ReleaseClient {
  return new Proxy(impl as ReleaseClient, {
    get(target, prop) {
      const f = (target as unknown as Record<string | symbol, unknown>)[prop];
      if (f === undefined) throw new Error(`fake ReleaseClient: ${String(prop)} is not modelled`);
      return f;
    },
  });
}

function setup(t: { teardown: (fn: () => void) => void }, opts: { peers?: UpgradePeer[]; client?: ReleaseClient | null; releaseKey?: string | undefined; running?: string } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'upgrade-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const mem = memoryLogger();
  const u = upgradeSubsystem({
    stateDir: dir, running: opts.running ?? '1.0.0', nodeId: NODE, releaseKey: 'releaseKey' in opts ? opts.releaseKey : key.publicKey, deadlineMs: 300_000, catchUp: true, catchUpIntervalMs: 30_000,
    log: mem.log, peers: () => opts.peers ?? [], client: () => opts.client ?? null, now: () => Date.parse('2026-12-07T00:00:00Z'),
  });
  const refusals = () => Object.fromEntries(u.collectors![0]!.collect().find((m) => m.name === 'piswarm_release_refusals_total')!.samples.map((s) => [s.labels!.reason, s.value]));
  return { dir, u, mem, refusals };
}

t.test('offer, chunks, install: the node verifies first, then asks the root installer', async (t) => {
  const { dir, u, refusals } = setup(t);
  t.same(u.offer({ v: 1, signature: sig }), { v: 1, nodeId: NODE, running: '1.0.0', state: 'receive', have: 0 });
  t.same(u.chunk({ v: 1, sha256: sig.sha256, offset: 0, data: bytes.subarray(0, 600).toString('base64') }), { v: 1, nodeId: NODE, have: 600, complete: false });
  t.throws(() => u.install(sig.sha256), { code: 'PISWARM_ERR_RELEASE_REFUSED', reason: 'truncated', message: /does not hold the whole release/ }, 'not whole yet: refused');
  t.same(u.chunk({ v: 1, sha256: sig.sha256, offset: 600, data: bytes.subarray(600).toString('base64') }), { v: 1, nodeId: NODE, have: 1000, complete: true });
  t.equal(u.offer({ v: 1, signature: sig }).state, 'ready', 'offered again: held whole');
  const st = u.install(sig.sha256);
  t.match(st.upgrade, { sha256: sig.sha256, version: '1.1.0', from: '1.0.0', state: 'requested' });
  t.same(JSON.parse(readFileSync(requestPath(dir), 'utf8')), { sha256: sig.sha256 }, 'the request names the hash only');
  t.throws(() => u.install(sig.sha256), { code: 'PISWARM_ERR_BUSY' }, 'one install at a time');
  t.same(refusals(), { truncated: 1 });
});

t.test('refusals are counted by reason and leave nothing behind', async (t) => {
  const other = generateReleaseKey();
  const { dir, u, refusals } = setup(t);
  t.throws(() => u.offer({ v: 1, signature: signRelease(other.privatePem, { version: '1.1.0', bytes }) }), { code: 'PISWARM_ERR_RELEASE_REFUSED', reason: 'bad_signature' });
  t.throws(() => u.offer({ v: 1, signature: signRelease(key.privatePem, { version: '0.9.0', bytes }) }), { code: 'PISWARM_ERR_RELEASE_REFUSED', reason: 'downgrade' });
  t.equal(u.offer({ v: 1, signature: signRelease(key.privatePem, { version: '1.0.0', bytes }) }).state, 'current', 'the version it runs: nothing to do, no refusal');
  u.offer({ v: 1, signature: sig });
  t.throws(() => u.chunk({ v: 1, sha256: sig.sha256, offset: 0, data: Buffer.alloc(1000, 4).toString('base64') }), { code: 'PISWARM_ERR_RELEASE_REFUSED', reason: 'tampered' });
  t.same(refusals(), { bad_signature: 1, downgrade: 1, tampered: 1 });
  t.notOk(existsSync(requestPath(dir)), 'no install asked');
  const noKey = setup(t, { releaseKey: undefined });
  t.throws(() => noKey.u.offer({ v: 1, signature: sig }), { code: 'PISWARM_ERR_RELEASE_REFUSED', reason: 'no_release_key', message: /accepts no release over the network/ });
});

t.test('/health warns after a rollback and the agent journal says so', async (t) => {
  const { dir, u, mem } = setup(t);
  writeState(dir, { sha256: sig.sha256, version: '1.1.0', from: '1.0.0', state: 'rolled-back', at: '2026-12-07T00:00:00.000Z', detail: 'the new agent was not healthy within 120 s' });
  await u.start!();
  await u.stop!();
  const r = u.checks![0]!.run() as Array<{ status: string; output?: string }>;
  t.equal(r[0]!.status, 'warn');
  t.match(r[0]!.output, /the upgrade to 1\.1\.0 was rolled-back .*not healthy within 120 s/);
  t.ok(mem.lines().some((l) => /the upgrade to 1\.1\.0 was rolled-back/.test(String(l.msg))), 'logged at start');
  const metric = u.collectors![0]!.collect().find((m) => m.name === 'piswarm_upgrade_state')!;
  t.same(metric.samples, [{ labels: { state: 'rolled-back', version: '1.1.0', from: '1.0.0' }, value: 1 }]);
});

const peer: UpgradePeer = { nodeId: 'b'.repeat(24), name: 'pi-2', addr: '10.0.0.2', port: 7070, version: '1.1.0' };
const statusOf = (target: typeof sig | null, running = '1.1.0'): ReleaseStatus => ({ v: 1, nodeId: peer.nodeId, running, upgrade: null, target });

t.test('catch-up: a node that missed the rollout reads the release from a peer and installs it', async (t) => {
  const asked: number[] = [];
  const client = fakeClient({
    releaseStatus: async () => statusOf(sig),
    releaseFetch: async (_p, sha256, offset) => {
      asked.push(offset);
      return { v: 1, nodeId: peer.nodeId, sha256, offset, data: bytes.subarray(offset, offset + 400).toString('base64') };
    },
  });
  const { dir, u } = setup(t, { peers: [peer], client });
  t.equal(await u.catchUpOnce(), 'installing 1.1.0');
  t.same(asked, [0, 400, 800], 'chunk by chunk');
  t.ok(releaseStore(dir).complete(sig.sha256));
  t.same(readTarget(dir), sig, 'the cluster version is kept');
  t.equal(readState(dir)?.state, 'requested');
  t.match(await u.catchUpOnce(), /is requested/, 'not twice while the installer works');
});

t.test('catch-up takes nothing that is not the cluster version, nor a release that failed here', async (t) => {
  const none = setup(t, { peers: [peer], client: fakeClient({ releaseStatus: async () => statusOf(null) }) });
  t.equal(await none.u.catchUpOnce(), 'no peer names a newer target', 'a rollout not finished (no target): nothing');
  const mid = setup(t, { peers: [peer], client: fakeClient({ releaseStatus: async () => statusOf(sig, '1.0.5') }) });
  t.equal(await mid.u.catchUpOnce(), 'no peer names a newer target', 'a target the peer does not run itself: nothing');
  t.equal(await setup(t, { peers: [{ ...peer, version: '1.0.0' }], client: fakeClient({}) }).u.catchUpOnce(), 'current', 'no newer peer: nothing asked');
  const failed = setup(t, { peers: [peer], client: fakeClient({ releaseStatus: async () => statusOf(sig) }) });
  writeState(failed.dir, { sha256: sig.sha256, version: '1.1.0', from: '1.0.0', state: 'rolled-back', at: '2026-12-06T00:00:00.000Z', detail: 'x' });
  t.equal(await failed.u.catchUpOnce(), 'not again: 1.1.0 rolled-back here');
  const forged = setup(t, { peers: [peer], client: fakeClient({ releaseStatus: async () => statusOf(signRelease(generateReleaseKey().privatePem, { version: '1.1.0', bytes })) }) });
  t.match(await forged.u.catchUpOnce(), /^failed: .*does not verify/, 'a target signed with another key: refused');
  t.same(forged.refusals(), { bad_signature: 1 });
  const lying = setup(t, {
    peers: [peer],
    client: fakeClient({ releaseStatus: async () => statusOf(sig), releaseFetch: async (_p, sha256, offset) => ({ v: 1, nodeId: peer.nodeId, sha256, offset, data: Buffer.alloc(1000, 9).toString('base64') }) }),
  });
  t.match(await lying.u.catchUpOnce(), /^failed: .*sha256 differs/, 'bytes that are not the release: refused');
  t.match(await lying.u.catchUpOnce(), /^waiting: the last catch-up to 1\.1\.0 failed/, 'and not tried again at once (no journal line every round)');
  t.notOk(existsSync(requestPath(lying.dir)));
  const target = setup(t);
  writeTarget(target.dir, sig);
  t.equal(await target.u.catchUpOnce(), 'off: no cluster key or no release key', 'no client: off');
});

t.test('revert (--abort): the last install that succeeded is taken back; the version is forgotten; never caught up to again', async (t) => {
  const { dir, u } = setup(t, { running: '1.1.0' });
  writeTarget(dir, sig);
  const installed = { sha256: sig.sha256, version: '1.1.0', from: '1.0.0', state: 'installed' as const, at: '2026-12-06T00:00:00.000Z', detail: 'ok' };
  writeInstalled(dir, installed);
  // A later attempt rolled back: what runs is still the install above, and that is what goes back.
  writeState(dir, { ...installed, sha256: 'f'.repeat(64), version: '1.2.0', from: '1.1.0', state: 'rolled-back' });
  const st = u.revert({ v: 1, version: '1.1.0' });
  t.match(st.upgrade, { sha256: sig.sha256, version: '1.0.0', from: '1.1.0', state: 'requested' });
  t.same(JSON.parse(readFileSync(requestPath(dir), 'utf8')), { sha256: sig.sha256, revertTo: '1.0.0' });
  t.equal(readTarget(dir), null, 'no longer the cluster version');
  t.throws(() => u.revert({ v: 1, version: '1.1.0' }), { code: 'PISWARM_ERR_BUSY' });
  const other = setup(t, { running: '1.0.0' });
  writeTarget(other.dir, sig);
  t.equal(other.u.revert({ v: 1, version: '1.1.0' }).upgrade, null, 'a node that does not run it: nothing to take back');
  t.equal(readTarget(other.dir), null, 'but it forgets the version');
  const reverted = setup(t, { peers: [peer], client: fakeClient({ releaseStatus: async () => statusOf(sig) }) });
  writeState(reverted.dir, { ...installed, version: '1.0.0', from: '1.1.0', state: 'reverted' });
  t.equal(await reverted.u.catchUpOnce(), 'not again: 1.1.0 reverted here', 'a peer still on it does not bring it back');
});

t.test('releases offered but never installed do not pile up: two whole ones at most, besides the one arriving', async (t) => {
  const { dir, u } = setup(t);
  const st = releaseStore(dir);
  const sigs = ['1.1.0', '1.2.0', '1.3.0'].map((v, i) => {
    const b = Buffer.alloc(100, i + 1);
    const s = signRelease(key.privatePem, { version: v, bytes: b });
    u.offer({ v: 1, signature: s });
    u.chunk({ v: 1, sha256: s.sha256, offset: 0, data: b.toString('base64') });
    utimesSync(st.releasePath(s.sha256), 1000 + i, 1000 + i);
    return s;
  });
  u.offer({ v: 1, signature: signRelease(key.privatePem, { version: '1.4.0', bytes: Buffer.alloc(100, 9) }) });
  t.same(sigs.map((s) => st.complete(s.sha256)), [false, true, true], 'the oldest whole one went');
});
