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
