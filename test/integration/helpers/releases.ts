/**
 * Releases for the upgrade test, made from the release the simulated Pis
 * installed (release/piswarm-<version>.tar.gz, `npm run package`): the same
 * tree under a newer version, signed with a fresh release key; one whose
 * agent exits at start; one signed with another key; one cut short.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generateReleaseKey, signRelease } from '../../../agent/upgrade/signature.js';

const run = promisify(execFile);

export interface TestRelease {
  version: string;
  tarball: string;
  sig: string;
}

export interface TestReleases {
  dir: string;
  /** The public half every simulated Pi gets (PISWARM_UPGRADE_RELEASE_KEY). */
  publicKey: string;
  make(version: string, opts?: { agentExits?: boolean; otherKey?: boolean; truncate?: boolean }): Promise<TestRelease>;
  cleanup(): Promise<void>;
}

export async function testReleases(base: string): Promise<TestReleases> {
  const dir = await mkdtemp(join(tmpdir(), 'piswarm-releases-'));
  const key = generateReleaseKey();
  const other = generateReleaseKey();
  const baseVersion = /piswarm-([^/]+)\.tar\.gz$/.exec(base)?.[1];
  if (!baseVersion) throw new Error(`${base} is not named piswarm-<version>.tar.gz`);
  return {
    dir,
    publicKey: key.publicKey,
    async make(version, opts = {}) {
      const work = join(dir, `w-${version}-${Object.keys(opts).join('-')}`);
      await rm(work, { recursive: true, force: true });
      await run('mkdir', ['-p', work]);
      await run('tar', ['-xzf', base, '-C', work]);
      const tree = join(work, `piswarm-${version}`);
      await rename(join(work, `piswarm-${baseVersion}`), tree);
      const pkg = JSON.parse(await readFile(join(tree, 'package.json'), 'utf8')) as { version: string };
      await writeFile(join(tree, 'package.json'), `${JSON.stringify({ ...pkg, version }, null, 2)}\n`);
      if (opts.agentExits) await writeFile(join(tree, 'dist/agent/main.js'), "process.stderr.write('this release is broken on purpose\\n');\nprocess.exit(3);\n");
      const tarball = join(dir, `piswarm-${version}${opts.agentExits ? '-broken' : ''}${opts.otherKey ? '-forged' : ''}${opts.truncate ? '-truncated' : ''}.tar.gz`);
      await run('tar', ['-czf', tarball, '-C', work, `piswarm-${version}`]);
      const bytes = await readFile(tarball);
      const s = signRelease((opts.otherKey ? other : key).privatePem, { version, bytes });
      if (opts.truncate) await writeFile(tarball, bytes.subarray(0, Math.floor(bytes.length / 2)));
      await writeFile(`${tarball}.sig`, JSON.stringify(s));
      await rm(work, { recursive: true, force: true });
      return { version, tarball, sig: `${tarball}.sig` };
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
