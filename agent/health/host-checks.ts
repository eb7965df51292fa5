import type { Config } from '../../shared/config-schema.js';
import type { HostSnapshot } from '../host/types.js';
import type { CheckResult, HealthStatus } from './types.js';

/** Below this share of MemAvailable the host is swapping or about to OOM-kill containers. */
export const MEMORY_AVAILABLE_WARN_PERCENT = 10;
export const MEMORY_AVAILABLE_FAIL_PERCENT = 3;

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * Host health from the last sample: pure, no I/O. Keys are the health+json
 * "component:measurement" names; each maps to one result (one root fs, one host).
 */
export function hostChecks(snapshot: HostSnapshot, config: Config['health']): Record<string, CheckResult[]> {
  const time = snapshot.at > 0 ? new Date(snapshot.at).toISOString() : undefined;
  const withTime = (r: CheckResult): CheckResult[] => [time === undefined ? r : { ...r, time }];
  return {
    'disk:free': withTime(diskFree(snapshot, config)),
    'host:temperature': withTime(temperature(snapshot, config)),
    'host:power': withTime(power(snapshot)),
    'clock:sync': withTime(clockSync(snapshot)),
    'memory:available': withTime(memoryAvailable(snapshot)),
  };
}

function diskFree(s: HostSnapshot, c: Config['health']): CheckResult {
  const base = { componentId: '/', componentType: 'filesystem', observedUnit: 'percent' } as const;
  if (!s.rootFs || s.rootFs.sizeBytes <= 0) {
    return { ...base, status: 'warn', observedValue: null, output: 'free space of / unknown: the filesystem collector has no sample' };
  }
  // avail, not free: the root-reserved blocks are not available to the agent or to containers.
  const pct = round((s.rootFs.availBytes / s.rootFs.sizeBytes) * 100);
  const status: HealthStatus = pct < c.diskFreeFailPercent ? 'fail' : pct < c.diskFreeWarnPercent ? 'warn' : 'pass';
  const r: CheckResult = { ...base, status, observedValue: pct };
  if (status !== 'pass') {
    const limit = status === 'fail' ? c.diskFreeFailPercent : c.diskFreeWarnPercent;
    r.output = `${pct}% of / is free (${Math.round(s.rootFs.availBytes / 1048576)} MiB), below ${limit}%`;
  }
  return r;
}

function temperature(s: HostSnapshot, c: Config['health']): CheckResult {
  const base = { componentType: 'system', observedUnit: 'Cel' } as const;
  if (s.at === 0) return { ...base, status: 'warn', observedValue: null, output: 'temperature not sampled yet' };
  if (s.maxTemperatureCelsius === null) return { ...base, status: 'pass', observedValue: null, output: 'no thermal sensor' };
  const t = round(s.maxTemperatureCelsius);
  const status: HealthStatus = t >= c.temperatureFailCelsius ? 'fail' : t >= c.temperatureWarnCelsius ? 'warn' : 'pass';
  const hottest = s.thermalZones.find((z) => z.celsius === s.maxTemperatureCelsius);
  const r: CheckResult = { ...base, status, observedValue: t, ...(hottest ? { componentId: hottest.type || `zone${hottest.zone}` } : {}) };
  if (status !== 'pass') r.output = `${t} °C at or above ${status === 'fail' ? c.temperatureFailCelsius : c.temperatureWarnCelsius} °C`;
  return r;
}

/**
 * Under-voltage or throttling now is a warning, not a failure: the node still works,
 * just slower or at risk of SD corruption, and a failing /health would make an
 * orchestrator restart an agent that cannot fix a power supply.
 */
function power(s: HostSnapshot): CheckResult {
  const base = { componentType: 'system' } as const;
  if (s.throttlingSource === 'error' || s.throttlingSource === 'unknown') {
    const why = s.throttlingSource === 'error' ? 'could not be read' : 'not sampled yet';
    return { ...base, status: 'warn', observedValue: null, output: `throttling information ${why}` };
  }
  if (!s.throttling) {
    return { ...base, status: 'pass', observedValue: null, output: 'not a Raspberry Pi: no throttling information' };
  }
  const now = Object.entries(s.throttling.now).filter(([, v]) => v).map(([k]) => k);
  const past = Object.entries(s.throttling.sinceBoot ?? {}).filter(([, v]) => v).map(([k]) => k);
  const observedValue = now.length > 0 ? now.join(',') : 'ok';
  if (now.length > 0) {
    const uv = now.includes('under_voltage') ? 'under-voltage detected: use a 5.1 V / 3 A supply and a short cable; ' : '';
    return { ...base, status: 'warn', observedValue, output: `${uv}now: ${now.join(', ')}` };
  }
  if (past.length > 0) return { ...base, status: 'pass', observedValue, output: `has occurred since boot: ${past.join(', ')}` };
  return { ...base, status: 'pass', observedValue };
}

function clockSync(s: HostSnapshot): CheckResult {
  const base = { componentType: 'system' } as const;
  const c = s.clockSync;
  if (!c || c.synchronized === null) {
    // Unknown is a warning: a Pi has no RTC, and an unsynchronised clock breaks signed-request windows and TLS.
    return { ...base, status: 'warn', observedValue: null, output: c?.detail ?? 'clock synchronisation unknown: no sample' };
  }
  return c.synchronized
    ? { ...base, status: 'pass', observedValue: true }
    : { ...base, status: 'warn', observedValue: false, output: c.detail };
}

function memoryAvailable(s: HostSnapshot): CheckResult {
  const base = { componentType: 'system', observedUnit: 'percent' } as const;
  const m = s.memory;
  if (!m || m.availableBytes === null || m.totalBytes <= 0) {
    return { ...base, status: 'warn', observedValue: null, output: 'MemAvailable unknown (no sample, or a kernel older than 3.14)' };
  }
  const pct = round((m.availableBytes / m.totalBytes) * 100);
  const status: HealthStatus = pct < MEMORY_AVAILABLE_FAIL_PERCENT ? 'fail' : pct < MEMORY_AVAILABLE_WARN_PERCENT ? 'warn' : 'pass';
  const r: CheckResult = { ...base, status, observedValue: pct };
  if (status !== 'pass') r.output = `${pct}% of memory available (${Math.round(m.availableBytes / 1048576)} MiB)`;
  return r;
}
