import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

export const PROMTOOL = '/usr/bin/promtool';

/** Skip reason when promtool is absent outside CI; in CI its absence must fail the test. */
export function promtoolSkip(): string | false {
  if (fs.existsSync(PROMTOOL)) return false;
  return process.env.CI ? false : 'promtool not installed (Debian package "prometheus"); CI installs it';
}

// node_exporter's meminfo names keep the kernel's field names (node_memory_MemTotal_bytes);
// promtool 2.42 lints them as camelCase, and node_entropy_*_bits for its unit. Those lints are the
// price of compatibility (node_exporter's own output gets them), nothing else is allowed. The
// integration tests that lint a live /metrics use the same allowance.
export const ALLOWED_LINT = /^(node_memory_\w+ metric names should be written in 'snake_case' not 'camelCase'|node_(netstat|vmstat|sockstat)_\w+ metric names should be written in 'snake_case' not 'camelCase'|node_entropy_(available|pool_size)_bits use base unit "bytes" instead of "bits")$/;

export interface PromtoolVerdict {
  status: number | null;
  parseError: string | null;
  lint: string[];
  disallowedLint: string[];
}

export function promtoolCheck(text: string): PromtoolVerdict {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const lines = out.split('\n').filter((l) => l.trim() !== '');
  // promtool's own failures ("error while linting: text format parsing error ..."), not lint lines that
  // merely name a metric with "error" in it (node_netstat_Udp_InErrors).
  const isError = (l: string) => /^error|parsing error/i.test(l);
  const parseError = lines.find(isError) ?? (r.error ? String(r.error) : null);
  const lint = lines.filter((l) => !isError(l));
  return { status: r.status, parseError, lint, disallowedLint: lint.filter((l) => !ALLOWED_LINT.test(l)) };
}
