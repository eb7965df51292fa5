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

# containerd runs on its own, as containerd.service does on a Pi, and is
# waited for here with our own deadline. A dockerd that starts its own
# containerd gives it 15 s and exits ("timeout waiting for containerd to
# start"), which a loaded 2-core CI machine once missed right after npm ci.
CONTAINERD_SOCK=/run/containerd/containerd.sock
CONTAINERD_LOG=${PISWARM_CONTAINERD_LOG:-/var/log/piswarm-containerd.log}
CONTAINERD_CONFIG=/etc/piswarm/containerd.toml
CONTAINERD_WAIT_SECONDS=${PISWARM_CONTAINERD_WAIT_SECONDS:-120}
DOCKERD_ATTEMPTS=3

containerd_up() { timeout 10 ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; }

# Waits until "$1" succeeds; gives up after $2 seconds, or at once when the
# process named $3 is no longer running (it exited: waiting longer is pointless).
wait_for() {
  local check=$1 seconds=$2 proc=$3 deadline=$((SECONDS + $2))
  until $check; do
    if ((SECONDS >= deadline)); then
      log "$proc did not answer within ${seconds}s"
      return 1
    fi
    if ! pgrep -x "$proc" >/dev/null; then
      log "$proc exited"
      return 1
    fi
    sleep 0.5
  done
}

start_containerd() {
  containerd_up && return 0
  if ! pgrep -x containerd >/dev/null; then
    mkdir -p "$(dirname "$CONTAINERD_CONFIG")"
    # Docker needs none of the CRI plugin (Kubernetes); dockerd's own
    # containerd leaves it out the same way.
    printf 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n' >"$CONTAINERD_CONFIG"
    log "starting containerd in the background (log: $CONTAINERD_LOG)"
    setsid containerd --config "$CONTAINERD_CONFIG" >>"$CONTAINERD_LOG" 2>&1 </dev/null &
    disown || true
  fi
  if ! wait_for containerd_up "$CONTAINERD_WAIT_SECONDS" containerd; then
    log "last containerd log lines:"
    tail -n 30 "$CONTAINERD_LOG" >&2 || true
    exit 1
  fi
}

if pgrep -x dockerd >/dev/null; then
  log "dockerd is running but not answering yet; waiting"
  if ! wait_for engine_up "$DOCKERD_WAIT_SECONDS" dockerd; then
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    exit 1
  fi
else
  start_containerd
  for attempt in $(seq 1 "$DOCKERD_ATTEMPTS"); do
    log "starting dockerd in the background, attempt $attempt of $DOCKERD_ATTEMPTS (log: $DOCKERD_LOG)"
    # setsid detaches it from this shell's session so it survives the caller
    # (CI step, test run) ending; stdin from /dev/null because CI has none.
    setsid dockerd --containerd "$CONTAINERD_SOCK" >>"$DOCKERD_LOG" 2>&1 </dev/null &
    disown || true
    wait_for engine_up "$DOCKERD_WAIT_SECONDS" dockerd && break
    log "last dockerd log lines:"
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    if ((attempt == DOCKERD_ATTEMPTS)); then
      exit 1
    fi
    pkill -x dockerd 2>/dev/null && sleep 2
  done
fi
log "docker engine answers ($(docker info --format '{{.ServerVersion}} {{.Driver}} cgroup v{{.CgroupVersion}}' 2>/dev/null))"
