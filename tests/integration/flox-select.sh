#!/usr/bin/env bash
#
# tests/integration/flox-select.sh - Flox parity of the selection (issue 8,
# part 7): every real lockfile in ../shared/real-locks (read in place), on
# x86_64-linux, aarch64-linux and a system no lockfile supports, in run, dev
# and the default mode, through `flox-runc resolve --lockfile --json` (no
# hub, no Nix), against expectations tests/flox/selection.py derives from
# Flox's rules on its own (builder.pl, buildenv.rs; docs/flox-compatibility.md).
#
# Environment: FLOX_RUNC, FLOX_RUNC_SRCDIR.  TAP output.  A missing lockfile
# folder skips (77), and fails under CI=true (tests/lib/skip.sh).

set -euo pipefail
# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
suite_needs --flox-runc python3
LOCKS=${FLOX_RUNC_REAL_LOCKS:-$SRCDIR/../shared/real-locks}
compgen -G "$LOCKS/*.lock" >/dev/null ||
	skip_all "no real lockfiles in $LOCKS (CI has ../shared beside the checkout)"
exec python3 "$SRCDIR/tests/flox/selection.py" "$FLOX_RUNC" "$LOCKS"
