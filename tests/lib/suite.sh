# shellcheck shell=bash
#
# tests/lib/suite.sh - the preamble every shell suite shares (tests/integration,
# tests/bench). A suite starts with
#
#     set -euo pipefail
#     # shellcheck source=tests/lib/suite.sh
#     . "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
#
# which sets SRCDIR (the repository; FLOX_RUNC_SRCDIR, else this file's ../..)
# and exports it as FLOX_RUNC_SRCDIR, then loads the shared helpers: common.sh
# (TAP, cleanup, assertions, skip_all), hub.sh (the test FloxHub), nixcache.sh
# (Nix fixtures and binary caches) and engines.sh (containerd, CRI, podman).
# Loading them only defines functions and variables.
#
# Then, before tmpdir_setup, the suite states what it needs; each function
# calls skip_all, which fails under CI=true (tests/lib/skip.sh):
#   suite_needs [--root] [--flox-runc] [--nix] [CMD...]
#                     --root: must run as uid 0; --flox-runc: $FLOX_RUNC names
#                     an executable (a broken setup: Bail out); --nix: the Nix
#                     fixtures' tools (nixcache_require); CMD: commands on PATH.
#   suite_runtime RT  RT (the suite's argument) must be runc or crun (usage
#                     error otherwise); sets RT_NAME and RT_BIN (skip_all when
#                     it is not installed).

SRCDIR=${FLOX_RUNC_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export FLOX_RUNC_SRCDIR=$SRCDIR
# shellcheck source=tests/lib/common.sh
. "$SRCDIR/tests/lib/common.sh"
# shellcheck source=tests/lib/hub.sh
. "$SRCDIR/tests/lib/hub.sh"
# shellcheck source=tests/lib/nixcache.sh
. "$SRCDIR/tests/lib/nixcache.sh"
# shellcheck source=tests/lib/engines.sh
. "$SRCDIR/tests/lib/engines.sh"

suite_needs() {
	local -a cmds=()
	while (($#)); do
		case "$1" in
		--root) skip_unless_root ;;
		--flox-runc)
			[[ -n "${FLOX_RUNC:-}" && -x "$FLOX_RUNC" ]] ||
				die "FLOX_RUNC must name the flox-runc binary (got '${FLOX_RUNC:-}')"
			;;
		--nix) nixcache_require ;;
		*) cmds+=("$1") ;;
		esac
		shift
	done
	((${#cmds[@]} == 0)) || require_cmd "${cmds[@]}"
}

suite_runtime() {
	RT_NAME=${1:-}
	case "$RT_NAME" in
	runc | crun) ;;
	*)
		echo "usage: $0 runc|crun" >&2
		exit 2
		;;
	esac
	# shellcheck disable=SC2034 # used by the suites
	RT_BIN=$(command -v "$RT_NAME" 2>/dev/null) || skip_all "$RT_NAME is not installed (tests/deps.sh)"
}
