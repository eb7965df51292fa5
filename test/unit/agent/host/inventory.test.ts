import fs from 'node:fs';
import t from 'tap';
import { inventoryFrom, readInventory } from '../../../../agent/host/inventory.js';

// The tail of a Raspberry Pi 4's /proc/cpuinfo in its documented format
// (revision code c03114: 4B rev 1.4, 4 GB, Sony UK, BCM2711, per the
// raspberrypi.com revision-code table). Serial made up.
const PI4_CPUINFO = ['processor\t: 3', 'BogoMIPS\t: 108.00', 'Hardware\t: BCM2835', 'Revision\t: c03114', 'Serial\t\t: 100000000abcdef0', 'Model\t\t: Raspberry Pi 4 Model B Rev 1.4'];

t.test("systeminformation decodes a Pi 4's revision code (the reason we use it)", async (t) => {
  // Internal module, imported here only to feed it a Pi's cpuinfo on a machine that is not a Pi;
  // on a Pi, si.system() runs this same decoder on /proc/cpuinfo.
  const util = (await import('systeminformation/lib/util.js' as string)).default as { isRaspberry(l: string[]): boolean; decodePiCpuinfo(l: string[]): Record<string, unknown> };
  t.equal(util.isRaspberry(PI4_CPUINFO), true);
  const d = util.decodePiCpuinfo(PI4_CPUINFO);
  t.match(d, { model: 'Raspberry Pi 4 Model B Rev 1.4', revisionCode: 'c03114', memory: 4096, manufacturer: 'Sony UK', processor: 'BCM2711', type: '4B', revision: '1.4' });
  // What si.system() returns on that Pi, mapped to our labels.
  const sys = { manufacturer: 'Raspberry Pi Foundation', model: String(d.model), version: String(d.revisionCode), serial: String(d.serial), raspberry: { manufacturer: String(d.manufacturer), processor: String(d.processor), type: String(d.type), revision: String(d.revision) } };
  t.same(inventoryFrom(sys, { distro: 'Debian GNU/Linux', release: '12', codename: 'bookworm', arch: 'arm64' }), {
    manufacturer: 'Sony UK', model: 'Raspberry Pi 4 Model B Rev 1.4', revision: '1.4', os: 'Debian GNU/Linux', os_release: '12', os_codename: 'bookworm', arch: 'arm64',
  });
});

t.test("systeminformation's placeholders become empty labels", async (t) => {
  t.same(inventoryFrom({ manufacturer: '', model: 'Docker Container', version: '', serial: '-' }, { distro: 'Debian GNU/Linux', arch: 'x64' }), {
    manufacturer: '', model: 'Docker Container', revision: '', os: 'Debian GNU/Linux', os_release: '', os_codename: '', arch: 'x64',
  });
});

t.test('this host, read for real, agrees with /etc/os-release', async (t) => {
  const inv = await readInventory();
  const osRelease = Object.fromEntries(fs.readFileSync('/etc/os-release', 'utf8').split('\n').filter((l) => l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).replace(/^"|"$/g, '')]));
  t.equal(inv.os, osRelease.NAME, 'distro');
  if (osRelease.VERSION_ID) t.equal(inv.os_release, osRelease.VERSION_ID, 'release');
  t.equal(inv.arch, process.arch, 'architecture as Node names it');
  t.ok(Object.values(inv).every((v) => typeof v === 'string'), 'every label a string');
});
