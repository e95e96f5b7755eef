#!/usr/bin/env bash
# Builds the local cluster's binaries from Go modules into a cache outside the repository,
# keyed by versions (and, for the control plane, by a hash of its Go sources):
#   $SANDLADA_CACHE_DIR/bin/kube-<k8s version>-<src hash>/sandlada-kube   etcd + apiserver + controller-manager + scheduler
#   $SANDLADA_CACHE_DIR/bin/kwok-<version>/kwok
#   $SANDLADA_CACHE_DIR/bin/helm-<version>/helm
# A warm cache means no Go invocation at all. A cold build prints which component it builds and
# how long it has been going. Go's own module and build caches stay at their defaults (~/go,
# ~/.cache/go-build), also outside the repository. Needs only Go (1.26) on the PATH.
set -euo pipefail
# The whole script is one block, so bash parses it before running: editing the file while a long
# build runs cannot change what the running script does next.
{
cd "$(dirname "$0")/../.."
source infra/cluster/versions.env

CACHE="${SANDLADA_CACHE_DIR:-$HOME/.cache/sandlada}"
GO_DIR=infra/cluster/go
SRC_HASH=$(cat "$GO_DIR/go.mod" "$GO_DIR/go.sum" "$GO_DIR/main.go" | sha256sum | cut -c1-12)
KUBE_DIR="$CACHE/bin/kube-$KUBERNETES_VERSION-$SRC_HASH"
KWOK_DIR="$CACHE/bin/kwok-$KWOK_VERSION"
HELM_DIR="$CACHE/bin/helm-$HELM_VERSION"

if ! command -v go >/dev/null; then
  echo "10-cluster: Go is not installed (need Go 1.26)" >&2
  exit 1
fi
# One build at a time per cache: several checkouts, test sessions or engineers may call this at once.
mkdir -p "$CACHE/bin"
exec 9>"$CACHE/bin/.build.lock"
if ! flock -n 9; then
  echo "==> another build of the cluster binaries is running; waiting for it"
  flock 9
fi

# Version stamps belong to the builds, not to a VCS checkout the build happens to sit in.
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

# build NAME TARGET_FILE COMMAND...: run a Go build in the background, reporting progress every
# 20 s (elapsed time and the number of packages compiled so far, from `go build -v`).
build() {
  local name=$1 target=$2
  shift 2
  local log start pid status=0
  log=$(mktemp "${TMPDIR:-/tmp}/sandlada-build-$name.XXXXXX")
  start=$(date +%s)
  echo "==> building $name (once per version; the result is cached in $CACHE/bin)"
  "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 20); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "    $name: $(($(date +%s) - start))s elapsed, $(grep -vc '^go: ' "$log" || true) packages compiled"
    fi
  done
  wait "$pid" || status=$?
  if [ "$status" -ne 0 ] || [ ! -x "$target" ]; then
    echo "10-cluster: building $name failed (exit $status); last lines of $log:" >&2
    tail -40 "$log" >&2
    return 1
  fi
  rm -f "$log"
  echo "    $name: built in $(($(date +%s) - start))s"
}

if [ ! -x "$KUBE_DIR/sandlada-kube" ]; then
  mkdir -p "$KUBE_DIR"
  # The staging replaces must match the k8s.io/kubernetes version; regenerate them on a bump with
  # `python3 infra/cluster/gen_replaces.py` (they are committed so a build needs no generation).
  python3 infra/cluster/gen_replaces.py --check
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  # Build to a temporary name and rename: an interrupted build never leaves a usable-looking binary.
  build "kube (etcd, kube-apiserver, kube-controller-manager, kube-scheduler $KUBERNETES_VERSION)" \
    "$KUBE_DIR/sandlada-kube.tmp" \
    bash -c "cd '$GO_DIR' && go build -v -trimpath -ldflags '$ldflags' -o '$KUBE_DIR/sandlada-kube.tmp' ."
  mv "$KUBE_DIR/sandlada-kube.tmp" "$KUBE_DIR/sandlada-kube"
fi

if [ ! -x "$KWOK_DIR/kwok" ]; then
  mkdir -p "$KWOK_DIR/tmp"
  build "kwok $KWOK_VERSION" "$KWOK_DIR/tmp/kwok" \
    env GOBIN="$KWOK_DIR/tmp" go install -v -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  mv "$KWOK_DIR/tmp/kwok" "$KWOK_DIR/kwok" && rmdir "$KWOK_DIR/tmp"
fi

if [ ! -x "$HELM_DIR/helm" ]; then
  mkdir -p "$HELM_DIR/tmp"
  build "helm $HELM_VERSION" "$HELM_DIR/tmp/helm" \
    env GOBIN="$HELM_DIR/tmp" go install -v -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$HELM_DIR/tmp/helm" "$HELM_DIR/helm" && rmdir "$HELM_DIR/tmp"
fi

echo "==> cluster binaries ready in $CACHE/bin (kube $KUBERNETES_VERSION, kwok $KWOK_VERSION, helm $HELM_VERSION)"
exit 0
}
