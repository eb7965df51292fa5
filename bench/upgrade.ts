/**
 * Time per node of a rolling agent upgrade (`piswarm upgrade`, issue 16) on
 * simulated Pis, beside the way it is done without piswarm in the same run:
 * the release copied to each Pi and its install.sh run there by hand (what
 * SSH to every node amounts to), one node after another, each counted until
 * its /health names the new release.
 *
 *   node dist/bench/upgrade.js [--nodes 5] [--os trixie,bookworm]
 *
 * piswarm's figure per node is from its own `--json` output: install asked
 * -> the root installer reports `installed`, which includes waiting for the
 * new agent to be READY, healthy, back in the swarm and in gossip. The
 * by-hand figure stops at /health answering, which checks less.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as sim from '../scripts/sim/cluster.js';
import { ensureImages, simOs } from '../scripts/sim/images.js';
import { nodeLs, reachableManagers, until } from '../test/integration/healing/swarm.js';
import { testReleases } from '../test/integration/helpers/releases.js';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '5' }, os: { type: 'string', default: 'trixie' } } });
const n = Number(values.nodes);
const root = sim.repoRoot();
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const oses = values.os.split(',').map((o) => simOs(o));
for (const os of oses) await ensureImages({ root, log: (m) => console.error(`images: ${m}`), os });
const rel = await testReleases(join(root, 'release', `piswarm-${version}.tar.gz`));
const s = (x: number) => x.toFixed(1);
const releaseOf = async (url: string) => {
  try {
    const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    return ((await r.json()) as { releaseId?: string }).releaseId ?? null;
  } catch {
    return null;
  }
};

console.log('os        nodes  how                      per-node mean_s  min_s  max_s  total_s');
try {
  for (const os of oses) {
    const ref = { name: `bench-upg-${os}-${process.pid}` };
    try {
      const up = await sim.up({ ...ref, nodes: n, skipImages: true, timeoutMs: 300_000, os, env: { PISWARM_FORMATION_EXPECT: String(n), PISWARM_UPGRADE_RELEASE_KEY: rel.publicKey } });
      const names = up.nodes.map((x) => x.name);
      await until('the swarm to settle', async () => {
        const l = await nodeLs(ref, names);
        return l && l.length === n && l.every((x) => x.status === 'Ready') && reachableManagers(l) >= Math.min(3, n) && l;
      }, 300_000);
      const operator = names[0]!;
      const row = (how: string, per: number[], total: number) =>
        console.log(`${os.padEnd(8)}  ${String(n).padStart(5)}  ${how.padEnd(24)}  ${s(per.reduce((a, b) => a + b, 0) / per.length).padStart(15)}  ${s(Math.min(...per)).padStart(5)}  ${s(Math.max(...per)).padStart(5)}  ${s(total).padStart(7)}`);

      // piswarm upgrade, run on a node.
      const next = await rel.make('9.1.0');
      for (const f of [next.tarball, next.sig]) await sim.copyFiles(ref, operator, '/root', [{ name: f.slice(f.lastIndexOf('/') + 1), content: readFileSync(f), mode: 0o600, uid: 0, gid: 0 }]);
      const t0 = performance.now();
      const out = await sim.exec(ref, operator, ['piswarm', 'upgrade', `/root/${next.tarball.slice(next.tarball.lastIndexOf('/') + 1)}`, '--json'], { timeoutMs: 1_800_000 });
      const total = (performance.now() - t0) / 1000;
      const r = JSON.parse(out.stdout) as { outcome: string; nodes: Array<{ hostname: string; result: string; seconds: number | null }> };
      if (r.outcome !== 'done') throw new Error(`piswarm upgrade: ${r.outcome}: ${out.stdout.slice(0, 400)}`);
      const piswarm = r.nodes.map((x) => x.seconds ?? NaN);
      row('piswarm upgrade', piswarm, total);

      // By hand: the next release copied to each node and installed there, one after another.
      const byHand = await rel.make('9.2.0');
      const name = byHand.tarball.slice(byHand.tarball.lastIndexOf('/') + 1);
      const per: number[] = [];
      const h0 = performance.now();
      for (const node of up.nodes) {
        const t1 = performance.now();
        await sim.copyFiles(ref, node.name, '/root', [{ name, content: readFileSync(byHand.tarball), mode: 0o600, uid: 0, gid: 0 }]);
        const inst = await sim.exec(ref, node.name, ['bash', '-c', `d=$(mktemp -d) && tar -xzf /root/${name} -C "$d" && "$d"/piswarm-9.2.0/scripts/install.sh --release /root/${name}`], { timeoutMs: 300_000 });
        if (inst.code !== 0) throw new Error(`install.sh on ${node.name}: ${inst.stdout.slice(-300)} ${inst.stderr.slice(-300)}`);
        await until(`${node.name} runs 9.2.0`, async () => (await releaseOf(node.apiUrl)) === '9.2.0', 120_000, 250);
        per.push((performance.now() - t1) / 1000);
      }
      row('install.sh on each, by hand', per, (performance.now() - h0) / 1000);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      console.log(`${os}: piswarm upgrade per node / by hand per node = ${(mean(piswarm) / mean(per)).toFixed(2)} (piswarm's includes the health probe: READY, /health, swarm and gossip)`);
    } finally {
      await sim.down(ref);
    }
  }
} finally {
  await rel.cleanup();
}
