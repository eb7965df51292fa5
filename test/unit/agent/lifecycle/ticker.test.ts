import t from 'tap';
import { createTicker } from '../../../../agent/lifecycle/ticker.js';

t.test('a tick joins the run in progress; a throwing run is reported and the next one runs', async (t) => {
  let runs = 0;
  let release: () => void = () => {};
  const errors: unknown[] = [];
  let fail = false;
  const tk = createTicker({
    intervalMs: 1000,
    run: async () => {
      runs++;
      if (fail) throw new Error('boom');
      await new Promise<void>((r) => { release = r; });
    },
    onError: (e) => errors.push(e),
  });
  const a = tk.tick();
  const b = tk.tick();
  t.equal(runs, 1, 'no second run while one is in progress');
  release();
  await Promise.all([a, b]);
  fail = true;
  await tk.tick();
  t.equal(errors.length, 1);
  fail = false;
  const c = tk.tick();
  t.equal(runs, 3, 'runs again after a failure');
  release();
  await c;
});

t.test('disabled: nothing runs; stop waits for the run in progress', async (t) => {
  let on = false;
  let runs = 0;
  const tk = createTicker({ intervalMs: 10, run: async () => { runs++; await new Promise((r) => setTimeout(r, 20)); }, onError: () => {}, enabled: () => on });
  await tk.tick();
  t.equal(runs, 0);
  on = true;
  tk.start();
  await new Promise((r) => setTimeout(r, 15));
  t.equal(runs, 1, 'started by the timer');
  await tk.stop();
  await new Promise((r) => setTimeout(r, 40));
  t.equal(runs, 1, 'nothing after stop');
});

t.test('soon brings the next run forward, during a run too, and never pushes it back', async (t) => {
  const at: number[] = [];
  const t0 = Date.now();
  let tk: ReturnType<typeof createTicker> | null = null;
  let asked = false;
  tk = createTicker({
    intervalMs: 10_000,
    run: async () => {
      at.push(Date.now() - t0);
      // The first run asks for a follow-up while it is still running.
      if (!asked) { asked = true; tk!.soon(20); }
    },
    onError: (e) => { throw e; },
  });
  tk.start();
  tk.soon(10);
  await new Promise((r) => setTimeout(r, 150));
  t.equal(at.length, 2, `a run 10 ms after start instead of 10 s, then its follow-up (runs at ${at.join(', ')} ms)`);
  t.ok(at[1]! - at[0]! >= 15, 'the follow-up came after the delay it asked for');
  tk.soon(60_000);
  await new Promise((r) => setTimeout(r, 50));
  t.equal(at.length, 2, 'a later soon() does not bring anything forward');
  await tk.stop();
  tk.soon(0);
  await new Promise((r) => setTimeout(r, 30));
  t.equal(at.length, 2, 'nothing after stop');
});

t.test('soon during a run asked for by tick(): the follow-up comes after that run', async (t) => {
  let runs = 0;
  let release: () => void = () => {};
  const tk = createTicker({ intervalMs: 10_000, run: async () => { runs++; if (runs === 1) await new Promise<void>((r) => { release = r; }); }, onError: (e) => { throw e; } });
  tk.start();
  const first = tk.tick();
  tk.soon(5);
  await new Promise((r) => setTimeout(r, 30));
  t.equal(runs, 1, 'no second run while the first is in progress');
  release();
  await first;
  await new Promise((r) => setTimeout(r, 40));
  t.equal(runs, 2, 'the follow-up ran after the first ended');
  await tk.stop();
});
