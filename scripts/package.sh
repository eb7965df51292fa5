#!/usr/bin/env bash
# Builds the release a Pi installs: release/piswarm-<version>.tar.gz holding
# the agent as one bundle (dist/agent/main.js, every dependency inside it; see
# scripts/bundle), the dashboard's static files, package.json, the systemd
# unit and install.sh. No node_modules: nothing is resolved at run time. The
# simulated Pi image installs this same tarball.
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

# A Pi's release has no node_modules, so dist/agent/main.js must be the bundle (its banner
# says so), not tsc's entry point, which imports the rest of dist/ and the packages.
if ! head -c 400 dist/agent/main.js | grep -q __piswarmCreateRequire; then
  log "dist/agent/main.js is not the one-file bundle (run npm run build, whose last step makes it)"
  exit 1
fi

# Nothing to do when no input changed since the last run (size and mtime of
# every input file): keeps `npm run sim -- up` on a warm tree at a fraction
# of a second.
stamp=$( { echo "$name"; find dist/agent/main.js dist/agent/main.js.map dist/agent/dashboard/static systemd scripts/install.sh package.json -printf '%p %s %T@\n' | sort; } | sha256sum | cut -c1-32)
if [[ -f $out && -f release/.stamp && $(cat release/.stamp) == "$stamp" ]]; then
  ln -f "$out" release/piswarm.tar.gz
  log "up to date: $out"
  echo "$out"
  exit 0
fi

stage=release/.stage/$name
rm -rf release/.stage
mkdir -p "$stage/dist/agent/dashboard" "$stage/scripts"
cp -a dist/agent/main.js dist/agent/main.js.map "$stage/dist/agent/"
cp -a dist/agent/dashboard/static "$stage/dist/agent/dashboard/"
cp -a package.json systemd "$stage/"
cp -a scripts/install.sh "$stage/scripts/"
# The source map stays in: `node --enable-source-maps` then names .ts lines.

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
