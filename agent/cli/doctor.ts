import { EXIT } from '../../shared/constants.js';
import { doctorChecks, overallStatus, type DoctorCheck } from '../doctor/checks.js';
import { gatherState } from '../doctor/gather.js';
import type { SystemState } from '../doctor/state.js';
import { parseArgs, type Command, type CommandContext } from './command.js';

const USAGE = `Usage: piswarm doctor [--json]

Checks this node for what stops a Docker swarm from forming and prints each
problem with its fix: memory cgroup, clock synchronisation, kernel modules
(vxlan, ip_vs), Docker daemon options (live-restore), other programs on UDP
5353 or on the agent's port, an ambiguous advertise address, ufw rules, and
the Node.js version. Run it as root for complete answers (socket owners, ufw).

  --json   print {"status": ..., "checks": [...]} instead of text

Exit status: 0 when nothing blocks (warnings allowed), 1 when something does.`;

const LABEL = { pass: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;

export function formatReport(checks: readonly DoctorCheck[]): string {
  const status = overallStatus(checks);
  const fails = checks.filter((c) => c.status === 'fail').length;
  const warns = checks.filter((c) => c.status === 'warn').length;
  const width = Math.max(...checks.map((c) => c.id.length));
  const head = status === 'fail'
    ? `piswarm doctor: ${fails} problem(s) will stop the swarm from forming${warns ? `, ${warns} warning(s)` : ''}`
    : status === 'warn' ? `piswarm doctor: nothing blocks the swarm; ${warns} warning(s)` : 'piswarm doctor: all checks passed';
  const lines = checks.map((c) => `${LABEL[c.status]}  ${c.id.padEnd(width)}  ${c.output}${c.fix && c.status !== 'pass' ? `\n        ${''.padEnd(width)}fix: ${c.fix}` : ''}`);
  return [head, ...lines].join('\n');
}

/** The doctor command; the state source is injectable so tests run it over recorded fixtures. */
export function makeDoctorCommand(gather: () => Promise<SystemState> = () => gatherState()): Command {
  return {
    name: 'doctor',
    summary: 'Check this node for what would stop a swarm from forming, with fixes',
    usage: USAGE,
    async run(ctx: CommandContext) {
      const a = parseArgs(ctx.argv, { booleans: ['json', 'help'] });
      if (a.values.help) {
        ctx.out(USAGE);
        return EXIT.OK;
      }
      if (a.unknown.length || a.positional.length) {
        ctx.err(`piswarm doctor: unexpected ${[...a.unknown, ...a.positional].join(' ')}\n\n${USAGE}`);
        return EXIT.USAGE;
      }
      const checks = doctorChecks(await gather());
      const status = overallStatus(checks);
      ctx.out(a.values.json ? JSON.stringify({ status, checks }, null, 2) : formatReport(checks));
      return status === 'fail' ? EXIT.FAILURE : EXIT.OK;
    },
  };
}

export const doctorCommand: Command = makeDoctorCommand();
