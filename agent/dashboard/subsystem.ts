import type { ClusterDocument } from '../../shared/wire/cluster.js';
import type { Subsystem } from '../lifecycle/subsystem.js';
import type { Logger } from '../log/logger.js';
import { loadAssets, type Asset } from './assets.js';
import { ClusterHistory } from './history.js';
import { dashboardRoutes } from './routes.js';

export const HISTORY_INTERVAL_S = 10;
export const HISTORY_POINTS = 60; // 10 minutes
export const HISTORY_MAX_NODES = 256;

/**
 * The web dashboard at / (read-only): serves the page from the release's
 * files, read once at start, and keeps the last ten minutes of every node's
 * figures in memory for its sparklines. The page polls; no stream is held
 * open, so an abandoned tab costs nothing here.
 */
export function dashboardSubsystem(d: { log: Logger; view: () => ClusterDocument; assetsDir?: URL; now?: () => number }): Subsystem & { history: ClusterHistory } {
  const log = d.log.child({ mod: 'dashboard' });
  const now = d.now ?? Date.now;
  const history = new ClusterHistory({ points: HISTORY_POINTS, maxNodes: HISTORY_MAX_NODES, intervalS: HISTORY_INTERVAL_S });
  let assets: Map<string, Asset> | null = null;
  let timer: NodeJS.Timeout | null = null;
  const sample = () => {
    try {
      history.record(d.view(), Math.round(now() / 1000));
    } catch (err) {
      log.warn({ err }, 'cannot sample the cluster view for the dashboard history');
    }
  };
  return {
    name: 'dashboard',
    history,
    routes: dashboardRoutes({ assets: () => assets, history: () => history.toJSON() }),
    async start() {
      try {
        assets = await loadAssets(d.assetsDir);
      } catch (err) {
        log.warn({ err: (err as Error).message, code: 'PISWARM_ERR_UNAVAILABLE' }, 'dashboard files missing: / answers JSON only');
      }
      sample();
      timer = setInterval(sample, HISTORY_INTERVAL_S * 1000);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
