#!/usr/bin/env bash
#
# tests/bench/hook.sh [-n N] [--paths 4,40,150] [--pin]
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
# With --pin, the closure from the view's pin (lib/viewpin.h, made once per
# size by tests' make-pin as create makes it: `--view-pin` before
# `--view-store`) against the same binary binding path by path, in the
# same rounds.
#
# Environment: FLOX_RUNC (default: <repo>/build/cmd/flox-runc/flox-runc).
# Run as root.  Prints a markdown table on stdout, progress on stderr.
set -euo pipefail
export LC_ALL=C
N=41 PATHS_ARG=4,40,150 PIN=0
while (($#)); do
	case "$1" in
	-n) N=$2; shift 2 ;;
	--paths) PATHS_ARG=$2; shift 2 ;;
	--pin) PIN=1; shift ;;
	*) echo "usage: hook.sh [-n N] [--paths 4,40,150] [--pin]" >&2; exit 2 ;;
	esac
done
# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
FLOX_RUNC=${FLOX_RUNC:-$SRCDIR/build/cmd/flox-runc/flox-runc}
suite_needs --root --flox-runc
tmpdir_setup flox-runc-bench-hook
BASE=${FLOX_RUNC_BASE:-}
MAKE_PIN=${MAKE_PIN:-$(dirname "$FLOX_RUNC")/../../tests/make-pin}
if ((PIN)); then
	[[ -z $BASE ]] || die "--pin compares with the same binary: no FLOX_RUNC_BASE"
	[[ -x $MAKE_PIN ]] || die "no $MAKE_PIN (ninja -C build tests/make-pin)"
	BASE=pin
fi
base_named=0
if [[ -n $BASE && $BASE != pin ]] && ! grep -aq -- --view-store "$BASE"; then base_named=1; fi

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }
# setup P: T/P/{store/nix/store,view/store,rootfs/nix}, the names in T/P/names
setup() {
	local d=$TEST_TMPDIR/$1 i h n
	mkdir -p "$d/store/nix/store" "$d/view/store" "$d/rootfs/nix" "$d/state"
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
	local bin=$1 d=$TEST_TMPDIR/$2 args pin ino
	if [[ $bin == "$BASE" ]] && ((base_named)); then
		args=$(tr '\n' ' ' <"$d/names")
	elif [[ $bin == pin ]]; then
		bin=$FLOX_RUNC
		# by the bench shell's root, as create names it by its own
		read -r pin ino <"$d/pin"
		args="--view-pin /proc/$$/root$pin $ino --view-store $d/view/store"
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
echo "\`tests/bench/hook.sh -n $N --paths $PATHS_ARG$( ((PIN)) && echo ' --pin')\`$([[ -n $BASE && $BASE != pin ]] && echo ' with FLOX_RUNC_BASE'); load before: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
if ((PIN)); then
	echo "| closure paths | path by path | from the pin | pin minus path by path |"
	echo "|---|---|---|---|"
elif [[ -n $BASE ]]; then
	echo "| closure paths | flox-runc | base | flox-runc minus base |"
	echo "|---|---|---|---|"
else
	echo "| closure paths | the hook, fork+exec to exit |"
	echo "|---|---|"
fi
for p in "${SIZES[@]}"; do
	setup "$p"
	if ((PIN)); then
		"$MAKE_PIN" "$TEST_TMPDIR/$p/state" "$TEST_TMPDIR/$p/store" "k$p" "$TEST_TMPDIR/$p/view" >"$TEST_TMPDIR/$p/pin" ||
			die "make-pin failed at $p paths"
		read -r pin ino <"$TEST_TMPDIR/$p/pin"
		cleanup_add umount -l "$pin"
		# the pinned clone's top on the container's store: the pin was used
		# shellcheck disable=SC2016 # expanded by the inner bash
		unshare -m --propagation private bash -c 'mount --bind "$1/view" "$1/rootfs/nix" &&
			"$2" bind-closure "$1/rootfs" "$1/view" "$1/store" --view-pin "$3" "$4" --view-store "$1/view/store" &&
			mountpoint -q "$1/rootfs/nix/store"' _ "$TEST_TMPDIR/$p" "$FLOX_RUNC" "/proc/$$/root$pin" "$ino" ||
			die "the hook did not clone the pin at $p paths"
	fi
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
		if ((PIN)); then
			echo "| $p | $a µs | $b µs | $((b - a)) µs |"
		else
			echo "| $p | $a µs | $b µs | $((a - b)) µs |"
		fi
	else
		echo "| $p | $a µs |"
	fi
done
echo
echo "Load after: $(cut -d' ' -f1-3 /proc/loadavg)."
