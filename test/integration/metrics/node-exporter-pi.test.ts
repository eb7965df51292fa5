/**
 * node-exporter.test.ts inside a simulated Pi: the agent as the Pi runs it
 * (systemd unit, its own user, the image's OS: PISWARM_SIM_OS) and Debian's
 * node_exporter 1.5 started beside it in the same container (the host's
 * binary copied in: it is a static Go program), both scraped over the
 * simulated LAN and compared by the same method. The container's own network
 * namespace, mounts and cgroup are what both read. About 1 min.
 */
import fs from 'node:fs';
import t from 'tap';
import { sim, skipReason, startCluster, until } from '../helpers/cluster.js';
import { compareWithNodeExporter } from './compare.js';
import { missingTool, NODE_EXPORTER } from './servers.js';

const INTERVAL_MS = 500;
const NE_PORT = 9100;
const skip = (await skipReason()) || missingTool(NODE_EXPORTER);

t.test('agent vs node_exporter on a simulated Pi', { skip, timeout: 300_000 }, async (t) => {
  const c = await startCluster(t, {
    prefix: 'it-nepi', nodes: 1,
    // A one-Pi cluster with nothing to form: only the metrics matter here.
    env: { PISWARM_METRICS_INTERVAL_MS: String(INTERVAL_MS), PISWARM_FORMATION_ENABLED: 'false', PISWARM_AUTOPILOT_ENABLED: 'false' },
  });
  const pi = c.nodes[0]!;
  t.comment(`${pi.name}: ${pi.os}, engine ${pi.engine ?? 'none'}`);
  await sim.copyFiles(c.ref, pi.name, '/usr/local/bin', [{ name: 'node_exporter', content: fs.readFileSync(NODE_EXPORTER), mode: 0o755, uid: 0, gid: 0 }]);
  // A transient systemd unit, so it runs as a service of the Pi's own systemd, beside the agent's.
  const run = await sim.exec(c.ref, pi.name, ['systemd-run', '--unit', 'node-exporter-test', '/usr/local/bin/node_exporter', `--web.listen-address=:${NE_PORT}`]);
  t.equal(run.code, 0, `node_exporter started in ${pi.name}${run.code === 0 ? '' : `: ${run.stderr}`}`);
  const ne = { name: 'node_exporter', url: `http://${pi.ip}:${NE_PORT}/metrics` };
  const agent = { name: 'piswarm', url: `${pi.apiUrl}/metrics` };
  await until('node_exporter to answer in the Pi', async () => (await fetch(ne.url).then((r) => r.ok, () => false)), 30_000);
  await compareWithNodeExporter(t, agent, ne, { intervalMs: INTERVAL_MS, windowMs: 10_000 });
});
