#!/usr/bin/env bash
# tests/check.sh [MESON_TEST_ARGS...] - the whole test suite: installs
# dependencies, builds, and runs every suite registered with meson (unit,
# integration...) as root.  Quick start command 2; .ci/run calls it.
#
# Without arguments it then runs the sanitizer stages (tests/fuzz/README.md):
#   build-asan  clang, -Db_sanitize=address,undefined, -fno-sanitize-recover:
#               the unit and integration suites; any sanitizer report, even
#               from a flox-runc a runtime or an engine ran, fails the stage
#   build-fuzz  clang -Dfuzz=true: every libFuzzer target replays its corpus
#               and fuzzes for FRC_FUZZ_SECONDS (default 10) seconds
# With arguments (e.g. `--suite unit`) only the plain build runs them, like
# `meson test`.  FRC_CHECK_SANITIZERS=1 runs the sanitizer stages anyway,
# FRC_CHECK_SANITIZERS=0 never.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
bash "$src/tests/deps.sh"
bash "$src/tests/build.sh" "$src/build"
sanitizers=${FRC_CHECK_SANITIZERS:-$([ $# -eq 0 ] && echo 1 || echo 0)}
meson test -C "$src/build" --print-errorlogs "$@"
[ "$sanitizers" = 1 ] || exit 0

# Reports go to files as well as stderr: a flox-runc started by runc, crun
# or a test script may have its stderr swallowed, the file stays.
logs=$src/build-asan/sanitizer-logs
rm -rf "$logs" && mkdir -p "$logs"
export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# LeakSanitizer suppressions: see the file for why each is there.
export LSAN_OPTIONS="suppressions=$src/tests/sanitizers/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
CC=clang bash "$src/tests/build.sh" "$src/build-asan" -Db_sanitize=address,undefined \
  -Dc_args=-fno-sanitize-recover=all -Db_lundef=false
status=0
meson test -C "$src/build-asan" --print-errorlogs --suite unit --suite integration || status=$?
if [ -n "$(ls -A "$logs")" ]; then
  echo "tests/check.sh: sanitizer reports in $logs:" >&2
  cat "$logs"/* >&2
  status=1
fi
[ "$status" = 0 ] || exit "$status"
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS # tests/fuzz/run.sh sets its own

CC=clang bash "$src/tests/build.sh" "$src/build-fuzz" -Dfuzz=true
exec meson test -C "$src/build-fuzz" --print-errorlogs --suite fuzz
