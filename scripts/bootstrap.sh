#!/usr/bin/env bash
# Builds the servers npm does not ship (Temporal CLI dev server, FerretDB) once, at pinned
# versions, into a per-user cache, and links them into .tools/bin. Also installs node modules
# when they are missing. Safe to run repeatedly: what is already there is reused.
#
#   TEMPORAL_CLI_PATH=/path/to/temporal  use this binary instead of building one
#   FERRETDB_PATH=/path/to/ferretdb      likewise for FerretDB
#   CANARY_TOOLS_CACHE=dir               cache root (default: ${XDG_CACHE_HOME:-~/.cache}/canary-platform/tools)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${CANARY_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/canary-platform/tools}"
bin_dir="$root/.tools/bin"
mkdir -p "$bin_dir" "$cache"

# Later Temporal CLI tags carry a `replace` directive in go.mod and cannot be `go install`ed.
TEMPORAL_VERSIONS=(v1.5.1 v1.5.0 v1.4.1 v1.4.0)
FERRETDB_VERSION=v1.24.2

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

temporal="$(preexisting "${TEMPORAL_CLI_PATH:-}" temporal)"
[[ -n "$temporal" ]] || temporal="$(build_temporal)"
link_tool temporal "$temporal"

ferretdb="$(preexisting "${FERRETDB_PATH:-}" ferretdb)"
[[ -n "$ferretdb" ]] || ferretdb="$(build_ferretdb)"
link_tool ferretdb "$ferretdb"

"$bin_dir/temporal" --version >/dev/null || die "the Temporal CLI at $temporal does not run"
"$bin_dir/ferretdb" --version >/dev/null || die "FerretDB at $ferretdb does not run"

# Node modules: install from the lock file when missing or older than it.
if [[ ! -d "$root/node_modules" || "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]]; then
  say "installing node modules (npm ci)..."
  (cd "$root" && npm ci --no-audit --no-fund) >&2
fi
say "ready: $("$bin_dir/temporal" --version | head -n 1); FerretDB $("$bin_dir/ferretdb" --version | sed -n 's/^version: //p')"
