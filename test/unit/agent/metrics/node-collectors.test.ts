import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { parsePressure, parseSoftnet, parseStatCounters } from '../../../../agent/host/node/kernel-parse.js';
import { parseNetstatPairs, parseSnmp6, parseSockstat, parseUdpQueues } from '../../../../agent/host/node/net-parse.js';
import { renderFamilies } from '../../../../agent/metrics/format.js';
import { elementMetric } from '../../../../agent/metrics/node/hwmon.js';
import { createNodeCollectors } from '../../../../agent/metrics/node/index.js';
import { hostDir, type HostName } from '../host/fixtures.js';
import { promtoolCheck, promtoolSkip } from './promtool.js';

/** Samples every node collector over a fixture tree and renders strictly (a bad family throws). */
function scrapeFixture(host: HostName): string {
  const cs = createNodeCollectors(path.join(hostDir(host), 'proc'), path.join(hostDir(host), 'sys'));
  for (const c of cs) void c.sample?.(0);
  return renderFamilies(cs.flatMap((c) => c.collect()));
}

const lines = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

t.test('Pi 4 tree: the series node_exporter derives from these files, with their values', async (t) => {
  const text = scrapeFixture('rpi4');
  t.same(lines(text, 'node_pressure_io_stalled_seconds_total'), ['node_pressure_io_stalled_seconds_total 87.654321'], 'full total= in µs, exported in s');
  t.same(lines(text, 'node_pressure_cpu_waiting_seconds_total'), ['node_pressure_cpu_waiting_seconds_total 123.456789']);
  t.same(lines(text, 'node_pressure_irq_stalled_seconds_total'), [], 'no /proc/pressure/irq on this kernel: no series, not 0');
  t.same(lines(text, 'node_context_switches_total'), ['node_context_switches_total 612345678']);
  t.same(lines(text, 'node_intr_total'), ['node_intr_total 351225813'], 'the first number of the intr line');
  t.same(lines(text, 'node_forks_total'), ['node_forks_total 48213']);
  t.same(lines(text, 'node_procs_running'), ['node_procs_running 1']);
  t.same(lines(text, 'node_vmstat_oom_kill'), ['node_vmstat_oom_kill 1']);
  t.same(lines(text, 'node_vmstat_pgalloc_dma'), [], 'outside the default field set');
  t.same(lines(text, 'node_filefd_allocated'), ['node_filefd_allocated 2112']);
  t.same(lines(text, 'node_entropy_pool_size_bits'), ['node_entropy_pool_size_bits 256']);
  t.same(lines(text, 'node_netstat_Tcp_CurrEstab'), ['node_netstat_Tcp_CurrEstab 17']);
  t.same(lines(text, 'node_netstat_Tcp_MaxConn'), [], 'outside the default field set');
  t.same(lines(text, 'node_netstat_Ip6_InOctets'), ['node_netstat_Ip6_InOctets 5678901'], 'snmp6 names split at the 6');
  t.same(lines(text, 'node_sockstat_TCP_mem_bytes'), ['node_sockstat_TCP_mem_bytes 12288'], 'pages x 4 KiB (no smaps in the tree)');
  t.same(lines(text, 'node_sockstat_FRAG_memory'), ['node_sockstat_FRAG_memory 0'], 'FRAG memory is already bytes: no _bytes twin');
  t.same(lines(text, 'node_sockstat_TCP6_inuse'), ['node_sockstat_TCP6_inuse 5']);
  t.same(lines(text, 'node_softnet_processed_total'), [0x4a2f1, 0x1b2c4, 0x12345, 0xabcd].map((v, i) => `node_softnet_processed_total{cpu="${i}"} ${v}`));
  t.same(lines(text, 'node_softnet_flow_limit_count_total'), [0, 0, 0, 4].map((v, i) => `node_softnet_flow_limit_count_total{cpu="${i}"} ${v}`));
  t.same(lines(text, 'node_arp_entries'), ['node_arp_entries{device="eth0"} 2', 'node_arp_entries{device="wlan0"} 1']);
  t.same(lines(text, 'node_nf_conntrack_entries'), ['node_nf_conntrack_entries 187']);
  t.same(lines(text, 'node_nf_conntrack_stat_invalid'), [`node_nf_conntrack_stat_invalid ${0x11 + 5 + 2}`], 'summed over the per-CPU rows');
  t.same(lines(text, 'node_udp_queues'), ['node_udp_queues{ip="v4",queue="tx"} 512', 'node_udp_queues{ip="v4",queue="rx"} 2560',
    'node_udp_queues{ip="v6",queue="tx"} 0', 'node_udp_queues{ip="v6",queue="rx"} 0']);
  t.same(lines(text, 'node_network_up'), ['node_network_up{device="eth0"} 1', 'node_network_up{device="lo"} 0', 'node_network_up{device="wlan0"} 0'],
    'operstate "unknown" (lo) is not up, as in node_exporter');
  t.same(lines(text, 'node_network_speed_bytes'), ['node_network_speed_bytes{device="eth0"} 125000000'], 'wlan0 has no speed file: no series');
  t.same(lines(text, 'node_network_flags'), ['node_network_flags{device="eth0"} 4099', 'node_network_flags{device="lo"} 9', 'node_network_flags{device="wlan0"} 4099'], 'hex attributes');
  t.same(lines(text, 'node_hwmon_chip_names'), [
    'node_hwmon_chip_names{chip="thermal_thermal_zone0",chip_name="cpu_thermal"} 1',
    'node_hwmon_chip_names{chip="soc:firmware_raspberrypi_hwmon",chip_name="rpi_volt"} 1',
  ], 'chip from the device path, chip_name from the name file');
  t.same(lines(text, 'node_hwmon_temp_celsius'), ['node_hwmon_temp_celsius{chip="thermal_thermal_zone0",sensor="temp1"} 52.582']);
  t.same(lines(text, 'node_cpu_scaling_frequency_hertz').slice(0, 2), ['node_cpu_scaling_frequency_hertz{cpu="0"} 1500000000', 'node_cpu_scaling_frequency_hertz{cpu="1"} 600000000']);
  t.same(lines(text, 'node_cpu_frequency_hertz'), [], 'cpuinfo_cur_freq is root-only and absent here');
  t.same(lines(text, 'node_cooling_device_max_state'), ['node_cooling_device_max_state{name="0",type="rpi-fan"} 4']);
  t.same(lines(text, 'node_schedstat_running_seconds_total')[0], 'node_schedstat_running_seconds_total{cpu="0"} 1834.567890123');
  t.equal(lines(text, 'node_time_seconds').length, 1);
});

t.test('a tree without any of these files: no series and no failure', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-empty-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'proc'));
  fs.writeFileSync(path.join(dir, 'proc', 'stat'), 'ctxt 5\n');
  const cs = createNodeCollectors(path.join(dir, 'proc'), path.join(dir, 'sys'));
  for (const c of cs) t.doesNotThrow(() => c.sample?.(0), `${c.name} samples`);
  const names = [...new Set(cs.flatMap((c) => c.collect()).map((f) => f.name))];
  t.same(names, ['node_context_switches_total', 'node_time_seconds'], 'only what the files (and the clock) give');
});

t.test('a proc tree without /proc/stat fails that collector alone', async (t) => {
  const cs = createNodeCollectors('/nonexistent/proc', '/nonexistent/sys');
  const failed = cs.filter((c) => {
    try {
      void c.sample?.(0);
      return false;
    } catch {
      return true;
    }
  }).map((c) => c.name);
  t.same(failed, ['stat']);
});

t.test('parsers: what node_exporter does with odd input', async (t) => {
  t.same(parsePressure('some avg10=0.00 avg60=0.00 avg300=0.00 total=2000000\n'), { someSeconds: 2, fullSeconds: null }, 'cpu on kernels before 5.13: no full line');
  t.same(parseSoftnet('00000010 00000001 00000002\n').map((r) => [r.processed, r.receivedRps, r.flowLimitCount]), [[16, null, null]], 'old 3-column rows: no rps or flow-limit series');
  t.same(parseStatCounters('intr 10 1 2 3\nprocs_blocked x\n', 100).interrupts, 10);
  t.same([...parseNetstatPairs('Tcp: A B\nTcp: 1\nUdp: C\nUdp: 7\n')], [['Udp_C', 7]], 'a header/value pair of different lengths is skipped');
  t.same([...parseSnmp6('Icmp6InMsgs 3\nbogus\n')], [['Icmp6_InMsgs', 3]]);
  t.same(parseSockstat('sockets: used 3\n'), [{ name: 'sockets_used', value: 3, pages: false }]);
  t.same(parseUdpQueues('hdr\n 1: a b 07 00000010:00000020 x\n'), { tx: 16, rx: 32 });
});

t.test('hwmon element names follow collector/hwmon_linux.go', async (t) => {
  t.same(elementMetric('temp', 'input', false), { name: 'node_hwmon_temp_celsius', type: 'gauge', scale: 0.001 });
  t.same(elementMetric('temp', 'crit_alarm', false)?.name, 'node_hwmon_temp_crit_alarm_celsius');
  t.same(elementMetric('temp', 'alarm', false), { name: 'node_hwmon_temp_alarm', type: 'gauge', scale: 1 }, 'alarms carry no unit');
  t.same(elementMetric('in', 'lcrit_alarm', false)?.name, 'node_hwmon_in_lcrit_alarm_volts');
  t.same(elementMetric('fan', 'input', false)?.name, 'node_hwmon_fan_rpm');
  t.same(elementMetric('fan', 'min', false)?.name, 'node_hwmon_fan_min_rpm');
  t.same(elementMetric('power', 'average', false), { name: 'node_hwmon_power_average_watt', type: 'gauge', scale: 1e-6 });
  t.same(elementMetric('energy', 'input', false)?.type, 'counter');
  t.same(elementMetric('temp', 'input', true)?.name, 'node_hwmon_temp_input_celsius', 'a bare temp1 file next to temp1_input');
  t.equal(elementMetric('update_interval', '', false), null);
});

t.test('promtool accepts the Pi 4 scrape', { skip: promtoolSkip() }, async (t) => {
  const v = promtoolCheck(scrapeFixture('rpi4'));
  t.equal(v.parseError, null);
  t.same(v.disallowedLint, []);
});
