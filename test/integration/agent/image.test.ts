/**
 * The Dockerfile's `agent` target, for a host that runs the agent in a
 * container: built from the same release, it must come up healthy through its
 * own HEALTHCHECK (which finds the port in the mounted config file, as the
 * agent does), and stop cleanly and quickly on `docker stop` (tini is PID 1 and
 * hands SIGTERM to node, which runs the ordered shutdown).
 */
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ensureAgentImage } from '../../../scripts/sim/images.js';
import { docker } from '../../../scripts/sim/run.js';
import { sim, skipReason, uniqueName } from '../helpers/cluster.js';

const skip = await skipReason();

t.test('the agent image: healthy by its own health check, clean stop on SIGTERM', { skip, timeout: 600_000 }, async (t) => {
  const image = await ensureAgentImage({ root: sim.repoRoot(), log: (m) => t.comment(`sim: ${m}`) });
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-agent-image-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // A non-default port in the config file: the health check must find it there.
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ http: { port: 7171 }, formation: { enabled: false }, autopilot: { enabled: false }, discovery: { mdns: false } }));
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'config.json'), 0o644);
  const name = uniqueName('piswarm-agent-img');
  t.teardown(() => docker(['rm', '-f', name]).catch(() => undefined));
  await docker(['run', '-d', '--name', name, '--network', 'none', '--health-interval', '2s', '--health-start-period', '2s',
    '-v', `${dir}/config.json:/etc/piswarm/config.json:ro`, image]);

  const inspect = async () => JSON.parse(await docker(['inspect', name]))[0] as { Path: string; State: { Status: string; ExitCode: number; Health?: { Status: string; Log: Array<{ ExitCode: number; Output: string }> } } };
  t.equal((await inspect()).Path, '/usr/bin/tini', 'tini is PID 1');
  const healthy = await sim.waitFor(async () => ((await inspect()).State.Health?.Status === 'healthy' ? true : false), { timeoutMs: 60_000, what: 'the container health check to pass', intervalMs: 1000 })
    .catch(async (err: Error) => {
      const s = await inspect();
      t.comment(`health log: ${JSON.stringify(s.State.Health?.Log.slice(-3))}\nlogs:\n${await docker(['logs', '--tail', '30', name]).catch(() => '')}`);
      throw err;
    });
  t.ok(healthy, 'healthy: `piswarm livez` reached the agent on 7171, the port of the config file');
  const logs = await docker(['logs', name]);
  t.match(logs, /"msg":"agent ready"/);
  t.match(logs, /"msg":"Server listening at http:\/\/[^"]+:7171"/, "listening on the port of the config file");

  const t0 = Date.now();
  await docker(['stop', '-t', '10', name]);
  const took = Date.now() - t0;
  const s = await inspect();
  t.equal(s.State.Status, 'exited');
  t.equal(s.State.ExitCode, 0, 'the agent exited 0: SIGTERM reached node through tini');
  t.ok(took < 8000, `stopped in ${took} ms, well before docker's 10 s SIGKILL`);
  const after = await docker(['logs', name]);
  t.ok(after.indexOf('"msg":"stopping"') >= 0 && after.indexOf('"msg":"stopped"') > after.indexOf('"msg":"stopping"'), 'ordered shutdown logged');
});
