/**
 * endInitTurn: after failed swarm inits, the journal says how this node's
 * turn to create the swarm ended, on both paths (its turn ran out, or the
 * next in rank's swarm was seen first and it joins that). The context is a
 * fake of the three things it uses; it throws on anything else.
 */
import t from 'tap';
import { endInitTurn } from '../../../../agent/formation/actions.js';
import type { FormationContext } from '../../../../agent/formation/types.js';
import type { Decision } from '../../../../agent/formation/rule.js';

function strict<T extends object>(name: string, o: T): T {
  return new Proxy(o, {
    get(target, key) {
      if (typeof key === 'symbol' || key in target) return Reflect.get(target, key);
      throw new Error(`fake ${name}: ${String(key)} is not modelled`);
    },
  });
}

function ctxWith(initFailures: number) {
  const lines: { msg: string; failures: unknown }[] = [];
  const s = strict('state', { initFailures, nextInitAt: 1234 });
  const log = strict('log', { warn: (o: { failures: unknown }, msg: string) => void lines.push({ msg, failures: o.failures }) });
  return { ctx: strict('ctx', { s, log }) as unknown as FormationContext, s, lines };
}

const wait: Decision = { action: 'wait', phase: 'waiting', reason: 'pi-2 creates the swarm (takeover)', rank: ['pi-2', 'pi-3'], winner: 'pi-2' };
const join: Decision = { action: 'join', phase: 'joining', swarmId: 'swarm-1', via: [], leaveFirst: false, reason: 'a swarm exists', split: null };
const member: Decision = { action: 'member', phase: 'member', reason: 'in the swarm', split: null };

t.test('the turn ran out: the next in rank takes over, said once with the failures', async (t) => {
  const { ctx, s, lines } = ctxWith(4);
  endInitTurn(ctx, wait);
  t.same(lines, [{ msg: 'swarm init kept failing for this node\'s whole turn; the next in rank takes over', failures: 4 }]);
  t.same([s.initFailures, s.nextInitAt], [0, 0], 'the turn is over: no failures, no retry pending');
  endInitTurn(ctx, wait);
  t.equal(lines.length, 1, 'not again on the next tick');
});

t.test('the swarm another node created was seen first: joining it is said too', async (t) => {
  const { ctx, s, lines } = ctxWith(2);
  endInitTurn(ctx, join);
  t.same(lines, [{ msg: 'swarm init kept failing on this node; another node created the swarm and this one joins it', failures: 2 }]);
  t.same([s.initFailures, s.nextInitAt], [0, 0]);
});

t.test('no failed init: nothing said, whatever comes next', async (t) => {
  for (const d of [wait, join, member]) {
    const { ctx, lines } = ctxWith(0);
    endInitTurn(ctx, d);
    t.same(lines, [], d.action);
  }
});
