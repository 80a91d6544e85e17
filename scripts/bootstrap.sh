#!/usr/bin/env bash
# Builds the servers npm does not ship (Temporal CLI dev server, FerretDB, kube-apiserver, kine)
# once, at pinned versions, into a per-user cache, and links them into .tools/bin. Also fetches
# the Gateway API and Istio CRDs into the cache and installs node modules when they are missing.
# Safe to run repeatedly: what is already there is reused.
#
#   TEMPORAL_CLI_PATH=/path/to/temporal  use this binary instead of building one
#   FERRETDB_PATH=/path/to/ferretdb      likewise for FerretDB
#   KUBE_APISERVER_PATH, KINE_PATH       likewise for kube-apiserver and kine
#   CANARY_SKIP_KUBERNETES=1             skip the Kubernetes tools (first build ~30 min on 2 busy cores; their tests then fail)
#   CANARY_TOOLS_CACHE=dir               cache root (default: ${XDG_CACHE_HOME:-~/.cache}/canary-platform/tools)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${CANARY_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/canary-platform/tools}"
bin_dir="$root/.tools/bin"
mkdir -p "$bin_dir" "$cache"

# Later Temporal CLI tags carry a `replace` directive in go.mod and cannot be `go install`ed.
TEMPORAL_VERSIONS=(v1.5.1 v1.5.0 v1.4.1 v1.4.0)
FERRETDB_VERSION=v1.24.2
KUBERNETES_VERSION=v1.34.2
KINE_VERSION=v0.17.5
GATEWAY_API_VERSION=v1.6.3
ISTIO_API_VERSION=v1.32.0
# k8s.io/kubernetes replaces these with ./staging/src/... directories its module zip lacks; the
# wrapper module replaces them with their published releases (v0.x.y for kubernetes v1.x.y).
KUBERNETES_STAGING_MODULES=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
  cloud-provider cluster-bootstrap code-generator component-base component-helpers controller-manager
  cri-api cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
  kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils
  pod-security-admission sample-apiserver sample-cli-plugin sample-controller)

say() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

require_go() {
  command -v go >/dev/null 2>&1 || die "Go is not installed or not on PATH. Install Go >= 1.22 (https://go.dev/dl/), or point TEMPORAL_CLI_PATH and FERRETDB_PATH at prebuilt binaries."
}

link_tool() { # name target
  ln -sfn "$2" "$bin_dir/$1"
  say "$1 -> $2"
}

# A binary given by environment variable or found on PATH wins over building one.
preexisting() { # env-value name
  if [[ -n "$1" ]]; then
    [[ -x "$1" ]] || die "$2: '$1' (from the environment) is not an executable file"
    printf '%s' "$1"
  elif command -v "$2" >/dev/null 2>&1 && [[ "$(command -v "$2")" != "$bin_dir/$2" ]]; then
    command -v "$2"
  fi
}

build_temporal() {
  local version dir started
  for version in "${TEMPORAL_VERSIONS[@]}"; do
    dir="$cache/temporal-$version"
    if [[ -x "$dir/temporal" ]]; then printf '%s' "$dir/temporal"; return 0; fi
  done
  require_go
  for version in "${TEMPORAL_VERSIONS[@]}"; do
    dir="$cache/temporal-$version"
    say "building Temporal CLI $version with go install (first build takes several minutes)..."
    started=$SECONDS
    if GOBIN="$dir" GOFLAGS="${GOFLAGS:-} -buildvcs=false" go install "github.com/temporalio/cli/cmd/temporal@$version" >&2; then
      say "Temporal CLI $version built in $((SECONDS - started)) s"
      printf '%s' "$dir/temporal"
      return 0
    fi
    say "Temporal CLI $version did not build; trying an older tag"
    rm -rf "$dir"
  done
  die "no Temporal CLI tag of ${TEMPORAL_VERSIONS[*]} builds with $(go version)"
}

# `go install .../cmd/ferretdb@v1.24.2` builds, but the binary panics at start: FerretDB
# embeds build/version/version.txt, which its release process generates and the module
# zip lacks. So we build from the module's source with that one file written.
build_ferretdb() {
  local dir="$cache/ferretdb-$FERRETDB_VERSION" src work started
  if [[ -x "$dir/ferretdb" ]]; then printf '%s' "$dir/ferretdb"; return 0; fi
  require_go
  say "building FerretDB $FERRETDB_VERSION (first build takes a few minutes)..."
  started=$SECONDS
  src="$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$src" ]] || die "go mod download of FerretDB $FERRETDB_VERSION failed"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  cp -r "$src/." "$work/"
  chmod -R u+w "$work"
  printf '%s\n' "$FERRETDB_VERSION" >"$work/build/version/version.txt"
  mkdir -p "$dir"
  (cd "$work" && GOFLAGS="${GOFLAGS:-} -buildvcs=false" go build -trimpath -o "$dir/ferretdb.tmp" ./cmd/ferretdb) >&2 ||
    die "FerretDB $FERRETDB_VERSION did not build with $(go version)"
  mv "$dir/ferretdb.tmp" "$dir/ferretdb"
  say "FerretDB $FERRETDB_VERSION built in $((SECONDS - started)) s"
  printf '%s' "$dir/ferretdb"
}

# kube-apiserver cannot be `go install`ed: k8s.io/kubernetes's go.mod replaces its staging modules
# with local directories. A wrapper module requires it and points each replace at the release.
build_kube_apiserver() {
  local dir="$cache/kube-apiserver-$KUBERNETES_VERSION" staging_version="v0.${KUBERNETES_VERSION#v1.}"
  local work started module
  if [[ -x "$dir/kube-apiserver" ]]; then printf '%s' "$dir/kube-apiserver"; return 0; fi
  require_go
  say "building kube-apiserver $KUBERNETES_VERSION through a wrapper module (first build: 14 min on 2 busy cores)..."
  started=$SECONDS
  work="$dir/wrapper"
  mkdir -p "$work"
  {
    printf 'module canary-platform/kube-apiserver-wrapper\n\ngo 1.24\n\nrequire k8s.io/kubernetes %s\n\n' "$KUBERNETES_VERSION"
    for module in "${KUBERNETES_STAGING_MODULES[@]}"; do
      printf 'replace k8s.io/%s => k8s.io/%s %s\n' "$module" "$module" "$staging_version"
    done
  } >"$work/go.mod"
  # Without these the server reports v0.0.0-master, which kubectl cannot parse.
  local minor="${KUBERNETES_VERSION#v1.}"
  local version_flags="-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
  version_flags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*}"
  version_flags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  (cd "$work" && GOFLAGS="${GOFLAGS:-} -buildvcs=false -mod=mod" go build -p 1 -trimpath -ldflags "$version_flags" \
    -o "$dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver) >&2 ||
    die "kube-apiserver $KUBERNETES_VERSION did not build with $(go version)"
  mv "$dir/kube-apiserver.tmp" "$dir/kube-apiserver"
  say "kube-apiserver $KUBERNETES_VERSION built in $((SECONDS - started)) s"
  printf '%s' "$dir/kube-apiserver"
}

# kine serves the etcd API on SQLite, so the API server needs no etcd cluster.
build_kine() {
  local dir="$cache/kine-$KINE_VERSION" started
  if [[ -x "$dir/kine" ]]; then printf '%s' "$dir/kine"; return 0; fi
  require_go
  say "building kine $KINE_VERSION (cgo SQLite; first build: 13 min on 2 busy cores)..."
  started=$SECONDS
  GOBIN="$dir" CGO_ENABLED=1 GOFLAGS="${GOFLAGS:-} -buildvcs=false" go install -p 1 "github.com/k3s-io/kine@$KINE_VERSION" >&2 ||
    die "kine $KINE_VERSION did not build with $(go version) (it needs cgo and a C compiler)"
  say "kine $KINE_VERSION built in $((SECONDS - started)) s"
  printf '%s' "$dir/kine"
}

# The Gateway API and Istio CRDs ship inside their Go modules; copy the ones the routers use.
fetch_crds() {
  local dir="$cache/crds-gateway-api-$GATEWAY_API_VERSION-istio-$ISTIO_API_VERSION" gateway istio
  if [[ -f "$dir/.complete" ]]; then printf '%s' "$dir"; return 0; fi
  require_go
  gateway="$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  istio="$(go mod download -json "istio.io/api@$ISTIO_API_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$gateway" ]] || die "go mod download of sigs.k8s.io/gateway-api $GATEWAY_API_VERSION failed"
  [[ -d "$istio" ]] || die "go mod download of istio.io/api $ISTIO_API_VERSION failed"
  mkdir -p "$dir"
  cp "$gateway"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$dir/"
  cp "$istio/kubernetes/customresourcedefinitions.gen.yaml" "$dir/istio-customresourcedefinitions.yaml"
  chmod u+w "$dir"/*.yaml
  touch "$dir/.complete"
  say "CRDs: Gateway API $GATEWAY_API_VERSION, Istio API $ISTIO_API_VERSION -> $dir"
  printf '%s' "$dir"
}

temporal="$(preexisting "${TEMPORAL_CLI_PATH:-}" temporal)"
[[ -n "$temporal" ]] || temporal="$(build_temporal)"
link_tool temporal "$temporal"

ferretdb="$(preexisting "${FERRETDB_PATH:-}" ferretdb)"
[[ -n "$ferretdb" ]] || ferretdb="$(build_ferretdb)"
link_tool ferretdb "$ferretdb"

if [[ "${CANARY_SKIP_KUBERNETES:-}" != 1 ]]; then
  # The two first builds take about as long each, one package at a time: side by side they use
  # both cores and the cold bootstrap waits for the longer one only.
  kine="$(preexisting "${KINE_PATH:-}" kine)"
  kine_path_file="$(mktemp)"
  kine_build=""
  if [[ -z "$kine" ]]; then
    build_kine >"$kine_path_file" &
    kine_build=$!
  fi
  kube_apiserver="$(preexisting "${KUBE_APISERVER_PATH:-}" kube-apiserver)"
  [[ -n "$kube_apiserver" ]] || kube_apiserver="$(build_kube_apiserver)"
  link_tool kube-apiserver "$kube_apiserver"
  if [[ -n "$kine_build" ]]; then
    wait "$kine_build" || die "kine $KINE_VERSION did not build (see above)"
    kine="$(cat "$kine_path_file")"
  fi
  rm -f "$kine_path_file"
  link_tool kine "$kine"
  crds="$(fetch_crds)"
  ln -sfn "$crds" "$root/.tools/crds"
  say "crds -> $crds"
  "$bin_dir/kube-apiserver" --version >/dev/null || die "kube-apiserver at $kube_apiserver does not run"
fi

"$bin_dir/temporal" --version >/dev/null || die "the Temporal CLI at $temporal does not run"
"$bin_dir/ferretdb" --version >/dev/null || die "FerretDB at $ferretdb does not run"

# Node modules: install from the lock file when missing or older than it. A symlinked
# node_modules is another checkout's install, shared: npm ci would empty it for everyone.
if [[ -L "$root/node_modules" ]]; then
  say "node_modules is a link to $(readlink "$root/node_modules"); leaving it alone"
elif [[ ! -d "$root/node_modules" || "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]]; then
  say "installing node modules (npm ci)..."
  (cd "$root" && npm ci --no-audit --no-fund) >&2
fi
say "ready: $("$bin_dir/temporal" --version | head -n 1); FerretDB $("$bin_dir/ferretdb" --version | sed -n 's/^version: //p')"
