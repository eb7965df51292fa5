#!/usr/bin/env bash
# Builds an arm64 Debian 13 "trixie" root directory with debootstrap, for
# running the release on arm64 under qemu-user-static on an x86-64 machine
# (test/integration/arm64/). It holds the distribution's own arm64 Node.js and
# the tools the CLI calls (mtools, xz, sfdisk), nothing of the repository.
#
# The root is a cache: kept in PISWARM_ARM64_ROOT (default
# /var/cache/piswarm/arm64-trixie) and rebuilt only when its recipe (suite,
# packages and STEPS, hashed into .piswarm-recipe) changed. `--check` only tells (exit 0:
# current, 1: it would be built); `--force` rebuilds. No Docker involved.
#
# Needs binfmt_misc with an aarch64 interpreter registered with the F flag
# (Debian's qemu-user-static does that; scripts/setup-host.sh installs it),
# so that arm64 programs run inside the chroot without copying qemu into it.
set -euo pipefail

ROOT=${PISWARM_ARM64_ROOT:-/var/cache/piswarm/arm64-trixie}
SUITE=trixie
INCLUDE=nodejs,ca-certificates,mtools,fdisk,xz-utils,util-linux,procps,perl-base

log() { printf 'build-arm64-root: %s\n' "$*" >&2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# What the root is made of; bump STEPS when the steps below change.
STEPS=1
recipe=$(printf '%s\n' "$SUITE" "$INCLUDE" "$STEPS" | sha256sum | cut -c1-16)
current() { [[ -x $ROOT/usr/bin/node && $(cat "$ROOT/.piswarm-recipe" 2>/dev/null) == "$recipe" ]]; }

if [[ ${1:-} == --check ]]; then current; exit; fi
if [[ ${1:-} != --force ]] && current; then
  log "$ROOT is up to date (recipe $recipe)"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then log "must run as root (debootstrap)"; exit 77; fi
if [[ $(cat /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null | head -1) != enabled ]]; then
  log "no aarch64 interpreter in binfmt_misc: install qemu-user-static and binfmt-support (scripts/setup-host.sh)"
  exit 1
fi

# shellcheck source=debian-mirror.sh
source "$here/debian-mirror.sh"
mirror=$(debian_mirror)

work="$ROOT.new"
rm -rf "$work"
mkdir -p "$(dirname "$ROOT")"
start=$SECONDS
log "debootstrap --arch=arm64 $SUITE from $mirror into $work (several minutes: the second stage runs under emulation)"
debootstrap --arch=arm64 --variant=minbase --include="$INCLUDE" "$SUITE" "$work" "$mirror" >"$ROOT.log" 2>&1 || {
  tail -n 40 "$ROOT.log" >&2
  exit 1
}
rm -rf "$work"/var/cache/apt/archives/*.deb "$work"/var/lib/apt/lists/*
echo "$recipe" >"$work/.piswarm-recipe"
rm -rf "$ROOT"
mv "$work" "$ROOT"
log "built $ROOT in $((SECONDS - start))s ($(chroot "$ROOT" /usr/bin/node --version) $(chroot "$ROOT" /usr/bin/uname -m))"
