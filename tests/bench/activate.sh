#!/usr/bin/env bash
#
# tests/bench/activate.sh [-n ROUNDS] [-r RUNS]
#
# The activation's own cost in a container's start (issue 12, warm start):
# the process flox-runc makes of a command whose environment has a var that
# needs bash (and, in the hook rows, an on-activate hook exporting one
# variable), run directly on the node with the node's static bash, against
# the command alone and bash alone. Each row at two environment sizes: a
# plain container's few variables, and 600 more (a pod with Kubernetes'
# service links for ~300 services). Rows alternate within each round (order
# flipped every round); each figure is the median over rounds of each
# round's median of RUNS spawns (activate-gen time).
#
#   ACTIVATE_GEN       the generator (default: the build's tests/activate-gen)
#   ACTIVATE_GEN_BASE  another build's generator: adds its hook rows (A/B)
#   FLOX_RUNC_BASH     the bash (default /bin/bash-static)
#
# The record rows: the hook row as a container's first activation, which
# records itself at /run/flox/activation for execs to attach to (every row
# runs in a private mount namespace with a tmpfs at /run, as create's
# /run/flox tmpfs).
#
# Prints a markdown report on stdout; cleans up its temporary directory.
set -euo pipefail
# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"

ROUNDS=5 RUNS=200
while (($#)); do
	case $1 in
	-n) ROUNDS=$2; shift 2 ;;
	-r) RUNS=$2; shift 2 ;;
	*) echo "usage: $0 [-n ROUNDS] [-r RUNS]" >&2; exit 2 ;;
	esac
done
GEN=${ACTIVATE_GEN:-$(dirname "${FLOX_RUNC:-$SRCDIR/build/cmd/flox-runc/flox-runc}")/../../tests/activate-gen}
BASH_STATIC=${FLOX_RUNC_BASH:-/bin/bash-static}
[[ -x $GEN ]] || die "no generator at $GEN: build first (ninja -C build)"
suite_needs "$BASH_STATIC"
tmpdir_setup flox-runc-bench-activate
T=$TEST_TMPDIR
mkdir -p "$T/env/activate.d" "$T/env/bin"
printf 'export GREETING="hello $HOME"\n' >"$T/env/activate.d/envrc"
printf 'export FROM_HOOK=1\n' >"$T/env/activate.d/hook-on-activate"

rows=()
for size in 0 600; do
	mkdir -p "$T/direct-$size" "$T/bash-$size"
	"$GEN" gen "$T/env" "$BASH_STATIC" 1 "$size" "$T/direct-$size"
	cp "$T/direct-$size/env" "$T/bash-$size/env"
	printf '/bin/true\0' >"$T/direct-$size/argv"
	printf '%s\0-c\0exec "$@"\0x\0/bin/true\0' "$BASH_STATIC" >"$T/bash-$size/argv"
	mkdir -p "$T/vars-$size" "$T/hook-$size"
	"$GEN" gen "$T/env" "$BASH_STATIC" 0 "$size" "$T/vars-$size"
	"$GEN" gen "$T/env" "$BASH_STATIC" 1 "$size" "$T/hook-$size"
	mkdir -p "$T/record-$size"
	"$GEN" gen "$T/env" "$BASH_STATIC" 1 "$size" "$T/record-$size" 1
	rows+=("direct-$size" "bash-$size" "vars-$size" "hook-$size" "record-$size")
	if [[ -n ${ACTIVATE_GEN_BASE:-} ]]; then
		mkdir -p "$T/basehook-$size"
		"$ACTIVATE_GEN_BASE" gen "$T/env" "$BASH_STATIC" 1 "$size" "$T/basehook-$size"
		rows+=("basehook-$size")
	fi
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A per
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 0; r < ROUNDS; r++)); do
	order=("${rows[@]}")
	((r % 2)) && mapfile -t order < <(printf '%s\n' "${rows[@]}" | tac)
	for row in "${order[@]}"; do
		runs=$RUNS
		[[ $row == *-600 ]] && runs=$((RUNS / 4 > 5 ? RUNS / 4 : 5))
		# shellcheck disable=SC2016 # expanded by the inner sh
		m=$(unshare -m --propagation private sh -c 'mount -t tmpfs -o mode=755 tmpfs /run && mkdir /run/flox && exec "$@"' _ \
			"$GEN" time "$T/$row" "$runs" | median) || die "$row failed"
		[[ $row != record-* ]] || [[ -n $m ]] || die "$row failed"
		per[$row]+="$m "
	done
done

label() {
	case $1 in
	direct-*) echo "the command alone (/bin/true)" ;;
	bash-*) echo "static bash, \`exec \"\$@\"\`" ;;
	vars-*) echo "activation: a var, no hook" ;;
	hook-*) echo "activation: a var and a hook" ;;
	record-*) echo "activation: a var and a hook, recorded for execs (a container's first)" ;;
	basehook-*) echo "activation: a var and a hook, ACTIVATE_GEN_BASE" ;;
	esac
}
echo "#### activate.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $ROUNDS rounds of $RUNS runs (600-variable rows: a quarter), medians"
echo
echo "bash: $("$BASH_STATIC" --version | head -1); load before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| process | environment | median | over the command alone |"
echo "|---|---|---|---|"
for row in "${rows[@]}"; do
	size=${row##*-}
	m=$(tr ' ' '\n' <<<"${per[$row]}" | grep . | median)
	d=$(tr ' ' '\n' <<<"${per[direct-$size]}" | grep . | median)
	printf '| %s | %s | %d µs | +%d µs |\n' "$(label "$row")" "$([[ $size == 0 ]] && echo "3 variables" || echo "603 variables")" "$m" $((m - d))
done
