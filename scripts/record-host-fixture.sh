#!/usr/bin/env bash
# Records a host sample set for the host-metrics unit tests:
#
#   scripts/record-host-fixture.sh test/fixtures/hosts/<name>
#
# It copies the procfs/sysfs files the agent's host reader opens
# (agent/host/reader.ts, agent/host/disks.ts), in the layout
# test/unit/agent/host/fixtures.ts expects (DEST/proc is the procRoot, DEST/sys
# the sysRoot, DEST/statfs.json the statfs(2) table, DEST/run/systemd/timesync
# the timesyncd flag), and writes DEST/independent.json: what other tools said
# at the same moment (nproc, free -b, getconf, uname, /proc/uptime and date,
# ip -s -j link, lsblk, df), for test/unit/agent/host/recorded.test.ts to
# compare the collectors' output against.
#
# The same command records a Raspberry Pi set: run it on the Pi. Then the Pi's
# thermal zones, the firmware throttle word
# (/sys/devices/platform/soc/soc:firmware/get_throttled), the rpi_volt hwmon
# alarm (/sys/class/hwmon/*/in0_lcrit_alarm) and `vcgencmd get_throttled` /
# `vcgencmd measure_temp` are recorded too, because they exist there (every
# one of them is optional: absent on a PC, skipped).
#
# The files the metrics come from are read back to back (bash builtins, no
# process per file) between two runs of `free -b` and `ip -s -j link`, so the
# recorded counters lie between the two readings of the independent tools.
#
# Left out on purpose, because they identify hardware or a network: MAC
# addresses (ip's JSON is cut down to name and byte counters; nothing under
# /sys/class/net is copied) and disk serial numbers (only /sys/block/*/size is
# copied). Nothing else is redacted. Needs jq or python3 to cut down ip's JSON;
# without either, the network check is recorded as missing.
set -euo pipefail
export LC_ALL=C # tools' number formats (free's columns, EPOCHREALTIME's decimal point)

die() { printf 'record-host-fixture: %s\n' "$*" >&2; exit 1; }
log() { printf 'record-host-fixture: %s\n' "$*" >&2; }

[[ $# -eq 1 ]] || die "usage: $0 DEST (a directory that does not exist yet)"
DEST=$1
[[ ! -e $DEST ]] || die "$DEST exists; record into a new directory"
[[ $(uname -s) == Linux ]] || die 'procfs and sysfs are Linux only'

have() { command -v "$1" >/dev/null 2>&1; }

# A JSON string literal.
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}

# Whole file into a variable without spawning a process; exact bytes (no NULs in these files).
slurp() { IFS= read -r -d '' "$1" <"$2" || true; }

# ip -s -j link cut down to {ifname, rx_bytes, tx_bytes}: no MAC addresses.
ip_bytes() {
  local raw
  raw=$(ip -s -j link) || return 1
  if have jq; then
    jq -c '[.[] | {ifname, rx_bytes: .stats64.rx.bytes, tx_bytes: .stats64.tx.bytes}]' <<<"$raw"
  else
    python3 -c 'import json,sys; print(json.dumps([{"ifname": l["ifname"], "rx_bytes": l["stats64"]["rx"]["bytes"], "tx_bytes": l["stats64"]["tx"]["bytes"]} for l in json.load(sys.stdin)], separators=(",", ":")))' <<<"$raw"
  fi
}

# free -b's Mem: row as {"total":…,"available":…} (columns: total used free shared buff/cache available).
free_mem() { free -b | awk '$1 == "Mem:" { printf "{\"total\":%s,\"available\":%s}", $2, $7 }'; }

declare -A missing=()
ip_ok=0
if ! have ip; then
  missing[ip_link]='ip (iproute2) not installed'
elif ! ip -j -s link >/dev/null 2>&1; then
  missing[ip_link]="this ip ($(ip -V 2>&1 | head -n1)) has no -j (JSON) output"
elif ! have jq && ! have python3; then
  missing[ip_link]='neither jq nor python3 to strip MAC addresses from ip -j'
else
  ip_ok=1
fi
have free || missing[free]='free (procps) not installed'

# --- the hot window: independent tools, the metric files back to back, the tools again ---
ip_before=null ip_after=null free_before=null free_after=null
((ip_ok)) && ip_before=$(ip_bytes)
have free && free_before=$(free_mem)
slurp meminfo /proc/meminfo
slurp netdev /proc/net/dev
slurp stat /proc/stat
printf -v date_now '%(%s)T' -1 # builtins only; bash 5's EPOCHREALTIME has microseconds
[[ -n ${EPOCHREALTIME:-} ]] && date_now=$EPOCHREALTIME
slurp uptime /proc/uptime
slurp diskstats /proc/diskstats
slurp loadavg /proc/loadavg
have free && free_after=$(free_mem)
((ip_ok)) && ip_after=$(ip_bytes)
# --- end of the hot window ---

mkdir -p "$DEST/proc/net" "$DEST/proc/self" "$DEST/proc/sys/kernel"
printf '%s' "$meminfo" >"$DEST/proc/meminfo"
printf '%s' "$netdev" >"$DEST/proc/net/dev"
printf '%s' "$stat" >"$DEST/proc/stat"
printf '%s' "$diskstats" >"$DEST/proc/diskstats"
printf '%s' "$loadavg" >"$DEST/proc/loadavg"
cat /proc/self/mountinfo >"$DEST/proc/self/mountinfo"
# The reader reads all five for node_uname_info; copy those that exist.
for f in ostype osrelease version hostname domainname; do
  [[ -r /proc/sys/kernel/$f ]] && cat "/proc/sys/kernel/$f" >"$DEST/proc/sys/kernel/$f"
done

# /sys/block: the reader only lists the names (whole disks); `size` keeps each entry in git.
mkdir -p "$DEST/sys/block"
for b in /sys/block/*; do
  [[ -e $b ]] || continue
  mkdir -p "$DEST/sys/block/${b##*/}"
  cat "$b/size" >"$DEST/sys/block/${b##*/}/size"
done

# Thermal zones: type and temp (a sleeping ACPI sensor may answer EIO: then no temp, as the reader sees it).
if [[ -d /sys/class/thermal ]]; then
  mkdir -p "$DEST/sys/class/thermal"
  for z in /sys/class/thermal/thermal_zone*; do
    [[ -e $z ]] || continue
    d=$DEST/sys/class/thermal/${z##*/}
    mkdir -p "$d"
    [[ -r $z/type ]] && cat "$z/type" >"$d/type"
    if [[ -r $z/temp ]] && t=$(cat "$z/temp" 2>/dev/null); then printf '%s\n' "$t" >"$d/temp"; fi
  done
fi

# Raspberry Pi throttling sources, in the reader's order (agent/host/reader.ts throttle()).
fw=/sys/devices/platform/soc/soc:firmware/get_throttled
if [[ -r $fw ]]; then
  mkdir -p "$DEST/sys/devices/platform/soc/soc:firmware"
  cat "$fw" >"$DEST/$fw"
fi
for h in /sys/class/hwmon/hwmon*; do
  [[ -r $h/name ]] || continue
  mkdir -p "$DEST/sys/class/hwmon/${h##*/}"
  cat "$h/name" >"$DEST/sys/class/hwmon/${h##*/}/name"
  [[ -r $h/in0_lcrit_alarm ]] && cat "$h/in0_lcrit_alarm" >"$DEST/sys/class/hwmon/${h##*/}/in0_lcrit_alarm"
done

# timesyncd's flag (fixtureReaderOptions points timesyncFile into DEST/run).
if [[ -d /run/systemd/timesync ]]; then
  mkdir -p "$DEST/run/systemd/timesync"
  [[ -e /run/systemd/timesync/synchronized ]] && : >"$DEST/run/systemd/timesync/synchronized"
fi

# statfs(2) of every mountpoint in the recorded mountinfo (stat -f: blocks, bfree, bavail in
# f_frsize units). Network filesystems are skipped (a dead server would hang here, and the
# agent does not statfs them either); a mount stat cannot reach stays out of the table, which
# the reader then reports as device_error 1, as on the host.
{
  printf '{'
  sep=''
  declare -A seen=()
  while read -r fstype mp; do
    mp=$(printf '%b' "${mp//\\/\\0}") # mountinfo escapes space, tab, newline, backslash as \ooo
    [[ -n ${seen[$mp]:-} ]] && continue
    seen[$mp]=1
    [[ $fstype =~ ^(nfs4?|cifs|smb3|ceph|glusterfs|9p|fuse\.sshfs)$ ]] && continue
    s=$(stat -f -c '%b %f %a %S' -- "$mp" 2>/dev/null) || continue
    read -r blocks bfree bavail frsize <<<"$s"
    printf '%s\n  %s: { "sizeBytes": %s, "freeBytes": %s, "availBytes": %s }' "$sep" "$(json_str "$mp")" \
      $((blocks * frsize)) $((bfree * frsize)) $((bavail * frsize))
    sep=','
  done < <(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 1), $5; break } }' "$DEST/proc/self/mountinfo")
  printf '\n}\n'
} >"$DEST/statfs.json"

# --- the static answers of the independent tools ---
num_or_null() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]] && printf '%s' "$1" || printf 'null'; }

nproc_all=null
if have nproc; then nproc_all=$(num_or_null "$(nproc --all)"); else missing[nproc_all]='nproc (coreutils) not installed'; fi
clk_tck=null
if have getconf; then clk_tck=$(num_or_null "$(getconf CLK_TCK)"); else missing[getconf_clk_tck]='getconf not installed'; fi
uname_r=$(json_str "$(uname -r)")
uname_m=$(json_str "$(uname -m)")
uname_n=$(json_str "$(uname -n)")

lsblk_rows=null
if have lsblk; then
  lsblk_rows=$(lsblk -d -n -o NAME,TYPE | awk 'BEGIN { printf "[" } { printf "%s{\"name\":\"%s\",\"type\":\"%s\"}", (NR > 1 ? "," : ""), $1, $2 } END { printf "]" }')
else
  missing[lsblk_disks]='lsblk (util-linux) not installed'
fi

df_root=null
if have df; then
  df_root=$(num_or_null "$(df -B1 --output=size / 2>/dev/null | tail -n1 | tr -d ' ')")
else
  missing[df_root_size_bytes]='df not installed'
fi

vc_throttled=null vc_temp=null
if have vcgencmd; then
  vc_throttled=$(json_str "$(vcgencmd get_throttled 2>&1)")
  vc_temp=$(json_str "$(vcgencmd measure_temp 2>&1)")
else
  missing[vcgencmd]='vcgencmd not installed (not a Raspberry Pi OS host)'
fi

missing_json='{'
sep=''
for k in "${!missing[@]}"; do
  missing_json+="$sep$(json_str "$k"): $(json_str "${missing[$k]}")"
  sep=', '
done
missing_json+='}'

read -r up_seconds _ <<<"$uptime"
recorded_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat >"$DEST/independent.json" <<EOF
{
  "recorded_at": "$recorded_at",
  "command": $(json_str "scripts/record-host-fixture.sh $DEST"),
  "nproc_all": $nproc_all,
  "free_b_before": $free_before,
  "free_b_after": $free_after,
  "getconf_clk_tck": $clk_tck,
  "uname_r": $uname_r,
  "uname_m": $uname_m,
  "uname_n": $uname_n,
  "epoch_seconds_before_uptime": $date_now,
  "proc_uptime_seconds": $up_seconds,
  "ip_link_before": $ip_before,
  "ip_link_after": $ip_after,
  "lsblk_d": $lsblk_rows,
  "df_root_size_bytes": $df_root,
  "vcgencmd_get_throttled": $vc_throttled,
  "vcgencmd_measure_temp": $vc_temp,
  "missing": $missing_json
}
EOF

cat >"$DEST/README.md" <<EOF
# Recorded host sample: $(uname -n)

Recorded with \`scripts/record-host-fixture.sh $DEST\` at $recorded_at
on $(uname -n): kernel $(uname -r), $(uname -m)$( [[ -r /etc/os-release ]] && . /etc/os-release && printf ', %s' "${PRETTY_NAME:-}").

\`proc/\`, \`sys/\`, \`statfs.json\` (and \`run/\` when timesyncd runs) are what the host
reader opens, copied as they were; \`independent.json\` is what other tools said
at the same moment. Not copied: MAC addresses, disk serial numbers.
EOF

if ! have jq; then :; else jq -e . "$DEST/independent.json" >/dev/null || die 'independent.json is not valid JSON'; fi
log "recorded into $DEST"
