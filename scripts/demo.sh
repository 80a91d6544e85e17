#!/usr/bin/env bash
# The main job (`npm run demo`): builds what is missing, then runs a full local canary rollout.
# Arguments go to `canary demo`, e.g. `npm run demo -- --scenario regression`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
cd "$root"
exec node --import tsx cli/main.ts demo "$@"
