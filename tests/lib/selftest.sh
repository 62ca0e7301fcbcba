#!/usr/bin/env bash
# tests/lib/selftest.sh - tests fail closed: skip_all (tests/lib/skip.sh) and
# tap_skip (tests/lib/common.sh) skip outside CI and fail under CI=true, from
# bash and from /bin/sh; and no suite skips any other way (its own `exit 77`
# or TAP "# SKIP" line) or starts without the shared preamble
# (tests/lib/suite.sh).  No root.  TAP.
# shellcheck disable=SC2016 # the scripts run by bash -c are single-quoted on purpose
set -euo pipefail
SRCDIR=${FLOX_RUNC_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
n=0
fail=0
check() { # NAME EXPECTED-RC EXPECTED-OUTPUT-PREFIX CMD...
	local name=$1 rc=$2 prefix=$3 out got=0
	shift 3
	out=$("$@" 2>/dev/null) || got=$?
	n=$((n + 1))
	if [[ "$got" == "$rc" && "$out" == "$prefix"* ]]; then
		echo "ok $n - $name"
	else
		fail=1
		echo "not ok $n - $name"
		echo "# exit $got (expected $rc), output: $out"
	fi
}
bash_skip='set -euo pipefail; . "$1/tests/lib/common.sh"; skip_all "no widget"'
sh_skip='. "$1/tests/lib/skip.sh"; skip_all "no widget"'
tap='set -euo pipefail; . "$1/tests/lib/common.sh"; tap_skip one "no widget"; tap_done'

check "bash: skip_all skips outside CI (77, TAP skip plan)" 77 "1..0 # SKIP no widget" \
	env -u CI bash -c "$bash_skip" x "$SRCDIR"
check "bash: skip_all fails under CI=true (99, Bail out!)" 99 "Bail out! no widget" \
	env CI=true bash -c "$bash_skip" x "$SRCDIR"
check "sh: skip_all skips outside CI" 77 "1..0 # SKIP no widget" \
	env -u CI sh -c "$sh_skip" x "$SRCDIR"
check "sh: skip_all fails under CI=true" 99 "Bail out! no widget" \
	env CI=true sh -c "$sh_skip" x "$SRCDIR"
check "tap_skip is a skipped test outside CI" 0 "ok 1 - one # SKIP no widget" \
	env -u CI bash -c "$tap" x "$SRCDIR"
check "tap_skip is a failed test under CI=true" 1 "not ok 1 - one" \
	env CI=true bash -c "$tap" x "$SRCDIR"
check "require_cmd of a missing command fails under CI=true" 99 "Bail out! missing command" \
	env CI=true bash -c 'set -euo pipefail; . "$1/tests/lib/common.sh"; require_cmd no-such-command-frc' x "$SRCDIR"

# Every suite: the shared preamble, and no skip of its own.
others=""
for f in "$SRCDIR"/tests/integration/*.sh "$SRCDIR"/tests/bench/*.sh; do
	rel=${f#"$SRCDIR"/}
	grep -q '^\. "$(dirname "${BASH_SOURCE\[0\]}")/../lib/suite.sh"$' "$f" || others+=" $rel(no suite.sh)"
	if grep -vE '^[[:space:]]*#' "$f" | grep -E '(^|[^_a-z])exit 77|echo .*# SKIP|printf .*# SKIP' >/dev/null; then
		others+=" $rel(skips by itself)"
	fi
done
for f in "$SRCDIR"/tests/hub/selftest.sh "$SRCDIR"/tests/nix/selftest.sh; do
	if grep -vE '^[[:space:]]*#' "$f" | grep -E '(^|[^_a-z])exit 77|echo .*SKIP' >/dev/null; then
		others+=" ${f#"$SRCDIR"/}(skips by itself)"
	fi
done
n=$((n + 1))
if [[ -z "$others" ]]; then
	echo "ok $n - every suite uses tests/lib/suite.sh and skips only through skip_all"
else
	fail=1
	echo "not ok $n - suites outside the shared preamble or skipping by themselves:$others"
fi
echo "1..$n"
exit "$fail"
