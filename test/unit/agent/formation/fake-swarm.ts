import { randomBytes } from 'node:crypto';
import type { DockerEngine, EngineInfo, SwarmAddresses } from '../../../../agent/docker/engine.js';
import { PiswarmError } from '../../../../shared/errors.js';
import { fakeDocker } from '../../../helpers/fakes.js';
import { AdvertBook, type Discovery, type LocalAdvert } from '../../../../agent/discovery/discovery.js';
import { encodeAdvert } from '../../../../agent/discovery/advert.js';
import type { ClusterKeys } from '../../../../agent/identity/keys.js';

/**
 * A world of swarms for fake engines: it models init, join by worker token,
 * leave, token rotation and inspect the way dockerd answers them, and
 * records every call so tests can count inits and joins.
 */
interface FakeSwarm {
  id: string;
  createdAt: string;
  workerToken: string;
  managerToken: string;
  members: Map<string, { nodeId: string; role: 'manager' | 'worker'; addr: string }>;
}

const token = () => `SWMTKN-1-${randomBytes(24).toString('hex')}-${randomBytes(12).toString('hex')}`;

/** How a node removed while away looks from its own engine. */
export interface StrandOptions {
  /** docker info times out every other read (a removed manager's dockerd on 26.1.5). */
  slowInfo?: boolean;
  /**
   * State error with a manager's refusal naming this node "removed from
   * swarm": a manager demoted while away and removed before its engine got
   * its worker certificate (26.1.5, fault campaign seed 20261208). Else
   * pending for good.
   */
  refused?: boolean;
}

export class FakeWorld {
  readonly swarms = new Map<string, FakeSwarm>();
  readonly calls: Array<{ node: string; op: string }> = [];
  private t = Date.parse('2026-01-01T00:00:00Z');

  /** `initError`: every swarm init on this engine fails with it (as dockerd's does on a bad address or a broken /var/lib/docker/swarm). */
  engine(name: string, opts: { tasks?: number; version?: string; initError?: string } = {}): DockerEngine & { name: string; state(): { swarmId: string | null; role: string | null }; strand(o?: StrandOptions): void } {
    let swarmId: string | null = null;
    let nodeId: string | null = null;
    let addr: string | null = null;
    /** Removed from its swarm while away: the engine is pending for good, as dockerd's is, until it leaves. */
    let stranded = false;
    /**
     * A removed manager's dockerd answers docker info in about 12 s (12.8 s by
     * hand on Docker 26.1.5), so with the 5 s call deadline the agent saw it
     * answer one read and time out the next: modelled as every other read
     * timing out, except a patient one (the swarm deadline).
     */
    let slowInfo = false;
    /** Refused by a manager as removed: the engine is in error, not pending (see StrandOptions). */
    let refused = false;
    let reads = 0;
    let errorReads = 0;
    const world = this;
    const mine = () => (swarmId ? world.swarms.get(swarmId) ?? null : null);
    const role = () => (nodeId ? mine()?.members.get(nodeId)?.role ?? null : null);
    const info = async (o?: { patient?: boolean }): Promise<EngineInfo> => {
      if (stranded && slowInfo && !o?.patient && ++reads % 2 === 0) {
        throw new PiswarmError('PISWARM_ERR_DOCKER_UNREACHABLE', 'the Docker engine did not answer in time (info)');
      }
      if (stranded) {
        return {
          serverVersion: opts.version ?? '20.10.24',
          // Refused, dockerd names no node id of its own and alternates the
          // refusal with a dial error to the demoted manager's port (26.1.5).
          swarm: {
            state: refused ? 'error' : 'pending', nodeId: refused ? null : nodeId, nodeAddr: addr, clusterId: null, isManager: false, managers: 0, nodes: 0, remoteManagers: [],
            error: !refused ? null : ++errorReads % 2 === 1
              ? `manager stopped: can't initialize raft node: rpc error: code = PermissionDenied desc = Permission denied: node ${nodeId} was removed from swarm`
              : 'manager stopped: can\'t initialize raft node: rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.9:2377: connect: connection refused"',
          },
        };
      }
      const s = mine();
      const manager = role() === 'manager';
      return {
        serverVersion: opts.version ?? '20.10.24',
        swarm: {
          state: s ? 'active' : 'inactive',
          nodeId,
          nodeAddr: addr,
          clusterId: s && manager ? s.id : null, // workers do not see the cluster id, as in dockerd
          isManager: manager,
          managers: s ? [...s.members.values()].filter((m) => m.role === 'manager').length : 0,
          nodes: s && manager ? s.members.size : 0,
          remoteManagers: s ? [...s.members.entries()].filter(([, m]) => m.role === 'manager').map(([id, m]) => ({ nodeId: id, addr: `${m.addr}:2377` })) : [],
          error: null,
        },
      };
    };
    const e = fakeDocker({
      info,
      async swarmInit(a: SwarmAddresses) {
        world.calls.push({ node: name, op: 'init' });
        if (opts.initError) throw new PiswarmError('PISWARM_ERR_DOCKER', `swarm init: ${opts.initError}`);
        if (swarmId) throw new PiswarmError('PISWARM_ERR_DOCKER', 'swarm init: This node is already part of a swarm');
        const id = randomBytes(13).toString('hex').slice(0, 25);
        nodeId = randomBytes(13).toString('hex').slice(0, 25);
        addr = a.advertiseAddr;
        world.t += 1000;
        world.swarms.set(id, { id, createdAt: new Date(world.t).toISOString(), workerToken: token(), managerToken: token(), members: new Map([[nodeId, { nodeId, role: 'manager', addr: a.advertiseAddr }]]) });
        swarmId = id;
        return nodeId; // POST /swarm/init answers with the new node's id, not the swarm's
      },
      async swarmJoin(a) {
        world.calls.push({ node: name, op: 'join' });
        if (swarmId || stranded) throw new PiswarmError('PISWARM_ERR_DOCKER', 'swarm join: This node is already part of a swarm');
        const s = [...world.swarms.values()].find((x) => x.workerToken === a.joinToken || x.managerToken === a.joinToken);
        if (!s) throw new PiswarmError('PISWARM_ERR_DOCKER', 'swarm join: invalid join token');
        if (!a.remoteAddrs.some((r) => [...s.members.values()].some((m) => `${m.addr}:2377` === r))) throw new PiswarmError('PISWARM_ERR_DOCKER', 'swarm join: no manager at the remote addresses');
        nodeId = randomBytes(13).toString('hex').slice(0, 25);
        addr = a.advertiseAddr;
        s.members.set(nodeId, { nodeId, role: s.managerToken === a.joinToken ? 'manager' : 'worker', addr: a.advertiseAddr });
        swarmId = s.id;
      },
      async swarmInspect() {
        const s = mine();
        if (!s || role() !== 'manager') throw new PiswarmError('PISWARM_ERR_NOT_MANAGER', 'swarm inspect: This node is not a swarm manager.');
        return { id: s.id, createdAt: s.createdAt, workerToken: s.workerToken, managerToken: s.managerToken, version: 1 };
      },
      async rotateWorkerToken() {
        world.calls.push({ node: name, op: 'rotate' });
        const s = mine();
        if (!s || role() !== 'manager') throw new PiswarmError('PISWARM_ERR_NOT_MANAGER');
        s.workerToken = token();
      },
      async rotateJoinTokens() {
        world.calls.push({ node: name, op: 'rotate-both' });
        const s = mine();
        if (!s || role() !== 'manager') throw new PiswarmError('PISWARM_ERR_NOT_MANAGER');
        s.workerToken = token();
        s.managerToken = token();
      },
      async updateNode(id, change) {
        world.calls.push({ node: name, op: 'node-update' });
        const s = mine();
        if (!s || role() !== 'manager') throw new PiswarmError('PISWARM_ERR_NOT_MANAGER');
        const m = s.members.get(id);
        if (!m) throw new PiswarmError('PISWARM_ERR_DOCKER', `node ${id} not found`);
        if (change.availability || change.labels) throw new Error('FakeWorld.updateNode: only role changes are modelled');
        if (change.role) m.role = change.role;
      },
      async removeNode(id, force) {
        world.calls.push({ node: name, op: 'node-rm' });
        const s = mine();
        if (!s || role() !== 'manager') throw new PiswarmError('PISWARM_ERR_NOT_MANAGER');
        const m = s.members.get(id);
        if (!m) throw new PiswarmError('PISWARM_ERR_DOCKER', `node ${id} not found`);
        if (m.role === 'manager') throw new PiswarmError('PISWARM_ERR_DOCKER', 'node rm: a manager must be demoted first');
        if (!force) throw new Error('FakeWorld.removeNode: only --force is modelled');
        s.members.delete(id);
      },
      async swarmLeave(force: boolean) {
        world.calls.push({ node: name, op: 'leave' });
        if (stranded) {
          if (!force) throw new PiswarmError('PISWARM_ERR_DOCKER', 'swarm leave: use --force');
          stranded = false;
          swarmId = null;
          nodeId = null;
          return;
        }
        const s = mine();
        if (!s) throw new PiswarmError('PISWARM_ERR_DOCKER', 'swarm leave: This node is not part of a swarm');
        if (role() === 'manager' && !force) throw new PiswarmError('PISWARM_ERR_DOCKER', 'swarm leave: use --force');
        s.members.delete(nodeId!);
        if (s.members.size === 0) world.swarms.delete(s.id);
        swarmId = null;
        nodeId = null;
      },
      async listNodes() {
        const s = mine();
        if (!s || role() !== 'manager') throw new PiswarmError('PISWARM_ERR_NOT_MANAGER');
        return [...s.members.values()].map((m) => ({ id: m.nodeId, hostname: m.addr, role: m.role, availability: 'active' as const, state: 'ready', addr: m.addr, leader: m.nodeId === nodeId, reachability: m.role === 'manager' ? 'reachable' : null, labels: {}, createdAt: '', updatedAt: '', version: 1 }));
      },
      async runningServiceContainers() {
        return opts.tasks ?? 0;
      },
    });
    const strand = (o: StrandOptions = {}) => {
      stranded = true;
      slowInfo = o.slowInfo ?? false;
      refused = o.refused ?? false;
    };
    return Object.assign(e, { name, state: () => ({ swarmId: stranded ? null : swarmId, role: stranded ? null : role() }), strand });
  }

  /**
   * What the autopilot does to a node that stays off past its TTL (demote if
   * a manager, then `docker node rm`), seen from that node when it comes back:
   * its entry is gone and its engine stays pending.
   */
  removeWhileAway(e: { strand(o?: StrandOptions): void; state(): { swarmId: string | null } }, nodeId: string, o: StrandOptions = {}): void {
    const s = this.swarms.get(e.state().swarmId ?? '');
    if (!s?.members.delete(nodeId)) throw new Error(`FakeWorld.removeWhileAway: no node ${nodeId} in that swarm`);
    e.strand(o);
  }

  /** What `docker node promote`/`demote` does to the node list, by engine. */
  setRole(e: { state(): { swarmId: string | null } }, nodeId: string, role: 'manager' | 'worker'): void {
    const m = this.swarms.get(e.state().swarmId ?? '')?.members.get(nodeId);
    if (!m) throw new Error(`FakeWorld.setRole: no node ${nodeId} in that swarm`);
    m.role = role;
  }

  count(op: string): number {
    return this.calls.filter((c) => c.op === op).length;
  }
}

/** A LAN for fake discovery: every published advert is heard by every node, through the real verification. */
export class FakeLan {
  readonly adverts = new Map<string, { txt: Record<string, string>; from: string }>();

  discovery(keys: ClusterKeys, nodeId: string): Discovery {
    const book = new AdvertBook(keys, nodeId, 600_000);
    let seq = 0;
    const lan = this;
    return {
      publish(a: LocalAdvert) {
        lan.adverts.set(nodeId, { txt: encodeAdvert(keys, { ...a, nodeId, ts: Date.now(), seq: ++seq }), from: a.addr });
      },
      candidates() {
        for (const [id, a] of lan.adverts) if (id !== nodeId) book.ingest(a.txt, a.from, Date.now());
        return book.candidates(Date.now());
      },
      dropped: () => book.dropped(),
      foreign: () => book.foreign(Date.now(), 600_000),
      async stop() {
        lan.adverts.delete(nodeId);
      },
    };
  }
}
