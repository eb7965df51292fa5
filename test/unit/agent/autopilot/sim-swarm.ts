/**
 * A small model of a swarm's node list as the Raft leader reports it, for
 * driving the autopilot through scenarios in microseconds. It models what the
 * planner's safety depends on and no more: power and cable per node, manager
 * reachability (a promoted node becomes reachable after `joinMs`), leader
 * re-election inside the reachable majority, and the engine's own refusals
 * (demotions that would lose quorum, removal of a manager, removal of a live
 * node without force).
 */
import { PiswarmError } from '../../../../shared/errors.js';
import type { NodeAvailability, NodeRole, SwarmNode } from '../../../../agent/docker/engine.js';
import { quorum } from '../../../../agent/autopilot/planner.js';

export interface SimNode {
  id: string;
  hostname: string;
  role: NodeRole;
  availability: NodeAvailability;
  on: boolean;
  connected: boolean;
  labels: Record<string, string>;
  createdAt: string;
  /** Sim time the node last became a manager. */
  promotedAt: number;
}

const refuse = (statusCode: number, engineMessage: string, op: string) =>
  new PiswarmError('PISWARM_ERR_DOCKER', `${op}: ${engineMessage}`, { details: { op, statusCode, engineMessage } });

export class SimSwarm {
  readonly nodes = new Map<string, SimNode>();
  t = 0;
  leaderId: string | null = null;
  private seq = 0;

  constructor(readonly joinMs = 2000) {}

  add(hostname: string, opts: { role?: NodeRole; labels?: Record<string, string> } = {}): string {
    const id = `node${String(++this.seq).padStart(3, '0')}`;
    this.nodes.set(id, {
      id,
      hostname,
      role: opts.role ?? 'worker',
      availability: 'active',
      on: true,
      connected: true,
      labels: { ...(opts.labels ?? {}) },
      createdAt: new Date(1_700_000_000_000 + this.t).toISOString(),
      promotedAt: -1e12,
    });
    this.elect();
    return id;
  }

  get(id: string): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no sim node ${id}`);
    return n;
  }

  byHost(hostname: string): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.hostname === hostname);
  }

  up(n: SimNode): boolean {
    return n.on && n.connected;
  }

  reachable(n: SimNode): boolean {
    return n.role === 'manager' && this.up(n) && this.t - n.promotedAt >= this.joinMs;
  }

  managers(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.role === 'manager');
  }

  reachableManagers(): number {
    return this.managers().filter((n) => this.reachable(n)).length;
  }

  /**
   * Raft's view: a freshly promoted member counts once it is up (it catches
   * up within joinMs; the engine reports it "unknown" meanwhile). Going from
   * 1 to 2 managers leans on this for a moment, as `docker node promote` does.
   */
  hasQuorum(): boolean {
    return this.managers().filter((n) => this.up(n)).length >= quorum(this.managers().length);
  }

  /** Raft: keep a reachable leader, else the lowest reachable id if the majority is there, else nobody. */
  elect(): void {
    if (!this.hasQuorum()) {
      this.leaderId = null;
      return;
    }
    const cur = this.leaderId ? this.nodes.get(this.leaderId) : undefined;
    if (cur && this.reachable(cur)) return;
    this.leaderId = this.managers().filter((n) => this.reachable(n)).map((n) => n.id).sort()[0] ?? null;
    // No leader change while the only candidates are still joining.
    if (this.leaderId === null && cur && this.up(cur)) this.leaderId = cur.id;
  }

  advance(ms: number): void {
    this.t += ms;
    this.elect();
  }

  set(id: string, change: Partial<Pick<SimNode, 'on' | 'connected'>>): void {
    Object.assign(this.get(id), change);
    this.elect();
  }

  list(): SwarmNode[] {
    return [...this.nodes.values()].map((n) => ({
      id: n.id,
      hostname: n.hostname,
      role: n.role,
      availability: n.availability,
      state: this.up(n) ? 'ready' : 'down',
      addr: '10.0.0.1',
      leader: n.id === this.leaderId,
      reachability: n.role === 'manager' ? (this.reachable(n) ? 'reachable' : this.t - n.promotedAt < this.joinMs && this.up(n) ? 'unknown' : 'unreachable') : null,
      labels: { ...n.labels },
      createdAt: n.createdAt,
      updatedAt: n.createdAt,
      version: 1,
    }));
  }

  // ---- the engine's side of node update / node rm
  updateNode(id: string, change: { role?: NodeRole; availability?: NodeAvailability; labels?: Record<string, string> }): void {
    const n = this.nodes.get(id);
    if (!n) throw refuse(404, `node ${id} not found`, 'node update');
    if (change.role === 'worker' && n.role === 'manager') {
      const m = this.managers().length - 1;
      const r = this.reachableManagers() - (this.reachable(n) ? 1 : 0);
      if (r < quorum(m) || this.managers().filter((x) => this.up(x) && x !== n).length < quorum(m)) throw refuse(500, "rpc error: code = FailedPrecondition desc = can't remove member from the raft: this would result in a loss of quorum", 'node update');
      n.role = 'worker';
    } else if (change.role === 'manager' && n.role === 'worker') {
      n.role = 'manager';
      n.promotedAt = this.t;
    }
    if (change.availability) n.availability = change.availability;
    if (change.labels) Object.assign(n.labels, change.labels);
    this.elect();
  }

  removeNode(id: string, force: boolean): void {
    const n = this.nodes.get(id);
    if (!n) throw refuse(404, `node ${id} not found`, 'node rm');
    if (n.role === 'manager') {
      throw refuse(400, `rpc error: code = FailedPrecondition desc = node ${id} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal`, 'node rm');
    }
    if (!force && this.up(n)) throw refuse(400, `rpc error: code = FailedPrecondition desc = node ${id} is not down and can't be removed`, 'node rm');
    this.nodes.delete(id);
  }
}
