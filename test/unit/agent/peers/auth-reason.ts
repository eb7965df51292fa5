import { AuthError } from '../../../../agent/peers/protocol.js';

/** What a verification did: 'accepted', the AuthError's reason, or 'other: ...'. */
export function reason(fn: () => unknown): string {
  try {
    fn();
    return 'accepted';
  } catch (err) {
    return err instanceof AuthError ? err.reason : `other: ${(err as Error).message}`;
  }
}
