#!/usr/bin/env bash
# Debian packages the tests and benchmarks run for real (servers, load tools, a browser).
# Installs only what is missing; needs root or sudo. `apt-get update` runs once, when needed.
set -euo pipefail

PACKAGES=(
  # one package per line, with the binary that proves it is installed: "package:binary"
  haproxy:/usr/sbin/haproxy
  nginx:/usr/sbin/nginx
  wrk:/usr/bin/wrk
  prometheus:prometheus
  prometheus-alertmanager:/usr/bin/prometheus-alertmanager
  chromium:/usr/bin/chromium
  # FerretDB's PostgreSQL backend (the devstack's default when present); any major version
  postgresql:/usr/lib/postgresql/*/bin/postgres
)

missing=()
for entry in "${PACKAGES[@]}"; do
  package="${entry%%:*}"
  binary="${entry#*:}"
  command -v "$binary" >/dev/null 2>&1 || [[ -x "$binary" ]] || compgen -G "$binary" >/dev/null || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "[debian] all packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "[debian] error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "[debian] installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
