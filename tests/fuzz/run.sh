#!/usr/bin/env bash
# tests/fuzz/run.sh BINARY TARGET CORPUS ARTIFACT_DIR - one libFuzzer target
# for `meson test --suite fuzz`: replays every input of CORPUS (seeds, and the
# crash inputs of fixed findings, which must pass), then fuzzes for
# FRC_FUZZ_SECONDS seconds (default 10).  New inputs go to a temporary
# directory, never into the source tree; a crash leaves its input in
# ARTIFACT_DIR/fuzz-TARGET-crash-<sha1> and fails the test.  The lockfile
# target also reads the real lockfiles in ../shared/real-locks beside the
# checkout, in place.  FRC_FUZZ_FLAGS adds libFuzzer flags (e.g. -jobs=2).
set -euo pipefail
bin=$1 target=$2 corpus=$3 artifacts=$4
seconds=${FRC_FUZZ_SECONDS:-10}
src=${FLOX_RUNC_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}

work=$(mktemp -d "${TMPDIR:-/tmp}/frc-fuzz-$target-XXXXXX")
trap 'rm -rf "$work"' EXIT
dirs=("$corpus")
if [ "$target" = lockfile ] && [ -d "$src/../shared/real-locks" ]; then
  dirs+=("$src/../shared/real-locks")
fi
dict=()
if [ -f "$corpus/../$target.dict" ]; then
  dict=(-dict="$corpus/../$target.dict")
fi

# LeakSanitizer suppressions: see the file for why each is there.
export LSAN_OPTIONS="suppressions=$src/tests/sanitizers/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# shellcheck disable=SC2086 # FRC_FUZZ_FLAGS is a list of flags
exec "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -error_exitcode=1 -timeout_exitcode=1 \
  -artifact_prefix="$artifacts/fuzz-$target-" "${dict[@]}" ${FRC_FUZZ_FLAGS:-} \
  "$work" "${dirs[@]}"
