import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, utimesSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { clusterCreateCommand } from '../../../agent/cli/cluster.js';
import type { CommandContext } from '../../../agent/cli/command.js';
import { findNewestRelease, flashCommand, makeFlashCommand } from '../../../agent/cli/flash.js';
import { cardReader, fakeHost } from '../../unit/agent/provision/fake-host.js';
import { BOOT_KEY_FILE } from '../../../agent/provision/cloud-init.js';
import { readClusterFile } from '../../../agent/provision/cluster-file.js';
import { BOOT_START_SECTOR, buildPiImage, buildRelease, have, IMAGE_BYTES, missingTools, mtoolsList, mtoolsRead, readRange, ROOT_START_SECTOR, sha256, STOCK_CMDLINE } from './disk-image.js';

const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMXKI+em0xPmU3KCqiEL4HUWfAHOGvUDZBgRQ+DCu4qn test@piswarm\n';
const BOOT_OFFSET = BOOT_START_SECTOR * 512;

export function makeCtx(argv: string[], cwd: string, confirmAnswer = false): CommandContext & { stdout: string[]; stderr: string[]; asked: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const asked: string[] = [];
  return {
    argv, env: {}, cwd, stdout, stderr, asked,
    out: (s) => stdout.push(s),
    err: (s) => stderr.push(s),
    confirm: async (q) => {
      asked.push(q);
      return confirmAnswer;
    },
  };
}

const missing = missingTools();
t.test('flash an image file end to end', { skip: missing.length ? `missing host tools: ${missing.join(', ')} (apt-get install mtools fdisk xz-utils)` : false }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-flash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { path: image, ext4 } = buildPiImage(dir);
  const imageHash = sha256(image);
  const release = buildRelease(dir);
  writeFileSync(join(dir, 'id.pub'), SSH_KEY);

  const create = makeCtx(['lab', '--size', '3', '--out', 'lab.json'], dir);
  t.equal(await clusterCreateCommand.run(create), 0, create.stderr.join('\n'));
  const clusterPath = join(dir, 'lab.json');
  t.equal(statSync(clusterPath).mode & 0o777, 0o600, 'cluster file is 0600');
  const cluster = readClusterFile(clusterPath);
  t.notOk(create.stdout.join('\n').includes(cluster.key), 'cluster create never prints the key');

  const args = (target: string, img = image) => ['--image', img, '--target', target, '--cluster', clusterPath, '--hostname', 'pi-one', '--ssh-key', 'id.pub', '--release', release,
    '--wifi-ssid', 'Home "Net"', '--wifi-password', 'correct horse', '--wifi-country', 'DE', '--timezone', 'Europe/Berlin'];

  const target = join(dir, 'card.img');
  const ctx = makeCtx(args(target), dir);
  t.equal(await flashCommand.run(ctx), 0, ctx.stderr.join('\n'));
  t.equal(ctx.asked.length, 0, 'an image file target needs no confirmation');
  t.equal(statSync(target).size, IMAGE_BYTES, 'target holds the whole image');
  t.equal(sha256(image), imageHash, 'the source image is not modified');

  const files = mtoolsList(target, BOOT_OFFSET);
  for (const f of ['user-data', 'meta-data', 'network-config', BOOT_KEY_FILE, 'piswarm-0.1.0.tar.gz', 'cmdline.txt', 'config.txt']) t.ok(files.includes(f), `boot partition has ${f}`);

  const userData = mtoolsRead(target, BOOT_OFFSET, 'user-data').toString('utf8');
  t.match(userData, /^#cloud-config\n/, 'user-data starts with #cloud-config (the stock one was replaced)');
  t.match(userData, /hostname: "pi-one"/);
  t.ok(userData.includes(SSH_KEY.trim()), 'user-data carries the SSH key');
  t.match(userData, /ssh_pwauth: false/);
  t.match(userData, /lock_passwd: true/);
  t.match(userData, /"docker\.io"/);
  t.match(userData, /bash "\$INSTALL" --release "\$REL" --no-start/);
  t.match(userData, /cgroup_enable=memory cgroup_memory=1/);
  t.match(userData, /set-ntp true/);
  for (const port of ['22/tcp', '2377/tcp', '7946/tcp', '7946/udp', '4789/udp', '5353/udp', '7070/tcp']) t.ok(userData.includes(port), `ufw rule ${port}`);
  t.match(userData, /"clusterName": "lab"/);
  t.match(userData, /"clusterKeyFile": "\/etc\/piswarm\/cluster\.key"/);

  const meta = mtoolsRead(target, BOOT_OFFSET, 'meta-data').toString('utf8');
  t.match(meta, /^instance-id: "piswarm-pi-one-[0-9a-f]{8}"\nlocal-hostname: "pi-one"\n$/);
  const net = mtoolsRead(target, BOOT_OFFSET, 'network-config').toString('utf8');
  t.match(net, /version: 2/);
  t.match(net, /eth0:\n\s+dhcp4: true/);
  t.match(net, /"Home \\"Net\\"":\n\s+password: "correct horse"/, 'SSID quoted safely');
  t.match(net, /regulatory-domain: "DE"/);

  t.equal(mtoolsRead(target, BOOT_OFFSET, BOOT_KEY_FILE).toString('utf8'), `${cluster.key}\n`, 'key file holds the cluster key');
  t.same(mtoolsRead(target, BOOT_OFFSET, 'piswarm-0.1.0.tar.gz'), readFileSync(release), 'release copied byte for byte');
  t.equal(mtoolsRead(target, BOOT_OFFSET, 'cmdline.txt').toString('utf8'), `${STOCK_CMDLINE.trim()} cgroup_enable=memory cgroup_memory=1 cfg80211.ieee80211_regdom=DE\n`, 'cmdline.txt patched, one line');
  t.equal(mtoolsRead(target, BOOT_OFFSET, 'config.txt').toString('utf8'), 'arm_64bit=1\n', 'other boot files untouched');

  // The key appears in exactly one boot file, and nowhere else in the written card.
  const holders = files.filter((f) => mtoolsRead(target, BOOT_OFFSET, f).includes(cluster.key));
  t.same(holders, [BOOT_KEY_FILE], 'cluster key appears only in its own file');
  t.notOk(ctx.stdout.join('\n').includes(cluster.key) || ctx.stderr.join('\n').includes(cluster.key), 'flash never prints the key');

  // Only the boot partition changed: the MBR and the root partition are the image's.
  t.same(readRange(target, 0, BOOT_OFFSET), readRange(image, 0, BOOT_OFFSET), 'MBR and gap identical');
  t.same(readRange(target, ROOT_START_SECTOR * 512, IMAGE_BYTES - ROOT_START_SECTOR * 512), readRange(image, ROOT_START_SECTOR * 512, IMAGE_BYTES - ROOT_START_SECTOR * 512), `root partition identical (${ext4 ? 'ext4' : 'unformatted'})`);

  await t.test('user-data parses as YAML to the intended structure', { skip: have('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', 'import yaml']).status === 0 ? false : 'python3-yaml (comes with cloud-init) not installed' }, async (t) => {
    const json = execFileSync('/usr/bin/python3', ['-c', 'import sys,yaml,json; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: userData }).toString();
    const doc = JSON.parse(json);
    t.equal(doc.hostname, 'pi-one');
    t.same(doc.users[0].ssh_authorized_keys, [SSH_KEY.trim()]);
    t.equal(doc.users[0].name, 'pi');
    t.same(doc.runcmd, [['bash', '/usr/local/lib/piswarm/firstboot.sh']]);
    const cfg = JSON.parse(doc.write_files.find((f: { path: string }) => f.path === '/etc/piswarm/config.json').content);
    t.same(cfg, { formation: { expect: 3 }, clusterName: 'lab', clusterKeyFile: '/etc/piswarm/cluster.key', nodeName: 'pi-one' });
    const script = doc.write_files.find((f: { path: string }) => f.path === '/usr/local/lib/piswarm/firstboot.sh').content as string;
    t.match(script, /^#!\/bin\/bash\n/);
    const netDoc = JSON.parse(execFileSync('/usr/bin/python3', ['-c', 'import sys,yaml,json; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: net }).toString());
    t.same(netDoc.wifis.wlan0['access-points'], { 'Home "Net"': { password: 'correct horse' } });
    const bash = spawnSync('bash', ['-n'], { input: script });
    t.equal(bash.status, 0, `first-boot script is valid bash: ${bash.stderr}`);
  });

  await t.test('cloud-init schema accepts the user-data', { skip: have('cloud-init') ? false : 'cloud-init not installed (apt-get install cloud-init)' }, async (t) => {
    const f = join(dir, 'user-data.yaml');
    writeFileSync(f, userData);
    const r = spawnSync('cloud-init', ['schema', '--config-file', f], { encoding: 'utf8' });
    t.equal(r.status, 0, `cloud-init schema: ${r.stdout}${r.stderr}`);
    t.match(r.stdout, /Valid cloud-config/);
  });

  await t.test('an .img.xz is decompressed on the fly', async (t) => {
    execFileSync('xz', ['-T1', '-0', '-k', '-f', image]);
    const xz = `${image}.xz`;
    const target2 = join(dir, 'card2.img');
    const c = makeCtx([...args(target2, xz), '--hostname-prefix', 'x'].filter((_, i, a) => !(a[i] === '--hostname' || a[i - 1] === '--hostname')), dir);
    t.equal(await flashCommand.run(c), 0, c.stderr.join('\n'));
    t.equal(statSync(target2).size, IMAGE_BYTES);
    t.same(readRange(target2, ROOT_START_SECTOR * 512, 1 << 20), readRange(image, ROOT_START_SECTOR * 512, 1 << 20), 'decompressed content matches');
    t.match(mtoolsRead(target2, BOOT_OFFSET, 'meta-data').toString(), /local-hostname: "x[0-9a-f]{4}"/, 'hostname from prefix');
  });

  await t.test('--node copies a linux-arm64 node binary for first boot', async (t) => {
    // A minimal ELF header: 64-bit, little-endian, e_machine 183 (AArch64).
    const elf = Buffer.alloc(4096, 7);
    elf.writeUInt32BE(0x7f454c46, 0);
    elf[4] = 2;
    elf[5] = 1;
    elf.writeUInt16LE(183, 18);
    writeFileSync(join(dir, 'node-arm64'), elf);
    const target3 = join(dir, 'card3.img');
    const c = makeCtx([...args(target3), '--node', 'node-arm64'], dir);
    t.equal(await flashCommand.run(c), 0, c.stderr.join('\n'));
    t.same(mtoolsRead(target3, BOOT_OFFSET, 'piswarm-node'), elf, 'node binary copied byte for byte');
    t.match(mtoolsRead(target3, BOOT_OFFSET, 'user-data').toString(), /install -m 0755 "\$BOOT\/piswarm-node" \/usr\/local\/bin\/node/);
  });

  await t.test('flashing again over an existing file target replaces it', async (t) => {
    const c = makeCtx(args(target), dir);
    t.equal(await flashCommand.run(c), 0, c.stderr.join('\n'));
    t.equal(statSync(target).size, IMAGE_BYTES);
  });
});

t.test('refusals leave the target unchanged', { skip: missing.length ? `missing host tools: ${missing.join(', ')}` : false }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-refuse-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { path: image } = buildPiImage(dir);
  const release = buildRelease(dir);
  writeFileSync(join(dir, 'id.pub'), SSH_KEY);
  t.equal(await clusterCreateCommand.run(makeCtx(['lab', '--out', 'lab.json'], dir)), 0);
  const clusterPath = join(dir, 'lab.json');
  const target = join(dir, 'existing.img');
  writeFileSync(target, Buffer.alloc(1 << 20, 0xa5));
  const before = sha256(target);
  const base = (img: string, tgt = target) => ['--image', img, '--target', tgt, '--cluster', clusterPath, '--hostname', 'pi-one', '--ssh-key', 'id.pub', '--release', release];

  const layouts: [string, (b: Buffer) => void, RegExp][] = [
    ['no MBR signature', (b) => { b[510] = 0; b[511] = 0; }, /no MBR partition table/],
    ['GPT', (b) => { b[446 + 4] = 0xee; }, /GPT partition table/],
    ['no FAT partition', (b) => { b[446 + 4] = 0x83; }, /no FAT boot partition/],
  ];
  for (const [name, mutate, msg] of layouts) {
    await t.test(`unknown image layout: ${name}`, async (t) => {
      const bad = join(dir, `bad-${name.replace(/\W/g, '')}.img`);
      copyFileSync(image, bad);
      const head = readRange(bad, 0, 512);
      mutate(head);
      const fd = openSync(bad, 'r+');
      writeSync(fd, head, 0, 512, 0);
      closeSync(fd);
      const c = makeCtx(base(bad), dir);
      t.equal(await flashCommand.run(c), 1);
      t.match(c.stderr.join('\n'), msg);
      t.match(c.stderr.join('\n'), /PISWARM_ERR_IMAGE_LAYOUT/);
      t.equal(sha256(target), before, 'target unchanged');
    });
  }

  await t.test('the target is the image itself', async (t) => {
    const imgBefore = sha256(image);
    const c = makeCtx(base(image, image), dir);
    t.equal(await flashCommand.run(c), 1);
    t.match(c.stderr.join('\n'), /the target is the image itself/);
    t.equal(sha256(image), imgBefore);
  });

  await t.test('an invalid cluster file', async (t) => {
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, JSON.stringify({ ...readClusterFile(clusterPath), key: 'short' }));
    chmodSync(broken, 0o600);
    const c = makeCtx([...base(image), '--cluster', broken], dir);
    t.equal(await flashCommand.run(c), 78);
    t.match(c.stderr.join('\n'), /key: expected 32 bytes/);
    t.equal(sha256(target), before);
  });

  await t.test('a private key given as --ssh-key', async (t) => {
    writeFileSync(join(dir, 'id'), '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n');
    const c = makeCtx([...base(image), '--ssh-key', 'id'], dir);
    t.equal(await flashCommand.run(c), 1);
    t.match(c.stderr.join('\n'), /did you pass the private key/);
    t.equal(sha256(target), before);
  });

  await t.test('a --node binary that is not linux-arm64 (this machine\'s own node)', { skip: process.arch === 'arm64' ? 'this machine\'s node is arm64' : false }, async (t) => {
    const c = makeCtx([...base(image), '--node', process.execPath], dir);
    t.equal(await flashCommand.run(c), 1);
    t.match(c.stderr.join('\n'), /is not a linux-arm64 executable/);
    t.equal(sha256(target), before);
  });

  await t.test('a release that is not a tarball', async (t) => {
    writeFileSync(join(dir, 'piswarm-bad.tar.gz'), 'not gzip');
    const c = makeCtx([...base(image), '--release', join(dir, 'piswarm-bad.tar.gz')], dir);
    t.equal(await flashCommand.run(c), 1);
    t.match(c.stderr.join('\n'), /not a \.tar\.gz/);
    t.equal(sha256(target), before);
  });

  // Block devices from a recorded host (a card reader /dev/sdb, 8:16): the
  // "device" is a real file, so an accidental write would change its hash.
  const blockCases: [string, Parameters<typeof cardReader>[0], string, boolean, RegExp][] = [
    ['mounted partition', { files: { '/proc/self/mountinfo': '27 1 254:0 / / rw - ext4 /dev/vda rw\n40 27 8:17 / /media/pi/bootfs rw - vfat /dev/sdb1 rw\n' } }, 'sdb', true, /is in use: \/dev\/sdb1 mounted on \/media\/pi\/bootfs/],
    ['disk holding /', { files: { '/proc/self/mountinfo': '27 1 8:18 / / rw - ext4 /dev/root rw\n' } }, 'sdb', true, /holds the running system's root file system/],
    ['smaller than the image', { sizeSectors: 1000 }, 'sdb', true, /is too small: 512000 bytes, the image needs 67108864/],
    ['a partition', {}, 'sdb1', true, /is a partition; give the whole card/],
    ['not confirmed (no terminal, no --yes)', {}, 'sdb', false, /writing was not confirmed \(answer yes on a terminal, or pass --yes in scripts\)/],
  ];
  for (const [name, extra, dev, yes, msg] of blockCases) {
    await t.test(`block device refused: ${name}`, async (t) => {
      const rec = cardReader(extra);
      const fakeDev = join(dir, dev);
      writeFileSync(fakeDev, Buffer.alloc(1 << 20, 0x5a));
      const devBefore = sha256(fakeDev);
      rec.stats![fakeDev] = rec.stats![`/dev/${dev}`]!;
      const c = makeCtx([...base(image, fakeDev), ...(yes ? ['--yes'] : [])], dir, false);
      t.equal(await makeFlashCommand(fakeHost(rec)).run(c), 1);
      t.match(c.stderr.join('\n'), msg);
      t.match(c.stderr.join('\n'), /PISWARM_ERR_FLASH_REFUSED/);
      t.equal(c.asked.length, yes ? 0 : 1, yes ? 'no question with --yes' : 'asked once');
      t.equal(sha256(fakeDev), devBefore, 'device unchanged');
    });
  }

  await t.test('block device refused: smaller than the uncompressed size of an .img.xz', async (t) => {
    execFileSync('xz', ['-T1', '-0', '-k', '-f', image]);
    const rec = cardReader({ sizeSectors: 100000 });
    const fakeDev = join(dir, 'sdb-xz');
    writeFileSync(fakeDev, Buffer.alloc(1 << 20, 0x33));
    const devBefore = sha256(fakeDev);
    rec.stats![fakeDev] = rec.stats!['/dev/sdb']!;
    t.ok(statSync(`${image}.xz`).size < 100000 * 512, 'the compressed file alone would fit');
    const c = makeCtx([...base(`${image}.xz`, fakeDev), '--yes'], dir);
    t.equal(await makeFlashCommand(fakeHost(rec)).run(c), 1);
    t.match(c.stderr.join('\n'), /is too small: 51200000 bytes, the image needs 67108864/);
    t.equal(sha256(fakeDev), devBefore, 'device unchanged');
  });

  await t.test('block device written after a yes on the terminal', async (t) => {
    const rec = cardReader();
    const fakeDev = join(dir, 'sdb-ok');
    writeFileSync(fakeDev, Buffer.alloc(IMAGE_BYTES));
    rec.stats![fakeDev] = rec.stats!['/dev/sdb']!;
    const c = makeCtx(base(image, fakeDev), dir, true);
    t.equal(await makeFlashCommand(fakeHost(rec)).run(c), 0, c.stderr.join('\n'));
    t.match(c.asked[0], /^Erase ALL data on .*sdb-ok \(15\.9 GB\) and write pi\.img\?$/);
    t.ok(mtoolsList(fakeDev, BOOT_OFFSET).includes('user-data'));
  });

  const root = findRootDisk();
  await t.test('the real disk holding /', { skip: root ? false : 'no block device holds / here (container overlay root?)' }, async (t) => {
    if (!root) throw new Error('unreachable: skipped above');
    // Some sandboxes deny even root a read of the disk (device cgroup): then the
    // refusal is still checked, and the fake-host tests prove "unchanged".
    const readable = canRead(root);
    const rootBefore = readable ? sha256(root, 1 << 20) : null;
    const c = makeCtx([...base(image, root), '--yes'], dir);
    t.equal(await flashCommand.run(c), 1);
    const msg = c.stderr.join('\n');
    t.match(msg, /holds the running system's root file system/);
    t.match(msg, /is in use: .*mounted on \//);
    t.match(msg, /PISWARM_ERR_FLASH_REFUSED/);
    if (rootBefore !== null) t.equal(sha256(root, 1 << 20), rootBefore, 'first MiB of the root disk unchanged');
    else t.comment(`${root} is not readable here; its hash was not compared`);
  });
});

function canRead(path: string): boolean {
  try {
    closeSync(openSync(path, 'r'));
    return true;
  } catch {
    return false;
  }
}

/** The whole disk behind / from /proc/self/mountinfo and sysfs, or null. */
function findRootDisk(): string | null {
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === '/').pop();
  const dev = line?.split(' ')[2];
  if (!dev || dev.startsWith('0:')) return null;
  let sys: string;
  try {
    sys = execFileSync('readlink', ['-f', `/sys/dev/block/${dev}`]).toString().trim();
  } catch {
    return null;
  }
  const disk = existsSync(`${sys}/partition`) ? sys.split('/').slice(-2, -1)[0] : sys.split('/').pop();
  return disk && existsSync(`/dev/${disk}`) ? `/dev/${disk}` : null;
}

t.test('the newest release/piswarm-*.tar.gz is found, and none is reported as null', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-rel-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  mkdirSync(a);
  mkdirSync(b);
  writeFileSync(join(a, 'piswarm-0.1.0.tar.gz'), 'x');
  writeFileSync(join(b, 'piswarm-0.2.0.tar.gz'), 'x');
  writeFileSync(join(b, 'other.tar.gz'), 'x');
  utimesSync(join(a, 'piswarm-0.1.0.tar.gz'), 1000, 1000);
  utimesSync(join(b, 'piswarm-0.2.0.tar.gz'), 2000, 2000);
  t.equal(findNewestRelease([a, b, join(dir, 'missing')]), join(b, 'piswarm-0.2.0.tar.gz'));
  t.equal(findNewestRelease([join(dir, 'missing')]), null);
});
