import { Type, type Static, type TProperties } from '@sinclair/typebox';
import { DEFAULT_DOCKER_SOCKET, DEFAULT_HTTP_PORT, DEFAULT_STATE_DIR } from './constants.js';

/**
 * The one configuration schema. Layers (later wins): these defaults <
 * /etc/piswarm/config.json < PISWARM_* environment < CLI flags.
 * Every leaf maps to an environment variable and a flag by its path:
 * http.port -> PISWARM_HTTP_PORT -> --http-port. The README's table is
 * generated from the descriptions here (`piswarm config --help`).
 */
/** A section of the config: unknown keys are errors, absent sections take their defaults. */
const Section = <T extends TProperties>(props: T) => Type.Object(props, { default: {}, additionalProperties: false });
const Ms = (def: number, description: string, minimum = 0) =>
  Type.Integer({ minimum, default: def, description });

export const ConfigSchema = Section(
  {
    clusterName: Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9][a-z0-9-]*$', default: 'piswarm', description: 'Cluster name, shown in adverts and metrics' }),
    clusterKey: Type.Optional(Type.String({ minLength: 32, maxLength: 512, description: 'Shared secret of the cluster (at least 32 characters). Never logged. Prefer clusterKeyFile.' })),
    clusterKeyFile: Type.Optional(Type.String({ minLength: 1, description: 'File holding the cluster key (mode 0600/0640, readable by the agent only)' })),
    nodeName: Type.Optional(Type.String({ minLength: 1, maxLength: 63, description: 'Node name (defaults to the hostname)' })),
    stateDir: Type.String({ minLength: 1, default: DEFAULT_STATE_DIR, description: 'Where node identity and benchmark results persist' }),
    http: Section(
      {
        host: Type.String({ minLength: 1, default: '0.0.0.0', description: 'Address the HTTP API listens on' }),
        port: Type.Integer({ minimum: 1, maximum: 65535, default: DEFAULT_HTTP_PORT, description: 'HTTP API port (/health, /metrics, /v1/*)' }),
        bodyLimit: Type.Integer({ minimum: 256, maximum: 1048576, default: 16384, description: 'Largest accepted request body, bytes' }),
      },
    ),
    log: Section(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace'].map((l) => Type.Literal(l)),
          { default: 'info', description: 'Log level' },
        ),
      },
    ),
    docker: Section(
      {
        socketPath: Type.String({ minLength: 1, default: DEFAULT_DOCKER_SOCKET, description: 'Docker Engine API socket' }),
        timeoutMs: Ms(5000, 'Deadline for one Docker API call', 100),
        swarmTimeoutMs: Ms(60000, 'Deadline for swarm init, join and leave and for the engine read right before them (a manager removed while it was off answers docker info in about 12 s)', 1000),
      },
    ),
    metrics: Section(
      {
        intervalMs: Ms(5000, 'Minimum age of the host sample: a scrape or health request samples again only when the last sample is older (no timer). Also the engine monitor\'s period (docker info), which a settled member\'s formation takes instead of a read per tick', 500),
        procRoot: Type.String({ default: '/proc', description: 'procfs root (tests point it at recorded samples)' }),
        sysRoot: Type.String({ default: '/sys', description: 'sysfs root (tests point it at recorded samples)' }),
        textfileDir: Type.String({ default: '', description: 'Directory of *.prom files served with the metrics, as node_exporter\'s textfile collector (e.g. /var/lib/prometheus/node-exporter); empty: none' }),
      },
    ),
    health: Section(
      {
        diskFreeWarnPercent: Type.Number({ minimum: 0, maximum: 100, default: 10, description: 'disk:free warns below this share of free space on /' }),
        diskFreeFailPercent: Type.Number({ minimum: 0, maximum: 100, default: 3, description: 'disk:free fails below this share' }),
        temperatureWarnCelsius: Type.Number({ default: 75, description: 'host:temperature warns at or above' }),
        temperatureFailCelsius: Type.Number({ default: 82, description: 'host:temperature fails at or above (a Pi 4 throttles at 80-85)' }),
      },
    ),
    diskBench: Section(
      {
        device: Type.Optional(Type.String({ minLength: 1, description: 'Block device to benchmark (default: the disk behind /)' })),
        maxBytes: Type.Integer({ minimum: 1048576, maximum: 4294967296, default: 268435456, description: 'Most bytes one benchmark reads' }),
        maxSeconds: Type.Number({ minimum: 0.5, maximum: 120, default: 10, description: 'Longest one benchmark runs' }),
      },
    ),
    discovery: Section(
      {
        mdns: Type.Boolean({ default: true, description: 'Advertise and browse _piswarm._tcp over mDNS' }),
        seeds: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Static peer addresses (host or host:port), comma-separated, for LANs without multicast' }),
        advertiseAddress: Type.Optional(Type.String({ minLength: 1, description: 'Address to advertise and hand to Docker (default: the interface with the default route)' })),
        interface: Type.Optional(Type.String({ minLength: 1, description: 'Interface whose address to advertise' })),
        advertMaxAgeMs: Ms(600000, 'Adverts whose timestamp is further than this from our clock are dropped as stale', 1000),
        republishMs: Ms(60000, 'How often the signed advert is refreshed (and whenever role or swarm changes)', 1000),
        confirmIntervalMs: Ms(3000, 'How often each candidate peer is re-confirmed over authenticated HTTP', 200),
        peerTtlMs: Ms(20000, 'A confirmed peer that has not answered for this long is forgotten (mDNS never proves liveness)', 1000),
        requestTimeoutMs: Ms(2000, 'Deadline for one peer HTTP request (connect, headers and body)', 100),
        addressRecheckMs: Ms(30000, 'How often the advertise address is checked against the host\'s interfaces (a DHCP change is reported in /health net:address)', 1000),
      },
    ),
    formation: Section(
      {
        enabled: Type.Boolean({ default: true, description: 'Form or join a swarm automatically' }),
        expect: Type.Integer({ minimum: 1, maximum: 1000, default: 1, description: 'Confirmed peers (self included) needed before a new swarm may be created' }),
        holdOffMs: Type.Optional(Type.Integer({ minimum: 0, description: 'How long the confirmed peer set must be stable before the election (default: 5000 ms when expect is 1, 2000 ms when expect is 2 or more)' })),
        initDeadlineMs: Ms(20000, 'How long others wait for the winner to create the swarm before the next in rank takes over', 1000),
        tickMs: Ms(1000, 'How often the formation controller re-evaluates', 100),
        authWindowMs: Ms(30000, 'Peer requests whose timestamp differs from our clock by more than this are refused as stale', 1000),
        rotateAfterMs: Ms(30000, 'The worker join token is rotated once no grant was issued for this long after the last one', 1000),
        joinBackoffMaxMs: Ms(10000, 'Cap of the exponential backoff between join attempts', 100),
        joinRelayPort: Type.Integer({ minimum: 0, maximum: 65535, default: 2378, description: 'Loopback port of the join relay: a worker\'s engine joins through 127.0.0.1:PORT, which forwards to a live manager, so the address it dials when promoted is never a dead manager (moby#47854). 0: join managers directly. Listens only with a cluster key (without one no manager is known)' }),
      },
    ),
    membership: Section(
      {
        // Same number as the HTTP port but UDP; 7946 belongs to dockerd's own gossip.
        port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'UDP port of the gossip membership (SWIM); default: the same number as http.port' })),
        probeIntervalMs: Ms(1000, 'Gossip: one failure-detector probe of one member per period', 50),
        probeTimeoutMs: Ms(500, 'Gossip: direct ack deadline before indirect probes (must be below probeIntervalMs)', 10),
        indirectChecks: Type.Integer({ minimum: 0, maximum: 16, default: 3, description: 'Gossip: members asked to probe an unresponsive member' }),
        suspicionMult: Type.Integer({ minimum: 1, maximum: 32, default: 4, description: 'Gossip: suspicion timeout = suspicionMult * log10(members) * probeIntervalMs' }),
        suspicionMaxTimeoutMult: Type.Integer({ minimum: 1, maximum: 64, default: 6, description: 'Gossip: unconfirmed suspicions last up to this multiple of the timeout' }),
        gossipNodes: Type.Integer({ minimum: 1, maximum: 16, default: 3, description: 'Gossip: fan-out of each gossip round' }),
        gossipIntervalMs: Ms(200, 'Gossip: period of gossip rounds', 10),
        retransmitMult: Type.Integer({ minimum: 1, maximum: 16, default: 5, description: 'Gossip: each change is retransmitted retransmitMult * log10(members + 1) times' }),
      },
    ),
    autopilot: Section(
      {
        enabled: Type.Boolean({ default: true, description: 'Autopilot: keep an odd manager count, replace dead managers and prune dead nodes (decided only by the agent on the Raft leader)' }),
        intervalMs: Ms(5000, 'Autopilot: how often the leader re-plans (one step per tick); sooner after a step (1 s), when a wait ends by the clock, or when its engine answers as a manager again', 100),
        stabilizationMs: Ms(30000, 'Autopilot: a node must have been healthy this long before it is promoted or counted for draining'),
        deadManagerGraceMs: Ms(60000, 'Autopilot: a manager unreachable this long is replaced (a healthy worker promoted, then the dead one demoted)'),
        deadNodeTtlMs: Ms(900000, 'Autopilot: a worker down this long is removed from the swarm (a rebooting Pi must come back sooner)'),
        maxManagers: Type.Integer({ minimum: 1, maximum: 9, default: 5, description: 'Autopilot: most managers; an even value acts as the odd number below it' }),
        threeManagersAt: Type.Integer({ minimum: 2, maximum: 1000, default: 3, description: 'Autopilot: healthy nodes from which 3 managers are kept (1 below)' }),
        fiveManagersAt: Type.Integer({ minimum: 3, maximum: 1000, default: 7, description: 'Autopilot: healthy nodes from which 5 managers are kept' }),
        sevenManagersAt: Type.Integer({ minimum: 4, maximum: 1000, default: 15, description: 'Autopilot: healthy nodes from which 7 managers are kept (also needs maxManagers >= 7)' }),
        managerAvailability: Type.Union(
          ['auto', 'always', 'never'].map((l) => Type.Literal(l)),
          { default: 'auto', description: 'Autopilot: drain managers so user tasks run on workers: auto (once drainMinWorkers ready workers exist, undone when they are lost), always, never' },
        ),
        drainMinWorkers: Type.Integer({ minimum: 1, maximum: 1000, default: 2, description: 'Autopilot: stable ready active workers needed before managers are drained (auto)' }),
        backoffBaseMs: Ms(10000, 'Autopilot: first wait before retrying a step the engine refused (doubles per refusal)', 100),
        backoffMaxMs: Ms(300000, 'Autopilot: longest wait before retrying a refused step', 1000),
      },
    ),
    labels: Section(
      {
        enabled: Type.Boolean({ default: true, description: 'Keep the piswarm.arch, .model, .memory_gb, .storage and .disk_speed node labels in step with each node\'s published hardware facts (done by the agent on the Raft leader, every autopilot.intervalMs)' }),
      },
    ),
    upgrade: Section(
      {
        releaseKey: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', description: 'The cluster\'s ed25519 release key, public half (base64url; `piswarm release keygen` makes it). Without it no release is accepted over the network' })),
        healthDeadlineS: Type.Integer({ minimum: 20, maximum: 1800, default: 120, description: 'Upgrade: how long a newly installed agent has to be ready, healthy and back in the swarm and gossip before the previous release is put back' }),
        catchUp: Type.Boolean({ default: true, description: 'Upgrade: a node that missed a finished rollout fetches the cluster\'s release from a peer and installs it' }),
        catchUpIntervalMs: Ms(30000, 'Upgrade: how often a node compares its version with its peers\' (catch-up)', 5000),
      },
    ),
  },
);

export type Config = Static<typeof ConfigSchema>;
