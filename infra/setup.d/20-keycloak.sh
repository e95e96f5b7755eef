#!/usr/bin/env bash
# Fetches the Keycloak server distribution (org.keycloak:keycloak-quarkus-dist:<version>:zip)
# from Maven Central with `mvn dependency:copy` and unpacks it outside the repository:
#   $SANDLADA_CACHE_DIR/keycloak/<version>/{bin,lib,conf,…}   (the zip's top folder, flattened)
# A warm cache (the `.complete` marker) runs no Maven and no Java at all. A cold fetch prints how
# much has arrived every 10 s. The zip itself stays in Maven's own repository (~/.m2).
# Needs Maven and a Java 21+ JDK (Temurin 25 here; Keycloak 26 deprecates Java 17).
set -euo pipefail
cd "$(dirname "$0")/../.."
source infra/keycloak/versions.env

CACHE="${SANDLADA_CACHE_DIR:-$HOME/.cache/sandlada}"
DIST_DIR="$CACHE/keycloak/$KEYCLOAK_VERSION"
JAVA_HOME_KC="${SANDLADA_KEYCLOAK_JAVA_HOME:-$KEYCLOAK_JAVA_HOME}"
ARTIFACT="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:zip"

if [ ! -x "$JAVA_HOME_KC/bin/java" ]; then
  echo "20-keycloak: no JDK at $JAVA_HOME_KC (Keycloak $KEYCLOAK_VERSION needs Java 21+;" \
    "set SANDLADA_KEYCLOAK_JAVA_HOME)" >&2
  exit 1
fi

if [ -e "$DIST_DIR/.complete" ]; then
  echo "==> keycloak $KEYCLOAK_VERSION ready in $DIST_DIR"
  exit 0
fi

if ! command -v mvn >/dev/null; then
  echo "20-keycloak: Maven (mvn) is not installed" >&2
  exit 1
fi

start=$(date +%s)
echo "==> fetching keycloak $KEYCLOAK_VERSION ($ARTIFACT) from Maven Central (first time on this machine)"
mkdir -p "$CACHE/keycloak"
work=$(mktemp -d "$CACHE/keycloak/.fetch-$KEYCLOAK_VERSION.XXXXXX")
trap 'rm -rf "$work"' EXIT
log="$work/mvn.log"
# Maven runs with the JDK Keycloak will use, so a machine without another Java still works.
# -ntp: Maven's per-chunk transfer lines would flood CI logs; the loop below reports progress.
JAVA_HOME="$JAVA_HOME_KC" mvn -B -ntp dependency:copy -Dartifact="$ARTIFACT" \
  -DoutputDirectory="$work" -Dmdep.overWriteIfNewer=true >"$log" 2>&1 &
pid=$!
m2_dir="$HOME/.m2/repository/org/keycloak/keycloak-quarkus-dist/$KEYCLOAK_VERSION"
while kill -0 "$pid" 2>/dev/null; do
  for _ in $(seq 10); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    got=$(du -sm "$m2_dir" 2>/dev/null | cut -f1 || true)
    if [ "${got:-0}" -eq 0 ] && ! compgen -G "$m2_dir/*.part" >/dev/null; then
      # A fresh ~/.m2 first gets the dependency plugin and its own dependencies.
      echo "    keycloak: $(($(date +%s) - start))s elapsed, Maven is fetching its plugins"
    elif [ "${got:-0}" -eq 0 ]; then
      echo "    keycloak: $(($(date +%s) - start))s elapsed, download of the ~170 MiB zip starting"
    else
      echo "    keycloak: $(($(date +%s) - start))s elapsed, ${got} MiB of the distribution so far"
    fi
  fi
done
status=0
wait "$pid" || status=$?
zip="$work/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip"
if [ "$status" -ne 0 ] || [ ! -s "$zip" ]; then
  echo "20-keycloak: mvn dependency:copy $ARTIFACT failed (exit $status); last lines:" >&2
  tail -40 "$log" >&2
  exit 1
fi
echo "    keycloak: downloaded $(du -m "$zip" | cut -f1) MiB in $(($(date +%s) - start))s; unpacking"
unzip -q "$zip" -d "$work/unpacked"
top=$(find "$work/unpacked" -mindepth 1 -maxdepth 1 -type d | head -1)
if [ ! -x "$top/bin/kc.sh" ]; then
  echo "20-keycloak: $zip has no bin/kc.sh" >&2
  exit 1
fi
# Rename into place only when whole: an interrupted fetch never leaves a usable-looking dist.
rm -rf "$DIST_DIR"
mv "$top" "$DIST_DIR"
touch "$DIST_DIR/.complete"
echo "==> keycloak $KEYCLOAK_VERSION ready in $DIST_DIR ($(($(date +%s) - start))s)"
