#!/usr/bin/env bash
# Prints the Debian mirror this machine's apt already uses (deb822 sources
# first, then one-line sources), or deb.debian.org. Scripts that fetch from
# Debian's archive with their own apt state use it, so they reach the same
# mirror (and proxy) as the system without touching its apt setup.
set -euo pipefail
m=$(awk '/^URIs:/{u=$2} /^Suites:/{for(i=2;i<=NF;i++) if($i=="bookworm") {print u; exit}}' \
      /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$m" ] || m=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
echo "${m:-http://deb.debian.org/debian}"
