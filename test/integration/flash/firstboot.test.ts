/**
 * First boot of a flashed card: a simulated Pi without Docker, Node.js or the
 * agent boots systemd, cloud-init reads what `piswarm flash` wrote to the
 * boot partition, installs docker.io, runs the first-boot script, and the
 * agent it installed joins a running one-node cluster with the same key.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { HEALTH_CONTENT_TYPE } from '../../../shared/constants.js';
import { BOOT_KEY_FILE, BOOT_NODE_FILE, CLUSTER_KEY_PATH, FIRSTBOOT_LOG } from '../../../agent/provision/cloud-init.js';
import { ensureFirstbootImage, imagesFor, simOs } from '../../../scripts/sim/images.js';
import { nodeLs } from '../healing/swarm.js';
import { httpGet, sim, skipReason, startCluster, uniqueName } from '../helpers/cluster.js';
import { missingTools } from './disk-image.js';
import { bootFlashed, createClusterFile, describePhases, firstbootLogs, SSH_KEY, STOCK_HOSTNAME } from './firstboot.js';

const missing = missingTools();
const skip = (await skipReason()) || (missing.length ? `missing host tools: ${missing.join(', ')} (apt-get install mtools fdisk xz-utils)` : false);

t.test('a flashed Pi provisions itself on first boot and joins the running cluster', { skip, timeout: 900_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-firstboot-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const name = uniqueName('it-fb');
  // --size 2: the card's agent never creates a swarm alone; it has to find and join the running one.
  const { path: clusterFile, cluster } = await createClusterFile(dir, name, 2);
  const { ref, nodes } = await startCluster(t, { prefix: 'it-fb', name, nodes: 1, clusterKey: cluster.key });
  const manager = nodes[0]!.name;
  await sim.waitFor(async () => (await nodeLs(ref, [manager]))?.length === 1, { timeoutMs: 60_000, what: `${manager} to create its swarm` });

  await ensureFirstbootImage({ root: sim.repoRoot(), log: (m) => t.comment(`sim: ${m}`) });
  t.teardown(async () => {
    const pi = (await sim.status(ref)).find((n) => n.name !== manager);
    if (!t.passing() && pi?.running) t.comment(`--- ${pi.name} first boot:\n${await firstbootLogs(ref, pi.name)}`);
  });
  const { pi, card, phases } = await bootFlashed(ref, { dir, clusterFile, manager, timeoutMs: 300_000 });
  t.ok(card.some((f) => f.name === 'user-data') && card.some((f) => f.name === BOOT_KEY_FILE), 'the card held user-data and the key file flash wrote');
  t.comment(describePhases(phases));
  t.pass(`${pi.name} is Ready in docker node ls on ${manager}, ${(phases.readyMs / 1000).toFixed(1)} s after power-on`);

  const ex = async (cmd: string) => sim.exec(ref, pi.name, ['sh', '-c', cmd]);

  await t.test('cloud-init found the card (NoCloud) and finished without an error', async (t) => {
    const status = await ex('cloud-init status --wait');
    t.equal(status.code, 0, 'cloud-init status --wait exits 0');
    t.match(status.stdout, /status: done/, status.stdout.trim());
    const result = JSON.parse((await ex('cat /run/cloud-init/result.json')).stdout) as { v1: { datasource: string; errors: string[] } };
    t.match(result.v1.datasource, /DataSourceNoCloud \[seed=\/var\/lib\/cloud\/seed\/nocloud\]/);
    t.same(result.v1.errors, [], 'no module failed');
    t.equal((await ex('hostname')).stdout.trim(), pi.name, `cloud-init renamed ${STOCK_HOSTNAME} to the flashed hostname`);
    t.match((await ex('cat /etc/timezone')).stdout, /^Europe\/Berlin/);
    t.match((await ex('id -nG pi')).stdout, /\bsudo\b.*\bdocker\b|\bdocker\b.*\bsudo\b/, 'user pi is in sudo and docker');
    t.equal((await ex('cat /home/pi/.ssh/authorized_keys')).stdout.trim(), SSH_KEY, 'the SSH key from the card');
    t.match((await ex('passwd -S pi')).stdout, /^pi L /, 'password login locked');
  });

  await t.test('the network-config from the card converts to a DHCP setup of eth0', async (t) => {
    // Not applied in the simulation (Docker owns the container's eth0; see the Dockerfile), so it is rendered with cloud-init's own converter instead.
    const r = await ex('cloud-init devel net-convert -p /boot/firmware/network-config -k yaml -d /tmp/net -D debian -O networkd >/dev/null && cat /tmp/net/etc/systemd/network/*.network');
    t.equal(r.code, 0, `cloud-init devel net-convert exits 0 ${r.code ? r.stderr : ''}`.trim());
    t.match(r.stdout, /Name=eth0[\s\S]*DHCP=ipv4/, 'eth0 with DHCP (IPv4)');
  });

  await t.test('the first-boot script ran to its end and said what the container skipped', async (t) => {
    const log = (await ex(`cat ${FIRSTBOOT_LOG}`)).stdout;
    t.match(log, /piswarm-firstboot: done in \d+ s: agent started/);
    t.notMatch(log, /ERROR/);
    t.match(log, /in a container \(docker\): the kernel, its command line and the clock are the host's/);
    t.match(log, /memory cgroup enabled/);
    t.match(log, /clock: systemd-timesyncd does not run in a container/);
    if (imagesFor(simOs()).hostNode) t.match(log, /installed the Node\.js binary from the boot partition/, 'bookworm: node from the card (its nodejs is 18)');
    else t.notMatch(log, /from the boot partition/, 'trixie: no node on the card, the distribution\'s is used');
    t.match(log, /piswarm-install: kept existing \/etc\/piswarm\/config\.json/);
  });

  await t.test('the agent runs under systemd and answers /health', async (t) => {
    t.equal((await ex('systemctl is-active piswarm docker')).stdout.trim(), 'active\nactive');
    const node = (await ex('command -v node && node --version')).stdout.trim().split('\n');
    if (imagesFor(simOs()).hostNode) t.equal(node[0], '/usr/local/bin/node', 'bookworm: the node from the card');
    else t.match(node, ['/usr/bin/node', /^v20\./], `trixie: the distribution's nodejs (${node.join(' ')})`);
    const cli = await ex('docker version --format "{{.Client.Version}} {{.Server.Version}}"');
    t.equal(cli.code, 0, `the docker CLI works for user pi's shell: ${cli.stdout.trim()}${cli.stderr.trim()}`);
    t.equal((await ex('systemctl is-enabled piswarm')).stdout.trim(), 'enabled', 'and starts again at the next boot');
    const health = await httpGet(`${pi.apiUrl}/health`);
    t.ok([200, 503].includes(health.status), `/health status ${health.status}`);
    t.match(health.contentType, HEALTH_CONTENT_TYPE);
    // The agent samples its engine on a timer, so it may say "joining" for a moment after the manager says Ready.
    const member = await sim.waitFor(async () => {
      const h = await httpGet(`${pi.apiUrl}/health`);
      const check = h.status > 0 ? (JSON.parse(h.text) as { checks?: Record<string, { status: string }[]> }).checks?.['swarm:membership']?.[0] : undefined;
      return check?.status === 'pass' && check;
    }, { timeoutMs: 30_000, what: 'swarm:membership to pass on the new node' });
    t.equal(member.status, 'pass', 'and reports itself in the swarm');
  });

  await t.test('the cluster key left the boot partition for /etc/piswarm, readable by root and the agent only', async (t) => {
    t.equal((await ex(`stat -c '%a %U %G' ${CLUSTER_KEY_PATH} /etc/piswarm/config.json /etc/piswarm`)).stdout, '640 root piswarm\n640 root piswarm\n750 root piswarm\n');
    t.equal((await ex(`cat ${CLUSTER_KEY_PATH}`)).stdout.trim(), cluster.key);
    const boot = (await ex('ls /boot/firmware')).stdout.split('\n');
    t.notOk(boot.includes(BOOT_KEY_FILE), 'no key file left on the world-readable boot partition');
    t.notOk(boot.includes(BOOT_NODE_FILE), 'no node binary left on the card');
    const leaks = await ex(`grep -rlF -- '${cluster.key}' /var/log /var/lib/cloud /run/cloud-init /boot/firmware /etc/cloud 2>/dev/null || true`);
    t.equal(leaks.stdout.trim(), '', 'the key is in no log, no cloud-init copy of user-data and nowhere on the card');
  });

  await t.test('the swarm counts the new node as a Ready worker', async (t) => {
    const ls = (await nodeLs(ref, [manager]))!;
    t.match(ls.find((n) => n.hostname === pi.name), { status: 'Ready', availability: 'Active', manager: '' });
    t.equal(ls.length, 2);
  });
});
