import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EngineInfo } from '../../../../agent/docker/engine.js';
import { createFormationContext } from '../../../../agent/formation/controller.js';
import { keepManagers, relayManagerList, relayManagers } from '../../../../agent/formation/relay-managers.js';
import { createFileFormationStore, type FormationStore } from '../../../../agent/formation/store.js';
import { VirtualClock } from '../../../../agent/membership/sim/virtual-clock.js';
import type { PeerSwarm } from '../../../../shared/wire/peer.js';
import { fakeDocker, memoryLogger } from '../../../helpers/fakes.js';
import { KEY, testConfig } from './helpers.js';

const swarm = (id: string, role: 'manager' | 'worker', managerAddrs: string[]): PeerSwarm => ({ id, createdAt: null, role, nodes: null, managerAddrs, runningTasks: null });

t.test('relayManagerList: the engine\'s managers, then what peers of the same swarm report, then the kept ones, each once', async (t) => {
  const peers = [
    { addr: '10.0.0.5', swarm: swarm('S', 'worker', ['10.0.0.2:2377', '10.0.0.3:2377']) },
    { addr: '10.0.0.3', swarm: swarm('S', 'manager', ['10.0.0.2:2377']) },
    { addr: '10.0.0.9', swarm: swarm('OTHER', 'manager', ['10.0.0.9:2377']) },
    { addr: '10.0.0.7', swarm: null },
  ];
  t.same(relayManagerList(['10.0.0.2:2377'], peers, 'S', ['10.0.0.4:2377', '10.0.0.3:2377']), ['10.0.0.2:2377', '10.0.0.3:2377', '10.0.0.4:2377'],
    'engine first; a peer that is a manager before the managers a peer names; another swarm\'s manager never');
  t.same(relayManagerList([], peers, 'S', []), ['10.0.0.3:2377', '10.0.0.2:2377'], 'an engine in error names none: the peers\' word');
  t.same(relayManagerList([], [], 'S', ['10.0.0.4:2377']), ['10.0.0.4:2377'], 'no peer confirmed (a revoked card, a partition, just booted): the kept list');
  t.same(relayManagerList([], peers, null, []), [], 'no swarm known: no peer\'s managers');
  t.same(relayManagerList([], [{ addr: 'fd00::3', swarm: swarm('S', 'manager', []) }], 'S', []), ['[fd00::3]:2377'], 'IPv6 in brackets');
  const many = Array.from({ length: 20 }, (_, i) => `10.0.1.${i}:2377`);
  t.equal(relayManagerList(many, [], 'S', []).length, 16, 'at most 16');
});

t.test('keepManagers keeps what an active engine names in formation.json; a restarted agent\'s relay still knows where to forward', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-relay-managers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const errors: unknown[] = [];
  let saves = 0;
  const counting = (): FormationStore => {
    const s = createFileFormationStore(dir, (err) => errors.push(err));
    return { load: s.load, save: (p) => (saves++, s.save(p)) };
  };
  const context = () => createFormationContext({
    config: testConfig({ clusterKey: KEY, nodeName: 'pi-1', stateDir: dir }), log: memoryLogger().log, docker: fakeDocker({}), clock: new VirtualClock(),
    identity: { nodeId: 'a'.repeat(24), name: 'pi-1', createdAt: '' }, discovery: null,
    peerClient: { hello: async () => { throw new Error('Not implemented: hello'); }, grant: async () => { throw new Error('Not implemented: grant'); }, close: async () => undefined },
    address: () => ({ address: '10.0.0.1', interface: 'eth0', reason: 'test' }), store: counting(),
  });
  const ctx = context();
  keepManagers(ctx, 'S', ['10.0.0.3:2377']);
  t.equal(saves, 0, 'nothing kept before this node joined a swarm');
  ctx.s.persisted.joined = { id: 'S', createdAt: null, joinAddr: '127.0.0.1:2378', nodeId: 'n1' };
  keepManagers(ctx, 'OTHER', ['10.0.0.9:2377']);
  keepManagers(ctx, 'S', []);
  t.equal(saves, 0, 'not another swarm\'s managers, not an empty list');
  keepManagers(ctx, 'S', ['10.0.0.3:2377', '10.0.0.2:2377']);
  keepManagers(ctx, 'S', ['10.0.0.2:2377', '10.0.0.3:2377']);
  t.equal(saves, 1, 'saved once: the same set in another order is no change');
  t.same(JSON.parse(readFileSync(join(dir, 'formation.json'), 'utf8')).joined.managers, ['10.0.0.2:2377', '10.0.0.3:2377']);

  const active: EngineInfo = { serverVersion: '20.10.24', swarm: { state: 'active', nodeId: 'n1', nodeAddr: '10.0.0.1', clusterId: null, isManager: false, managers: 0, nodes: 0, remoteManagers: [{ nodeId: 'm4', addr: '10.0.0.4:2377' }], error: null } };
  ctx.s.info = active;
  t.same(relayManagers(ctx), ['10.0.0.4:2377', '10.0.0.2:2377', '10.0.0.3:2377'], 'an active engine\'s managers first');

  const restarted = context();
  restarted.s.info = { ...active, swarm: { ...active.swarm, state: 'error', nodeId: null, remoteManagers: [], error: "manager stopped: can't initialize raft node" } };
  t.same(relayManagers(restarted), ['10.0.0.2:2377', '10.0.0.3:2377'], 'after a restart, an engine in error names none: the kept managers');

  const file = JSON.parse(readFileSync(join(dir, 'formation.json'), 'utf8'));
  writeFileSync(join(dir, 'formation.json'), JSON.stringify({ ...file, joined: { ...file.joined, managers: ['10.0.0.2:2377', 'rm -rf /', 7, '10.0.0.3:99999999'] } }));
  t.same(context().s.persisted.joined?.managers, ['10.0.0.2:2377'], 'a hand-edited list: what is not host:port is dropped, never dialled');
  t.same(errors, []);
});
