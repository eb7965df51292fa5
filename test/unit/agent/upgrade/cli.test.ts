import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { CommandContext } from '../../../../agent/cli/command.js';
import { releaseKeygenCommand, releaseSignCommand, upgradeCommand } from '../../../../agent/cli/upgrade.js';
import { buildNodeConfig } from '../../../../agent/provision/cloud-init.js';
import { newClusterFile, readClusterFile, writeClusterFile } from '../../../../agent/provision/cluster-file.js';
import { checkSignature, parseSignature } from '../../../../agent/upgrade/signature.js';
import { testConfig } from '../formation/helpers.js';

function ctx(cwd: string, argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const c: CommandContext = { argv, env: {}, cwd, out: (x) => out.push(x), err: (x) => err.push(x), confirm: async () => false };
  return { c, out, err };
}

t.test('release keygen --cluster: the private half 0600, the public half in the cluster file, so a flashed card gets it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'relcli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeClusterFile(join(dir, 'home.cluster'), newClusterFile({ name: 'home', size: 3, keyBytes: Buffer.alloc(32, 1), now: new Date(0) }), false);
  const k = ctx(dir, ['--out', 'release.key', '--cluster', 'home.cluster']);
  t.equal(await releaseKeygenCommand.run(k.c), 0, k.err.join('\n'));
  t.equal(statSync(join(dir, 'release.key')).mode & 0o777, 0o600);
  const pub = /public half .*: ([A-Za-z0-9_-]{43})$/m.exec(k.out.join('\n'))?.[1];
  t.ok(pub, 'the public half is printed');
  const cluster = readClusterFile(join(dir, 'home.cluster'));
  t.same(cluster.defaults.config.upgrade, { releaseKey: pub });
  t.equal(statSync(join(dir, 'home.cluster')).mode & 0o777, 0o600, 'the cluster file stays 0600');
  t.equal((buildNodeConfig(cluster, 'home-1').upgrade as { releaseKey?: string }).releaseKey, pub, 'a card flashed from it holds the key');
  const again = ctx(dir, ['--out', 'release.key']);
  t.equal(await releaseKeygenCommand.run(again.c), 1, 'never over an existing key');
  t.match(again.err.join('\n'), /exists/);

  // Sign a release: its version comes from the package.json inside.
  mkdirSync(join(dir, 'piswarm-1.2.3'));
  writeFileSync(join(dir, 'piswarm-1.2.3', 'package.json'), JSON.stringify({ name: 'piswarm', version: '1.2.3' }));
  execFileSync('tar', ['-czf', join(dir, 'piswarm-1.2.3.tar.gz'), '-C', dir, 'piswarm-1.2.3']);
  const s = ctx(dir, ['piswarm-1.2.3.tar.gz', '--key', 'release.key']);
  t.equal(await releaseSignCommand.run(s.c), 0, s.err.join('\n'));
  const sig = parseSignature(readFileSync(join(dir, 'piswarm-1.2.3.tar.gz.sig'), 'utf8'), 'sig');
  t.equal(sig.version, '1.2.3');
  t.doesNotThrow(() => checkSignature(pub, sig, '1.0.0'), 'it verifies with the public half');
  const noKey = ctx(dir, ['piswarm-1.2.3.tar.gz']);
  t.equal(await releaseSignCommand.run(noKey.c), 64, '--key is required');

  // piswarm upgrade refuses before asking anyone: no signature file, or no cluster key.
  const load = () => ({ config: testConfig({}), rest: ['piswarm-1.2.3.tar.gz', '--sig', 'missing.sig', '--url', 'http://127.0.0.1:9'] });
  const u = ctx(dir, []);
  t.equal(await upgradeCommand(load).run(u.c), 1);
  t.match(u.err.join('\n'), /no signature for the release .*sign it with `piswarm release sign`/);
  const load2 = () => ({ config: testConfig({}), rest: ['piswarm-1.2.3.tar.gz', '--url', 'http://127.0.0.1:9'] });
  const u2 = ctx(dir, []);
  t.equal(await upgradeCommand(load2).run(u2.c), 78, 'no cluster key: exit 78');
});
