import type { HealthDocument } from '../health/aggregate.js';
import { CHECK_OUTPUT_MAX, CHECKS_MAX, type PeerCheck } from '../../shared/wire/peer.js';

/** A join token, wherever it might be quoted (no check should, but this answer leaves the node). */
const JOIN_TOKEN_RE = /SWMTKN-[0-9A-Za-z-]+/g;
// C0 and C1 controls and DEL, except what becomes a space below.
const CONTROL_RE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g;

/**
 * Pure: a check's output as it may leave the node: controls removed, tabs and
 * newlines made spaces, any join token redacted, cut to `max` characters (by
 * code point, so no surrogate pair is split) with an ellipsis.
 */
export function sanitizeOutput(text: unknown, max = CHECK_OUTPUT_MAX): string {
  const s = String(text ?? '')
    .replace(CONTROL_RE, '')
    .replace(/[\t\r\n]+/g, ' ')
    .replace(JOIN_TOKEN_RE, 'SWMTKN-[redacted]')
    .trim();
  const cps = [...s];
  return cps.length <= max ? s : `${cps.slice(0, max - 1).join('')}…`;
}

const RANK = { fail: 0, warn: 1 } as const;

/**
 * Pure: the warn and fail results of a health document, worst first, at most
 * `max` of them, each with only its name, status, component, sanitised output
 * and sample time. Nothing else of the document (observed values, version,
 * service id) is copied.
 */
export function nonPassingChecks(doc: Pick<HealthDocument, 'status' | 'checks'>, max = CHECKS_MAX): { status: HealthDocument['status']; checks: PeerCheck[]; omitted: number } {
  const all: PeerCheck[] = [];
  for (const [name, results] of Object.entries(doc.checks)) {
    for (const r of results) {
      if (r.status !== 'warn' && r.status !== 'fail') continue;
      all.push({
        name: sanitizeOutput(name, 64),
        status: r.status,
        component: r.componentId ? sanitizeOutput(r.componentId, 64) : null,
        output: sanitizeOutput(r.output ?? ''),
        observedAt: typeof r.time === 'string' && r.time.length <= 40 ? r.time : null,
      });
    }
  }
  all.sort((a, b) => RANK[a.status] - RANK[b.status] || a.name.localeCompare(b.name));
  return { status: doc.status, checks: all.slice(0, max), omitted: Math.max(0, all.length - max) };
}
