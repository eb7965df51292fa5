#!/usr/bin/env bash
# Builds the release a Pi installs: release/piswarm-<version>.tar.gz holding
# the compiled agent, its production node_modules, package.json, the systemd
# unit and install.sh. The simulated Pi image installs this same tarball.
#
#   scripts/package.sh [--skip-build]
#
# The tarball is byte-for-byte reproducible (sorted, fixed mtimes, gzip -n),
# so an unchanged tree gives an unchanged file and Docker's build cache hits.
# release/piswarm.tar.gz is a hard link to it under a name that never changes.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log() { printf 'package: %s\n' "$*" >&2; }

skip_build=0
[[ ${1:-} == --skip-build ]] && skip_build=1

version=$(node -p 'require("./package.json").version')
name=piswarm-$version
out=release/$name.tar.gz

if ((!skip_build)); then
  log "compiling (npm run build)"
  npm run --silent build
fi
[[ -f dist/agent/main.js ]] || { log "dist/agent/main.js is missing: nothing to package"; exit 1; }

# Production dependencies, cached per package-lock.json (and this script): npm ci is the slow
# part and only needs redoing when the lock file changes.
lock_hash=$(cat package-lock.json scripts/package.sh | sha256sum | cut -c1-16)
deps=release/.cache/node_modules-$lock_hash
if [[ ! -d $deps/node_modules ]]; then
  log "installing production dependencies (lock $lock_hash)"
  rm -rf release/.cache
  mkdir -p "$deps"
  cp package.json package-lock.json "$deps/"
  # --ignore-scripts: no install scripts run, so nothing native gets built;
  # checked below so a dependency that needs one fails here, not on a Pi.
  (cd "$deps" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
  # Files only a compiler, an editor or a reader needs: a Pi's SD card and
  # install time scale with the file count (about 5,300 files before, 2,200 after).
  find "$deps/node_modules" -depth \( \
      -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' -o -name '*.ts' -o -name '*.md' -o -name '*.markdown' \
    \) -type f -delete
  find "$deps/node_modules" -mindepth 2 -maxdepth 3 -type d \( \
      -name test -o -name tests -o -name __tests__ -o -name docs -o -name example -o -name examples -o -name benchmark -o -name benchmarks -o -name .github \
    \) -prune -exec rm -rf {} +
  rm -rf "$deps/node_modules/@types"
fi
native=$(find "$deps/node_modules" -name '*.node' -type f | head -n5)
if [[ -n $native ]]; then
  log "native addons found in production dependencies (they would not run on a Pi's arm64):"
  printf '  %s\n' $native >&2
  exit 1
fi

# Nothing to do when no input changed since the last run (size and mtime of
# every input file): keeps `npm run sim -- up` on a warm tree at a fraction
# of a second instead of re-copying ~2,200 files.
stamp=$( { echo "$name $lock_hash"; find dist/agent dist/shared systemd scripts/install.sh package.json -printf '%p %s %T@\n' | sort; } | sha256sum | cut -c1-32)
if [[ -f $out && -f release/.stamp && $(cat release/.stamp) == "$stamp" ]]; then
  ln -f "$out" release/piswarm.tar.gz
  log "up to date: $out"
  echo "$out"
  exit 0
fi

stage=release/.stage/$name
rm -rf release/.stage
mkdir -p "$stage/dist" "$stage/scripts"
cp -a dist/agent dist/shared "$stage/dist/"
cp -a "$deps/node_modules" "$stage/"
cp -a package.json systemd "$stage/"
cp -a scripts/install.sh "$stage/scripts/"
# Source maps stay in: stack traces in the journal then name .ts lines.

tar --sort=name --mtime='@0' --owner=0 --group=0 --numeric-owner \
  -C release/.stage -cf - "$name" | gzip -n -6 >"$out.tmp"
if [[ -f $out ]] && cmp -s "$out" "$out.tmp"; then
  rm -f "$out.tmp"
  log "unchanged: $out"
else
  mv "$out.tmp" "$out"
  log "wrote $out ($(du -h "$out" | cut -f1))"
fi
ln -f "$out" release/piswarm.tar.gz
rm -rf release/.stage
echo "$stamp" >release/.stamp
echo "$out"
