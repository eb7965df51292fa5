import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Writes a state file so that a power cut (a Pi's usual way to stop) leaves
 * either the old file or the new one, never an empty or half-written one:
 * the data is written to a temporary file and fsynced, renamed over the old
 * name, and the directory is fsynced so the rename itself reaches the card.
 * Without the first fsync, ext4 can commit the rename before the data and a
 * crash leaves a zero-length file under the new name.
 */
export function writeFileAtomic(path: string, text: string, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  let dir: number | null = null;
  try {
    dir = openSync(dirname(path), 'r');
    fsyncSync(dir);
  } catch {
    // Some filesystems refuse fsync on a directory (EINVAL); the data is already safe.
  } finally {
    if (dir !== null) closeSync(dir);
  }
}
