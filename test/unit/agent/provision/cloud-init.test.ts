import { spawnSync } from 'node:child_process';
import t from 'tap';
import { buildMetaData, buildNetworkConfig, buildNodeConfig, buildUserData, firewallRules, firstbootScript, patchCmdline, validateProvision, type NodeProvision } from '../../../../agent/provision/cloud-init.js';
import { newClusterFile } from '../../../../agent/provision/cluster-file.js';
import { toYaml } from '../../../../agent/provision/yaml.js';

const cluster = newClusterFile({ name: 'lab', size: 5, keyBytes: new Uint8Array(32).fill(9), now: new Date(0) });
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMXKI+em0xPmU3KCqiEL4HUWfAHOGvUDZBgRQ+DCu4qn me@laptop';
const p: NodeProvision = { hostname: 'pi-1', sshPublicKey: `${KEY}\n`, timezone: 'Europe/Berlin', instanceId: 'piswarm-pi-1-00000000' };

t.test('input validation reports every problem', async (t) => {
  t.same(validateProvision(p), []);
  const problems = validateProvision({ ...p, hostname: '-bad', sshPublicKey: '-----BEGIN OPENSSH PRIVATE KEY-----\n', timezone: '../etc', wifi: { ssid: '', password: 'short', country: 'de' } });
  t.equal(problems.length, 6, problems.join('\n'));
  t.match(problems.join('\n'), /hostname "-bad"/);
  t.match(problems.join('\n'), /did you pass the private key/);
  t.match(problems.join('\n'), /timezone/);
  t.match(problems.join('\n'), /SSID must be 1-32 bytes/);
  t.match(problems.join('\n'), /8-63 characters/);
  t.match(problems.join('\n'), /two capital letters/);
  t.same(validateProvision({ ...p, sshPublicKey: '# comment only\n' }), ['the SSH public key file holds no key']);
});

t.test('node config: cluster defaults + identity, validated by the agent schema', async (t) => {
  t.same(buildNodeConfig(cluster, 'pi-1'), { formation: { expect: 3 }, clusterName: 'lab', clusterKeyFile: '/etc/piswarm/cluster.key', nodeName: 'pi-1' });
  const bad = { ...cluster, defaults: { ...cluster.defaults, config: { http: { port: 70000 }, bogus: true } } };
  t.throws(() => buildNodeConfig(bad, 'pi-1'), { code: 'PISWARM_ERR_CLUSTER_FILE', message: /defaults\.config is not a valid agent configuration/ });
});

t.test('user-data never carries the cluster key', async (t) => {
  const ud = buildUserData(p, buildNodeConfig(cluster, 'pi-1'));
  t.notOk(ud.includes(cluster.key));
  t.match(ud, /^#cloud-config\n/);
  t.match(ud, /clusterKeyFile/);
});

t.test('the agent port from the config is opened in ufw', async (t) => {
  const cfg = { ...buildNodeConfig(cluster, 'pi-1'), http: { port: 8080 } };
  t.match(buildUserData(p, cfg), /ufw allow "\$rule"/);
  t.match(buildUserData(p, cfg), /for rule in 22\/tcp 2377\/tcp 7946\/tcp 7946\/udp 4789\/udp 5353\/udp 8080\/tcp 8080\/udp; do/);
  t.same(firewallRules(7070), ['22/tcp', '2377/tcp', '7946/tcp', '7946/udp', '4789/udp', '5353/udp', '7070/tcp', '7070/udp']);
});

t.test('meta-data and network-config', async (t) => {
  t.equal(buildMetaData(p), 'instance-id: "piswarm-pi-1-00000000"\nlocal-hostname: "pi-1"\n');
  t.equal(buildNetworkConfig(p), 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n    optional: true\n');
  const wifi = buildNetworkConfig({ ...p, wifi: { ssid: 'a: b #c', password: 'pa\\ss"word', country: 'GB' } });
  t.match(wifi, /"a: b #c":\n {8}password: "pa\\\\ss\\"word"/);
});

t.test('cmdline.txt stays one line and gains each argument once', async (t) => {
  t.equal(patchCmdline('console=tty1 root=/dev/mmcblk0p2 rootwait\n'), 'console=tty1 root=/dev/mmcblk0p2 rootwait cgroup_enable=memory cgroup_memory=1\n');
  t.equal(patchCmdline('a cgroup_enable=memory cgroup_memory=1\n'), 'a cgroup_enable=memory cgroup_memory=1\n');
  t.equal(patchCmdline('a cfg80211.ieee80211_regdom=US\r\n', 'DE'), 'a cfg80211.ieee80211_regdom=DE cgroup_enable=memory cgroup_memory=1\n');
});

t.test('yaml emitter', async (t) => {
  t.equal(toYaml({ a: [{ b: 1, c: ['x'] }], d: 'l1\n l2\n', e: ' lead\nx', f: [], g: {}, h: null, 'i-j': true }, '#h'),
    '#h\na:\n  - b: 1\n    c:\n      - "x"\nd: |\n  l1\n   l2\ne: |2-\n   lead\n  x\nf: []\ng: {}\nh: null\ni-j: true\n');
});

t.test('first-boot script: valid bash, says where it ends, and leaves the kernel command line alone in a container', async (t) => {
  const script = firstbootScript(7070);
  const syntax = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
  t.equal(syntax.status, 0, `bash -n: ${syntax.stderr}`);
  t.match(script, /^trap '.*ERROR: line \$LINENO: \$BASH_COMMAND exited with \$rc.*' ERR$/m, 'a failing command is named in the log, not just the end of it');
  t.equal(script.match(/say "done in \$SECONDS s: /g)?.length, 2, 'both ways to finish (agent started, reboot first) log done');
  // Step 2: in a container the memory cgroup is the host's; cmdline.txt is edited (and a reboot asked for) only outside one.
  const step2 = script.slice(script.indexOf('# 2.'), script.indexOf('# 3.'));
  const guard = step2.indexOf('elif [ -n "$CONTAINER" ]');
  t.ok(guard > 0 && guard < step2.indexOf('sed -i') && guard < step2.indexOf('touch /run/piswarm-reboot-required'), 'the container branch comes before the edit');
  t.match(script, /CONTAINER=\$\(systemd-detect-virt --container/);
  t.match(script, /clock: systemd-timesyncd does not run in a container/);
  // docker.io comes from cloud-init's packages step; the script installs it only when that step could not.
  const docker = script.indexOf('if ! command -v dockerd >/dev/null; then');
  t.ok(docker > 0 && docker < script.indexOf('bash "$INSTALL"'), 'a missing engine is installed before the agent is');
});
