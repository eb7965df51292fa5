import { hostname, networkInterfaces } from 'node:os';
import type { InterfaceTable } from '../net/address.js';
import type { SelfAddressing } from './protocol.js';

/** How often the host's addresses are read again for addressee checks. */
const INTERFACES_FRESH_MS = 5_000;

/**
 * Recognises the requests addressed to this node: its node id, or its API
 * port on one of its own addresses or names (the advertise address, any
 * interface address, the hostname with or without `.local`). A request
 * captured on the LAN and replayed to another node names the node it was
 * meant for, so that node alone accepts it (once: its replay cache).
 */
export function createSelfAddressing(o: {
  nodeId: string;
  name: string;
  port: number;
  advertised: () => string | null;
  now: () => number;
  interfaces?: () => InterfaceTable;
}): SelfAddressing {
  const read = o.interfaces ?? (networkInterfaces as () => InterfaceTable);
  let cached: { at: number; hosts: Set<string> } | null = null;
  const own = (): Set<string> => {
    if (cached && o.now() - cached.at < INTERFACES_FRESH_MS) return cached.hosts;
    const hosts = new Set<string>(['localhost']);
    for (const n of new Set([o.name, hostname()])) {
      hosts.add(n.toLowerCase());
      hosts.add(`${n.toLowerCase()}.local`);
    }
    let table: InterfaceTable = {};
    try {
      table = read();
    } catch {
      // An unreadable table leaves the names and the advertise address: the
      // caller can still address this node by id, which is what peers do.
    }
    for (const list of Object.values(table)) for (const a of list ?? []) hosts.add(a.address.toLowerCase());
    cached = { at: o.now(), hosts };
    return hosts;
  };
  return {
    nodeId: o.nodeId,
    port: o.port,
    isOwnHost: (host) => {
      const h = host.toLowerCase();
      return h === o.advertised() || own().has(h);
    },
  };
}
