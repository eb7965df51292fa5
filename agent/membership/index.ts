/** The membership's public surface: what agent/agent.ts and agent/main.ts import. */
export { createMembership, parseSeed } from './membership.js';
export type { CreateMembershipArgs, JoinOutcome, Membership, MembershipConfig, MembershipListener } from './membership.js';
export { createUdpTransport } from './udp-transport.js';
export type { UdpTransport, UdpTransportOptions } from './udp-transport.js';
export { seededRandom, systemClock, systemRandom } from './clock.js';
export type {
  Clock,
  Member,
  MemberEvent,
  MemberEventType,
  MemberState,
  MembershipLog,
  MembershipStats,
  Meta,
  PeerAddress,
  Random,
  Transport,
} from './types.js';
