#!/usr/bin/env bash
# tests/build.sh [BUILDDIR] - configures (once) and builds flox-runc.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$src" >/dev/null
fi
ninja -C "$build" >/dev/null
