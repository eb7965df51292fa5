/**
 * `npm run build`'s last step: replaces dist/agent/main.js (tsc's entry point)
 * with one esbuild bundle of agent/main.ts and everything it imports, so the
 * agent a Pi runs loads one file instead of ~950 modules (issue 14: about
 * 12 MiB less resident memory, measured by bench/footprint). tsc's per-module
 * output stays beside it for the unit tests; the release ships only the
 * bundle, the dashboard's static files and package.json (scripts/package.sh).
 *
 * Left out by configuration (no dependency is patched): docker-modem's SSH
 * transport (ssh2 and its native add-ons) and dockerode's BuildKit session
 * (grpc-js, proto-loader). piswarm reaches the engine over its Unix socket and
 * never builds images, so nothing calls them; if something ever did, the stub
 * throws a coded error naming the module instead of failing silently.
 *
 *   node dist/scripts/bundle/main.js [--out FILE]
 */
import { build } from 'esbuild';
import { LEFT_OUT, leaveOut } from './leave-out.js';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

async function main(argv: string[]): Promise<void> {
  const i = argv.indexOf('--out');
  const outfile = i >= 0 && argv[i + 1] ? path.resolve(argv[i + 1]!) : path.join(ROOT, 'dist/agent/main.js');
  const result = await build({
    entryPoints: [path.join(ROOT, 'agent/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20.18',
    format: 'esm',
    // CommonJS dependencies call require(); an ES module has none of its own.
    banner: { js: "import { createRequire as __piswarmCreateRequire } from 'node:module'; const require = __piswarmCreateRequire(import.meta.url);" },
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    sourcemap: 'linked',
    sourcesContent: false,
    legalComments: 'eof',
    logLevel: 'warning',
    metafile: true,
    plugins: [leaveOut(LEFT_OUT)],
  });
  const inputs = Object.keys(result.metafile.inputs).length;
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  process.stderr.write(`bundle: ${path.relative(ROOT, outfile)} from ${inputs} modules, ${(bytes / 1024 / 1024).toFixed(2)} MiB (map included)\n`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`bundle: ${(err as Error).message}\n`);
  process.exit(1);
});
