#!/usr/bin/env bash
# tests/build.sh [BUILDDIR [MESON_SETUP_ARGS...]] - configures (once) and
# builds flox-runc; the setup arguments apply when BUILDDIR is configured.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
[ $# -gt 0 ] && shift
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$src" "$@" >/dev/null
fi
ninja -C "$build" >/dev/null
