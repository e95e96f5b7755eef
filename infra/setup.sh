#!/usr/bin/env bash
# Installs and builds what the local platform needs, caching outside the repo.
# Each step is idempotent and fast when its cache is warm.
set -euo pipefail
cd "$(dirname "$0")/.."
for step in infra/setup.d/*.sh; do
  [ -e "$step" ] || continue
  bash "$step"
done
