import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { EXIT } from '../../shared/constants.js';
import { isPiswarmError } from '../../shared/errors.js';
import { newClusterFile, writeClusterFile } from '../provision/cluster-file.js';
import { parseArgs, type Command } from './command.js';

const USAGE = `Usage: piswarm cluster create NAME [--size N] [--out FILE] [--force]

Creates a cluster file: the cluster's name, a new random key (32 bytes), the
expected number of nodes and defaults for every card. Every card flashed with
this file joins the same cluster. The file is written with mode 0600; keep it
like a password. An existing file is never replaced unless --force is given.

  NAME          cluster name: a-z, 0-9 and "-", at most 63 characters
  --size N      how many Pis the cluster will have (default 3)
  --out FILE    where to write (default ./NAME.cluster.json)
  --force       replace FILE if it exists (its old key is lost)`;

export const clusterCreateCommand: Command = {
  name: 'cluster create',
  summary: 'Create a cluster file (name, random cluster key, size) for piswarm flash',
  usage: USAGE,
  async run(ctx) {
    const a = parseArgs(ctx.argv, { strings: ['size', 'out'], booleans: ['force', 'help'] });
    if (a.values.help) {
      ctx.out(USAGE);
      return EXIT.OK;
    }
    const problems = [...a.unknown.map((u) => `unknown flag ${u}`), ...a.missing.map((m) => `${m} needs a value`)];
    if (a.positional.length !== 1) problems.push('give exactly one cluster NAME');
    const sizeText = (a.values.size as string | undefined) ?? '3';
    const size = /^\d+$/.test(sizeText) ? Number(sizeText) : NaN;
    if (Number.isNaN(size)) problems.push(`--size must be a whole number, got "${sizeText}"`);
    if (problems.length > 0) {
      ctx.err(`piswarm cluster create: ${problems.join('; ')}\n\n${USAGE}`);
      return EXIT.USAGE;
    }
    const name = a.positional[0]!;
    const out = resolve(ctx.cwd, (a.values.out as string | undefined) ?? `${name}.cluster.json`);
    try {
      const cluster = newClusterFile({ name, size, keyBytes: randomBytes(32), now: new Date() });
      writeClusterFile(out, cluster, a.values.force === true);
      ctx.out(`created cluster "${name}" (${size} nodes) in ${out} (mode 0600; it holds the cluster key: keep it secret)`);
      ctx.out(`next: piswarm flash --cluster ${out} --image IMG --target DEVICE --hostname NAME --ssh-key ~/.ssh/id_ed25519.pub`);
      return EXIT.OK;
    } catch (err) {
      if (isPiswarmError(err)) {
        ctx.err(`piswarm cluster create: ${err.message} [${err.code}]`);
        return err.code === 'PISWARM_ERR_CLUSTER_FILE' && /already exists/.test(err.message) ? EXIT.FAILURE : EXIT.USAGE;
      }
      throw err;
    }
  },
};
