import t from 'tap';
import { diskRates, isWholeDisk, resolveBootDisk, wholeDiskOf, wholeDisks } from '../../../../agent/host/disks.js';
import { parseDiskstats, parseMountinfo, type DiskStat } from '../../../../agent/host/procfs.js';
import { fixtureText } from './fixtures.js';

const sysBlockRpi = new Set(['mmcblk0', 'loop0', 'loop1', 'ram0', 'ram1']);

t.test('whole disks only, with sysfs: partitions and virtual devices are not counted', async (t) => {
  const d = wholeDisks(parseDiskstats(fixtureText('rpi4', 'proc/diskstats')), sysBlockRpi);
  t.same(d.map((x) => x.device), ['mmcblk0']);
  const x = wholeDisks(parseDiskstats(fixtureText('x86', 'proc/diskstats')), new Set(['nvme0n1', 'sda', 'loop0', 'loop1']));
  t.same(x.map((e) => e.device), ['nvme0n1', 'sda']);
});

t.test('whole disks only, without sysfs: names decide', async (t) => {
  for (const yes of ['mmcblk0', 'sda', 'nvme0n1', 'vda', 'xvda', 'md0']) t.ok(isWholeDisk(yes, null), yes);
  for (const no of ['mmcblk0p1', 'mmcblk0p2', 'sda1', 'nvme0n1p1', 'vda2', 'xvda1', 'loop0', 'ram3', 'zram0', 'fd0']) t.notOk(isWholeDisk(no, null), no);
  t.notOk(isWholeDisk('zram0', new Set(['zram0'])), 'zram is memory even though /sys/block lists it');
});

t.test('partitions are not double counted: the Pi total equals the whole disk, not disk + partitions', async (t) => {
  const all = parseDiskstats(fixtureText('rpi4', 'proc/diskstats'));
  const bytes = wholeDisks(all, null).reduce((s, d) => s + d.sectorsRead * 512, 0);
  t.equal(bytes, 19304848 * 512);
});

t.test('rates between two samples 5 s apart', async (t) => {
  const a = wholeDisks(parseDiskstats(fixtureText('rpi4', 'proc/diskstats')), sysBlockRpi);
  const b = wholeDisks(parseDiskstats(fixtureText('rpi4', 'proc-later/diskstats')), sysBlockRpi);
  t.same(diskRates(a, b, 5), [{
    device: 'mmcblk0',
    readBytesPerSecond: (25600 * 512) / 5,
    writeBytesPerSecond: (5000 * 512) / 5,
    readsPerSecond: 20,
    writesPerSecond: 20,
    busyRatio: 0.2,
  }]);
  t.same(diskRates(a, b, 0), [], 'no interval, no rate');
});

t.test('a counter that went backwards (32-bit wrap) yields no rate for that interval', async (t) => {
  const d = (sectorsRead: number, io: number): DiskStat => ({ major: 179, minor: 0, device: 'mmcblk0', readsCompleted: 1, sectorsRead, writesCompleted: 1, sectorsWritten: 1, ioTicksMs: io,
    readsMerged: 0, readTimeMs: 0, writesMerged: 0, writeTimeMs: 0, ioNow: 0, weightedIoMs: 0, discards: null, flush: null });
  t.same(diskRates([d(4294967000, 10)], [d(100, 20)], 5), []);
  t.equal(diskRates([d(0, 0)], [d(0, 9000)], 5)[0]?.busyRatio, 1, 'busy is capped at 1');
});

t.test('wholeDiskOf', async (t) => {
  t.equal(wholeDiskOf('mmcblk0p2', ['mmcblk0']), 'mmcblk0');
  t.equal(wholeDiskOf('nvme0n10p1', ['nvme0n1', 'nvme0n10']), 'nvme0n10');
  t.equal(wholeDiskOf('sda1', ['sda', 'sdab']), 'sda');
  t.equal(wholeDiskOf('dm-0', ['sda']), null);
});

t.test('boot disk: the whole disk behind /', async (t) => {
  const rpi = resolveBootDisk({ mounts: parseMountinfo(fixtureText('rpi4', 'proc/self/mountinfo')), stats: parseDiskstats(fixtureText('rpi4', 'proc/diskstats')), sysBlock: sysBlockRpi });
  t.same(rpi, { device: 'mmcblk0', source: 'root-mount' });
  const x86 = resolveBootDisk({ mounts: parseMountinfo(fixtureText('x86', 'proc/self/mountinfo')), stats: parseDiskstats(fixtureText('x86', 'proc/diskstats')), sysBlock: null, configuredDevice: '/dev/sda' });
  t.same(x86, { device: 'nvme0n1', source: 'root-mount' }, 'the / mount wins over the configured device');
});

t.test('boot disk in a container: / is overlay, so configured device, else the largest filesystem', async (t) => {
  const mounts = parseMountinfo([
    '500 400 0:120 / / rw,relatime - overlay overlay rw,lowerdir=/a,upperdir=/b,workdir=/c',
    '501 500 259:2 /var/lib/piswarm /var/lib/piswarm rw - ext4 /dev/nvme0n1p2 rw',
    '502 500 8:1 /x /data rw - xfs /dev/sda1 rw',
  ].join('\n'));
  const stats = parseDiskstats(fixtureText('x86', 'proc/diskstats'));
  t.same(resolveBootDisk({ mounts, stats, sysBlock: null, configuredDevice: '/dev/mmcblk0' }), { device: 'mmcblk0', source: 'configured' });
  const sizes: Record<string, number> = { '/var/lib/piswarm': 5e11, '/data': 2e12 };
  t.same(resolveBootDisk({ mounts, stats, sysBlock: null, sizeOf: (mp) => sizes[mp] ?? null }), { device: 'sda', source: 'largest-filesystem' });
  t.equal(resolveBootDisk({ mounts: mounts.slice(0, 1), stats, sysBlock: null }), null, 'nothing to go by: null, not a guess');
});
