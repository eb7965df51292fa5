/**
 * The bundle's stand-in for the modules it leaves out (scripts/bundle): using
 * one throws a coded error naming the module, and other modules are bundled.
 */
import t from 'tap';
import { build } from 'esbuild';
import { createRequire } from 'node:module';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LEFT_OUT, leaveOut } from '../../../scripts/bundle/leave-out.js';

async function bundleOf(source: string, resolveDir = process.cwd()): Promise<string> {
  const out = await build({
    stdin: { contents: source, loader: 'js', resolveDir },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    write: false,
    logLevel: 'silent',
    plugins: [leaveOut(LEFT_OUT)],
  });
  return out.outputFiles[0]!.text;
}

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-bundle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function load(code: string): Record<string, unknown> {
  const dir = scratch();
  const file = join(dir, 'b.cjs');
  writeFileSync(file, code);
  return createRequire(file)(file) as Record<string, unknown>;
}

t.test('a left-out module loads, and using it throws PISWARM_ERR_NOT_BUNDLED naming it', async (t) => {
  const mod = load(await bundleOf("const ssh2 = require('ssh2'); module.exports = { use: () => new ssh2.Client() };"));
  t.throws(() => (mod.use as () => unknown)(), { code: 'PISWARM_ERR_NOT_BUNDLED', message: /ssh2 is not in the piswarm bundle/ });
});

t.test('every left-out name is stubbed, not resolved from node_modules', async (t) => {
  for (const name of LEFT_OUT) {
    const code = await bundleOf(`module.exports = require(${JSON.stringify(name)});`);
    t.match(code, /is not in the piswarm bundle/, `${name} is a stub`);
    t.notMatch(code, /node_modules/, `${name}: nothing from node_modules`);
  }
});

t.test('a module not on the list is bundled as it is', async (t) => {
  const dir = scratch();
  writeFileSync(join(dir, 'dep.cjs'), 'module.exports = (n) => n * 2;');
  const code = await bundleOf("module.exports = { twice: require('./dep.cjs')(21) };", dir);
  rmSync(join(dir, 'dep.cjs'));
  t.equal(load(code).twice, 42, 'the dependency is inlined (its file is gone) and works');
});
