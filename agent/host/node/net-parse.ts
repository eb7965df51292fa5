/** Pure parsers for /proc/net files read by node_exporter's network collectors. */

// node_exporter's default --collector.netstat.fields (collector/netstat_linux.go), plus
// TcpExt_TCPOFOQueue and TcpExt_TCPRcvQDrop, which Node Exporter Full queries and later
// node_exporter releases added to the default set.
export const NETSTAT_FIELDS = /^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$/;

/** /proc/net/netstat and /proc/net/snmp: a header line `Proto: A B` followed by `Proto: 1 2`. */
export function parseNetstatPairs(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = (lines[i] as string).trim().split(/\s+/);
    const values = (lines[i + 1] as string).trim().split(/\s+/);
    const proto = names[0]?.replace(/:$/, '');
    if (!proto || values[0] !== names[0] || names.length !== values.length) continue;
    for (let j = 1; j < names.length; j++) {
      const v = Number(values[j]);
      if (Number.isFinite(v)) out.set(`${proto}_${names[j]}`, v);
    }
  }
  return out;
}

/** /proc/net/snmp6: `Ip6InReceives 123`; the protocol is the name up to its '6' (Ip6, Icmp6, Udp6, UdpLite6). */
export function parseSnmp6(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, v] = line.trim().split(/\s+/);
    const six = key?.indexOf('6') ?? -1;
    if (key === undefined || v === undefined || six < 0) continue;
    const value = Number(v);
    if (Number.isFinite(value)) out.set(`${key.slice(0, six + 1)}_${key.slice(six + 1)}`, value);
  }
  return out;
}

/**
 * /proc/net/sockstat{,6} (collector/sockstat_linux.go): `TCP: inuse 9 orphan 0 tw 108 alloc 9 mem 47`.
 * Returns node_exporter's name parts (`TCP_inuse`, `sockets_used`) in file order.
 */
export function parseSockstat(text: string): Array<{ name: string; value: number; pages: boolean }> {
  const out: Array<{ name: string; value: number; pages: boolean }> = [];
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z0-9]+):\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const f = (m[2] as string).split(/\s+/);
    for (let i = 0; i + 1 < f.length; i += 2) {
      const value = Number(f[i + 1]);
      if (Number.isFinite(value)) out.push({ name: `${m[1]}_${f[i]}`, value, pages: f[i] === 'mem' });
    }
  }
  return out;
}

/** /proc/net/arp: entries per device (the last column). */
export function parseArp(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    const dev = f[f.length - 1] as string;
    out.set(dev, (out.get(dev) ?? 0) + 1);
  }
  return out;
}

/** /proc/net/udp{,6}: the summed tx_queue and rx_queue (hex `tx:rx`, fifth column). */
export function parseUdpQueues(text: string): { tx: number; rx: number } {
  let tx = 0;
  let rx = 0;
  for (const line of text.split('\n').slice(1)) {
    const q = /^([0-9A-Fa-f]+):([0-9A-Fa-f]+)$/.exec(line.trim().split(/\s+/)[4] ?? '');
    if (!q) continue;
    tx += parseInt(q[1] as string, 16);
    rx += parseInt(q[2] as string, 16);
  }
  return { tx, rx };
}

export const CONNTRACK_STATS = ['found', 'invalid', 'ignore', 'insert', 'insert_failed', 'drop', 'early_drop', 'search_restart'] as const;

/** /proc/net/stat/nf_conntrack: a header of field names, then one hex row per CPU; summed. */
export function parseConntrackStat(text: string): Map<string, number> {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const head = (lines[0] ?? '').trim().split(/\s+/);
  const sums = new Map<string, number>();
  for (const line of lines.slice(1)) {
    const f = line.trim().split(/\s+/);
    head.forEach((name, i) => {
      const v = parseInt(f[i] ?? '', 16);
      if ((CONNTRACK_STATS as readonly string[]).includes(name) && Number.isFinite(v)) sums.set(name, (sums.get(name) ?? 0) + v);
    });
  }
  return sums;
}
