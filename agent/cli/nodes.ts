import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { EXIT } from '../../shared/constants.js';
import { loadConfig } from '../config/load.js';
import type { Command } from './command.js';
import { askLocal, localInvocation, type LoadConfig } from './local-api.js';


/** The layered loader over the real files; only the port and host matter here. */
const defaultLoad: LoadConfig = (argv, env) => loadConfig({ argv, env, readFile: (p) => readFileSync(p, 'utf8'), hostname: hostname() });

interface NodeRow {
  id: string;
  hostname: string;
  role: string;
  state: string;
  availability: string;
  addr: string;
  leader: boolean;
  reachability: string | null;
}

/** `piswarm nodes`: the swarm's nodes as the local manager's engine lists them (GET /v1/nodes). */
export function makeNodesCommand(load: LoadConfig): Command {
  return {
    name: 'nodes',
    summary: 'swarm nodes (ask a manager)',
    usage: `piswarm nodes [--json] [--url URL]\n\nAsks the local agent for GET /v1/nodes: every node of the swarm with role,\nstate and availability, like \`docker node ls\`. Only managers can answer; on a\nworker the error names the managers to ask.\nExit 0; 1: not a manager or the engine refused; 69: the agent does not answer.\n\n  --url URL     the agent to ask (default http://127.0.0.1:<http.port>)\n  --json        print the nodes as JSON`,
    async run(ctx) {
      const inv = localInvocation(ctx, load, this.usage);
      if (typeof inv === 'number') return inv;
      const { base } = inv;
      const ans = await askLocal(ctx, base, '/v1/nodes');
      if (typeof ans === 'number') return ans;
      let body: { nodes?: NodeRow[]; code?: string; message?: string };
      try {
        body = JSON.parse(ans.text);
      } catch {
        ctx.err(`the agent at ${base} answered ${ans.status} with something that is not JSON`);
        return EXIT.UNAVAILABLE;
      }
      if (ans.status !== 200 || !Array.isArray(body.nodes)) {
        ctx.err(`${body.code ?? ans.status}: ${body.message ?? 'no node list'}`);
        return EXIT.FAILURE;
      }
      if (inv.json) {
        ctx.out(JSON.stringify(body.nodes, null, 2));
        return EXIT.OK;
      }
      const rows = [['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS', 'ADDRESS']];
      for (const n of body.nodes) rows.push([n.id, n.hostname, n.state, n.availability, n.role === 'manager' ? (n.leader ? 'Leader' : n.reachability ?? 'manager') : '', n.addr]);
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) ctx.out(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
      return EXIT.OK;
    },
  };
}

/** Registered by agent/main.ts. */
export const nodesCommand: Command = makeNodesCommand(defaultLoad);
