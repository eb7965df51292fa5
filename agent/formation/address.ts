import { errFields, isPiswarmError } from '../../shared/errors.js';
import { addressDrift, type AddressChoice, type InterfaceTable } from '../net/address.js';
import { setPhase } from './state.js';
import type { FormationContext } from './types.js';

/**
 * The advertise address: chosen once (retried each tick until one exists),
 * then re-checked every discovery.addressRecheckMs. Returns it, or null
 * while there is none yet.
 */
export function advertiseAddress(ctx: FormationContext, now: number): AddressChoice | null {
  const { s, deps } = ctx;
  if (!s.address) {
    try {
      s.address = deps.address();
      ctx.log.info({ address: s.address.address, iface: s.address.interface, why: s.address.reason }, 'advertise address chosen');
      s.addressCheckedAt = now;
    } catch (err) {
      setPhase(ctx, 'discovering', isPiswarmError(err) ? err.message : 'no address yet');
      return null;
    }
  } else if (deps.interfaces && now - s.addressCheckedAt >= ctx.config.discovery.addressRecheckMs) {
    s.addressCheckedAt = now;
    recheckAddress(ctx, s.address, deps.interfaces, now);
  }
  return s.address;
}

/**
 * Reports, never repairs: the address went to Docker at init or join and to
 * the gossip peers at start, and the engine keeps it; a restart re-chooses
 * for piswarm, the swarm side is the operator's call (README troubleshooting).
 */
function recheckAddress(ctx: FormationContext, inUse: AddressChoice, interfaces: () => InterfaceTable, now: number): void {
  const { s, log } = ctx;
  let table: InterfaceTable;
  try {
    table = interfaces();
  } catch (err) {
    log.debug(errFields(err), 'interfaces cannot be read; advertise address not re-checked');
    return;
  }
  const d = addressDrift(inUse, table, ctx.deps.address);
  if (d && (!s.drift || s.drift.now?.address !== d.now?.address)) {
    if (!s.drift) s.counters.addressLosses++;
    log.warn({ code: 'PISWARM_ERR_ADDRESS_CHANGED', address: inUse.address, now: d.now?.address ?? null, iface: d.now?.interface ?? null }, d.why);
    s.drift = { ...d, since: s.drift?.since ?? now };
  } else if (!d && s.drift) {
    log.info({ address: inUse.address, after: Math.round((now - s.drift.since) / 1000) }, 'the advertise address is this host\'s again');
    s.drift = null;
  }
}
