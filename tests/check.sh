#!/usr/bin/env bash
# tests/check.sh - the whole test suite: installs dependencies, builds, and
# runs every suite registered with meson (unit, integration) as root.
# Quick start command 2; .ci/run calls it.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
bash "$src/tests/deps.sh"
bash "$src/tests/build.sh" "$src/build"
exec meson test -C "$src/build" --print-errorlogs "$@"
