import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { PiswarmError } from '../../shared/errors.js';

/**
 * Which address a node advertises over mDNS and hands to Docker as advertise,
 * listen and data-path address. Docker left to itself picks "an" address and
 * fails or picks docker0/docker_gwbridge on multi-homed hosts (moby#25117),
 * so the choice is made here, deliberately, and passed explicitly.
 */
export interface InterfaceAddress {
  address: string;
  family: 'IPv4' | 'IPv6' | string | number;
  internal: boolean;
  netmask?: string;
  mac?: string;
  cidr?: string | null;
}
export type InterfaceTable = Record<string, InterfaceAddress[] | undefined>;

export interface RouteEntry {
  iface: string;
  destination: string; // dotted quad
  gateway: string;
  mask: string;
  flags: number;
  metric: number;
}

export interface AddressChoice {
  address: string;
  interface: string;
  reason: string;
}

/** Interfaces that are never the node's own LAN address. */
const EXCLUDED = [/^lo$/, /^docker0$/, /^docker_gwbridge$/, /^veth/, /^br-/, /^cni/, /^flannel/, /^virbr/, /^tun/, /^tap/, /^zt/, /^tailscale/, /^wg/];
// Where no default route exists (a switch-only cluster), wired beats wireless.
const PREFERENCE = [/^eth/, /^en/, /^wlan/, /^wl/];

export function isExcludedInterface(name: string): boolean {
  return EXCLUDED.some((re) => re.test(name));
}

function hexToIp(hex: string): string {
  // /proc/net/route stores IPv4 addresses as little-endian hex.
  const n = Number.parseInt(hex, 16);
  if (!Number.isFinite(n) || hex.length !== 8) return '';
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
}

/** Parses the text of /proc/net/route; malformed lines are skipped. */
export function parseRouteTable(text: string): RouteEntry[] {
  const out: RouteEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const destination = hexToIp(f[1]!);
    const gateway = hexToIp(f[2]!);
    const mask = hexToIp(f[7]!);
    if (!destination || !gateway || !mask) continue;
    out.push({ iface: f[0]!, destination, gateway, mask, flags: Number.parseInt(f[3]!, 16), metric: Number(f[6]) });
  }
  return out;
}

function isLinkLocal(addr: string): boolean {
  return addr.startsWith('169.254.') || addr.toLowerCase().startsWith('fe80:');
}

function ipv4Of(iface: InterfaceAddress[] | undefined): string | null {
  const a = (iface ?? []).find((x) => (x.family === 'IPv4' || x.family === 4) && !x.internal && !isLinkLocal(x.address));
  return a?.address ?? null;
}

/**
 * Pure: picks the address from recorded tables. Order: configured address,
 * configured interface, the interface of the lowest-metric default route,
 * then the first wired/wireless interface with an IPv4 address.
 */
export function chooseAdvertiseAddress(
  interfaces: InterfaceTable,
  routes: readonly RouteEntry[],
  config: { discovery: { advertiseAddress?: string | undefined; interface?: string | undefined } },
): AddressChoice {
  const { advertiseAddress, interface: wanted } = config.discovery;
  if (advertiseAddress) {
    const owner = Object.entries(interfaces).find(([, list]) => (list ?? []).some((a) => a.address === advertiseAddress));
    if (!owner) throw new PiswarmError('PISWARM_ERR_NO_ADDRESS', `discovery.advertiseAddress ${advertiseAddress} is not an address of this host (yet)`);
    return { address: advertiseAddress, interface: owner[0], reason: 'configured discovery.advertiseAddress' };
  }
  if (wanted) {
    const addr = ipv4Of(interfaces[wanted]);
    if (!addr) throw new PiswarmError('PISWARM_ERR_NO_ADDRESS', `discovery.interface ${wanted} has no usable IPv4 address (yet)`);
    return { address: addr, interface: wanted, reason: 'configured discovery.interface' };
  }
  const defaults = routes
    .filter((r) => r.destination === '0.0.0.0' && r.mask === '0.0.0.0' && (r.flags & 1) === 1 && !isExcludedInterface(r.iface))
    .sort((a, b) => a.metric - b.metric);
  for (const r of defaults) {
    const addr = ipv4Of(interfaces[r.iface]);
    if (addr) return { address: addr, interface: r.iface, reason: `default route via ${r.gateway} (metric ${r.metric})` };
  }
  const names = Object.keys(interfaces).filter((n) => !isExcludedInterface(n)).sort((a, b) => {
    const rank = (n: string) => {
      const i = PREFERENCE.findIndex((re) => re.test(n));
      return i === -1 ? PREFERENCE.length : i;
    };
    return rank(a) - rank(b) || a.localeCompare(b);
  });
  for (const n of names) {
    const addr = ipv4Of(interfaces[n]);
    if (addr) return { address: addr, interface: n, reason: 'no default route: first wired/wireless interface with an IPv4 address' };
  }
  throw new PiswarmError('PISWARM_ERR_NO_ADDRESS', 'no interface other than loopback and container bridges has an IPv4 address (yet)');
}

/**
 * `host:port` the way Docker (Go's net.SplitHostPort) and URLs parse it: an
 * IPv6 address goes in brackets, `[fd00::1]:2377`. An address alone (advertise
 * and data-path addresses) stays bare: the engine refuses a bracketed one there.
 */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Pure: whether the address in use (chosen at start, advertised over mDNS and
 * gossip, handed to Docker) is still an address of this host. null while it
 * is, even if the host would now choose another (a second interface coming
 * up is no reason to move). Otherwise what the host would choose instead
 * (null: no usable address at all) and why, for /health and the log: a DHCP
 * lease that moved, a cable moved to another network, a configured address
 * removed. Nothing on the node is changed by it. `detect` (which reads the
 * route table) is asked only once the address is gone.
 */
/** `10.0.0.1:2377` or `[fd00::1]:2377` -> the host part. */
export const hostOf = (addr: string): string => addr.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');

export function addressDrift(inUse: AddressChoice, interfaces: InterfaceTable, detect: () => AddressChoice): { now: AddressChoice | null; why: string } | null {
  if (Object.values(interfaces).some((list) => (list ?? []).some((a) => a.address === inUse.address))) return null;
  const was = `the advertise address ${inUse.address} (${inUse.interface}) is no longer an address of this host`;
  let now: AddressChoice;
  try {
    now = detect();
  } catch (err) {
    return { now: null, why: `${was}, and it has no other usable one: ${(err as Error).message}` };
  }
  return { now, why: `${was}: it now has ${now.address} (${now.interface}, ${now.reason})` };
}

/** The impure edge: the live interface table. */
export function hostInterfaces(): InterfaceTable {
  return networkInterfaces() as InterfaceTable;
}

/** The impure edge: reads the live tables. */
export function detectAdvertiseAddress(config: Parameters<typeof chooseAdvertiseAddress>[2] & { metrics?: { procRoot?: string } }): AddressChoice {
  let routes: RouteEntry[] = [];
  try {
    routes = parseRouteTable(readFileSync(join(config.metrics?.procRoot ?? '/proc', 'net/route'), 'utf8'));
  } catch {
    routes = []; // no procfs (not Linux): fall back to interface preference, reason says so
  }
  return chooseAdvertiseAddress(networkInterfaces() as InterfaceTable, routes, config);
}
