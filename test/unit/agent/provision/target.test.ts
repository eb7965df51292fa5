import t from 'tap';
import { inspectTarget, parseMountinfo, targetRefusals } from '../../../../agent/provision/target.js';
import { cardReader, fakeHost } from './fake-host.js';

const IMG = 2_000_000_000;

t.test('an unmounted card reader disk is a fine target', async (t) => {
  const f = inspectTarget('/dev/sdb', fakeHost(cardReader()));
  t.equal(f.kind, 'block');
  t.equal(f.capacityBytes, 31116288 * 512);
  t.same(f.devices.sort(), ['sdb', 'sdb1', 'sdb2']);
  t.same(f.inUse, []);
  t.equal(f.holdsRoot, false);
  t.same(targetRefusals(f, '/x.img', '/x.img', IMG), []);
});

t.test('a mounted partition of the target (mountinfo by device number)', async (t) => {
  const rec = cardReader({ files: { '/proc/self/mountinfo': '27 1 254:0 / / rw - ext4 /dev/vda rw\n40 27 8:17 / /media/pi/bootfs rw - vfat /dev/sdb1 rw\n' } });
  const f = inspectTarget('/dev/sdb', fakeHost(rec));
  t.same(f.inUse, ['/dev/sdb1 mounted on /media/pi/bootfs']);
  t.match(targetRefusals(f, '/x.img', '/x.img', IMG)[0], /\/dev\/sdb is in use: \/dev\/sdb1 mounted on \/media\/pi\/bootfs\. Unmount it first/);
});

t.test('a mount listed only in /proc/self/mounts, with an escaped space', async (t) => {
  const rec = cardReader({ files: { '/proc/self/mounts': '/dev/sdb2 /media/my\\040card ext4 rw 0 0\n' } });
  const f = inspectTarget('/dev/sdb', fakeHost(rec));
  t.same(f.inUse, ['/dev/sdb2 mounted on /media/my card']);
});

t.test('a partition used as swap', async (t) => {
  const rec = cardReader({ files: { '/proc/swaps': 'Filename Type Size Used Priority\n/dev/sdb2 partition 1000 0 -2\n' } });
  t.same(inspectTarget('/dev/sdb', fakeHost(rec)).inUse, ['/dev/sdb2 used as swap']);
});

t.test('the disk holding / (root on a partition of the target)', async (t) => {
  const rec = cardReader({ files: { '/proc/self/mountinfo': '27 1 8:18 / / rw - ext4 /dev/root rw\n' } });
  const f = inspectTarget('/dev/sdb', fakeHost(rec));
  t.equal(f.holdsRoot, true);
  const r = targetRefusals(f, '/x.img', '/x.img', IMG);
  t.ok(r.some((m) => /holds the running system's root file system/.test(m)));
  t.ok(r.some((m) => /in use: \/dev\/sdb2 mounted on \/\. Unmount/.test(m)), r.join('\n'));
});

t.test('root on device-mapper whose slave is a partition of the target', async (t) => {
  const rec = cardReader({ files: { '/proc/self/mountinfo': '27 1 253:0 / / rw - ext4 /dev/mapper/root rw\n', '/sys/devices/virtual/block/dm-0/dev': '253:0\n', '/sys/devices/virtual/block/dm-0/slaves/sdb2': '' } });
  rec.links!['/sys/dev/block/253:0'] = '/sys/devices/virtual/block/dm-0';
  const f = inspectTarget('/dev/sdb', fakeHost(rec));
  t.equal(f.holdsRoot, true);
});

t.test('a partition as target', async (t) => {
  const f = inspectTarget('/dev/sdb1', fakeHost(cardReader()));
  t.equal(f.isPartition, true);
  t.match(targetRefusals(f, '/x.img', '/x.img', IMG).join('\n'), /is a partition; give the whole card/);
});

t.test('a card smaller than the image', async (t) => {
  const f = inspectTarget('/dev/sdb', fakeHost(cardReader({ sizeSectors: 1000 })));
  t.same(targetRefusals(f, '/x.img', '/x.img', IMG), [`/dev/sdb is too small: 512000 bytes, the image needs ${IMG}`]);
});

t.test('an image file attached to a loop device whose partition is mounted', async (t) => {
  const host = fakeHost({
    files: {
      '/sys/devices/virtual/block/loop3/dev': '7:3\n',
      '/sys/devices/virtual/block/loop3/loop/backing_file': '/tmp/card.img\n',
      '/sys/devices/virtual/block/loop3/loop3p1/dev': '259:4\n',
      '/sys/devices/virtual/block/loop3/loop3p1/partition': '1\n',
      '/proc/self/mountinfo': '27 1 254:0 / / rw - ext4 /dev/vda rw\n50 27 259:4 / /mnt rw - vfat /dev/loop3p1 rw\n',
    },
    links: { '/sys/block/loop3': '/sys/devices/virtual/block/loop3', '/sys/block/loop0': '/sys/devices/virtual/block/loop0' },
    stats: { '/tmp/card.img': { kind: 'file', size: 4096, major: 0, minor: 0 } },
    free: { '/tmp': 10e9 },
  });
  const f = inspectTarget('/tmp/card.img', host);
  t.same(f.inUse, ['/dev/loop3p1 mounted on /mnt']);
  t.equal(f.capacityBytes, 10e9 + 4096);
});

t.test('mountinfo parsing', async (t) => {
  t.same(parseMountinfo('36 35 98:0 /mnt1 /mnt/my\\040dir rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n'), [{ dev: '98:0', mountPoint: '/mnt/my dir', source: '/dev/root' }]);
});

t.test('a fake host throws on what it does not model', async (t) => {
  t.throws(() => fakeHost({}).freeBytes('/nowhere'), /Not implemented: freeBytes/);
});
