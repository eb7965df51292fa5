/**
 * Capped exponential backoff with full jitter; `random` in [0, 1). The one
 * retry delay of the agent: formation's init and join retries, membership's
 * wait for an address.
 */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random: number): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(exp / 2 + (exp / 2) * random);
}
