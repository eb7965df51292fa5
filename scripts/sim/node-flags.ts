/**
 * `docker create` flags that make a container a working simulated Pi: systemd
 * as PID 1 with its own Docker Engine inside. `--privileged` does not work on
 * the build machines (the engine lacks CAP_SYS_RESOURCE: "unable to apply caps:
 * operation not permitted"), so this is the smallest set found to work
 * (shared/ENVIRONMENT.md):
 *  - all capabilities but SYS_RESOURCE, no seccomp/AppArmor filtering, and
 *    unmasked /proc and /sys paths: the inner dockerd and systemd need them;
 *  - the host cgroup namespace with /sys/fs/cgroup writable (cgroups v1), so
 *    systemd can manage units and the inner engine can run containers;
 *  - /run and /run/lock as tmpfs, as systemd expects on a real boot;
 *  - /lib/modules read-only so the inner engine can probe for overlay and
 *    netfilter modules.
 * The per-node /var/lib/docker volume is added separately: on a volume (not on
 * the container's own overlay layer) the inner engine gets overlay2, not vfs.
 */
export const NODE_FLAGS: readonly string[] = Object.freeze([
  '--cap-add', 'ALL', '--cap-drop', 'SYS_RESOURCE',
  '--security-opt', 'seccomp=unconfined',
  '--security-opt', 'apparmor=unconfined',
  '--security-opt', 'systempaths=unconfined',
  '--cgroupns', 'host', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw',
  '--tmpfs', '/run', '--tmpfs', '/run/lock',
  '-v', '/lib/modules:/lib/modules:ro',
]);
