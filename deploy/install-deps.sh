#!/usr/bin/env bash
# Installs what the local stack needs and the machine lacks: a JDK, Maven, redis-server, and
# chromium for the dashboard's browser tests (Playwright drives it; no browser download), and
# Prometheus's promtool and Alertmanager's amtool (the tests check deploy/ with them).
# Uses apt-get when run as root on Debian/Ubuntu; otherwise says what to install.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
missing=()
lean=()
have java || missing+=(openjdk-17-jre-headless)
have mvn || missing+=(maven)
have redis-server || missing+=(redis-server)
have chromium || missing+=(chromium)
# Without recommends: the prometheus package would pull in node-exporter and friends.
have promtool || lean+=(prometheus)
have amtool || lean+=(prometheus-alertmanager)
((${#missing[@]} + ${#lean[@]})) || exit 0

if [[ $(id -u) -eq 0 ]] && have apt-get; then
  echo "installing: ${missing[*]} ${lean[*]}"
  # Another apt-get may hold the dpkg lock for a while (unattended upgrades, a parallel job): wait for it.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
  fi
  if ((${#lean[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
      "${lean[@]}" >/dev/null
  fi
else
  echo "Chorus's local stack needs: ${missing[*]} ${lean[*]}" >&2
  echo "  Debian/Ubuntu: sudo apt-get install ${missing[*]} ${lean[*]}" >&2
  echo "  or point Chorus at running services: export KAFKA_BOOTSTRAP_SERVERS=... REDIS_URL=..." >&2
  # Not fatal here: with those variables set, nothing local is needed.
fi
