#!/usr/bin/env bash
# Debian packages the local platform and the tests need. Installs what is missing (root only);
# a machine that already has everything runs no apt command at all.
set -euo pipefail

need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v mvn >/dev/null || need+=(maven)
command -v flock >/dev/null || need+=(util-linux)

if [ ${#need[@]} -eq 0 ]; then
  echo "==> system packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "00-system: missing Debian packages: ${need[*]} (install them: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
echo "==> installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
# The packaged cluster is never used: tests run their own throwaway PostgreSQL.
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
  pg_ctlcluster 15 main stop || true
fi
