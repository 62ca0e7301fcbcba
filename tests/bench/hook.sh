#!/usr/bin/env bash
#
# tests/bench/hook.sh [-n N] [--paths 4,40,150]
#
# The closure hook alone (`flox-runc bind-closure`, lib/bindhook.h), the
# way create names it (--view-store), without the runtime around it: a fake
# node store of P store paths (directories and files), the view's store of
# their mount points, a fake rootfs whose /nix is the view bound; each run
# in a fresh private mount namespace (`unshare -m`), timed with bash's
# $EPOCHREALTIME around the hook's fork+exec to its exit (the namespace's
# teardown after is untimed).  Medians of N runs per closure size.
# With FLOX_RUNC_BASE=<another flox-runc>, that binary in the same rounds,
# alternating, the order flipped every round (a lever's A/B); a base that
# does not know --view-store gets the closure as store paths.
#
# Environment: FLOX_RUNC (default: <repo>/build/cmd/flox-runc/flox-runc).
# Run as root.  Prints a markdown table on stdout, progress on stderr.
set -euo pipefail
export LC_ALL=C
N=41 PATHS_ARG=4,40,150
while (($#)); do
	case "$1" in
	-n) N=$2; shift 2 ;;
	--paths) PATHS_ARG=$2; shift 2 ;;
	*) echo "usage: hook.sh [-n N] [--paths 4,40,150]" >&2; exit 2 ;;
	esac
done
# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
FLOX_RUNC=${FLOX_RUNC:-$SRCDIR/build/cmd/flox-runc/flox-runc}
suite_needs --root --flox-runc
tmpdir_setup flox-runc-bench-hook
BASE=${FLOX_RUNC_BASE:-}
base_named=0
if [[ -n $BASE ]] && ! grep -aq -- --view-store "$BASE"; then base_named=1; fi

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }
# setup P: T/P/{store/nix/store,view/store,rootfs/nix}, the names in T/P/names
setup() {
	local d=$TEST_TMPDIR/$1 i h n
	mkdir -p "$d/store/nix/store" "$d/view/store" "$d/rootfs/nix"
	for ((i = 0; i < $1; i++)); do
		# a 32-character nix32 hash from the index
		h=$(printf '%032d' "$i")
		n=${h:0:28}$(printf '%04d' "$i" | tr 0-9 abcdfghijk)-pkg$i
		if ((i % 10 == 9)); then
			echo "file $i" >"$d/store/nix/store/$n"
			: >"$d/view/store/$n"
		else
			mkdir -p "$d/store/nix/store/$n/bin" "$d/view/store/$n"
		fi
		echo "/nix/store/$n"
	done >"$d/names"
}
# one BIN P: the hook's time in µs
one() {
	local bin=$1 d=$TEST_TMPDIR/$2 args
	if [[ $bin == "$BASE" ]] && ((base_named)); then
		args=$(tr '\n' ' ' <"$d/names")
	else
		args="--view-store $d/view/store"
	fi
	# shellcheck disable=SC2016 # expanded by the inner bash
	unshare -m --propagation private bash -c '
		mount --bind "$2/view" "$2/rootfs/nix" || exit 1
		t0=$EPOCHREALTIME
		"$1" bind-closure "$2/rootfs" "$2/view" "$2/store" $3 || exit 1
		t1=$EPOCHREALTIME
		echo $(( ${t1/./} - ${t0/./} ))' _ "$bin" "$d" "$args"
}

IFS=, read -ra SIZES <<<"$PATHS_ARG"
echo "### hook.sh: $(date -u '+%Y-%m-%d %H:%M') UTC, $N runs each, medians"
echo
echo "\`tests/bench/hook.sh -n $N --paths $PATHS_ARG\`${BASE:+ with FLOX_RUNC_BASE}; load before: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
if [[ -n $BASE ]]; then
	echo "| closure paths | flox-runc | base | flox-runc minus base |"
	echo "|---|---|---|---|"
else
	echo "| closure paths | the hook, fork+exec to exit |"
	echo "|---|---|"
fi
for p in "${SIZES[@]}"; do
	setup "$p"
	one "$FLOX_RUNC" "$p" >/dev/null || die "the hook failed at $p paths"
	echo "# $p paths: $N runs" >&2
	: >"$TEST_TMPDIR/a" && : >"$TEST_TMPDIR/b"
	for ((r = 0; r < N; r++)); do
		if [[ -n $BASE ]] && ((r % 2)); then
			one "$BASE" "$p" >>"$TEST_TMPDIR/b"
			one "$FLOX_RUNC" "$p" >>"$TEST_TMPDIR/a"
		else
			one "$FLOX_RUNC" "$p" >>"$TEST_TMPDIR/a"
			[[ -z $BASE ]] || one "$BASE" "$p" >>"$TEST_TMPDIR/b"
		fi
	done
	a=$(median <"$TEST_TMPDIR/a")
	if [[ -n $BASE ]]; then
		b=$(median <"$TEST_TMPDIR/b")
		echo "| $p | $a µs | $b µs | $((a - b)) µs |"
	else
		echo "| $p | $a µs |"
	fi
done
echo
echo "Load after: $(cut -d' ' -f1-3 /proc/loadavg)."
