#!/usr/bin/env bash
# Installs a built piswarm agent on Debian, Ubuntu or Raspberry Pi OS.
# Idempotent: running it again upgrades the files in place and keeps
# /etc/piswarm/config.json. Needs no network: everything comes from a
# release tarball (`npm run package`) or an unpacked release directory.
#
#   sudo ./install.sh [--release PATH] [--node PATH] [--cluster-key-file PATH] [--release-key KEY] [--no-start]
#
#   --release PATH           piswarm-<version>.tar.gz or an unpacked release
#                            (default: the release this script belongs to)
#   --node PATH              a node binary (>= 20.18) to put in /usr/local/bin
#                            when no suitable node is found
#   --cluster-key-file PATH  the cluster's shared key (>= 32 characters), copied
#                            to /etc/piswarm/cluster.key
#   --release-key KEY        the cluster's release key, public half (`piswarm release
#                            keygen` prints it), set as upgrade.releaseKey in
#                            /etc/piswarm/config.json: releases signed with it
#                            can then be rolled out with `piswarm upgrade`
#   --no-start               enable the unit but do not (re)start it
#
# Exit codes: 0 done, 64 usage, 1 anything else (the message says what).
set -euo pipefail

PREFIX=/opt/piswarm
ETC=/etc/piswarm
UNIT_DEST=/etc/systemd/system/piswarm.service
SERVICE_USER=piswarm
NODE_MIN=20.18.0
# The directories systemd searches for a non-absolute ExecStart= (in order),
# so the node checked here is the node the unit will run.
SYSTEMD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { printf 'piswarm-install: %s\n' "$*"; }
die() { printf 'piswarm-install: error: %s\n' "$*" >&2; exit "${2:-1}"; }
usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }

release= node_src= key_src= release_key= start=1
while (($#)); do
  case $1 in
    --release) release=${2:?--release needs a path}; shift 2 ;;
    --release=*) release=${1#*=}; shift ;;
    --node) node_src=${2:?--node needs a path}; shift 2 ;;
    --node=*) node_src=${1#*=}; shift ;;
    --cluster-key-file) key_src=${2:?--cluster-key-file needs a path}; shift 2 ;;
    --cluster-key-file=*) key_src=${1#*=}; shift ;;
    --release-key) release_key=${2:?--release-key needs a key}; shift 2 ;;
    --release-key=*) release_key=${1#*=}; shift ;;
    --no-start) start=0; shift ;;
    -h|--help) usage ;;
    *) printf 'piswarm-install: unknown argument: %s\n' "$1" >&2; usage ;;
  esac
done

[[ $(id -u) -eq 0 ]] || die "must run as root (it creates a system user and installs a systemd unit)"

# Everything that can be refused is checked before anything is changed.
if [[ -n $key_src ]]; then
  [[ -r $key_src ]] || die "cannot read --cluster-key-file $key_src"
  key_len=$(tr -d '\n\r' <"$key_src" | wc -c)
  ((key_len >= 32)) || die "the cluster key in $key_src is $key_len characters long; it needs at least 32"
fi

if [[ -n $release_key && ! $release_key =~ ^[A-Za-z0-9_-]{43}$ ]]; then
  die "--release-key is not a release key's public half (43 characters of A-Z a-z 0-9 _ -, as \`piswarm release keygen\` prints it)" 64
fi

# --- the release -------------------------------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ -z $release ]]; then
  release=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fi
if [[ -f $release ]]; then
  tar -xzf "$release" -C "$tmp" || die "cannot unpack $release"
  shopt -s nullglob
  dirs=("$tmp"/*/)
  shopt -u nullglob
  ((${#dirs[@]} == 1)) || die "$release should hold exactly one top-level directory"
  src=${dirs[0]%/}
elif [[ -d $release ]]; then
  src=$(cd "$release" && pwd)
else
  die "no release at $release"
fi
for f in dist/agent/main.js package.json systemd/piswarm.service; do
  [[ -e $src/$f ]] || die "$src is not a built release: $f is missing (build one with 'npm run package')"
done
version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$src/package.json" | head -n1)

# --- node --------------------------------------------------------------------
node_ok() { # prints the version of $1 when it is >= NODE_MIN
  local v
  v=$("$1" -p 'process.versions.node' 2>/dev/null) || return 1
  [[ $(printf '%s\n%s\n' "$NODE_MIN" "$v" | sort -V | head -n1) == "$NODE_MIN" ]] || return 1
  printf '%s' "$v"
}
find_node() { PATH=$SYSTEMD_PATH command -v node 2>/dev/null || true; }

node_bin=$(find_node)
node_ver=
[[ -n $node_bin ]] && node_ver=$(node_ok "$node_bin" || true)
if [[ -z $node_ver ]]; then
  if [[ -n $node_src ]]; then
    [[ -x $node_src ]] || die "--node $node_src is not an executable file"
    node_ok "$node_src" >/dev/null || die "--node $node_src is not node >= $NODE_MIN (or does not run on this system)"
    install -m 0755 "$node_src" /usr/local/bin/node
    say "installed $node_src as /usr/local/bin/node"
    node_bin=/usr/local/bin/node
    node_ver=$(node_ok "$node_bin") || die "/usr/local/bin/node does not run"
  elif [[ -n $node_bin ]]; then
    die "$node_bin is node $("$node_bin" -v 2>/dev/null || echo '?'); piswarm needs >= $NODE_MIN. Install a newer one (e.g. NodeSource's nodejs 20) or pass --node PATH"
  else
    die "no node found in $SYSTEMD_PATH; piswarm needs node >= $NODE_MIN. Install one or pass --node PATH"
  fi
fi
say "using node $node_ver at $node_bin"

# --- user and groups ---------------------------------------------------------
if ! getent group docker >/dev/null; then
  # docker.io/docker-ce create it too; creating it first lets the unit start
  # (SupplementaryGroups=docker) before Docker is installed.
  groupadd --system docker
  say "created group docker (no Docker Engine installed yet? the agent reports it on /health)"
fi
if ! getent passwd "$SERVICE_USER" >/dev/null; then
  useradd --system --user-group --home-dir /var/lib/piswarm --no-create-home \
    --shell /usr/sbin/nologin --comment 'piswarm agent' "$SERVICE_USER"
  say "created system user $SERVICE_USER"
fi
if ! id -nG "$SERVICE_USER" | tr ' ' '\n' | grep -qx docker; then
  usermod -aG docker "$SERVICE_USER"
  say "added $SERVICE_USER to group docker"
fi
command -v dockerd >/dev/null || say "warning: dockerd not found; install Docker Engine before the agent can form a swarm"

# --- files -------------------------------------------------------------------
# Stage next to the target and swap, so a running agent never sees half a tree.
stage=$PREFIX.new.$$
rm -rf "$stage"
mkdir -p "$stage"
cp -a "$src/dist" "$src/package.json" "$src/systemd" "$stage/"
# Releases since the one-file bundle carry no node_modules; an older one still does.
[[ -d $src/node_modules ]] && cp -a "$src/node_modules" "$stage/"
[[ -d $src/scripts ]] && cp -a "$src/scripts" "$stage/"
chown -R root:root "$stage"
chmod -R u+rwX,go+rX,go-w "$stage"
if [[ -e $PREFIX ]]; then
  rm -rf "$PREFIX.old"
  mv "$PREFIX" "$PREFIX.old"
fi
mv "$stage" "$PREFIX"
rm -rf "$PREFIX.old"
say "installed piswarm $version into $PREFIX"

cat >/usr/local/bin/piswarm.new <<EOF
#!/bin/sh
# piswarm CLI (installed by scripts/install.sh)
exec node $PREFIX/dist/agent/main.js "\$@"
EOF
chmod 0755 /usr/local/bin/piswarm.new
mv /usr/local/bin/piswarm.new /usr/local/bin/piswarm

install -d -m 0750 -o root -g "$SERVICE_USER" "$ETC"
if [[ -n $key_src ]]; then
  install -m 0640 -o root -g "$SERVICE_USER" "$key_src" "$ETC/cluster.key"
  say "installed the cluster key as $ETC/cluster.key (0640 root:$SERVICE_USER)"
fi
if [[ ! -e $ETC/config.json ]]; then
  # The agent refuses to start (exit 78) when a configured key file is
  # missing, so the key file is only named when there is one.
  if [[ -e $ETC/cluster.key ]]; then
    printf '{\n  "clusterKeyFile": "%s/cluster.key",\n  "stateDir": "/var/lib/piswarm"\n}\n' "$ETC" >"$tmp/config.json"
  else
    printf '{\n  "stateDir": "/var/lib/piswarm"\n}\n' >"$tmp/config.json"
    say "no cluster key yet: put one in $ETC/cluster.key and add \"clusterKeyFile\" to $ETC/config.json"
  fi
  install -m 0640 -o root -g "$SERVICE_USER" "$tmp/config.json" "$ETC/config.json"
  say "created $ETC/config.json"
else
  say "kept existing $ETC/config.json"
fi
if [[ -n $release_key ]]; then
  # Merged into the existing file (every other setting kept), by the node the unit runs.
  "$node_bin" -e '
    const fs = require("fs");
    const [file, key] = process.argv.slice(1);
    const c = JSON.parse(fs.readFileSync(file, "utf8"));
    c.upgrade = { ...(c.upgrade || {}), releaseKey: key };
    process.stdout.write(JSON.stringify(c, null, 2) + "\n");
  ' "$ETC/config.json" "$release_key" >"$tmp/config.json" || die "cannot set upgrade.releaseKey in $ETC/config.json (is it valid JSON?)"
  install -m 0640 -o root -g "$SERVICE_USER" "$tmp/config.json" "$ETC/config.json"
  say "set upgrade.releaseKey in $ETC/config.json: releases signed with that key are accepted"
fi

# --- systemd -----------------------------------------------------------------
install -m 0644 "$PREFIX/systemd/piswarm.service" "$UNIT_DEST"
say "installed $UNIT_DEST"
# The agent's privileged requests: restart dockerd (moby#47854) and install a
# release it received and verified (piswarm upgrade); see each .path unit.
path_units=(piswarm-engine-restart.path)
for u in piswarm-engine-restart.path piswarm-engine-restart.service piswarm-upgrade.path piswarm-upgrade.service; do
  # An older release has no upgrade units.
  [[ -e $PREFIX/systemd/$u ]] || continue
  install -m 0644 "$PREFIX/systemd/$u" "/etc/systemd/system/$u"
  if [[ $u == piswarm-upgrade.path ]]; then path_units+=("$u"); fi
done
say "installed ${path_units[*]} and their services"
if [[ -d /run/systemd/system ]]; then
  systemctl daemon-reload
  systemctl enable --quiet piswarm.service
  systemctl enable --now --quiet "${path_units[@]}"
  say "enabled piswarm.service and ${path_units[*]}"
  if ((start)); then
    if systemctl is-active --quiet piswarm.service; then
      systemctl restart piswarm.service
      say "restarted piswarm.service"
    else
      systemctl start piswarm.service
      say "started piswarm.service"
    fi
    systemctl --no-pager --lines=0 status piswarm.service || true
  fi
else
  # No running systemd (an image build, a chroot): enabling only creates the
  # wants/ symlink, which takes effect at the next boot.
  systemctl enable --quiet piswarm.service "${path_units[@]}"
  say "enabled piswarm.service and ${path_units[*]} (systemd is not running here: they start at the next boot)"
fi
say "done"
