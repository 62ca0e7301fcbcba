# shellcheck shell=sh
#
# tests/lib/skip.sh - the one way a test suite may decline to run (POSIX sh,
# so the /bin/sh self-tests of tests/hub and tests/nix use it too; bash suites
# get it through tests/lib/common.sh).
#
#   skip_all REASON   Outside CI: print the TAP skip plan "1..0 # SKIP REASON"
#                     and exit 77 (meson shows the suite as skipped).
#                     With CI=true nothing may skip (tests fail closed: a
#                     missing tool is an install step in tests/deps.sh): print
#                     "Bail out! REASON" and exit 99, a hard failure.
#
# tap_skip (tests/lib/common.sh) follows the same rule for a single test.

skip_all() {
	if [ "${CI:-}" = true ]; then
		printf 'Bail out! %s (CI=true: no suite may skip; tests/deps.sh installs what the suites need)\n' "$*"
		exit 99
	fi
	printf '1..0 # SKIP %s\n' "$*"
	exit 77
}
