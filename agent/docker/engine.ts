import fs from 'node:fs';
import Docker from 'dockerode';
import { PiswarmError } from '../../shared/errors.js';

/**
 * The narrow view of the Docker Engine the agent needs. Everything above this
 * file speaks domain types and PiswarmError codes; dockerode's shapes and
 * HTTP statuses stop here.
 */
export type SwarmState = 'inactive' | 'pending' | 'active' | 'error' | 'locked';

export interface EngineInfo {
  serverVersion: string;
  swarm: {
    state: SwarmState;
    nodeId: string | null;
    nodeAddr: string | null;
    clusterId: string | null;
    isManager: boolean;
    managers: number;
    nodes: number;
    remoteManagers: Array<{ nodeId: string; addr: string }>;
    error: string | null;
  };
}

export interface SwarmAddresses {
  advertiseAddr: string;
  listenAddr: string;
  dataPathAddr: string;
}

export interface SwarmDetails {
  id: string;
  createdAt: string;
  workerToken: string;
  managerToken: string;
  version: number;
}

export type NodeRole = 'manager' | 'worker';
export type NodeAvailability = 'active' | 'pause' | 'drain';

export interface SwarmNode {
  id: string;
  hostname: string;
  role: NodeRole;
  availability: NodeAvailability;
  state: string; // ready | down | unknown | disconnected
  addr: string;
  leader: boolean;
  reachability: string | null; // reachable | unreachable | unknown (managers only)
  /** Managers: the Raft address (ManagerStatus.Addr, `ip:2377`). Absent on workers. */
  managerAddr?: string | null;
  labels: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  version: number;
}

/** A node list as some reader took it (`at`: wall-clock ms), shared so another reader need not list again. */
export interface NodeListing {
  at: number;
  nodes: readonly SwarmNode[];
}

export interface DockerEngine {
  ping(): Promise<void>;
  /**
   * `patient`: the swarm deadline instead of the call deadline, for the last
   * look before an irreversible step (a removed manager's engine answers in
   * about 12 s; with the 5 s deadline the re-join never got past it).
   */
  info(opts?: { patient?: boolean }): Promise<EngineInfo>;
  swarmInit(addrs: SwarmAddresses): Promise<string>;
  swarmJoin(addrs: SwarmAddresses & { remoteAddrs: string[]; joinToken: string }): Promise<void>;
  swarmInspect(): Promise<SwarmDetails>;
  rotateWorkerToken(): Promise<void>;
  /** Both join tokens at once (`docker swarm join-token --rotate worker` and `manager`): a revoked node's copies stop working. */
  rotateJoinTokens(): Promise<void>;
  swarmLeave(force: boolean): Promise<void>;
  listNodes(): Promise<SwarmNode[]>;
  updateNode(id: string, change: { role?: NodeRole; availability?: NodeAvailability; labels?: Record<string, string> }): Promise<void>;
  /**
   * Replaces the node's labels with `labels` (updateNode merges), as of the node
   * object `version` a listing showed: the engine refuses ("update out of
   * sequence") when the node changed since, so labels read at `version` are never
   * written over newer ones.
   */
  setNodeLabels(id: string, version: number, labels: Record<string, string>): Promise<void>;
  removeNode(id: string, force: boolean): Promise<void>;
  /** Number of running tasks of user services scheduled on a node. */
  runningTasksOnNode(nodeId: string): Promise<number>;
  /**
   * Running containers of swarm services on this engine (works on workers,
   * unlike task listing). Added by formation for the split-heal rule.
   */
  runningServiceContainers?(): Promise<number>;
  /** Raw service and task lists (managers only), for agent/dashboard/services.ts to summarise. */
  listServicesAndTasks?(): Promise<{ services: unknown[]; tasks: unknown[] }>;
}

interface DockerodeError extends Error {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | null;
  reason?: string;
}

const SWARM_TOKEN = /SWMTKN-[0-9A-Za-z-]+/g;

/** Turns whatever dockerode throws into a PiswarmError without secrets. */
export function translateDockerError(err: unknown, op: string): PiswarmError {
  if (err instanceof PiswarmError) return err;
  const e = err as DockerodeError;
  const engineMessage = String(e?.json?.message ?? e?.reason ?? e?.message ?? 'unknown error').replace(SWARM_TOKEN, 'SWMTKN-[REDACTED]');
  const details = { op, statusCode: e?.statusCode ?? null, engineMessage };
  if (e?.code && ['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE'].includes(e.code)) {
    return new PiswarmError('PISWARM_ERR_DOCKER_UNREACHABLE', `the Docker engine does not answer (${e.code})`, { cause: err, details });
  }
  if (e?.message === 'timeout' || e?.code === 'ETIMEDOUT' || e?.name === 'AbortError') {
    return new PiswarmError('PISWARM_ERR_DOCKER_UNREACHABLE', `the Docker engine did not answer in time (${op})`, { cause: err, details });
  }
  if (e?.statusCode === 503 && /not a swarm manager|not part of a swarm/i.test(engineMessage)) {
    return new PiswarmError('PISWARM_ERR_NOT_MANAGER', `${op}: ${engineMessage}`, { cause: err, details });
  }
  return new PiswarmError('PISWARM_ERR_DOCKER', `${op}: ${engineMessage}`, { cause: err, details });
}

function lower<T extends string>(v: unknown, fallback: T): T {
  return (typeof v === 'string' && v !== '' ? v.toLowerCase() : fallback) as T;
}

/** Maps the engine's Node object (GET /nodes) to the domain shape. */
export function toSwarmNode(n: any): SwarmNode {
  return {
    id: String(n.ID),
    hostname: String(n.Description?.Hostname ?? ''),
    role: lower(n.Spec?.Role, 'worker'),
    availability: lower(n.Spec?.Availability, 'active'),
    state: lower(n.Status?.State, 'unknown'),
    addr: String(n.Status?.Addr ?? ''),
    leader: n.ManagerStatus?.Leader === true,
    reachability: n.ManagerStatus ? lower(n.ManagerStatus.Reachability, 'unknown') : null,
    managerAddr: typeof n.ManagerStatus?.Addr === 'string' && n.ManagerStatus.Addr !== '' ? n.ManagerStatus.Addr : null,
    labels: { ...(n.Spec?.Labels ?? {}) },
    createdAt: String(n.CreatedAt ?? ''),
    updatedAt: String(n.UpdatedAt ?? ''),
    version: Number(n.Version?.Index ?? 0),
  };
}

/** Maps GET /info's Swarm part to the domain shape. */
export function toEngineInfo(info: any): EngineInfo {
  const s = info?.Swarm ?? {};
  return {
    serverVersion: String(info?.ServerVersion ?? 'unknown'),
    swarm: {
      state: lower(s.LocalNodeState, 'inactive'),
      nodeId: s.NodeID ? String(s.NodeID) : null,
      nodeAddr: s.NodeAddr ? String(s.NodeAddr) : null,
      clusterId: s.Cluster?.ID ? String(s.Cluster.ID) : null,
      isManager: s.ControlAvailable === true,
      managers: Number(s.Managers ?? 0),
      nodes: Number(s.Nodes ?? 0),
      remoteManagers: Array.isArray(s.RemoteManagers) ? s.RemoteManagers.map((m: any) => ({ nodeId: String(m.NodeID), addr: String(m.Addr) })) : [],
      error: s.Error ? String(s.Error) : null,
    },
  };
}

export function createDockerEngine(opts: { socketPath: string; timeoutMs: number; swarmTimeoutMs: number }): DockerEngine {
  const docker = new Docker({ socketPath: opts.socketPath, timeout: opts.timeoutMs });
  // docker-modem's deadline is per client: swarm init, join and leave (and the
  // read right before them) get their own, longer one.
  const patient = new Docker({ socketPath: opts.socketPath, timeout: Math.max(opts.timeoutMs, opts.swarmTimeoutMs) });
  const call = async <T>(op: string, fn: () => Promise<T>): Promise<T> => {
    // No socket, no engine (Docker not installed yet on a first boot, or
    // stopped): the dial would fail with ENOENT anyway. A stat is about a
    // hundredth of a failed dial's CPU (an error with a stack, a socket made
    // and destroyed), and formation asks once a second while it waits.
    if (!fs.existsSync(opts.socketPath)) {
      throw new PiswarmError('PISWARM_ERR_DOCKER_UNREACHABLE', 'the Docker engine does not answer (ENOENT)', { details: { op, statusCode: null, engineMessage: `no socket at ${opts.socketPath}` } });
    }
    try {
      return await fn();
    } catch (err) {
      throw translateDockerError(err, op);
    }
  };
  const inspectSwarm = () => call('swarm inspect', () => docker.swarmInspect());

  return {
    ping: () => call('ping', async () => { await docker.ping(); }),
    info: (o) => call('info', async () => toEngineInfo(await (o?.patient ? patient : docker).info())),
    swarmInit: (a) =>
      call('swarm init', async () => {
        const id = await patient.swarmInit({ ListenAddr: a.listenAddr, AdvertiseAddr: a.advertiseAddr, DataPathAddr: a.dataPathAddr, ForceNewCluster: false });
        return String(id).replace(/"/g, '').trim();
      }),
    swarmJoin: (a) =>
      call('swarm join', async () => {
        await patient.swarmJoin({ ListenAddr: a.listenAddr, AdvertiseAddr: a.advertiseAddr, DataPathAddr: a.dataPathAddr, RemoteAddrs: a.remoteAddrs, JoinToken: a.joinToken });
      }),
    swarmInspect: async () => {
      const s = await inspectSwarm();
      return {
        id: String(s.ID),
        createdAt: String(s.CreatedAt),
        workerToken: String(s.JoinTokens?.Worker ?? ''),
        managerToken: String(s.JoinTokens?.Manager ?? ''),
        version: Number(s.Version?.Index ?? 0),
      };
    },
    rotateWorkerToken: async () => {
      const s = await inspectSwarm();
      await call('swarm update', () => docker.swarmUpdate({ _query: { version: s.Version.Index, rotateWorkerToken: true }, _body: s.Spec }));
    },
    rotateJoinTokens: async () => {
      const s = await inspectSwarm();
      await call('swarm update', () => docker.swarmUpdate({ _query: { version: s.Version.Index, rotateWorkerToken: true, rotateManagerToken: true }, _body: s.Spec }));
    },
    swarmLeave: (force) => call('swarm leave', async () => { await patient.swarmLeave({ force }); }),
    listNodes: () => call('node ls', async () => (await docker.listNodes()).map(toSwarmNode)),
    updateNode: (id, change) =>
      call('node update', async () => {
        const node = docker.getNode(id);
        const current: any = await node.inspect();
        const spec = { ...current.Spec };
        if (change.role) spec.Role = change.role;
        if (change.availability) spec.Availability = change.availability;
        if (change.labels) spec.Labels = { ...(spec.Labels ?? {}), ...change.labels };
        await node.update({ _query: { version: current.Version.Index }, _body: spec });
      }),
    setNodeLabels: (id, version, labels) =>
      call('node update', async () => {
        const node = docker.getNode(id);
        const current: any = await node.inspect();
        await node.update({ _query: { version }, _body: { ...current.Spec, Labels: { ...labels } } });
      }),
    removeNode: (id, force) => call('node rm', async () => { await docker.getNode(id).remove({ force }); }),
    runningTasksOnNode: (nodeId) =>
      call('task ls', async () => {
        const tasks: unknown[] = await (docker.listTasks as (o: object) => Promise<unknown[]>)({ filters: JSON.stringify({ node: [nodeId], "desired-state": ["running"] }) });
        return tasks.length;
      }),
    listServicesAndTasks: () =>
      call('service ls', async () => {
        const [services, tasks] = await Promise.all([docker.listServices(), (docker.listTasks as (o: object) => Promise<unknown[]>)({ filters: JSON.stringify({ 'desired-state': ['running'] }) })]);
        return { services, tasks };
      }),
    runningServiceContainers: () =>
      call('container ls', async () => (await docker.listContainers({ filters: { label: ['com.docker.swarm.service.id'], status: ['running'] } })).length),
  };
}
