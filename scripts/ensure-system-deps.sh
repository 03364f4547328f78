#!/usr/bin/env bash
# Install the Debian packages a fresh machine lacks: libmagic1 (neonize), nginx (the balancer of
# `make cluster` and its end-to-end test; run as a child process, never as the system service),
# and with --browser Chromium and Node.js for the page tests (Node runs the connect script's
# harness). Does nothing when they are already present.
set -euo pipefail
need=()
dpkg -s libmagic1 >/dev/null 2>&1 || need+=(libmagic1)
[ -x /usr/sbin/nginx ] || need+=(nginx)
if [ "${1:-}" = "--browser" ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium)
  command -v node >/dev/null 2>&1 || need+=(nodejs)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "setup: missing Debian packages: ${need[*]} (run as root or install them: apt-get install ${need[*]})" >&2
  exit 1
fi
echo "setup: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
