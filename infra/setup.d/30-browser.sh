#!/usr/bin/env bash
# The browser tests of the portal (tests/portal): Debian's Chromium (Playwright's own browser
# download does not work here) and axe-core from npm, cached outside the repository.
# A machine that already has both runs no apt or npm command at all.
set -euo pipefail

AXE_CORE_VERSION="${SANDLADA_AXE_CORE_VERSION:-4.14.1}"
CACHE="${SANDLADA_CACHE_DIR:-$HOME/.cache/sandlada}/npm"

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "30-browser: /usr/bin/chromium is missing (install it: sudo apt-get install chromium)" >&2
    exit 1
  fi
  echo "==> installing Debian package: chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
else
  echo "==> chromium present"
fi

if [ ! -f "$CACHE/node_modules/axe-core/axe.min.js" ] \
  || ! grep -q "\"version\": \"$AXE_CORE_VERSION\"" "$CACHE/node_modules/axe-core/package.json"; then
  command -v npm >/dev/null || { echo "30-browser: npm is missing (apt-get install npm)" >&2; exit 1; }
  echo "==> installing axe-core $AXE_CORE_VERSION into $CACHE"
  mkdir -p "$CACHE"
  npm install --silent --no-audit --no-fund --prefix "$CACHE" "axe-core@$AXE_CORE_VERSION" >/dev/null
else
  echo "==> axe-core $AXE_CORE_VERSION present"
fi
