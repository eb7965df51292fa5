/**
 * The agent and Debian's prometheus-node-exporter (1.5, default collectors)
 * side by side on this host: for every series both serve, the same type and
 * label names; slow gauges (unchanged for both during the window) equal within
 * 1 %; counters bracketed: the agent samples every 500 ms, so a node_exporter
 * scrape taken more than one interval before an agent scrape and one taken
 * right after it must read no more and no less than the agent did. Done at the
 * start and the end of a 10 s window, so the agent's rate over the window lies
 * between node_exporter's. No Docker engine involved. About 20 s.
 */
import t from 'tap';
import { compareWithNodeExporter } from './compare.js';
import { missingTool, NODE_EXPORTER, startAgent, startNodeExporter } from './servers.js';

const INTERVAL_MS = 500;
const WINDOW_MS = 10_000;

t.test('agent vs node_exporter on the same host', { skip: missingTool(NODE_EXPORTER) }, async (t) => {
  const [agent, ne] = await Promise.all([startAgent(t, INTERVAL_MS), startNodeExporter(t)]);
  await compareWithNodeExporter(t, agent, ne, { intervalMs: INTERVAL_MS, windowMs: WINDOW_MS });
});
