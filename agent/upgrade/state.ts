import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { ReleaseSignature, UpgradeState } from '../../shared/wire/release.js';
import { writeFileAtomic } from '../lifecycle/state-file.js';

/**
 * The files the agent and the root installer (piswarm-upgrade.service,
 * agent/upgrade/apply.ts) share in STATE/upgrade:
 *   request.json  the agent asks for an install: `{ "sha256": ... }` (the
 *                 .path unit starts the installer when it appears; only the
 *                 hash is read, the release is verified again as root)
 *   state.json    how far the installer got (UpgradeState), written by both
 *   target.json   the cluster's version (the signature of its release),
 *                 declared at the end of a rollout; nodes catch up to it
 *   installed.json the last install that succeeded (UpgradeState), written by
 *                 the installer: what `piswarm upgrade --abort` can take back
 */
export const upgradeDir = (stateDir: string) => join(stateDir, 'upgrade');
export const requestPath = (stateDir: string) => join(upgradeDir(stateDir), 'request.json');
export const statePath = (stateDir: string) => join(upgradeDir(stateDir), 'state.json');
export const targetPath = (stateDir: string) => join(upgradeDir(stateDir), 'target.json');
export const installedPath = (stateDir: string) => join(upgradeDir(stateDir), 'installed.json');

function readJson<T>(path: string, schema: Parameters<typeof Value.Check>[0]): T | null {
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return Value.Check(schema, v) ? (v as T) : null;
  } catch {
    return null;
  }
}

export const readState = (stateDir: string) => readJson<UpgradeState>(statePath(stateDir), UpgradeState);
export const readTarget = (stateDir: string) => readJson<ReleaseSignature>(targetPath(stateDir), ReleaseSignature);
export const readInstalled = (stateDir: string) => readJson<UpgradeState>(installedPath(stateDir), UpgradeState);

function write(path: string, value: unknown, mode: number): void {
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o750 });
  writeFileAtomic(path, `${JSON.stringify(value)}\n`, mode);
}

/** 0644: written by root, read by the agent (and the other way round). */
export const writeState = (stateDir: string, s: UpgradeState) => write(statePath(stateDir), s, 0o644);
export const writeTarget = (stateDir: string, s: ReleaseSignature) => write(targetPath(stateDir), s, 0o640);
export const writeInstalled = (stateDir: string, s: UpgradeState) => write(installedPath(stateDir), s, 0o644);
export const writeRequest = (stateDir: string, sha256: string) => write(requestPath(stateDir), { sha256 }, 0o644);
/** `piswarm upgrade --abort`: put back the release kept before `sha256`'s was installed, expected to be `version`. */
export const writeRevertRequest = (stateDir: string, sha256: string, version: string) => write(requestPath(stateDir), { sha256, revertTo: version }, 0o644);
const remove = (path: string) => {
  try {
    unlinkSync(path);
  } catch {
    // Not there: nothing to forget.
  }
};
export const clearTarget = (stateDir: string) => remove(targetPath(stateDir));
export const clearInstalled = (stateDir: string) => remove(installedPath(stateDir));

export type InstallerRequest = { sha256: string; revertTo: string | null };

/** The request (a hash, and for a revert the version expected back), or null when there is none or it is not one; removed either way. */
export function takeRequest(stateDir: string): InstallerRequest | null {
  const p = requestPath(stateDir);
  if (!existsSync(p)) return null;
  let r: InstallerRequest | null = null;
  try {
    const v = JSON.parse(readFileSync(p, 'utf8')) as { sha256?: unknown; revertTo?: unknown };
    const revertTo = typeof v.revertTo === 'string' && /^[0-9]{1,6}\.[0-9]{1,6}\.[0-9]{1,6}(-[0-9A-Za-z.-]{1,40})?$/.test(v.revertTo) ? v.revertTo : null;
    if (typeof v.sha256 === 'string' && /^[0-9a-f]{64}$/.test(v.sha256) && (v.revertTo === undefined || revertTo)) r = { sha256: v.sha256, revertTo };
  } catch {
    r = null;
  }
  unlinkSync(p);
  return r;
}
