import { EXIT } from '../../shared/constants.js';
import type { Command } from './command.js';
import { askLocal, localInvocation, type LoadConfig } from './local-api.js';

/** `piswarm status`, `metrics`, `bench-disk`, `livez`: thin clients of the local agent. */
export function localCommands(load: LoadConfig): Command[] {
  const common = '  --url URL     the agent to ask (default http://127.0.0.1:<http.port>)\n  --port N      the local agent\'s port\n  --config FILE configuration file';
  const status: Command = {
    name: 'status',
    summary: 'health summary of the local agent',
    usage: `piswarm status [--json] [--url URL]\n\nAsks the local agent for /health and prints one line per check.\nExit 0: pass or warn; 1: fail; 69: the agent does not answer.\n\n${common}\n  --json        print the health document as JSON`,
    async run(ctx) {
      const inv = localInvocation(ctx, load, this.usage);
      if (typeof inv === 'number') return inv;
      const { base } = inv;
      const ans = await askLocal(ctx, base, '/health');
      if (typeof ans === 'number') return ans;
      let doc: { status: string; checks: Record<string, Array<{ status: string; observedValue?: unknown; observedUnit?: string; output?: string }>> };
      try {
        doc = JSON.parse(ans.text);
      } catch {
        ctx.err(`the agent at ${base} answered ${ans.status} with something that is not a health document`);
        return EXIT.UNAVAILABLE;
      }
      if (inv.json) ctx.out(JSON.stringify(doc, null, 2));
      else {
        ctx.out(`status: ${doc.status}`);
        for (const [name, results] of Object.entries(doc.checks ?? {})) {
          for (const r of results) {
            const value = r.observedValue === undefined || r.observedValue === null ? '' : ` ${String(r.observedValue)}${r.observedUnit ? ` ${r.observedUnit}` : ''}`;
            ctx.out(`  ${r.status.padEnd(4)} ${name}${value}${r.output ? ` — ${r.output}` : ''}`);
          }
        }
      }
      return doc.status === 'fail' ? EXIT.FAILURE : EXIT.OK;
    },
  };
  const metrics: Command = {
    name: 'metrics',
    summary: 'print the local agent\'s /metrics',
    usage: `piswarm metrics [--url URL]\n\nPrints the Prometheus exposition of the local agent.\nExit 0; 69: the agent does not answer.\n\n${common}`,
    async run(ctx) {
      const inv = localInvocation(ctx, load, this.usage, { json: false });
      if (typeof inv === 'number') return inv;
      const { base } = inv;
      const ans = await askLocal(ctx, base, '/metrics');
      if (typeof ans === 'number') return ans;
      ctx.out(ans.text.replace(/\n$/, ''));
      return ans.status === 200 ? EXIT.OK : EXIT.FAILURE;
    },
  };
  const benchDisk: Command = {
    name: 'bench-disk',
    summary: 'measure the boot disk\'s sequential read speed (read-only)',
    usage: `piswarm bench-disk [--json] [--url URL]\n\nAsks the local agent to run its read-only sequential-read benchmark of the\nboot disk (page cache bypassed, bounded by diskBench.maxBytes and\ndiskBench.maxSeconds). The result is kept in the state directory and\nexported as piswarm_disk_bench_read_bytes_per_second. Only loopback callers\nmay start it. Exit 0; 1: the benchmark failed; 69: the agent does not answer.\n\n${common}\n  --json        print the result as JSON`,
    async run(ctx) {
      const inv = localInvocation(ctx, load, this.usage);
      if (typeof inv === 'number') return inv;
      const { base, config } = inv;
      const ans = await askLocal(ctx, base, '/v1/bench/disk', { method: 'POST', timeoutMs: (config.diskBench.maxSeconds + 30) * 1000 });
      if (typeof ans === 'number') return ans;
      if (ans.status !== 200) {
        ctx.err(`benchmark failed (${ans.status}): ${ans.text}`);
        return EXIT.FAILURE;
      }
      if (inv.json) ctx.out(ans.text);
      else {
        const r = JSON.parse(ans.text) as { device: string; bytes: number; seconds: number; bytesPerSecond: number };
        ctx.out(`${r.device}: ${(r.bytesPerSecond / 1e6).toFixed(1)} MB/s (${(r.bytes / 1048576).toFixed(0)} MiB in ${r.seconds.toFixed(2)} s, page cache bypassed)`);
      }
      return EXIT.OK;
    },
  };
  const livez: Command = {
    name: 'livez',
    summary: 'whether the local agent\'s event loop answers (for container health checks)',
    usage: `piswarm livez [--url URL]\n\nAsks the local agent for /livez, which answers whenever its event loop runs\n(Docker or hardware trouble never fails it). The port comes from the same\nconfiguration as the agent's. Exit 0: alive; 69: no answer or not alive.\n\n${common}`,
    async run(ctx) {
      const inv = localInvocation(ctx, load, this.usage, { json: false });
      if (typeof inv === 'number') return inv;
      const ans = await askLocal(ctx, inv.base, '/livez', { timeoutMs: 4000 });
      if (typeof ans === 'number') return ans;
      if (ans.status !== 200) ctx.err(`the agent at ${inv.base} answered /livez with ${ans.status}`);
      return ans.status === 200 ? EXIT.OK : EXIT.UNAVAILABLE;
    },
  };
  return [status, metrics, benchDisk, livez];
}
