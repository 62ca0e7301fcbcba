#!/usr/bin/env bash
#
# tests/integration/flox-select.sh - Flox parity of the selection (issue 8,
# part 7): every real lockfile in ../shared/real-locks (read in place), on
# x86_64-linux, aarch64-linux and a system no lockfile supports, in run, dev
# and the default mode, through `flox-runc resolve --lockfile --json` (no
# hub, no Nix), against expectations tests/flox/selection.py derives from
# Flox's rules on its own (builder.pl, buildenv.rs; docs/flox-compatibility.md).
#
# Environment: FLOX_RUNC, FLOX_RUNC_SRCDIR.  TAP output.  Under CI=true a
# missing lockfile folder fails; elsewhere it skips (77).

set -euo pipefail
SRCDIR=${FLOX_RUNC_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LOCKS=${FLOX_RUNC_REAL_LOCKS:-$SRCDIR/../shared/real-locks}

[[ -x "${FLOX_RUNC:-}" ]] || { echo "Bail out! FLOX_RUNC must name the flox-runc binary"; exit 99; }
if ! compgen -G "$LOCKS/*.lock" >/dev/null; then
	if [[ "${CI:-}" == true ]]; then
		echo "Bail out! no real lockfiles in $LOCKS (CI has ../shared beside the checkout)"
		exit 99
	fi
	echo "1..0 # SKIP no real lockfiles in $LOCKS"
	exit 77
fi
command -v python3 >/dev/null || { echo "Bail out! python3 is missing (tests/deps.sh installs it)"; exit 99; }
exec python3 "$SRCDIR/tests/flox/selection.py" "$FLOX_RUNC" "$LOCKS"
