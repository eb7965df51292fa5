# Sourced by build-base.sh and build-arm64-root.sh: prints the Debian mirror
# this host already uses (deb822 .sources first, then the one-line format),
# else deb.debian.org.
debian_mirror() {
  local m
  m=$(
    { grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security
      grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'; } |
      grep -m1 -E '/debian/?$' || true
  )
  printf '%s\n' "${m:-http://deb.debian.org/debian}"
}
