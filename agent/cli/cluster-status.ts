import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { EXIT } from '../../shared/constants.js';
import type { ClusterDocument, ClusterNode } from '../../shared/wire/cluster.js';
import { loadConfig } from '../config/load.js';
import type { Command } from './command.js';
import { askLocal, localInvocation, type LoadConfig } from './local-api.js';

const defaultLoad: LoadConfig = (argv, env) => loadConfig({ argv, env, readFile: (p) => readFileSync(p, 'utf8'), hostname: hostname() });

const USAGE = `piswarm cluster status [--json] [--watch] [--interval SECONDS] [--url URL]

Asks the local agent for GET /v1/cluster: every node of the cluster as this
node knows it from gossip (and, on a manager, from its engine), one row each.
Exit 0 when every node is alive and healthy (health pass or warn), 1 otherwise,
69 when the local agent does not answer.

  --json              print the whole document
  --watch             redraw every --interval seconds (default 2) until Ctrl-C
  --url URL           the agent to ask (default http://127.0.0.1:<http.port>)`;

const pct = (v: number | null) => (v === null ? '-' : `${Math.round(v)}%`);

function role(n: ClusterNode): string {
  if (n.swarm.managerStatus === 'Leader') return 'leader';
  return n.swarm.role;
}

function health(n: ClusterNode): string {
  const s = n.health.status ?? '-';
  return n.health.checks.length > 0 ? `${s} (${n.health.checks.join(', ')})` : s;
}

/** Pure: the table rows (header first). */
export function clusterTable(doc: ClusterDocument): string[] {
  const rows = [['NAME', 'ROLE', 'STATE', 'HEALTH', 'CPU', 'MEM', 'TEMP', 'DISK FREE', 'VERSION', 'AGE']];
  for (const n of doc.nodes) {
    const f = n.facts;
    rows.push([
      `${n.hostname}${n.self ? '*' : ''}`,
      role(n),
      n.gossip ? n.gossip.state : `no agent${n.swarm.state ? ` (${n.swarm.state})` : ''}`,
      health(n),
      pct(f.cpuPct),
      pct(f.memPct),
      f.tempC === null ? '-' : `${f.tempC}°C${f.throttledNow ? ' throttled' : ''}`,
      pct(f.rootFreePct),
      f.version ?? '-',
      f.ageS === null ? '-' : `${f.ageS}s${f.stale ? ' stale' : ''}`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const c = doc.cluster;
  const managers = `managers ${c.managersReachable ?? '?'}/${c.managers}${c.managerTarget !== null ? ` (target ${c.managerTarget})` : ''}${c.quorumMargin !== null ? `, quorum margin ${c.quorumMargin}` : ''}`;
  return [
    `cluster ${c.name}: ${c.members.alive} alive, ${c.members.suspect} suspect, ${c.members.dead} dead; ${managers}; seen from ${doc.servedBy.hostname} (${c.source})`,
    ...rows.map((r) => r.map((x, i) => x.padEnd(widths[i]!)).join('  ').trimEnd()),
  ];
}

/** Pure: 0 when every node is alive and its health passes or warns, else 1. */
export function clusterExit(doc: ClusterDocument): number {
  const ok = doc.nodes.length > 0 && doc.nodes.every((n) => n.gossip?.state === 'alive' && (n.health.status === 'pass' || n.health.status === 'warn'));
  return ok ? EXIT.OK : EXIT.FAILURE;
}

export function makeClusterStatusCommand(load: LoadConfig, opts: { rounds?: number } = {}): Command {
  return {
    name: 'cluster status',
    summary: 'every node of the cluster: role, state, health, figures (any node answers)',
    usage: USAGE,
    async run(ctx) {
      const argv = [...ctx.argv];
      const take = (flag: string): boolean => {
        const i = argv.indexOf(flag);
        if (i >= 0) argv.splice(i, 1);
        return i >= 0;
      };
      if (take('--help')) {
        ctx.out(USAGE);
        return EXIT.OK;
      }
      const watch = take('--watch');
      let intervalS = 2;
      const ii = argv.indexOf('--interval');
      if (ii >= 0) {
        intervalS = Number(argv[ii + 1]);
        argv.splice(ii, 2);
        if (!(intervalS >= 0.5 && intervalS <= 3600)) {
          ctx.err(`--interval must be a number of seconds between 0.5 and 3600\n\n${USAGE}`);
          return EXIT.USAGE;
        }
      }
      const inv = localInvocation({ ...ctx, argv }, load, USAGE);
      if (typeof inv === 'number') return inv;
      for (let round = 1; ; round++) {
        const ans = await askLocal(ctx, inv.base, '/v1/cluster');
        if (typeof ans === 'number') return ans;
        let doc: ClusterDocument;
        try {
          doc = JSON.parse(ans.text) as ClusterDocument;
        } catch {
          ctx.err(`the agent at ${inv.base} answered ${ans.status} with something that is not JSON`);
          return EXIT.UNAVAILABLE;
        }
        if (ans.status !== 200 || !Array.isArray(doc.nodes)) {
          const e = doc as unknown as { code?: string; message?: string };
          ctx.err(`${e.code ?? ans.status}: ${e.message ?? 'no cluster document'}`);
          return EXIT.FAILURE;
        }
        if (watch && !inv.json) ctx.out('\x1b[H\x1b[2J');
        ctx.out(inv.json ? JSON.stringify(doc, null, 2) : clusterTable(doc).join('\n'));
        if (!watch || round === opts.rounds) return clusterExit(doc);
        await sleep(intervalS * 1000);
      }
    },
  };
}

/** Registered by agent/main.ts. */
export const clusterStatusCommand: Command = makeClusterStatusCommand(defaultLoad);
