#!/usr/bin/env bash
# Builds the local base image `piswarm/base:<suite>` with debootstrap, for
# machines where no container registry answers (so `FROM debian:<suite>`
# cannot be pulled: `npm run sim` tries the pull first, see chooseBase in
# scripts/sim/images.ts). It already holds every package the Dockerfile's
# `apt-get install` step asks for, which makes that step a no-op on it.
#
# The suite is PISWARM_SIM_OS: trixie (the default, Debian 13, what Raspberry
# Pi OS is based on today) or bookworm (Debian 12).
#
# Skips the work when an image of that name exists and was built from the
# same recipe (suite, packages and STEPS, hashed into a label). `--force` rebuilds;
# `--check` only tells (exit 0: current, 1: it would be built).
set -euo pipefail

SUITE=${PISWARM_SIM_OS:-trixie}
IMAGE=${PISWARM_BASE_IMAGE:-piswarm/base:$SUITE}
# Keep in step with the Dockerfile's PI_PACKAGES and OS_PACKAGES: a package
# missing here only costs an apt-get run at image build time, never a broken image.
# python3: Raspberry Pi OS ships it (and cloud-init needs it); the agent reads
# adjtimex(2) through it for the timex series (agent/host/node/timex.ts).
INCLUDE=systemd,systemd-sysv,dbus,docker.io,iproute2,iputils-ping,procps,ca-certificates,util-linux,kmod,iptables,tini,less,python3
case $SUITE in
  # trixie: the docker CLI is its own package; nodejs 20.19 is new enough for the agent.
  trixie) INCLUDE=$INCLUDE,docker-cli,nodejs ;;
  bookworm) ;;
  *) printf 'build-base: unknown suite "%s" (PISWARM_SIM_OS): trixie or bookworm\n' "$SUITE" >&2; exit 64 ;;
esac

log() { printf 'build-base: %s\n' "$*" >&2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# What the image is made of; bump STEPS when the steps below change.
STEPS=2
recipe=$(printf '%s\n' "$SUITE" "$INCLUDE" "$STEPS" | sha256sum | cut -c1-16)

current() { [[ $(docker image inspect -f '{{index .Config.Labels "io.piswarm.base.recipe"}}' "$IMAGE" 2>/dev/null) == "$recipe" ]]; }
# --check: exit 0 when the image is current, 1 when it would be built; builds nothing.
if [[ ${1:-} == --check ]]; then current; exit; fi
if [[ ${1:-} != --force ]] && current; then
  log "$IMAGE is up to date (recipe $recipe)"
  exit 0
fi

# shellcheck source=debian-mirror.sh
source "$here/debian-mirror.sh"
mirror=$(debian_mirror)

# A machine whose Docker Engine was already running never ran setup-host.sh,
# which is what installs debootstrap: install it here, or say what is missing.
if ! command -v debootstrap >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >/dev/null 2>&1 ||
      { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap >/dev/null; }
  else
    log "debootstrap is missing: run 'sudo apt-get install debootstrap' (or sudo scripts/setup-host.sh), or set PISWARM_SIM_BASE=debian:$SUITE where a registry answers"
    exit 1
  fi
fi

work=$(mktemp -d /var/tmp/piswarm-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$SECONDS
log "debootstrap $SUITE from $mirror into $work"
debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 40 "$work/debootstrap.log" >&2
  exit 1
}

root=$work/root
# Same sources as a public debian:<suite> image, so later apt-get runs work.
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
EOF
# An empty machine-id makes systemd generate a fresh one at each node's first
# boot: every simulated Pi must be a distinct machine (journald, DHCP, swarm).
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

log "importing as $IMAGE"
tar -C "$root" -c . | docker import \
  --change "LABEL io.piswarm.base.recipe=$recipe" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' \
  - "$IMAGE" >/dev/null
log "built $IMAGE in $((SECONDS - start))s"
