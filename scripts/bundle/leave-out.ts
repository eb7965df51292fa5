/**
 * The bundler's configuration for scripts/bundle/main.ts: which modules are
 * left out of the agent's bundle, and the stub that stands in for them.
 */
import type { Plugin } from 'esbuild';
import type { ErrorCode } from '../../shared/errors.js';

const CODE: ErrorCode = 'PISWARM_ERR_NOT_BUNDLED';

/** Modules the agent never reaches; the bundle holds a stub that throws when used. */
export const LEFT_OUT = ['ssh2', 'cpu-features', '@grpc/grpc-js', '@grpc/proto-loader'] as const;

export function leaveOut(names: readonly string[]): Plugin {
  const filter = new RegExp(`^(${names.map((n) => n.replace(/[/.]/g, '\\$&')).join('|')})$`);
  return {
    name: 'piswarm-leave-out',
    setup(b) {
      b.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'left-out' }));
      b.onLoad({ filter: /.*/, namespace: 'left-out' }, (args) => ({
        loader: 'js',
        contents: `function fail() { const e = new Error(${JSON.stringify(`${args.path} is not in the piswarm bundle (scripts/bundle): the agent talks to Docker over its Unix socket only`)}); e.code = ${JSON.stringify(CODE)}; throw e; };
module.exports = new Proxy(fail, { get: (_t, k) => (k === '__esModule' ? false : fail), construct: fail });`,
      }));
    },
  };
}
