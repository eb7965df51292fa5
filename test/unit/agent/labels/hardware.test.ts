import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { decodeRevision, parseCpuinfoRevision, parseDtRevision } from '../../../../agent/host/rpi-revision.js';
import { storageKind } from '../../../../agent/host/storage.js';
import { parseHardwareOverride, readRevision, readStorageKind } from '../../../../agent/host/hardware.js';

// Revision codes from the raspberrypi.com revision-code table.
t.test('revision codes decode to the board family and the RAM it was sold with', async (t) => {
  t.same(decodeRevision('c03114'), { model: 'pi4', memoryMb: 4096 }, 'Pi 4B 4 GB');
  t.same(decodeRevision('d03115'), { model: 'pi4', memoryMb: 8192 }, 'Pi 4B 8 GB');
  t.same(decodeRevision('d04170'), { model: 'pi5', memoryMb: 8192 }, 'Pi 5 8 GB');
  t.same(decodeRevision('e04171'), { model: 'pi5', memoryMb: 16384 }, 'Pi 5 16 GB');
  t.same(decodeRevision('a020d3'), { model: 'pi3', memoryMb: 1024 }, 'Pi 3B+');
  t.same(decodeRevision('9020e0'), { model: 'pi3', memoryMb: 512 }, 'Pi 3A+');
  t.same(decodeRevision('902120'), { model: 'zero2w', memoryMb: 512 }, 'Zero 2 W');
  t.same(decodeRevision('9000c1'), { model: 'zero', memoryMb: 512 }, 'Zero W');
  t.same(decodeRevision('c03130'), { model: 'pi400', memoryMb: 4096 }, 'Pi 400');
  t.same(decodeRevision('b03140'), { model: 'cm4', memoryMb: 2048 }, 'CM4 2 GB');
  t.same(decodeRevision('d04190'), { model: 'pi500', memoryMb: 8192 }, 'Pi 500');
  t.same(decodeRevision('a21041'), { model: 'pi2', memoryMb: 1024 }, 'Pi 2B');
  t.same(decodeRevision('0010'), { model: 'pi1', memoryMb: 512 }, 'old-style B+');
  t.same(decodeRevision('1000002'), { model: 'pi1', memoryMb: 256 }, 'old-style with the warranty bit');
  t.same(decodeRevision('0015'), { model: 'pi1', memoryMb: null }, 'A+ sold with either 256 or 512 MB');
  t.same(decodeRevision('c031f4'), { model: null, memoryMb: 4096 }, 'an unknown type: RAM still known');
  t.equal(decodeRevision('0001'), null, 'not a code');
  t.equal(decodeRevision('zz'), null);
  t.equal(decodeRevision(''), null);
});

t.test("the revision from /proc/cpuinfo or the device tree; '0000' is not one", async (t) => {
  t.equal(parseCpuinfoRevision('processor\t: 3\nHardware\t: BCM2835\nRevision\t: C03114\nSerial\t\t: 10000000abcdef\n'), 'c03114');
  t.equal(parseCpuinfoRevision('Hardware\t: BCM2708\nRevision\t: 0000\n'), null, 'old 32-bit kernels print 0000 on any ARM board');
  t.equal(parseCpuinfoRevision('processor\t: 0\nvendor_id\t: GenuineIntel\n'), null);
  t.equal(parseDtRevision(Uint8Array.from([0x00, 0xd0, 0x41, 0x70])), 'd04170');
  t.equal(parseDtRevision(Uint8Array.from([0, 0, 0, 0])), null);
  t.equal(parseDtRevision(Uint8Array.from([0xd0, 0x41])), null, 'not one cell');
});

// Resolved /sys/block targets as the kernel shows them (Pi 4 USB 3 SSD, Pi 5 NVMe HAT, x86 SATA, virtio).
const PI4_USB = '/sys/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/usb2/2-2/2-2:1.0/host0/target0:0:0/0:0:0:0/block/sda';
const PI5_NVME = '/sys/devices/platform/axi/1000110000.pcie/pci0001:00/0001:00:00.0/0001:01:00.0/nvme/nvme0/nvme0n1';
const PI_SD = '/sys/devices/platform/emmc2bus/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0';
const X86_SATA = '/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda';
const VIRTIO = '/sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda';

t.test('storage kind from the device name and its sysfs path', async (t) => {
  t.equal(storageKind('mmcblk0', PI_SD, 'SD\n'), 'sd');
  t.equal(storageKind('mmcblk0', PI_SD, 'MMC\n'), 'emmc', 'a CM4 eMMC is not an SD card');
  t.equal(storageKind('mmcblk0', PI_SD, null), null, 'without the type it could be either');
  t.equal(storageKind('sda', PI4_USB, null), 'usb');
  t.equal(storageKind('sda', X86_SATA, null), 'other');
  t.equal(storageKind('sda', null, null), null, 'USB or SATA cannot be told without the path');
  t.equal(storageKind('nvme0n1', PI5_NVME, null), 'nvme');
  t.equal(storageKind('vda', VIRTIO, null), 'other');
  t.equal(storageKind('dm-0', null, null), 'other');
  t.equal(storageKind('', null, null), null);
});

t.test('the adapter reads a sysfs and procfs tree under the configured roots', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-hw-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const sys = path.join(root, 'sys');
  const usbDev = path.join(sys, 'devices/platform/scb/usb2/2-2/2-2:1.0/host0/target0:0:0/0:0:0:0/block/sda');
  const mmcDev = path.join(sys, 'devices/platform/emmc2bus/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0');
  fs.mkdirSync(usbDev, { recursive: true });
  fs.mkdirSync(path.join(mmcDev, 'device'), { recursive: true });
  fs.writeFileSync(path.join(mmcDev, 'device', 'type'), 'SD\n');
  fs.mkdirSync(path.join(sys, 'block'));
  fs.symlinkSync(path.relative(path.join(sys, 'block'), usbDev), path.join(sys, 'block', 'sda'));
  fs.symlinkSync(path.relative(path.join(sys, 'block'), mmcDev), path.join(sys, 'block', 'mmcblk0'));
  t.equal(readStorageKind(sys, 'sda'), 'usb');
  t.equal(readStorageKind(sys, 'mmcblk0'), 'sd');
  t.equal(readStorageKind(sys, 'sdb'), null, 'a disk sysfs does not show');
  t.equal(readStorageKind(path.join(root, 'nowhere'), 'nvme0n1'), 'nvme', 'the name alone is enough for NVMe');

  const proc = path.join(root, 'proc');
  t.equal(readRevision(proc), null, 'no cpuinfo: unknown');
  fs.mkdirSync(path.join(proc, 'device-tree', 'system'), { recursive: true });
  fs.writeFileSync(path.join(proc, 'cpuinfo'), 'processor\t: 0\nvendor_id\t: GenuineIntel\n');
  t.equal(readRevision(proc), '', 'cpuinfo without a revision and no device-tree cell: not a Pi');
  fs.writeFileSync(path.join(proc, 'device-tree', 'system', 'linux,revision'), Uint8Array.from([0x00, 0xc0, 0x31, 0x14]));
  t.equal(readRevision(proc), 'c03114', 'an upstream kernel: the firmware\'s device-tree cell');
  fs.writeFileSync(path.join(proc, 'cpuinfo'), 'Revision\t: d04170\n');
  t.equal(readRevision(proc), 'd04170', 'cpuinfo first');
});

t.test('PISWARM_SIM_HARDWARE: what a simulated Pi claims, or what is wrong with it', async (t) => {
  t.same(parseHardwareOverride(''), { ok: true, value: {} });
  t.same(parseHardwareOverride('revision=D04170, storage=nvme,diskBps=800000000'), { ok: true, value: { revision: 'd04170', storage: 'nvme', diskBps: 800000000 } });
  t.same(parseHardwareOverride('revision='), { ok: true, value: { revision: '' } }, 'empty: not a Pi');
  for (const bad of ['storage=floppy', 'diskBps=0', 'diskBps=fast', 'revision=xyz', 'memory=8', 'storage']) {
    const r = parseHardwareOverride(bad);
    t.equal(r.ok, false, bad);
    if (!r.ok) t.match(r.message, /PISWARM_SIM_HARDWARE/);
  }
});
