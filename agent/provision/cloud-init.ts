import { Value } from '@sinclair/typebox/value';
import { ConfigSchema } from '../../shared/config-schema.js';
import { DEFAULT_CONFIG_FILE, DEFAULT_HTTP_PORT, SWARM_PORTS } from '../../shared/constants.js';
import { PiswarmError } from '../../shared/errors.js';
import type { ClusterFile } from './cluster-file.js';
import { toYaml, type YamlValue } from './yaml.js';

/**
 * First-boot provisioning for Raspberry Pi OS (cloud-init images) and Ubuntu
 * Server for Raspberry Pi: both read NoCloud `user-data`, `meta-data` and
 * `network-config` from the FAT boot partition (mounted at /boot/firmware).
 *
 * Where the secret goes: the cluster key is NOT in user-data (cloud-init
 * copies user-data to /var/lib/cloud and may log it). It sits alone in
 * BOOT_KEY_FILE on the boot partition; the first-boot script moves it to
 * /etc/piswarm/cluster.key (0640 root:piswarm) and deletes the copy, because a
 * mounted FAT partition is readable by every local user.
 *
 * Node.js: the release tarball carries no runtime, and Debian bookworm and
 * Ubuntu 24.04 ship nodejs 18.x, too old for the agent (>= 20.18). The
 * first-boot script takes, in order: a `node` already on the PATH if new
 * enough; the linux-arm64 node binary the user passed to `piswarm flash
 * --node` (copied to the boot partition as BOOT_NODE_FILE, installed as
 * /usr/local/bin/node); the distro's `nodejs` (Raspberry Pi OS trixie ships
 * 20.19). If none is new enough it stops with a clear message on the console
 * and in /var/log/piswarm-firstboot.log without installing the agent, and
 * `piswarm doctor` reports the same (runtime:node). No network source other
 * than the distro mirror is assumed.
 */
export const BOOT_KEY_FILE = 'piswarm-cluster.key';
export const BOOT_NODE_FILE = 'piswarm-node';
export const FIRSTBOOT_SCRIPT = '/usr/local/lib/piswarm/firstboot.sh';
export const FIRSTBOOT_LOG = '/var/log/piswarm-firstboot.log';
export const CLUSTER_KEY_PATH = '/etc/piswarm/cluster.key';
export const REBOOT_FLAG = '/run/piswarm-reboot-required';
export const MEMORY_CGROUP_ARGS = ['cgroup_enable=memory', 'cgroup_memory=1'] as const;
export const MIN_NODE = { major: 20, minor: 18 } as const;

export interface Wifi {
  ssid: string;
  password: string;
  /** ISO 3166 alpha-2, sets the regulatory domain (channels and power). */
  country: string;
}

export interface NodeProvision {
  hostname: string;
  sshPublicKey: string;
  timezone: string;
  wifi?: Wifi;
  /** Unique per flash so cloud-init treats the card as a new instance. */
  instanceId: string;
}

const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SSH_KEY = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+( [^\n]*)?$/;

export function validateHostname(name: string): string | null {
  return HOSTNAME.test(name) ? null : `hostname "${name}" must be 1-63 characters of a-z, 0-9 and "-", not starting or ending with "-"`;
}

/** Checks every input at once so the user fixes them in one go. */
export function validateProvision(p: NodeProvision): string[] {
  const problems: string[] = [];
  const h = validateHostname(p.hostname);
  if (h) problems.push(h);
  const keys = p.sshPublicKey.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (keys.length === 0) problems.push('the SSH public key file holds no key');
  for (const k of keys) if (!SSH_KEY.test(k)) problems.push(`not an OpenSSH public key line: "${k.slice(0, 40)}..." (did you pass the private key?)`);
  if (!/^[A-Za-z0-9_+\-/]+$/.test(p.timezone) || p.timezone.includes('..')) problems.push(`timezone "${p.timezone}" is not a tz database name such as Europe/Berlin`);
  if (p.wifi) {
    if (p.wifi.ssid.length < 1 || Buffer.byteLength(p.wifi.ssid) > 32) problems.push('Wi-Fi SSID must be 1-32 bytes');
    const pw = p.wifi.password;
    if (!((pw.length >= 8 && pw.length <= 63) || /^[0-9a-fA-F]{64}$/.test(pw))) problems.push('Wi-Fi password must be 8-63 characters (WPA2-PSK) or 64 hex digits');
    if (!/^[A-Z]{2}$/.test(p.wifi.country)) problems.push(`Wi-Fi country "${p.wifi.country}" must be two capital letters (ISO 3166), e.g. DE`);
  }
  return problems;
}

/** The node's /etc/piswarm/config.json: cluster defaults plus identity; validated against the one schema. */
export function buildNodeConfig(cluster: ClusterFile, hostname: string): Record<string, unknown> {
  const cfg = structuredClone(cluster.defaults.config);
  Object.assign(cfg, { clusterName: cluster.name, clusterKeyFile: CLUSTER_KEY_PATH, nodeName: hostname });
  const full = Value.Default(ConfigSchema, structuredClone(cfg));
  const errors = [...Value.Errors(ConfigSchema, full)].map((e) => `${e.path || '/'}: ${e.message}`);
  if (errors.length > 0) throw new PiswarmError('PISWARM_ERR_CLUSTER_FILE', `the cluster file's defaults.config is not a valid agent configuration:\n${[...new Set(errors)].map((e) => `  - ${e}`).join('\n')}`);
  return cfg;
}

function httpPort(config: Record<string, unknown>): number {
  const http = config.http as { port?: unknown } | undefined;
  return typeof http?.port === 'number' ? http.port : DEFAULT_HTTP_PORT;
}

/** Ports ufw must allow when it is active: ssh, swarm, mDNS and the agent. */
export function firewallRules(agentPort: number): string[] {
  // The agent's gossip membership uses the same port number over UDP (membership.port defaults to http.port).
  return ['22/tcp', ...SWARM_PORTS.map((p) => `${p.port}/${p.proto}`), `${agentPort}/tcp`, `${agentPort}/udp`];
}

export function firstbootScript(agentPort: number): string {
  return `#!/bin/bash
# piswarm first boot, run once by cloud-init (runcmd). Re-runnable by hand.
# Output: ${FIRSTBOOT_LOG} and, for errors, the console.
set -euo pipefail
exec > >(tee -a ${FIRSTBOOT_LOG}) 2>&1
say() { echo "piswarm-firstboot: $*"; }
die() { echo "piswarm-firstboot: ERROR: $*" | tee /dev/console >&2 || true; exit 1; }
# A command that fails without a die() of its own still says which one, so the log never just stops.
trap 'rc=$?; echo "piswarm-firstboot: ERROR: line $LINENO: $BASH_COMMAND exited with $rc" | tee /dev/console >&2 || true' ERR
say "started"

# A container (the simulated Pi) runs on the host's kernel and clock: what only
# a kernel command line or an NTP client could change is left alone there, and said so.
CONTAINER=$(systemd-detect-virt --container 2>/dev/null || true)
[ "$CONTAINER" != none ] || CONTAINER=""
[ -z "$CONTAINER" ] || say "in a container ($CONTAINER): the kernel, its command line and the clock are the host's"

# Ubuntu and Raspberry Pi OS bookworm+ mount the boot partition at /boot/firmware; older releases at /boot.
BOOT=""
for d in /boot/firmware /boot; do
  if compgen -G "$d/piswarm-*.tar.gz" >/dev/null || [ -f "$d/${BOOT_KEY_FILE}" ]; then BOOT=$d; break; fi
done
[ -n "$BOOT" ] || die "no piswarm release (piswarm-*.tar.gz) found in /boot/firmware or /boot"

# 1. The cluster key: off the world-readable FAT partition, into /etc/piswarm.
install -d -m 0755 /etc/piswarm
if [ -f "$BOOT/${BOOT_KEY_FILE}" ]; then
  install -m 0600 -o root -g root "$BOOT/${BOOT_KEY_FILE}" ${CLUSTER_KEY_PATH}
  rm -f "$BOOT/${BOOT_KEY_FILE}"
  sync
fi
[ -s ${CLUSTER_KEY_PATH} ] || die "no cluster key: ${CLUSTER_KEY_PATH} is missing and $BOOT/${BOOT_KEY_FILE} is absent; re-flash the card with piswarm flash"

# 2. Docker needs the memory cgroup; Raspberry Pi kernels disable it by default.
if awk '$1=="memory" && $4=="1" {found=1} END {exit !found}' /proc/cgroups; then
  say "memory cgroup enabled"
elif [ -n "$CONTAINER" ]; then
  say "WARNING: memory cgroup disabled; in a container only the host's kernel command line can enable it (cmdline.txt left alone, no reboot)"
else
  if [ -f "$BOOT/cmdline.txt" ] && ! grep -q 'cgroup_enable=memory' "$BOOT/cmdline.txt"; then
    sed -i '1 s/[[:space:]]*$/ ${MEMORY_CGROUP_ARGS.join(' ')}/' "$BOOT/cmdline.txt"
    say "enabled the memory cgroup in $BOOT/cmdline.txt; rebooting once at the end"
    touch ${REBOOT_FLAG}
  else
    say "WARNING: memory cgroup still disabled although cmdline.txt asks for it; run piswarm doctor"
  fi
fi

# 3. Wi-Fi power saving drops multicast (mDNS) and gossip packets.
if command -v iw >/dev/null; then
  for dev in /sys/class/net/wlan*; do [ -e "$dev" ] && iw dev "$(basename "$dev")" set power_save off || true; done
fi

# 4. Swarm TLS certificates and raft need a correct clock; a Pi has no RTC.
timedatectl set-ntp true || say "WARNING: could not enable NTP (timedatectl set-ntp true)"
systemctl enable --now systemd-timesyncd 2>/dev/null || say "systemd-timesyncd not available; another NTP client may run"
if systemctl is-active --quiet systemd-timesyncd; then
  say "clock: systemd-timesyncd running"
elif [ -n "$CONTAINER" ]; then
  say "clock: systemd-timesyncd does not run in a container (its ConditionVirtualization=!container); the host keeps the clock"
else
  say "WARNING: systemd-timesyncd is not running; swarm TLS needs a correct clock (piswarm doctor checks clock:sync)"
fi

# 5. Firewall: only touched when ufw is active.
if command -v ufw >/dev/null && ufw status | grep -q '^Status: active'; then
  for rule in ${firewallRules(agentPort).join(' ')}; do ufw allow "$rule"; done
fi

# 6. Docker Engine: cloud-init's packages step installed docker.io before this
# script ran; when it could not (no network yet, e.g. Wi-Fi still associating), try once more.
if ! command -v dockerd >/dev/null; then
  say "docker.io is not installed (cloud-init's package step failed?); installing it"
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io; } || die "could not install docker.io; check the network, then run: sudo bash ${FIRSTBOOT_SCRIPT}"
fi

# 7. Node.js >= ${MIN_NODE.major}.${MIN_NODE.minor} for the agent.
node_ok() {
  command -v node >/dev/null && node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>${MIN_NODE.major}||(a===${MIN_NODE.major}&&b>=${MIN_NODE.minor})?0:1)'
}
if ! node_ok && [ -f "$BOOT/${BOOT_NODE_FILE}" ]; then
  install -m 0755 "$BOOT/${BOOT_NODE_FILE}" /usr/local/bin/node
  rm -f "$BOOT/${BOOT_NODE_FILE}"
  hash -r
  say "installed the Node.js binary from the boot partition as /usr/local/bin/node"
fi
if ! node_ok; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs || say "apt-get install nodejs failed"
  hash -r
fi
node_ok || die "piswarm needs Node.js >= ${MIN_NODE.major}.${MIN_NODE.minor}; this system has $(node --version 2>/dev/null || echo none) (Debian bookworm and Ubuntu 24.04 ship 18.x). Install a newer Node.js into /usr/local/bin (e.g. the official linux-arm64 build), or re-flash with piswarm flash --node, then run: sudo bash ${FIRSTBOOT_SCRIPT}"

# 8. Install the agent from the release copied onto the boot partition.
REL=$(ls -1 "$BOOT"/piswarm-*.tar.gz | sort -V | tail -n 1)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
tar -xzf "$REL" -C "$TMP"
INSTALL=$(find "$TMP" -path '*/scripts/install.sh' -type f | head -n 1)
[ -n "$INSTALL" ] || die "$REL holds no scripts/install.sh"
# --no-start: the config and key are still root-only; the agent (user piswarm, created by install.sh) starts below.
bash "$INSTALL" --release "$REL" --no-start

# 9. Agent config and key: readable by root and the agent's group only.
getent group piswarm >/dev/null || die "install.sh did not create the piswarm group"
chown root:piswarm ${DEFAULT_CONFIG_FILE} ${CLUSTER_KEY_PATH}
chmod 0640 ${DEFAULT_CONFIG_FILE} ${CLUSTER_KEY_PATH}

# 10. Start.
usermod -aG docker pi || true
systemctl enable --now docker
systemctl enable piswarm
if [ -e ${REBOOT_FLAG} ]; then
  say "done in $SECONDS s: agent enabled; it starts after the reboot"
else
  systemctl restart piswarm
  say "done in $SECONDS s: agent started"
fi
`;
}

/** `#cloud-config` user-data. */
export function buildUserData(p: NodeProvision, nodeConfig: Record<string, unknown>): string {
  const port = httpPort(nodeConfig);
  const keys = p.sshPublicKey.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const doc: Record<string, YamlValue> = {
    hostname: p.hostname,
    preserve_hostname: false,
    manage_etc_hosts: true,
    timezone: p.timezone,
    ssh_pwauth: false,
    disable_root: true,
    users: [
      {
        name: 'pi',
        gecos: 'piswarm administrator',
        shell: '/bin/bash',
        groups: ['sudo'],
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        lock_passwd: true,
        ssh_authorized_keys: keys,
      },
    ],
    package_update: true,
    packages: ['docker.io', 'iw'],
    ntp: { enabled: true, ntp_client: 'systemd-timesyncd' },
    write_files: [
      {
        path: DEFAULT_CONFIG_FILE,
        owner: 'root:root',
        // Widened to 0640 root:piswarm by the first-boot script once the group exists.
        permissions: '0600',
        content: `${JSON.stringify(nodeConfig, null, 2)}\n`,
      },
      {
        path: '/etc/NetworkManager/conf.d/piswarm-wifi-powersave.conf',
        permissions: '0644',
        content: '# piswarm: power saving drops multicast (mDNS) and gossip packets\n[connection]\nwifi.powersave = 2\n',
      },
      {
        path: '/etc/udev/rules.d/70-piswarm-wifi-powersave.rules',
        permissions: '0644',
        content: 'ACTION=="add", SUBSYSTEM=="net", KERNEL=="wlan*", RUN+="/usr/sbin/iw dev $name set power_save off"\n',
      },
      { path: FIRSTBOOT_SCRIPT, permissions: '0755', content: firstbootScript(port) },
    ],
    runcmd: [['bash', FIRSTBOOT_SCRIPT]],
    power_state: {
      mode: 'reboot',
      delay: 'now',
      message: 'piswarm: rebooting once to enable the memory cgroup',
      condition: `test -e ${REBOOT_FLAG}`,
    },
  };
  return toYaml(doc, '#cloud-config');
}

export function buildMetaData(p: NodeProvision): string {
  return toYaml({ 'instance-id': p.instanceId, 'local-hostname': p.hostname });
}

/** netplan v2: wired DHCP always, Wi-Fi when given; both optional so boot does not wait for the one not plugged in. */
export function buildNetworkConfig(p: NodeProvision): string {
  const doc: Record<string, YamlValue> = {
    version: 2,
    ethernets: { eth0: { dhcp4: true, optional: true } },
  };
  if (p.wifi) {
    doc.wifis = {
      wlan0: {
        dhcp4: true,
        optional: true,
        'regulatory-domain': p.wifi.country,
        'access-points': { [p.wifi.ssid]: { password: p.wifi.password } },
      },
    };
  }
  return toYaml(doc);
}

/**
 * cmdline.txt must stay one line. Adds the memory cgroup and, with Wi-Fi, the
 * regulatory domain, so the first boot needs no extra reboot on Raspberry Pi OS.
 */
export function patchCmdline(cmdline: string, wifiCountry?: string): string {
  const words = cmdline.replace(/\r?\n/g, ' ').trim().split(/\s+/).filter(Boolean);
  for (const arg of MEMORY_CGROUP_ARGS) if (!words.includes(arg)) words.push(arg);
  if (wifiCountry) {
    const i = words.findIndex((w) => w.startsWith('cfg80211.ieee80211_regdom='));
    const arg = `cfg80211.ieee80211_regdom=${wifiCountry}`;
    if (i >= 0) words[i] = arg;
    else words.push(arg);
  }
  return `${words.join(' ')}\n`;
}
