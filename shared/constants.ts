/**
 * Constants spoken by the agent, the CLI, the simulator and the tests alike.
 * Ports are chosen so they collide with neither Docker (2375-2377, 7946, 4789)
 * nor node_exporter (9100).
 */
export const DEFAULT_HTTP_PORT = 7070;
export const MDNS_SERVICE_TYPE = 'piswarm'; // advertised as _piswarm._tcp
export const PROTOCOL_VERSION = 1;
export const DEFAULT_CONFIG_FILE = '/etc/piswarm/config.json';
export const DEFAULT_STATE_DIR = '/var/lib/piswarm';
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';
export const HEALTH_CONTENT_TYPE = 'application/health+json';
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Exit codes scripts can rely on (sysexits.h where one fits). */
export const EXIT = Object.freeze({
  OK: 0,
  FAILURE: 1, // the command ran and found trouble (e.g. status is "fail")
  USAGE: 64, // EX_USAGE: unknown command or flag
  UNAVAILABLE: 69, // EX_UNAVAILABLE: the local agent does not answer
  SOFTWARE: 70, // EX_SOFTWARE: an unexpected internal error
  CONFIG: 78, // EX_CONFIG: invalid configuration
});

/**
 * The node id the CLI signs operator requests with (`piswarm cluster
 * rotate-key`): it holds the cluster key but is no node. No agent has it
 * (node ids are random), so it never names a peer.
 */
export const OPERATOR_NODE_ID = 'ffffffffffffffffffffffff';

/** Docker swarm ports a Pi must open (documented in the README and used by doctor). */
export const SWARM_PORTS = Object.freeze([
  { port: 2377, proto: 'tcp', why: 'swarm management (managers)' },
  { port: 7946, proto: 'tcp', why: 'node gossip (dockerd)' },
  { port: 7946, proto: 'udp', why: 'node gossip (dockerd)' },
  { port: 4789, proto: 'udp', why: 'overlay network VXLAN data path' },
  { port: 5353, proto: 'udp', why: 'mDNS discovery (piswarm)' },
]);
