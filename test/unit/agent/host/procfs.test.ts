import t from 'tap';
import {
  parseDiskstats, parseLoadAvg, parseMeminfo, parseMountinfo, parseMounts, parseNetDev, parseProcStat, isReportedFilesystem,
} from '../../../../agent/host/procfs.js';
import { fixtureText } from './fixtures.js';

t.test('/proc/stat of a Pi 4: four CPUs, eight modes in seconds, btime', async (t) => {
  const s = parseProcStat(fixtureText('rpi4', 'proc/stat'));
  t.equal(s.cpus.length, 4, 'the aggregate cpu line is not a CPU');
  t.same(s.cpus.map((c) => c.cpu), ['0', '1', '2', '3']);
  t.same(s.cpus[0]?.seconds, { user: 1832.45, nice: 15.02, system: 612.34, idle: 34128.77, iowait: 98.23, irq: 0, softirq: 40.21, steal: 0 });
  t.equal(s.cpus[3]?.seconds.idle, 34362.9);
  t.equal(s.bootTime, 1700000000);
});

t.test('/proc/stat of an x86 box: eight CPUs', async (t) => {
  const s = parseProcStat(fixtureText('x86', 'proc/stat'));
  t.equal(s.cpus.length, 8);
  t.equal(s.cpus[7]?.cpu, '7');
  t.equal(s.cpus[7]?.seconds.user, 9194.36);
  t.equal(s.bootTime, 1699000000);
});

t.test('/proc/stat: garbage lines are skipped, short old-kernel lines padded', async (t) => {
  const s = parseProcStat('cpu0 1 2 3 4\ncpu1 x y z w\nbtime nope\n');
  t.equal(s.cpus.length, 1);
  t.same(s.cpus[0]?.seconds, { user: 0.01, nice: 0.02, system: 0.03, idle: 0.04, iowait: 0, irq: 0, softirq: 0, steal: 0 });
  t.equal(s.bootTime, null);
});

t.test('/proc/loadavg', async (t) => {
  t.same(parseLoadAvg(fixtureText('rpi4', 'proc/loadavg')), { load1: 0.52, load5: 0.38, load15: 0.31 });
  t.equal(parseLoadAvg('bogus'), null);
});

t.test('/proc/meminfo: kB become bytes, node_exporter names, unitless fields stay unitless', async (t) => {
  const m = parseMeminfo(fixtureText('rpi4', 'proc/meminfo'));
  t.equal(m.byField.get('MemTotal'), 3885076 * 1024);
  t.equal(m.byField.get('MemAvailable'), 3141852 * 1024);
  t.equal(m.byField.get('SwapFree'), 102396 * 1024);
  t.ok(m.entries.find((e) => e.name === 'Active_anon' && e.bytes && e.value === 418340 * 1024), 'Active(anon) -> Active_anon');
  const x = parseMeminfo(fixtureText('x86', 'proc/meminfo'));
  t.same(x.entries.find((e) => e.name === 'HugePages_Total'), { name: 'HugePages_Total', value: 0, bytes: false });
});

t.test('/proc/diskstats: every line parsed, counters at the documented columns', async (t) => {
  const d = parseDiskstats(fixtureText('rpi4', 'proc/diskstats'));
  t.same(d.map((x) => x.device), ['ram0', 'ram1', 'loop0', 'loop1', 'mmcblk0', 'mmcblk0p1', 'mmcblk0p2']);
  t.same(d.find((x) => x.device === 'mmcblk0'), {
    major: 179, minor: 0, device: 'mmcblk0', readsCompleted: 404212, sectorsRead: 19304848, writesCompleted: 1092237, sectorsWritten: 31047874, ioTicksMs: 2188712,
    readsMerged: 114446, readTimeMs: 1824301, writesMerged: 1723455, writeTimeMs: 8834542, ioNow: 0, weightedIoMs: 10913221,
    discards: { completed: 0, merged: 0, sectors: 0, timeMs: 0 }, flush: { requests: 61234, timeMs: 254378 },
  });
  // 11-field line from a pre-4.18 kernel still parses; a truncated one does not.
  const old = parseDiskstats('   8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n   8 1 sda1 1 2\n');
  t.equal(old.length, 1);
  t.same([old[0]?.discards, old[0]?.flush], [null, null], 'no discard/flush columns: no such series, not zeros');
});

t.test('/proc/net/dev, including a counter glued to the colon', async (t) => {
  const n = parseNetDev(fixtureText('rpi4', 'proc/net/dev'));
  t.same(n.map((x) => x.device), ['lo', 'eth0', 'wlan0', 'docker0']);
  t.same(n[1], { device: 'eth0', rxBytes: 1873456789, rxPackets: 2345678, rxErrs: 0, rxDrop: 12, txBytes: 987654321, txPackets: 1456789, txErrs: 0, txDrop: 0,
    rxFifo: 0, rxFrame: 0, rxCompressed: 0, rxMulticast: 18234, txFifo: 0, txColls: 0, txCarrier: 0, txCompressed: 0 });
  const x = parseNetDev(fixtureText('x86', 'proc/net/dev'));
  t.equal(x.find((i) => i.device === 'enp3s0')?.rxBytes, 12345678901);
});

t.test('mountinfo: device numbers, octal escapes, filesystem filter', async (t) => {
  const m = parseMountinfo(fixtureText('rpi4', 'proc/self/mountinfo'));
  const root = m.find((x) => x.mountpoint === '/');
  t.same(root, { major: 179, minor: 2, mountpoint: '/', fstype: 'ext4', device: '/dev/mmcblk0p2', options: 'rw,noatime' });
  t.ok(m.find((x) => x.mountpoint === '/mnt/my share'), '\\040 decoded to a space');
  t.same(m.filter(isReportedFilesystem).map((x) => x.mountpoint), ['/run', '/', '/run/lock', '/boot/firmware', '/run/user/1000', '/mnt/my share']);
  const x = parseMountinfo(fixtureText('x86', 'proc/self/mountinfo'));
  t.same(x.filter(isReportedFilesystem).map((e) => e.mountpoint), ['/run', '/', '/boot/efi', '/data'], 'squashfs snaps and nfs are left out');
});

t.test('/proc/mounts fallback has no device numbers', async (t) => {
  t.same(parseMounts('/dev/sda1 /data xfs rw 0 0\n'), [{ major: -1, minor: -1, device: '/dev/sda1', mountpoint: '/data', fstype: 'xfs', options: 'rw' }]);
});

t.test("the hardened unit's own sandbox mounts are not host filesystems", async (t) => {
  // What the agent's mount namespace adds on a Pi under piswarm.service: PrivateTmp and
  // StateDirectory bind the root disk again, ProtectHome and credentials put tmpfs over
  // what the agent may not see. Format of /proc/self/mountinfo.
  const text = [
    '24 1 179:2 / / rw,relatime shared:1 - ext4 /dev/mmcblk0p2 rw',
    '300 24 179:2 /tmp/systemd-private-abc-piswarm.service-x/tmp /tmp rw,relatime - ext4 /dev/mmcblk0p2 rw',
    '301 24 179:2 /var/tmp/systemd-private-abc-piswarm.service-y/tmp /var/tmp rw,relatime - ext4 /dev/mmcblk0p2 rw',
    '302 24 179:2 /var/lib/piswarm /var/lib/piswarm rw,relatime - ext4 /dev/mmcblk0p2 rw',
    '303 24 0:60 / /home ro,nosuid,nodev,noexec - tmpfs tmpfs ro,size=0k',
    '304 24 0:60 / /root ro,nosuid,nodev,noexec - tmpfs tmpfs ro,size=0k',
    '305 24 0:61 / /run/user ro,nosuid,nodev,noexec - tmpfs tmpfs ro,size=0k',
    '306 24 0:62 / /run/credentials rw - tmpfs tmpfs rw',
    '307 24 0:63 / /run/systemd/incoming rw - tmpfs tmpfs rw',
    '308 24 179:1 / /boot/firmware rw,relatime - vfat /dev/mmcblk0p1 rw',
    '309 24 0:25 / /run/user/1000 rw,nosuid,nodev - tmpfs tmpfs rw',
  ].join('\n');
  t.same(parseMountinfo(text).filter(isReportedFilesystem).map((m) => m.mountpoint), ['/', '/boot/firmware', '/run/user/1000']);
});
