/**
 * Every error piswarm reports has a stable code, created here and nowhere else.
 * Codes are documented in the README ("Error codes"). 4xx codes describe what
 * the caller did wrong; 5xx codes never carry internal detail over HTTP,
 * except a code marked `expose`, whose messages are written to be shown.
 */
export const ERROR_CODES = Object.freeze({
  // configuration
  PISWARM_ERR_CONFIG_INVALID: { status: 500, message: 'invalid configuration' },
  PISWARM_ERR_CONFIG_FILE: { status: 500, message: 'configuration file cannot be read or parsed' },
  // HTTP API
  PISWARM_ERR_NOT_FOUND: { status: 404, message: 'no such route' },
  PISWARM_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed on this route' },
  PISWARM_ERR_BAD_REQUEST: { status: 400, message: 'malformed request' },
  PISWARM_ERR_BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
  PISWARM_ERR_UNSUPPORTED_MEDIA: { status: 415, message: 'unsupported content type' },
  PISWARM_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request headers too large' },
  PISWARM_ERR_REQUEST_TIMEOUT: { status: 408, message: 'the request was not received in time' },
  PISWARM_ERR_FORBIDDEN: { status: 403, message: 'this endpoint only answers loopback or authenticated callers' },
  PISWARM_ERR_BUSY: { status: 409, message: 'an operation of this kind is already running' },
  PISWARM_ERR_TOO_MANY_CONNECTIONS: { status: 429, message: 'too many open connections from this client' },
  PISWARM_ERR_INTERNAL: { status: 500, message: 'internal error' },
  PISWARM_ERR_UNAVAILABLE: { status: 503, message: 'not available right now' },
  // peer authentication and join grants
  PISWARM_ERR_AUTH_FAILED: { status: 401, message: 'authentication failed' },
  PISWARM_ERR_WRONG_CLUSTER: { status: 403, message: 'peer belongs to another cluster' },
  PISWARM_ERR_REPLAY: { status: 409, message: 'request replayed' },
  PISWARM_ERR_MISADDRESSED: { status: 403, message: 'peer request addressed to another node' },
  PISWARM_ERR_PROTOCOL_VERSION: { status: 400, message: 'peer protocol version not spoken here' },
  PISWARM_ERR_STALE: { status: 400, message: 'request timestamp outside the allowed window' },
  PISWARM_ERR_NOT_MANAGER: { status: 409, message: 'this node is not a swarm manager' },
  PISWARM_ERR_NO_CLUSTER_KEY: { status: 503, message: 'no cluster key configured' },
  PISWARM_ERR_PEER_UNVERIFIED: { status: 502, message: 'a peer answer failed verification' },
  PISWARM_ERR_PEER_UNREACHABLE: { status: 504, message: 'a peer did not answer in time' },
  PISWARM_ERR_KEYRING: { status: 409, message: 'the cluster key change was refused (unknown key, or a step out of order)' },
  PISWARM_ERR_RELEASE_REFUSED: { status: 422, message: 'the release was refused: unsigned, not signed with the release key, tampered with, truncated, too large or not newer' },
  PISWARM_ERR_UPGRADE: { status: 409, message: 'the upgrade cannot go on (a node rolled back, or one is still installing)' },
  PISWARM_ERR_NO_ADDRESS: { status: 503, message: 'no usable address to advertise' },
  PISWARM_ERR_SPLIT_SWARM: { status: 409, message: 'two swarms of this cluster exist' },
  PISWARM_ERR_MDNS_BIND: { status: 503, message: 'the mDNS UDP port 5353 cannot be bound' },
  PISWARM_ERR_ADDRESS_CHANGED: { status: 503, message: 'the advertise address is no longer an address of this host' },
  // engine and host
  PISWARM_ERR_DOCKER_UNREACHABLE: { status: 503, message: 'the Docker engine does not answer' },
  PISWARM_ERR_DOCKER: { status: 502, message: 'the Docker engine refused the request' },
  // Its messages are built by the benchmark itself (device path and what refused
  // it), only loopback callers can start it, and "failed" alone helps nobody.
  PISWARM_ERR_DISK_BENCH: { status: 500, message: 'disk benchmark failed', expose: true },
  PISWARM_ERR_COLLECTOR: { status: 500, message: 'a metrics collector failed' },
  PISWARM_ERR_TEXTFILE: { status: 500, message: 'a metrics text file (metrics.textfileDir) cannot be read or parsed; it is skipped' },
  PISWARM_ERR_SD_NOTIFY: { status: 500, message: 'a systemd notification could not be sent' },
  // autopilot
  PISWARM_ERR_AUTOPILOT_UNSAFE: { status: 409, message: 'the autopilot refused a step that is no longer safe' },
  // gossip membership
  PISWARM_ERR_GOSSIP_BIND: { status: 503, message: 'the gossip UDP port cannot be bound' },
  PISWARM_ERR_GOSSIP_BAD_ADDRESS: { status: 400, message: 'invalid gossip node id, address or seed' },
  PISWARM_ERR_GOSSIP_META_TOO_LARGE: { status: 400, message: 'member metadata exceeds the gossip size budget' },
  PISWARM_ERR_GOSSIP_MALFORMED: { status: 400, message: 'gossip datagram dropped: unauthenticated, malformed or oversized' },
  PISWARM_ERR_GOSSIP_VERSION: { status: 400, message: 'gossip datagram of another wire version dropped (a node runs another piswarm release)' },
  // provisioning (cluster file, flasher) and doctor
  PISWARM_ERR_CLUSTER_FILE: { status: 500, message: 'cluster file cannot be read, written or is invalid' },
  PISWARM_ERR_FLASH_REFUSED: { status: 400, message: 'refused to write the target' },
  PISWARM_ERR_IMAGE_LAYOUT: { status: 400, message: 'unknown disk image layout' },
  PISWARM_ERR_TOOL_MISSING: { status: 500, message: 'a required host tool is missing' },
  PISWARM_ERR_FLASH: { status: 500, message: 'writing the image or the boot files failed' },
  // the release
  PISWARM_ERR_NOT_BUNDLED: { status: 500, message: 'a module left out of the agent bundle was used (scripts/bundle)' },
});

export type ErrorCode = keyof typeof ERROR_CODES;

export class PiswarmError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  /** Safe, caller-facing detail (never secrets, never stack traces). */
  readonly details: unknown;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; details?: unknown }) {
    super(message ?? ERROR_CODES[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PiswarmError';
    this.code = code;
    this.statusCode = ERROR_CODES[code].status;
    this.details = options?.details;
  }
}

export function isPiswarmError(err: unknown, code?: ErrorCode): err is PiswarmError {
  return err instanceof PiswarmError && (code === undefined || err.code === code);
}

/**
 * The one way to log an error: `log.warn({ ...errFields(err) }, '...')`.
 * `code` is the PISWARM_ERR_* code, or 'error' for anything else (never an
 * unchecked cast); `detail` is the message.
 */
export function errFields(err: unknown): { code: string; detail: string } {
  return { code: errCode(err), detail: err instanceof Error ? err.message : String(err) };
}

/** errFields' code alone, for state, labels and debug lines. */
export function errCode(err: unknown): string {
  return isPiswarmError(err) ? err.code : 'error';
}
