# piswarm images. The JavaScript is built on the host and arrives as the
# release tarball (`npm run package` -> release/piswarm.tar.gz). No npm
# registry is needed to build.
#
# Two operating systems (scripts/sim/images.ts imagesFor):
#  - Debian 13 trixie (the default, what Raspberry Pi OS is based on today):
#    its own nodejs (20.19) and docker-cli (split out of docker.io in trixie).
#      docker build --target pi -t piswarm/pi:sim-trixie .
#  - Debian 12 bookworm: its nodejs is 18, too old, so a node binary is staged
#    as release/node (`cp "$(command -v node)" release/node`; it links against
#    bookworm's glibc) and installed the way `install.sh --node` does on a Pi.
#      docker build --target pi --build-arg BASE=debian:bookworm --build-arg OS_PACKAGES= \
#        --build-arg NODE_FILE=node -t piswarm/pi:sim-bookworm .
# release/node is copied only when NODE_FILE=node (COPY of release/${NODE_FILE}*;
# the default names no file): on trixie nothing of the host is copied into
# the image, even when a bookworm build staged release/node next to it.
#
# BASE defaults to the public image; scripts/build-base.sh makes a local one
# (debootstrap) that already holds every package below, so the install
# steps are no-ops on it. `npm run sim` picks: PISWARM_SIM_BASE, else a
# current local base, else debian:<suite> if it can be pulled, else it
# builds the local one (scripts/sim/images.ts chooseBase).
ARG BASE=debian:trixie
ARG NODE_FILE=no-host-node

# ---------------------------------------------------------------------------
# pi: a simulated Raspberry Pi. systemd is PID 1, docker.service runs the
# node's own Docker Engine, and the agent is installed by scripts/install.sh
# exactly as on a real Pi. Run it with the flags in scripts/sim/node-flags.ts
# (a cgroup mount, capabilities, an anonymous /var/lib/docker volume).
FROM ${BASE} AS pi
ARG PI_PACKAGES="systemd systemd-sysv dbus docker.io iproute2 iputils-ping procps ca-certificates util-linux kmod iptables less python3"
# trixie: the docker CLI and the distribution's node; bookworm: none (pass it empty).
ARG OS_PACKAGES="docker-cli nodejs"
RUN set -eu; missing=; \
    for p in $PI_PACKAGES $OS_PACKAGES; do \
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"; \
    done; \
    if [ -n "$missing" ]; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing && \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    # Installing systemd writes a machine-id (public base); empty, systemd
    # makes a new one at each node's first boot, as build-base.sh arranges.
    : > /etc/machine-id; rm -f /var/lib/dbus/machine-id
# Units that need real hardware, a console or the host's clock. udev in
# particular must not run: /sys is the host's, and a `udevadm trigger` from
# a container replays uevents to the host's own udev.
RUN systemctl mask \
      systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
      systemd-udev-trigger.service systemd-udev-settle.service \
      getty.target console-getty.service systemd-timesyncd.service \
      systemd-firstboot.service systemd-modules-load.service sys-kernel-config.mount \
      apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
 && systemctl enable docker.service containerd.service \
 && systemctl set-default multi-user.target \
 && mkdir -p /var/log/journal
# /var/log/journal makes the journal persistent (Storage=auto), as on
# Raspberry Pi OS bookworm: `journalctl -b -1` then shows why a node that was
# power-cut or rebooted went down.
# systemd recognises the container from this and skips what a VM or bare
# metal would need.
ENV container=docker
# The release goes last: a code change rebuilds only this layer. install.sh
# uses the distribution's node when it is new enough (trixie), else the
# staged one (--node), exactly as on a Pi.
ARG NODE_FILE
COPY release/piswarm.tar.gz release/${NODE_FILE}* /tmp/piswarm-stage/
RUN /bin/bash -c 'set -eu; s=/tmp/piswarm-stage; d=$(mktemp -d); tar -xzf $s/piswarm.tar.gz -C "$d"; \
      "$d"/piswarm-*/scripts/install.sh --release $s/piswarm.tar.gz $([ -e $s/node ] && echo --node $s/node) --no-start; rm -rf "$d" $s'
# systemd's documented way to be asked to shut down cleanly (systemd(1), SIGRTMIN+3 = halt).
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]

# ---------------------------------------------------------------------------
# agent: the agent alone in a plain container (no systemd), for hosts that
# run everything in Docker. Give it the host's Docker socket:
#   docker run -d --network host -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /etc/piswarm:/etc/piswarm:ro -v piswarm-state:/var/lib/piswarm piswarm/agent
FROM ${BASE} AS agent
ARG NODE_FILE
COPY release/piswarm.tar.gz release/${NODE_FILE}* /tmp/piswarm-stage/
# The staged node when there is one (bookworm), else the distribution's (trixie).
RUN set -eu; missing=; s=/tmp/piswarm-stage; \
    if [ -e $s/node ]; then install -m 0755 $s/node /usr/local/bin/node; node=; else node=nodejs; fi; \
    for p in tini ca-certificates $node; do \
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"; \
    done; \
    if [ -n "$missing" ]; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing && \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    useradd --system --user-group --home-dir /var/lib/piswarm --create-home --shell /usr/sbin/nologin piswarm; \
    mkdir -p /etc/piswarm; chown root:piswarm /etc/piswarm; chmod 0750 /etc/piswarm; \
    [ -e /usr/local/bin/node ] || ln -s /usr/bin/node /usr/local/bin/node; \
    mkdir -p /opt/piswarm && tar -xzf $s/piswarm.tar.gz -C /opt/piswarm --strip-components=1; \
    chown -R root:root /opt/piswarm && rm -rf $s
ENV NODE_ENV=production
USER piswarm
WORKDIR /var/lib/piswarm
EXPOSE 7070
# /livez, not /health: /health fails when dockerd is unhealthy, and
# replacing the agent's container cannot fix dockerd.
# `piswarm livez` finds the port the way the agent does (config file, PISWARM_*).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/node", "/opt/piswarm/dist/agent/main.js", "livez"]
# tini is PID 1: it forwards SIGTERM to node and reaps the perl/child
# processes the agent spawns; node runs directly, never through npm, so the
# signal reaches the agent itself.
# The same V8 settings as the systemd unit (see its comment).
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/node", "--max-semi-space-size=1", "--max-old-space-size=64", "/opt/piswarm/dist/agent/main.js"]
CMD ["agent"]

# ---------------------------------------------------------------------------
# firstboot: a Raspberry Pi as `piswarm flash` leaves it before its first
# boot: systemd, sshd, sudo, systemd-timesyncd and cloud-init, as on a
# cloud-init image of Raspberry Pi OS or Ubuntu, but no Docker Engine, no
# Node.js and no agent. Everything else comes from the boot partition: run it
# with the same flags as `pi` and put the files flash wrote into /boot/firmware
# before power-on. Nothing of the repository is copied in, so a code change
# never rebuilds it (test/integration/flash/firstboot.test.ts).
#   docker build --target firstboot -t piswarm/pi-firstboot [--build-arg BASE=...] .
FROM ${BASE} AS firstboot
ARG FIRSTBOOT_PACKAGES="systemd systemd-sysv systemd-timesyncd dbus iproute2 iputils-ping procps ca-certificates util-linux kmod less sudo openssh-server cloud-init"
RUN set -eu; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $FIRSTBOOT_PACKAGES; \
    # The local base carries the simulated Pi's engine and (trixie) node
    # (build-base.sh); a fresh Pi has neither, and first boot's cloud-init
    # installs them.
    purge=; for p in docker.io docker-cli containerd runc tini nodejs; do \
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' && purge="$purge $p"; \
    done; \
    [ -z "$purge" ] || DEBIAN_FRONTEND=noninteractive apt-get purge -y --auto-remove $purge; \
    rm -rf /var/lib/apt/lists/* /etc/ssh/ssh_host_* /var/lib/dbus/machine-id; : > /etc/machine-id; \
    # A Pi image ships with a locale set (Ubuntu: C.UTF-8, Raspberry Pi OS:
    # en_GB.UTF-8). With none, cloud-init's locale module asks for en_US.UTF-8,
    # which Debian's locale-gen does not generate from an argument, and fails.
    echo 'LANG=C.UTF-8' > /etc/default/locale
# The same masks as `pi`, except systemd-timesyncd: cloud-init's ntp module
# restarts it, and its own ConditionVirtualization=!container keeps it off here.
RUN systemctl mask \
      systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
      systemd-udev-trigger.service systemd-udev-settle.service \
      getty.target console-getty.service \
      systemd-firstboot.service systemd-modules-load.service sys-kernel-config.mount \
      apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
 && systemctl set-default multi-user.target \
 && mkdir -p /var/log/journal /boot/firmware /var/lib/cloud/seed \
 && ln -s /boot/firmware /var/lib/cloud/seed/nocloud
# On a Pi, cloud-init's NoCloud finds user-data, meta-data and network-config
# on the FAT boot partition mounted at /boot/firmware. A container has no such
# partition, so the seed directory NoCloud also reads (/var/lib/cloud/seed/
# nocloud) is that directory: the same files, found another way. Docker
# configures the container's eth0 (a fixed address on the cluster network),
# so cloud-init is told not to apply network-config: a DHCP client would only
# take that address away (the test renders the file with cloud-init's own
# converter instead). Both lines below exist only in the simulation.
RUN printf '%s\n' \
      '# piswarm simulation only (Dockerfile, target firstboot): see the comment there.' \
      'datasource_list: [NoCloud, None]' \
      'network: {config: disabled}' \
      > /etc/cloud/cloud.cfg.d/90-piswarm-sim.cfg
ENV container=docker
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
