import { PiswarmError } from '../../shared/errors.js';
import { run } from './exec.js';

/**
 * The FAT boot partition, reached with mtools through `FILE@@OFFSET`: works
 * on an image file without root and without loop mounts, and on a block
 * device as root.
 */
export interface FatVolume {
  target: string;
  offset: number;
}

/** mtools refuses some valid but unusual geometries unless told not to check (mtools(5), MTOOLS_SKIP_CHECK). */
const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

function image(v: FatVolume): string {
  return `${v.target}@@${v.offset}`;
}

/** Copies local files into the root directory, replacing files of the same name (Ubuntu ships a default user-data). */
export async function fatCopyIn(v: FatVolume, files: readonly string[]): Promise<void> {
  const r = await run('mcopy', ['-i', image(v), '-D', 'o', '-Q', ...files, '::/'], { env: MTOOLS_ENV });
  if (r.code !== 0) throw new PiswarmError('PISWARM_ERR_FLASH', `writing to the boot partition failed (mcopy): ${r.stderr || `exit ${r.code}`}`);
}

/** A file of the root directory, or null when it does not exist. */
export async function fatRead(v: FatVolume, name: string): Promise<Buffer | null> {
  const names = await fatList(v);
  if (!names.some((n) => n.toLowerCase() === name.toLowerCase())) return null;
  const r = await run('mtype', ['-i', image(v), `::/${name}`], { env: MTOOLS_ENV });
  if (r.code !== 0) throw new PiswarmError('PISWARM_ERR_FLASH', `cannot read ${name} from the boot partition (mtype): ${r.stderr || `exit ${r.code}`}`);
  return r.stdout;
}

export async function fatList(v: FatVolume): Promise<string[]> {
  const list = await run('mdir', ['-i', image(v), '-b', '::/'], { env: MTOOLS_ENV });
  if (list.code !== 0) throw new PiswarmError('PISWARM_ERR_FLASH', `cannot read the boot partition's directory (mdir): ${list.stderr || `exit ${list.code}`}`);
  return list.stdout.toString('utf8').split('\n').map((l) => l.trim().replace(/^::\//, '')).filter(Boolean);
}
