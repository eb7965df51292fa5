import type { DiskStat, NetDevStat } from '../../host/procfs.js';
import type { MetricFamily } from '../types.js';
import { counter, gauge } from './families.js';

/** collector/diskstats_linux.go's series beyond the five piswarm had (times in ms exported in seconds). */
export function extendedDiskFamilies(disks: readonly DiskStat[]): MetricFamily[] {
  const c = (name: string, help: string, pick: (d: DiskStat) => number | null | undefined) =>
    counter(name, help, disks.filter((d) => pick(d) !== null && pick(d) !== undefined).map((d) => ({ labels: { device: d.device }, value: pick(d) as number })));
  const fams = [
    c('node_disk_reads_merged_total', 'The total number of reads merged.', (d) => d.readsMerged),
    c('node_disk_read_time_seconds_total', 'The total number of seconds spent by all reads.', (d) => d.readTimeMs / 1000),
    c('node_disk_writes_merged_total', 'The number of writes merged.', (d) => d.writesMerged),
    c('node_disk_write_time_seconds_total', 'This is the total number of seconds spent by all writes.', (d) => d.writeTimeMs / 1000),
    gauge('node_disk_io_now', 'The number of I/Os currently in progress.', disks.map((d) => ({ labels: { device: d.device }, value: d.ioNow }))),
    c('node_disk_io_time_weighted_seconds_total', 'The weighted # of seconds spent doing I/Os.', (d) => d.weightedIoMs / 1000),
    c('node_disk_discards_completed_total', 'The total number of discards completed successfully.', (d) => d.discards?.completed),
    c('node_disk_discards_merged_total', 'The total number of discards merged.', (d) => d.discards?.merged),
    c('node_disk_discarded_sectors_total', 'The total number of sectors discarded successfully.', (d) => d.discards?.sectors),
    c('node_disk_discard_time_seconds_total', 'This is the total number of seconds spent by all discards.', (d) => (d.discards ? d.discards.timeMs / 1000 : null)),
    c('node_disk_flush_requests_total', 'The total number of flush requests completed successfully', (d) => d.flush?.requests),
    c('node_disk_flush_requests_time_seconds_total', 'This is the total number of seconds spent by all flush requests.', (d) => (d.flush ? d.flush.timeMs / 1000 : null)),
  ];
  return fams.filter((f) => f.samples.length > 0);
}

const NETDEV: ReadonlyArray<[string, keyof Omit<NetDevStat, 'device'>]> = [
  ['receive_bytes', 'rxBytes'], ['receive_packets', 'rxPackets'], ['receive_errs', 'rxErrs'], ['receive_drop', 'rxDrop'],
  ['receive_fifo', 'rxFifo'], ['receive_frame', 'rxFrame'], ['receive_compressed', 'rxCompressed'], ['receive_multicast', 'rxMulticast'],
  ['transmit_bytes', 'txBytes'], ['transmit_packets', 'txPackets'], ['transmit_errs', 'txErrs'], ['transmit_drop', 'txDrop'],
  ['transmit_fifo', 'txFifo'], ['transmit_colls', 'txColls'], ['transmit_carrier', 'txCarrier'], ['transmit_compressed', 'txCompressed'],
];

/** collector/netdev_linux.go: every /proc/net/dev column as node_network_<column>_total. */
export function netdevFamilies(net: readonly NetDevStat[]): MetricFamily[] {
  return NETDEV.map(([stat, key]) => counter(`node_network_${stat}_total`, `Network device statistic ${stat}.`,
    net.map((x) => ({ labels: { device: x.device }, value: x[key] }))));
}
