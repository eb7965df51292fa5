/**
 * A recorded snapshot of what `piswarm doctor` looks at on a node: file
 * contents keyed by path and command outputs keyed by command line. The
 * checks are pure functions over it; `gatherState` (gather.ts) records it from
 * the real machine, and test fixtures are such recordings.
 */
export interface CommandOutput {
  exitCode: number;
  stdout: string;
}

export interface ProcessRef {
  pid: number;
  comm: string;
}

export interface SystemState {
  /** `uname -r`: names the /lib/modules directory. */
  kernelRelease: string;
  /** Path -> content; null when absent or unreadable. modules.dep/modules.builtin may be filtered to the lines that matter. */
  files: Record<string, string | null>;
  /** Command line -> output; null when the program is not installed. */
  commands: Record<string, CommandOutput | null>;
  /** Socket inode (as in /proc/net/*) -> processes holding it; only for the ports doctor checks. */
  socketOwners: Record<string, ProcessRef[]>;
  /** PIDs of the piswarm agent itself, excluded when asking "who else holds this port?". */
  agentPids: number[];
}

export const PROC_CGROUPS = '/proc/cgroups';
export const PROC_CMDLINE = '/proc/cmdline';
export const CGROUP2_CONTROLLERS = '/sys/fs/cgroup/cgroup.controllers';
export const TIMESYNC_FLAG = '/run/systemd/timesync/synchronized';
export const PROC_MODULES = '/proc/modules';
export const DOCKER_DAEMON_JSON = '/etc/docker/daemon.json';
export const PROC_NET = ['/proc/net/udp', '/proc/net/udp6', '/proc/net/tcp', '/proc/net/tcp6'] as const;
export const PROC_ROUTE = '/proc/net/route';
export const AGENT_CONFIG = '/etc/piswarm/config.json';

export const CMD_TIMESYNC = 'timedatectl show -p NTPSynchronized --value';
export const CMD_ADDRESSES = 'ip -o addr show';
export const CMD_UFW = 'ufw status verbose';
export const CMD_NODE = 'node --version';
export const CMD_AGENT_PID = 'systemctl show -p MainPID --value piswarm';

/** A module's parameter directory exists in sysfs whether it is loaded or built in: the only sign of a built-in module when /lib/modules is absent. */
export const MODULE_PARAM_FILES: Readonly<Record<string, string>> = Object.freeze({
  vxlan: '/sys/module/vxlan/parameters/udp_port',
  ip_vs: '/sys/module/ip_vs/parameters/conn_tab_bits',
});
export const modulesBuiltin = (release: string) => `/lib/modules/${release}/modules.builtin`;
export const modulesDep = (release: string) => `/lib/modules/${release}/modules.dep`;

/** Files the checks read, for a kernel release. */
export function stateFiles(release: string): string[] {
  return [PROC_CGROUPS, PROC_CMDLINE, CGROUP2_CONTROLLERS, TIMESYNC_FLAG, PROC_MODULES, ...Object.values(MODULE_PARAM_FILES), modulesBuiltin(release), modulesDep(release), DOCKER_DAEMON_JSON, ...PROC_NET, PROC_ROUTE, AGENT_CONFIG];
}

export const STATE_COMMANDS = [CMD_TIMESYNC, CMD_ADDRESSES, CMD_UFW, CMD_NODE, CMD_AGENT_PID] as const;
