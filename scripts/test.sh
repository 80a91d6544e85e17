#!/usr/bin/env bash
# The test command (`npm test`): builds/links the server binaries if needed, then runs jest.
# Tests start their own Temporal dev server, FerretDB and other servers on free loopback ports.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
exec npx jest --ci "$@"
