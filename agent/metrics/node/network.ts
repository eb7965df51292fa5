import type { NodeFiles } from '../../host/node/files.js';
import { parseSoftnet } from '../../host/node/kernel-parse.js';
import { CONNTRACK_STATS, NETSTAT_FIELDS, parseArp, parseConntrackStat, parseNetstatPairs, parseSnmp6, parseSockstat, parseUdpQueues } from '../../host/node/net-parse.js';
import type { SampledCollector } from '../sampler.js';
import type { MetricFamily } from '../types.js';
import { counter, gauge, orNull, sampled, single, untyped } from './families.js';

/** collector/netstat_linux.go: netstat + snmp + snmp6, filtered by the default field set; untyped like node_exporter's. */
function netstat(f: NodeFiles): SampledCollector {
  return sampled('netstat', () => {
    const all = new Map<string, number>();
    for (const file of ['netstat', 'snmp']) for (const [k, v] of orNull(f.optional(f.proc('net', file)), parseNetstatPairs) ?? []) all.set(k, v);
    for (const [k, v] of orNull(f.optional(f.proc('net', 'snmp6')), parseSnmp6) ?? []) all.set(k, v);
    return all.size === 0 ? null : [...all].filter(([k]) => NETSTAT_FIELDS.test(k));
  }, (rows) => rows.map(([k, v]) => {
    const [proto, ...rest] = k.split('_');
    return untyped(`node_netstat_${k}`, `Statistic ${proto}${rest.join('_')}.`, [{ value: v }]);
  }));
}

/** collector/sockstat_linux.go: `mem` is in pages and also exported in bytes. */
function sockstat(f: NodeFiles): SampledCollector {
  let pageSize: number | null = null;
  return sampled('sockstat', () => {
    pageSize ??= readPageSize(f);
    const rows = [...orNull(f.optional(f.proc('net', 'sockstat')), parseSockstat) ?? [], ...orNull(f.optional(f.proc('net', 'sockstat6')), parseSockstat) ?? []];
    return rows.length === 0 ? null : rows;
  }, (rows) => rows.flatMap((r) => {
    const fam: MetricFamily[] = [gauge(`node_sockstat_${r.name}`, `Number of ${r.name.replace('_', ' sockets in state ')}.`, [{ value: r.value }])];
    if (r.pages) fam.push(gauge(`node_sockstat_${r.name}_bytes`, `Number of ${r.name.split('_')[0]} sockets in state mem_bytes.`, [{ value: r.value * (pageSize ?? 4096) }]));
    return fam;
  }));
}

/** The kernel's page size from the first mapping of /proc/self/smaps (Node has no getpagesize); 4 KiB without it. */
function readPageSize(f: NodeFiles): number {
  const m = /^KernelPageSize:\s+(\d+) kB/m.exec(f.head(f.proc('self', 'smaps'), 4096) ?? '');
  return m ? Number(m[1]) * 1024 : 4096;
}

function softnet(f: NodeFiles): SampledCollector {
  return sampled('softnet', () => orNull(f.optional(f.proc('net', 'softnet_stat')), parseSoftnet), (rows) => {
    const per = (pick: (r: (typeof rows)[number]) => number | null) =>
      rows.filter((r) => pick(r) !== null).map((r) => ({ labels: { cpu: r.cpu }, value: pick(r) as number }));
    return [
      counter('node_softnet_processed_total', 'Number of processed packets', per((r) => r.processed)),
      counter('node_softnet_dropped_total', 'Number of dropped packets', per((r) => r.dropped)),
      counter('node_softnet_times_squeezed_total', 'Number of times processing packets ran out of quota', per((r) => r.timeSqueezed)),
      counter('node_softnet_received_rps_total', 'Number of times cpu woken up received_rps', per((r) => r.receivedRps)),
      counter('node_softnet_flow_limit_count_total', 'Number of times flow limit has been reached', per((r) => r.flowLimitCount)),
    ].filter((x) => x.samples.length > 0);
  });
}

function arp(f: NodeFiles): SampledCollector {
  return sampled('arp', () => orNull(f.optional(f.proc('net', 'arp')), parseArp), (byDev) => [
    gauge('node_arp_entries', 'ARP entries by device', [...byDev].map(([device, value]) => ({ labels: { device }, value }))),
  ]);
}

/** collector/conntrack_linux.go: absent without the nf_conntrack module. */
function conntrack(f: NodeFiles): SampledCollector {
  const num = (name: string) => {
    const v = f.attr(f.proc('sys', 'net', 'netfilter', name));
    return v === null ? null : Number(v);
  };
  return sampled('conntrack', () => {
    const entries = num('nf_conntrack_count');
    if (entries === null) return null;
    const stat = f.optional(f.proc('net', 'stat', 'nf_conntrack'));
    return { entries, limit: num('nf_conntrack_max'), stats: stat === null ? new Map<string, number>() : parseConntrackStat(stat) };
  }, (c) => [
    gauge('node_nf_conntrack_entries', 'Number of currently allocated flow entries for connection tracking.', [{ value: c.entries }]),
    ...single('gauge', 'node_nf_conntrack_entries_limit', 'Maximum size of connection tracking table.', c.limit),
    ...CONNTRACK_STATS.flatMap((s) => single('gauge', `node_nf_conntrack_stat_${s}`, `Conntrack statistic ${s}.`, c.stats.get(s))),
  ]);
}

function udpQueues(f: NodeFiles): SampledCollector {
  return sampled('udp_queues', () => {
    const rows: Array<{ ip: string; tx: number; rx: number }> = [];
    for (const [ip, file] of [['v4', 'udp'], ['v6', 'udp6']] as const) {
      const text = f.optional(f.proc('net', file));
      if (text !== null) rows.push({ ip, ...parseUdpQueues(text) });
    }
    return rows.length === 0 ? null : rows;
  }, (rows) => [
    gauge('node_udp_queues', 'Number of allocated memory in the kernel for UDP datagrams in bytes.', rows.flatMap((r) => [
      { labels: { ip: r.ip, queue: 'tx' }, value: r.tx }, { labels: { ip: r.ip, queue: 'rx' }, value: r.rx },
    ])),
  ]);
}

export function networkCollectors(f: NodeFiles): SampledCollector[] {
  return [netstat(f), sockstat(f), softnet(f), arp(f), conntrack(f), udpQueues(f)];
}
