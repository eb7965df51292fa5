/**
 * Zero-touch formation on simulated Pis (containers booting systemd, their
 * own dockerd and the agent from our unit), through the sim harness.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { deriveClusterKeys, type ClusterKeys } from '../../../agent/identity/keys.js';
import { openToken, signRequest, verifyResponse } from '../../../agent/peers/protocol.js';
import { PEER_AUTH_HEADER, PEER_BODY_LIMIT } from '../../../shared/wire/peer.js';
import { httpGet, sim, skipReason, startCluster, until } from '../helpers/cluster.js';

const skip = await skipReason();
const FAST = { PISWARM_FORMATION_HOLD_OFF_MS: '2000', PISWARM_DISCOVERY_CONFIRM_INTERVAL_MS: '1000' };

interface NodeLs { hostname: string; status: string; manager: string }

/** `docker node ls` on the first node that answers as a manager. */
async function nodeLs(ref: sim.ClusterRef, names: string[]): Promise<NodeLs[] | null> {
  for (const name of names) {
    const r = await sim.exec(ref, name, ['docker', 'node', 'ls', '--format', '{{.Hostname}}|{{.Status}}|{{.ManagerStatus}}'], { timeoutMs: 10_000 });
    if (r.code === 0) return r.stdout.trim().split('\n').filter(Boolean).map((l) => { const [hostname, status, manager] = l.split('|'); return { hostname: hostname!, status: status!, manager: manager ?? '' }; });
  }
  return null;
}

/** Swarm cluster ids as each node's engine reports them (workers: via their node's swarm state). */
async function swarmStates(ref: sim.ClusterRef, names: string[]): Promise<Array<{ name: string; state: string; cluster: string }>> {
  return Promise.all(names.map(async (name) => {
    const r = await sim.exec(ref, name, ['docker', 'info', '--format', '{{.Swarm.LocalNodeState}}|{{if .Swarm.Cluster}}{{.Swarm.Cluster.ID}}{{end}}'], { timeoutMs: 10_000 });
    const [state, cluster] = r.stdout.trim().split('|');
    return { name, state: state ?? '', cluster: cluster ?? '' };
  }));
}

const allReady = (ls: NodeLs[] | null, n: number) => ls !== null && ls.length === n && ls.every((x) => x.status === 'Ready');

/** POST from the host over the bridge, as a peer would; never throws (status 0 and the error as text on failure). */
async function post(url: string, body: string, auth?: string): Promise<{ status: number; text: string; headers: string }> {
  try {
    const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...(auth ? { [PEER_AUTH_HEADER]: auth } : {}) }, signal: AbortSignal.timeout(5000) });
    return { status: res.status, text: await res.text(), headers: JSON.stringify([...res.headers]) };
  } catch (err) {
    return { status: 0, text: (err as Error).message, headers: '' };
  }
}

/** Every sample of a /metrics page by series (`name{labels}`); a counter not yet bumped is absent, i.e. 0. */
async function samples(url: string): Promise<{ text: string; series: Map<string, number> }> {
  const text = (await httpGet(url)).text;
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    series.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return { text, series };
}

t.test('3 nodes powered on together form one swarm; late node joins; stranger refused; restart and reboot change nothing', { skip, timeout: 900_000 }, async (t) => {
  const c = await startCluster(t, { prefix: 'it-form3', nodes: 3, env: { ...FAST, PISWARM_FORMATION_EXPECT: '3' } });
  const names = () => c.nodes.map((n) => n.name);
  const ls = await until('3 nodes Ready', async () => { const l = await nodeLs(c.ref, names()); return allReady(l, 3) && l; }, 90_000);
  t.equal(ls.length, 3, 'docker node ls: 3 nodes, all Ready');
  t.equal(ls.filter((x) => x.manager === 'Leader').length, 1, 'one leader');
  const states = await swarmStates(c.ref, names());
  t.ok(states.every((s) => s.state === 'active'), 'every engine is in a swarm');
  for (const n of c.nodes) {
    // The controller notices its own engine's new state on its next tick, a moment after `docker node ls` does.
    const formation = async () => JSON.parse((await httpGet(`${n.apiUrl}/v1/formation`)).text) as { phase: string; confirmedPeers: unknown[] };
    const f = await until(`${n.name} in phase member or manager`, async () => { const x = await formation(); return ['member', 'manager'].includes(x.phase) && x; }, 15_000).catch(formation);
    t.ok(['member', 'manager'].includes(f.phase), `${n.name} phase ${f.phase}`);
    t.equal(f.confirmedPeers.length, 2, `${n.name} confirmed both others`);
  }

  await t.test('a node powered on after formation joins by itself', async (t) => {
    const late = await sim.add({ ...c.ref, env: { ...FAST, PISWARM_FORMATION_EXPECT: '3' } });
    c.nodes.push(late);
    const l = await until('4 nodes Ready', async () => { const x = await nodeLs(c.ref, names()); return allReady(x, 4) && x; }, 90_000);
    t.equal(l.length, 4);
  });

  await t.test('grant requests from the host that are forged, replayed, stale, malformed or oversized: 4xx with a stable code, no token, counted, the agent keeps serving', async (t) => {
    const keys = deriveClusterKeys(await sim.clusterKey(c.ref));
    const other = deriveClusterKeys(`not-this-cluster-${randomBytes(8).toString('hex')}`);
    // Our cluster id with another key's MAC: gets past the cluster check, fails the signature.
    const forger: ClusterKeys = { ...other, clusterId: keys.clusterId };
    const ls = await nodeLs(c.ref, names());
    const leader = c.nodes.find((n) => n.name === ls?.find((x) => x.manager === 'Leader')?.hostname);
    if (!leader) throw new Error(`no leader in docker node ls: ${JSON.stringify(ls)}`);
    const url = `${leader.apiUrl}/v1/grants`;
    const joiner = randomBytes(12).toString('hex');
    const body = JSON.stringify({ v: 1, nodeId: joiner, name: 'it-grant-probe', addr: leader.ip.replace(/\.\d+$/, '.1') });
    const nonce = () => randomBytes(16).toString('base64url');
    const sign = (b: string, o: { k?: ClusterKeys; now?: number; n?: string } = {}) =>
      signRequest(o.k ?? keys, { method: 'POST', path: '/v1/grants', body: b, nodeId: joiner, to: `${leader.ip}:7070`, now: o.now ?? Date.now(), nonce: o.n ?? nonce() });

    // The real thing first, so the replay below is of a request the agent accepted.
    const goodNonce = nonce();
    const goodAuth = sign(body, { n: goodNonce });
    const before = await samples(`${leader.apiUrl}/metrics`);
    const good = await post(url, body, goodAuth);
    t.equal(good.status, 200, 'a correctly signed grant request is answered 200');
    if (good.status !== 200) t.comment(good.text);
    t.notOk(good.text.includes('SWMTKN') || good.headers.includes('SWMTKN'), 'the answer holds no join token in clear');
    const answer = JSON.parse(good.text) as { swarmId: string; managerAddrs: string[]; iv: string; ciphertext: string; tag: string };
    const auth = JSON.parse(good.headers) as Array<[string, string]>;
    const h = verifyResponse(keys, { requestNonce: goodNonce, to: `${leader.ip}:7070`, status: 200, body: good.text, header: auth.find(([k]) => k === PEER_AUTH_HEADER)?.[1], now: Date.now(), windowMs: 30_000 });
    const token = openToken(keys, { requestNonce: goodNonce, responseNonce: h.nonce, joinerId: joiner, managerId: h.nodeId, swarmId: answer.swarmId, managerAddrs: answer.managerAddrs }, answer);
    t.ok(token.startsWith('SWMTKN-1-'), 'the answer is signed by the agent and its sealed token opens with the cluster key (token not printed)');
    const afterGood = await samples(`${leader.apiUrl}/metrics`);
    const delta = (a: Map<string, number>, b: Map<string, number>, s: string) => (b.get(s) ?? 0) - (a.get(s) ?? 0);
    t.equal(delta(before.series, afterGood.series, 'piswarm_formation_grants_issued_total'), 1, 'counted as issued');

    const refused = (r: string) => `piswarm_formation_grants_refused_total{reason="${r}"}`;
    const authFail = (r: string) => `piswarm_peer_auth_failures_total{reason="${r}"}`;
    const http = (code: string) => `piswarm_http_errors_total{code="${code}"}`;
    const garbage = '{"v":1,"nodeId":';
    const cases: Array<{ what: string; send: () => ReturnType<typeof post>; status: number; code: string; counted: string[]; anyOf?: string[] }> = [
      { what: 'signed with another cluster\'s key', send: () => post(url, body, sign(body, { k: other })), status: 403, code: 'PISWARM_ERR_WRONG_CLUSTER', counted: [refused('wrong_cluster'), authFail('wrong_cluster')] },
      { what: 'our cluster id, signed with a wrong key', send: () => post(url, body, sign(body, { k: forger })), status: 401, code: 'PISWARM_ERR_AUTH_FAILED', counted: [refused('bad_mac'), authFail('bad_mac')] },
      { what: 'a replay of the accepted request', send: () => post(url, body, goodAuth), status: 409, code: 'PISWARM_ERR_REPLAY', counted: [refused('replay'), authFail('replay')] },
      { what: 'a timestamp 5 minutes old', send: () => post(url, body, sign(body, { now: Date.now() - 300_000 })), status: 400, code: 'PISWARM_ERR_STALE', counted: [refused('stale'), authFail('stale')] },
      // Refused by the JSON parser before any handler: counted as an HTTP error, and (since parse errors count as refusals) maybe as a refusal.
      { what: 'a body that is not JSON', send: () => post(url, garbage, sign(garbage)), status: 400, code: 'PISWARM_ERR_BAD_REQUEST', counted: [], anyOf: [http('PISWARM_ERR_BAD_REQUEST'), refused('malformed')] },
      { what: 'signed JSON that is no grant request', send: () => post(url, '{"v":1,"nodeId":"zz"}', sign('{"v":1,"nodeId":"zz"}')), status: 400, code: 'PISWARM_ERR_BAD_REQUEST', counted: [], anyOf: [refused('malformed'), http('PISWARM_ERR_BAD_REQUEST')] },
      { what: `a body over ${PEER_BODY_LIMIT} bytes`, send: () => { const big = JSON.stringify({ v: 1, nodeId: joiner, pad: 'x'.repeat(PEER_BODY_LIMIT + 1000) }); return post(url, big, sign(big)); }, status: 413, code: 'PISWARM_ERR_BODY_TOO_LARGE', counted: [refused('too_large'), authFail('too_large')] },
    ];
    for (const k of cases) {
      const m0 = await samples(`${leader.apiUrl}/metrics`);
      const r = await k.send();
      t.equal(r.status, k.status, `${k.what}: ${k.status}`);
      let code: unknown;
      try { code = (JSON.parse(r.text) as { code?: unknown }).code; } catch { code = r.text; }
      t.equal(code, k.code, `${k.what}: ${k.code}`);
      t.notOk(r.text.includes('SWMTKN') || r.headers.includes('SWMTKN'), `${k.what}: no SWMTKN in the answer`);
      const m1 = await samples(`${leader.apiUrl}/metrics`);
      const once = (s: string) => { const d = delta(m0.series, m1.series, s); t.equal(d, 1, `${k.what}: ${s} +1 (got +${d})`); };
      if (!k.anyOf) once(http(k.code));
      k.counted.forEach(once);
      if (k.anyOf) {
        const rose = k.anyOf.filter((s) => delta(m0.series, m1.series, s) >= 1);
        t.ok(rose.length > 0, `${k.what}: counted (${rose.join(', ') || `none of ${k.anyOf.join(', ')}`})`);
      }
      t.notOk(m1.text.includes('SWMTKN'), `${k.what}: no SWMTKN in /metrics`);
    }
    // The accepted request, replayed to every other node: each refuses it as addressed to the
    // leader (each node keeps its own replay cache; the addressee is what binds it to one node).
    for (const other of c.nodes.filter((x) => x.name !== leader.name)) {
      const m0 = await samples(`${other.apiUrl}/metrics`);
      const r = await post(`${other.apiUrl}/v1/grants`, body, goodAuth);
      let code: unknown;
      try { code = (JSON.parse(r.text) as { code?: unknown }).code; } catch { code = r.text; }
      t.equal(r.status, 403, `replayed to ${other.name}: 403`);
      t.equal(code, 'PISWARM_ERR_MISADDRESSED', `replayed to ${other.name}: PISWARM_ERR_MISADDRESSED`);
      const m1 = await samples(`${other.apiUrl}/metrics`);
      t.equal(delta(m0.series, m1.series, authFail('misaddressed')), 1, `replayed to ${other.name}: counted as misaddressed`);
      t.equal(delta(m0.series, m1.series, 'piswarm_formation_grants_issued_total'), 0, `replayed to ${other.name}: no grant issued`);
    }
    const health = await httpGet(`${leader.apiUrl}/health`);
    t.ok([200, 503].includes(health.status), `${leader.name} still answers /health (${health.status})`);
    t.match(JSON.parse(health.text), { status: /^(pass|warn|fail)$/ }, 'with a health document');
    t.notOk(health.text.includes('SWMTKN'), 'that holds no token');
    const still = await nodeLs(c.ref, names());
    t.ok(allReady(still, 4), 'the swarm still has its 4 nodes Ready and no fifth (the probe never joined)');
  });

  await t.test('a node with another cluster key never joins, is never a peer, and warns', async (t) => {
    const stranger = await sim.add({ ...c.ref, clusterKey: 'a-completely-different-cluster-key-0123456789', env: { ...FAST, PISWARM_FORMATION_EXPECT: '1' } });
    await new Promise((r) => setTimeout(r, 15_000));
    const l = await nodeLs(c.ref, names());
    t.equal(l?.length, 4, 'still 4 nodes in our swarm');
    t.notOk(l?.some((x) => x.hostname === stranger.name), 'the stranger is not in it');
    for (const n of c.nodes) {
      const peers = JSON.parse((await httpGet(`${n.apiUrl}/v1/peers`)).text).peers as Array<{ addr: string }>;
      t.notOk(peers.some((p) => p.addr === stranger.ip), `${n.name} does not list it`);
    }
    const health = JSON.parse((await httpGet(`${stranger.apiUrl}/health`)).text);
    t.equal(health.checks['discovery:peers']?.[0]?.status, 'warn', 'its /health warns about another cluster');
    t.match(health.checks['discovery:peers']?.[0]?.output ?? '', /another piswarm cluster/);
    const own = await swarmStates(c.ref, [stranger.name]);
    t.not(own[0]!.cluster, (await swarmStates(c.ref, [names()[0]!]))[0]!.cluster || 'x', 'never in our swarm');
  });

  await t.test('agent restart and node reboot: no second swarm, no duplicate node', async (t) => {
    const before = await nodeLs(c.ref, names());
    const worker = c.nodes[2]!.name;
    await sim.exec(c.ref, worker, ['systemctl', 'restart', 'piswarm']);
    await until('agent back', async () => (await httpGet(`${c.nodes[2]!.apiUrl}/health`)).status > 0, 60_000);
    await sim.restart(c.ref, c.nodes[1]!.name);
    await new Promise((r) => setTimeout(r, 10_000));
    const after = await until('4 Ready again', async () => { const x = await nodeLs(c.ref, names()); return allReady(x, 4) && x; }, 120_000);
    t.same(after.map((x) => x.hostname).sort(), before!.map((x) => x.hostname).sort(), 'same nodes, no duplicate entries');
    const ids = new Set((await swarmStates(c.ref, names())).filter((s) => s.cluster).map((s) => s.cluster));
    t.equal(ids.size, 1, 'managers report one swarm id');
  });

  await t.test('no journal line of any node contains SWMTKN or the cluster key', async (t) => {
    const key = await sim.clusterKey(c.ref);
    let inits = 0;
    for (const n of c.nodes) {
      const j = await sim.logs(c.ref, n.name);
      inits += (j.match(/"msg":"created the swarm"/g) ?? []).length;
      t.notOk(j.includes('SWMTKN'), `${n.name}: no join token`);
      t.notOk(j.includes(key), `${n.name}: no cluster key`);
      t.match(j, /formation phase changed/, `${n.name}: transitions are logged`);
    }
    t.equal(inits, 1, 'one swarm created in the whole life of the cluster, restarts and reboots included');
  });
});

t.test('5 nodes powered on together, five fresh times: exactly one swarm every time', { skip, timeout: 1_800_000 }, async (t) => {
  for (let round = 1; round <= 5; round++) {
    await t.test(`round ${round}`, async (t) => {
      const c = await startCluster(t, { prefix: `it-form5r${round}`, nodes: 5, env: { ...FAST, PISWARM_FORMATION_EXPECT: '5' } });
      const names = c.nodes.map((n) => n.name);
      const ls = await until('5 nodes Ready', async () => { const l = await nodeLs(c.ref, names); return allReady(l, 5) && l; }, 120_000);
      t.equal(ls.length, 5);
      const states = await swarmStates(c.ref, names);
      t.ok(states.every((s) => s.state === 'active'), 'all five in a swarm');
      const ids = new Set(states.filter((s) => s.cluster).map((s) => s.cluster));
      t.equal(ids.size, 1, `exactly one swarm id among managers (${[...ids].join(', ')})`);
      let inits = 0;
      for (const n of names) inits += ((await sim.logs(c.ref, n)).match(/"msg":"created the swarm"/g) ?? []).length;
      t.equal(inits, 1, 'exactly one node created a swarm');
    });
  }
});
