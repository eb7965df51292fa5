import type { NodeFiles } from '../../host/node/files.js';
import type { SampledCollector } from '../sampler.js';
import type { MetricSample } from '../types.js';
import { counter, gauge, sampled } from './families.js';

/**
 * collector/netclass_linux.go over /sys/class/net/<device>/: each attribute a
 * device does not have (or that answers EINVAL, like the speed of a link that is
 * down) is simply absent for that device.
 */
const NUMERIC: ReadonlyArray<[file: string, metric: string, type: 'gauge' | 'counter', help: string]> = [
  ['addr_assign_type', 'node_network_address_assign_type', 'gauge', 'Network device property: address_assign_type'],
  ['carrier', 'node_network_carrier', 'gauge', 'Network device property: carrier'],
  ['carrier_changes', 'node_network_carrier_changes_total', 'counter', 'Network device property: carrier_changes_total'],
  ['carrier_up_count', 'node_network_carrier_up_changes_total', 'counter', 'Network device property: carrier_up_changes_total'],
  ['carrier_down_count', 'node_network_carrier_down_changes_total', 'counter', 'Network device property: carrier_down_changes_total'],
  ['dev_id', 'node_network_device_id', 'gauge', 'Network device property: device_id'],
  ['dormant', 'node_network_dormant', 'gauge', 'Network device property: dormant'],
  ['flags', 'node_network_flags', 'gauge', 'Network device property: flags'],
  ['ifindex', 'node_network_iface_id', 'gauge', 'Network device property: iface_id'],
  ['iflink', 'node_network_iface_link', 'gauge', 'Network device property: iface_link'],
  ['link_mode', 'node_network_iface_link_mode', 'gauge', 'Network device property: iface_link_mode'],
  ['mtu', 'node_network_mtu_bytes', 'gauge', 'Network device property: mtu_bytes'],
  ['name_assign_type', 'node_network_name_assign_type', 'gauge', 'Network device property: name_assign_type'],
  ['netdev_group', 'node_network_net_dev_group', 'gauge', 'Network device property: net_dev_group'],
  ['type', 'node_network_protocol_type', 'gauge', 'Network device property: protocol_type'],
  ['tx_queue_len', 'node_network_transmit_queue_length', 'gauge', 'Network device property: transmit_queue_length'],
  // Not netclass but netdev: /proc/net/dev has no rx_nohandler column; node_exporter 1.5 gets it over rtnetlink.
  ['statistics/rx_nohandler', 'node_network_receive_nohandler_total', 'counter', 'Network device statistic receive_nohandler.'],
];

interface Iface {
  device: string;
  values: Map<string, number>;
  info: Record<string, string>;
  up: number;
  /** Mbit/s as the kernel says (-1 for unknown, which node_exporter 1.5 still exports). */
  speed: number | null;
}

const num = (s: string | null): number | null => {
  if (s === null || s === '') return null;
  const v = s.startsWith('0x') ? parseInt(s, 16) : Number(s);
  return Number.isFinite(v) ? v : null;
};

export function netclassCollector(f: NodeFiles): SampledCollector {
  const base = f.sys('class', 'net');
  return sampled('netclass', () => {
    const names = f.list(base);
    if (names === null) return null;
    return names.sort().filter((d) => !d.startsWith('bonding_masters')).map((device): Iface => {
      const a = (file: string) => f.attr(`${base}/${device}/${file}`);
      const values = new Map<string, number>();
      for (const [file] of NUMERIC) {
        const v = num(a(file));
        if (v !== null) values.set(file, v);
      }
      const operstate = a('operstate') ?? '';
      return {
        device, values, up: operstate === 'up' ? 1 : 0, speed: num(a('speed')),
        info: { address: a('address') ?? '', broadcast: a('broadcast') ?? '', device, duplex: a('duplex') ?? '', ifalias: a('ifalias') ?? '', operstate },
      };
    });
  }, (ifaces) => {
    const fams = NUMERIC.map(([file, metric, type, help]) => {
      const samples: MetricSample[] = ifaces.filter((i) => i.values.has(file)).map((i) => ({ labels: { device: i.device }, value: i.values.get(file) as number }));
      return (type === 'counter' ? counter : gauge)(metric, help, samples);
    });
    fams.push(
      gauge('node_network_info', 'Non-numeric data from /sys/class/net/<iface>, value is always 1.', ifaces.map((i) => ({ labels: i.info, value: 1 }))),
      gauge('node_network_speed_bytes', 'Network device property: speed_bytes', ifaces.filter((i) => i.speed !== null).map((i) => ({ labels: { device: i.device }, value: (i.speed as number) * 125000 }))),
      gauge('node_network_up', 'Value is 1 if operstate is \'up\', 0 otherwise.', ifaces.map((i) => ({ labels: { device: i.device }, value: i.up }))),
    );
    return fams.filter((x) => x.samples.length > 0);
  });
}
