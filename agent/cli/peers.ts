import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { EXIT } from '../../shared/constants.js';
import { loadConfig } from '../config/load.js';
import type { FormationStatus } from '../../shared/wire/peer.js';
import type { Command } from './command.js';
import { callLocal, localInvocation, type LoadConfig } from './local-api.js';


/** The layered loader over the real files; only the port and host matter here. */
const defaultLoad: LoadConfig = (argv, env) => loadConfig({ argv, env, readFile: (p) => readFileSync(p, 'utf8'), hostname: hostname() });

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
}

/** `piswarm peers`: this node's formation phase and its confirmed peers (GET /v1/formation). */
export function makePeersCommand(load: LoadConfig): Command {
  return {
    name: 'peers',
    summary: 'formation phase and confirmed peers of the local agent',
    usage: `piswarm peers [--json] [--url URL]\n\nAsks the local agent for GET /v1/formation: its phase, why, the last\nelection's winner and why (kept once the swarm exists), the peers it\nconfirmed over authenticated HTTP and recent phase changes.\nExit 0; 1: formation is degraded or off; 69: the agent does not answer.\n\n  --url URL     the agent to ask (default http://127.0.0.1:<http.port>)\n  --json        print the formation document as JSON`,
    async run(ctx) {
      const inv = localInvocation(ctx, load, this.usage);
      if (typeof inv === 'number') return inv;
      const { base } = inv;
      let st: FormationStatus;
      try {
        const ans = await callLocal(base, '/v1/formation');
        if (ans.status !== 200) {
          ctx.err(`the agent at ${base} answered ${ans.status}: ${ans.text.slice(0, 300)}`);
          return EXIT.UNAVAILABLE;
        }
        st = JSON.parse(ans.text) as FormationStatus;
      } catch (err) {
        ctx.err(`the agent at ${base} does not answer: ${(err as Error).message}`);
        return EXIT.UNAVAILABLE;
      }
      if (inv.json) ctx.out(JSON.stringify(st, null, 2));
      else {
        ctx.out(`node ${st.name} (${st.nodeId}) at ${st.address ?? '?'}: ${st.phase} — ${st.reason}`);
        if (st.swarm) ctx.out(`swarm ${st.swarm.id} (${st.swarm.role})`);
        if (st.election) {
          // Kept after the swarm exists: who created it (or was to) and why.
          const e = st.election;
          const name = e.winner === st.nodeId ? st.name : st.confirmedPeers.find((p) => p.nodeId === e.winner)?.name;
          ctx.out(`election: winner ${e.winner ?? '-'}${name ? ` (${name})` : ''} — ${e.why} (decided ${e.at})`);
        }
        if (st.split) ctx.out(`SPLIT: swarms ${st.split.swarms.join(', ')}; winner ${st.split.winner} — ${st.split.action}`);
        for (const f of st.foreignClusters) ctx.out(`another cluster (${f.clusterId}) advertises from ${f.addr}`);
        if (st.confirmedPeers.length === 0) ctx.out('no confirmed peers');
        else {
          const rows = [['NODE ID', 'NAME', 'ADDRESS', 'PHASE', 'SWARM', 'ROLE', 'CONFIRMED']];
          for (const p of st.confirmedPeers) rows.push([p.nodeId, p.name, `${p.addr}:${p.port}`, p.phase, p.swarmId ?? '-', p.role ?? '-', p.confirmedAt ?? '-']);
          for (const line of table(rows)) ctx.out(line);
        }
      }
      return st.phase === 'degraded' || st.phase === 'disabled' ? EXIT.FAILURE : EXIT.OK;
    },
  };
}

/** Registered by agent/main.ts. */
export const peersCommand: Command = makePeersCommand(defaultLoad);
