#!/usr/bin/env bash
# tests/unit/private-tmp.sh EXE [ARGS...]: runs one unit test program with
# a /tmp of its own, so that nothing it leaves there outlives it, even when
# a test fails and its Check child exits before the fixture's teardown.
#
# The program runs in a mount namespace of its own (unshare -m, private
# propagation) in which /tmp is a bind of a fresh directory on the same
# file system (the same semantics as /tmp: ext4, +T, RENAME_EXCHANGE...).
# This script removes that directory when the program ends, whatever its
# status.  It holds a lock on the directory while the test runs; a
# directory left by a run that was killed with this script (meson's timeout
# kills the process group) has no holder and is removed by the next run.
set -euo pipefail
base=/var/tmp/flox-runc-unit
mkdir -p "$base"
# Under the base's lock (meson runs the programs in parallel): the sweep,
# then this run's directory, made and locked before anyone can sweep it.
exec 8>"$base/.lock"
flock 8
for d in "$base"/*/; do
	[[ -d $d ]] || continue
	# a free lock: its run is gone
	if flock -n "$d" true 2>/dev/null; then rm -rf -- "$d"; fi
done
dir=$(mktemp -d "$base/XXXXXXXX")
exec 9<"$dir"
flock 9
exec 8>&-
chmod 1777 "$dir"
# A checkout or build under /tmp (a CI clone in a temporary directory) stays
# visible: each top-level entry of /tmp that holds the build directory (the
# cwd), the source tree or the ../shared beside it is bound back in place.
src=$(cd "$(dirname "$0")/../.." && pwd -P)
keep=()
for p in "$(pwd -P)" "$src" "$(dirname "$src")/shared"; do
	[[ -e $p ]] || continue
	p=$(realpath -- "$p")
	[[ $p == /tmp/?* ]] || continue
	top=${p#/tmp/}
	top=${top%%/*}
	[[ " ${keep[*]-} " == *" $top "* ]] || keep+=("$top")
done
status=0
unshare -m --propagation private sh -c '
	dir=$1 n=$2
	shift 2
	while [ "$n" -gt 0 ]; do
		mkdir "$dir/$1" && mount --bind "/tmp/$1" "$dir/$1" || exit 125
		shift
		n=$((n - 1))
	done
	mount --rbind "$dir" /tmp && exec "$@"' sh "$dir" "${#keep[@]}" "${keep[@]}" "$@" 9<&- || status=$?
rm -rf -- "$dir"
exit "$status"
