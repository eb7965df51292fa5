import t from 'tap';
import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDockerEngine, toEngineInfo, toSwarmNode, translateDockerError } from '../../../../agent/docker/engine.js';

t.test('engine errors become coded domain errors without secrets', async (t) => {
  const refused = translateDockerError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'info');
  t.equal(refused.code, 'PISWARM_ERR_DOCKER_UNREACHABLE');
  const missing = translateDockerError(Object.assign(new Error('connect ENOENT /var/run/docker.sock'), { code: 'ENOENT' }), 'info');
  t.equal(missing.code, 'PISWARM_ERR_DOCKER_UNREACHABLE');
  const notManager = translateDockerError(Object.assign(new Error('(HTTP code 503) unexpected'), { statusCode: 503, json: { message: 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.' } }), 'node ls');
  t.equal(notManager.code, 'PISWARM_ERR_NOT_MANAGER');
  const refusedJoin = translateDockerError(Object.assign(new Error('x'), { statusCode: 500, json: { message: 'rpc error: invalid join token SWMTKN-1-abcdef-ghijk' } }), 'swarm join');
  t.equal(refusedJoin.code, 'PISWARM_ERR_DOCKER');
  t.notMatch(refusedJoin.message, /abcdef/);
  t.match(refusedJoin.message, /SWMTKN-\[REDACTED\]/);
  t.equal(translateDockerError(refusedJoin, 'again'), refusedJoin, 'already translated errors pass through');
});

t.test('engine /info maps to the domain shape', async (t) => {
  const info = toEngineInfo({ ServerVersion: '20.10.24', Swarm: { LocalNodeState: 'active', NodeID: 'n1', NodeAddr: '172.30.0.2', ControlAvailable: true, Managers: 1, Nodes: 3, Cluster: { ID: 'c1' }, RemoteManagers: [{ NodeID: 'n1', Addr: '172.30.0.2:2377' }], Error: '' } });
  t.same(info, { serverVersion: '20.10.24', swarm: { state: 'active', nodeId: 'n1', nodeAddr: '172.30.0.2', clusterId: 'c1', isManager: true, managers: 1, nodes: 3, remoteManagers: [{ nodeId: 'n1', addr: '172.30.0.2:2377' }], error: null } });
  const inactive = toEngineInfo({ ServerVersion: '28.2.2', Swarm: { LocalNodeState: 'inactive', NodeID: '', ControlAvailable: false } });
  t.equal(inactive.swarm.state, 'inactive');
  t.equal(inactive.swarm.nodeId, null);
  t.equal(inactive.swarm.isManager, false);
});

t.test('engine node objects map to the domain shape', async (t) => {
  const n = toSwarmNode({ ID: 'abc', Version: { Index: 12 }, CreatedAt: 'c', UpdatedAt: 'u', Spec: { Role: 'manager', Availability: 'drain', Labels: { a: 'b' } }, Description: { Hostname: 'pi-1' }, Status: { State: 'ready', Addr: '10.0.0.1' }, ManagerStatus: { Leader: true, Reachability: 'reachable', Addr: '10.0.0.1:2377' } });
  t.same(n, { id: 'abc', hostname: 'pi-1', role: 'manager', availability: 'drain', state: 'ready', addr: '10.0.0.1', leader: true, reachability: 'reachable', managerAddr: '10.0.0.1:2377', labels: { a: 'b' }, createdAt: 'c', updatedAt: 'u', version: 12 });
  t.equal(toSwarmNode({ ID: 'w', Spec: { Role: 'worker' }, Status: { State: 'down' } }).reachability, null);
  t.equal(toSwarmNode({ ID: 'w', Spec: { Role: 'worker' }, Status: { State: 'down' } }).managerAddr, null, 'a worker has no Raft address');
});

t.test('swarm init, join, leave and a patient info get the swarm deadline; other calls the call deadline', async (t) => {
  // An engine socket that answers as slowly as a removed manager's dockerd
  // (docker info: 12.8 s on Docker 26.1.5), scaled down: 400 ms against a
  // 150 ms call deadline. Anything it does not model is a 500.
  const socketPath = join(mkdtempSync(join(tmpdir(), 'piswarm-engine-')), 'docker.sock');
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    seen.push(`${req.method} ${path}`);
    const answer = (code: number, body: unknown) => setTimeout(() => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); }, 400);
    if (req.method === 'GET' && path === '/info') return answer(200, { ServerVersion: '26.1.5', Swarm: { LocalNodeState: 'pending', NodeID: 'n1', ControlAvailable: true } });
    if (req.method === 'POST' && path === '/swarm/leave') return answer(200, {});
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ message: `not modelled: ${req.method} ${path}` }));
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const engine = createDockerEngine({ socketPath, timeoutMs: 150, swarmTimeoutMs: 2000 });
  await t.rejects(engine.info(), { code: 'PISWARM_ERR_DOCKER_UNREACHABLE' }, 'an ordinary read gives up at the call deadline');
  t.equal((await engine.info({ patient: true })).swarm.state, 'pending', 'a patient read waits for the answer');
  await t.resolves(engine.swarmLeave(true), 'leave waits for the engine');
  t.same(seen, ['GET /info', 'GET /info', 'POST /swarm/leave']);
});

t.test('no socket file: unreachable without a dial, and the engine is reached once its socket appears', async (t) => {
  const socketPath = join(mkdtempSync(join(tmpdir(), 'piswarm-engine-')), 'docker.sock');
  const engine = createDockerEngine({ socketPath, timeoutMs: 1000, swarmTimeoutMs: 2000 });
  await t.rejects(engine.info(), { code: 'PISWARM_ERR_DOCKER_UNREACHABLE', message: 'the Docker engine does not answer (ENOENT)', details: { op: 'info', engineMessage: `no socket at ${socketPath}` } });
  await t.rejects(engine.listNodes(), { code: 'PISWARM_ERR_DOCKER_UNREACHABLE' }, 'every call');
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url ?? '').startsWith('/info')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ ServerVersion: '26.1.5', Swarm: { LocalNodeState: 'inactive' } }));
    }
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ message: `not modelled: ${req.method} ${req.url}` }));
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  t.equal((await engine.info()).serverVersion, '26.1.5', 'the socket is looked for on every call, not once');
});
