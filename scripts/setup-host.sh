#!/usr/bin/env bash
# Prepares a build/CI host (Debian/Ubuntu, root) for piswarm's simulated
# cluster: a Docker Engine plus the independent tools the integration tests
# use as real clients. Idempotent and non-interactive (CI=true, no stdin);
# a second run only checks and returns in about a second.
#
# Why dockerd is started by hand: build and CI machines here have no init
# system (see ENVIRONMENT.md), so nothing would start docker.service.
set -euo pipefail

PACKAGES=(
  docker.io                # dockerd, containerd, runc (Engine 20.10+)
  debootstrap              # builds the local base image when no registry answers
  prometheus               # promtool check metrics; a real server for the http_sd_configs test
  prometheus-node-exporter # reference implementation for per-node metrics
  systemd                  # systemd-analyze verify/security for the unit file
  iproute2
  fio
  avahi-utils              # avahi-browse: an independent mDNS client
  tini                     # reference init for the `agent` image
  mtools                   # piswarm flash: writes the FAT boot partition without mounts
  fdisk                    # sfdisk: the flash tests build a Pi-like disk image
  xz-utils                 # piswarm flash: .img.xz images
  python3                  # the agent's second way to read adjtimex(2) (timex series; perl first), as on a Pi
  e2fsprogs                # mkfs.ext4 for the flash tests' root partition
  cloud-init               # cloud-init schema: checks the generated user-data
  chromium                 # the dashboard test drives it with npm playwright-core (its own browser download does not work here)
  qemu-user-static         # runs arm64 programs: the release on arm64 (test/integration/arm64)
  binfmt-support           # registers qemu's interpreters with binfmt_misc
)
DOCKERD_LOG=${PISWARM_DOCKERD_LOG:-/var/log/piswarm-dockerd.log}
DOCKERD_WAIT_SECONDS=${PISWARM_DOCKERD_WAIT_SECONDS:-60}

log() { printf 'setup-host: %s\n' "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root (it installs packages and starts dockerd)"
  exit 77
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null
  # --no-install-recommends keeps the prometheus server's web assets and the
  # like out; policy-rc.d is irrelevant here since there is no init to start them.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
else
  log "packages already installed"
fi

# With no init, binfmt-support's service never ran: register arm64 by hand.
# Where binfmt_misc cannot be mounted (some containers), the arm64 test
# skips and says why.
if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] && command -v update-binfmts >/dev/null; then
  [[ -e /proc/sys/fs/binfmt_misc/status ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || log "cannot register qemu-aarch64 with binfmt_misc (the arm64 test will skip)"
fi

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

if engine_up; then
  log "docker engine answers"
  exit 0
fi

if pgrep -x dockerd >/dev/null; then
  log "dockerd is running but not answering yet; waiting"
else
  log "starting dockerd in the background (log: $DOCKERD_LOG)"
  # setsid detaches it from this shell's session so it survives the caller
  # (CI step, test run) ending; stdin from /dev/null because CI has none.
  setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  disown || true
fi

deadline=$((SECONDS + DOCKERD_WAIT_SECONDS))
until engine_up; do
  if ((SECONDS >= deadline)); then
    log "docker engine did not answer within ${DOCKERD_WAIT_SECONDS}s; last log lines:"
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    exit 1
  fi
  sleep 0.5
done
log "docker engine answers ($(docker info --format '{{.ServerVersion}} {{.Driver}} cgroup v{{.CgroupVersion}}' 2>/dev/null))"
