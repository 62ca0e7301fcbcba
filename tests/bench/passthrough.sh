#!/usr/bin/env bash
#
# tests/bench/passthrough.sh [-n N] [--check] [RUNTIME...]
#
# Measures what flox-runc adds to a runtime call it passes through, against
# calling the real runtime directly, and flox-runc's own peak RSS.
# Prints a markdown report on stdout (progress on stderr).
#
#   RUNTIME    runc and/or crun (default: each of them that is installed)
#   -n N       timed calls per variant (default 200)
#   --check    exit 1 if a budget is exceeded (1 ms median added per call,
#              2 MiB peak RSS of a passthrough call)
#
# Environment: FLOX_RUNC (default: <repo>/build/cmd/flox-runc/flox-runc),
# FLOX_RUNC_SRCDIR (default: this script's ../..). Run as root.
# Needs: jq, busybox-static, the runtime(s), GNU time (/usr/bin/time, Debian
# package `time`) and a C compiler for the stub runtime (cc; falls back to
# busybox's `true` applet, whose own RSS is larger).
#
# Method
#  1. Real runtime. One running container (a sandbox-annotated busybox
#     bundle, so flox-runc passes it through). N x `RT --root R state ID` and
#     N x `flox-runc --root R state ID` (node config runtime = RT), strictly
#     interleaved with the order flipped every iteration, each call timed
#     with bash's $EPOCHREALTIME around a fork+exec (the same cost on both
#     sides). Reported: medians, difference of medians, median of the paired
#     differences, ratio.
#  2. Isolated overhead. The same with a stub runtime (a static binary that
#     exits 0 at once) so that the runtime's own time and noise are gone:
#     `stub state ID` vs `flox-runc state ID`, and `stub create --bundle B ID`
#     vs `flox-runc create --bundle B ID` (create is a verb flox-runc handles:
#     it reads config.json, sees a sandbox, and execs the runtime unchanged).
#     For scale, the same for a 5-line dynamically linked C program that
#     only execv()s the stub: the cost of one more dynamic exec, which any
#     wrapper pays.
#  3. Peak RSS: `/usr/bin/time -f %M flox-runc ... state ID` (and `create`)
#     with the stub as runtime, max over 20 runs. getrusage's ru_maxrss of
#     the child covers its whole life across execve: GNU time's forked child
#     before exec (the floor, measured as `/usr/bin/time -f %M stub`),
#     flox-runc, then the stub. Pointing the runtime at the stub instead of
#     runc (~8 MiB) keeps runc's RSS out of the number; what remains is an
#     upper bound of flox-runc's own peak, exact when above the floor.

set -euo pipefail
export LC_ALL=C

ORIG_ARGS=("$@")
N=200
CHECK=0
RUNTIMES=()
while (($#)); do
	case "$1" in
	-n)
		N=$2
		shift 2
		;;
	--check)
		CHECK=1
		shift
		;;
	-h | --help)
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	runc | crun)
		RUNTIMES+=("$1")
		shift
		;;
	*)
		echo "usage: $0 [-n N] [--check] [runc] [crun]" >&2
		exit 2
		;;
	esac
done

# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
FLOX_RUNC=${FLOX_RUNC:-$SRCDIR/build/cmd/flox-runc/flox-runc}

[[ "$(id -u)" == 0 ]] || {
	echo "passthrough.sh: run as root" >&2
	exit 2
}
[[ -x "$FLOX_RUNC" ]] || {
	echo "passthrough.sh: no flox-runc at $FLOX_RUNC (build it or set FLOX_RUNC)" >&2
	exit 2
}
[[ -x /usr/bin/time ]] || {
	echo "passthrough.sh: needs GNU time: apt-get install time" >&2
	exit 2
}
if ((${#RUNTIMES[@]} == 0)); then
	for r in runc crun; do
		command -v "$r" >/dev/null && RUNTIMES+=("$r")
	done
fi
for r in "${RUNTIMES[@]}"; do
	command -v "$r" >/dev/null || {
		echo "passthrough.sh: $r is not installed" >&2
		exit 2
	}
	if [[ "$r" == crun ]]; then
		crun_cgroup_workaround "$0" "${ORIG_ARGS[@]}"
	fi
done

tmpdir_setup flox-runc-bench

# ------------------------------------------------------------------ helpers

# median FILE: median of the integers in FILE (one per line)
median() {
	sort -n "$1" | awk '{a[NR]=$1} END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print a[(NR+1)/2]; else printf "%d\n", (a[NR/2] + a[NR/2+1]) / 2 }'
}

# bench_pair LABEL FILE-PREFIX -- CMD-A... -- CMD-B...
# Times N interleaved calls of A and B (order flipped each round, 10 warm-up
# rounds untimed). Writes PREFIX.a, PREFIX.b, PREFIX.d (B-A per round) in us.
bench_pair() {
	local prefix=$1
	shift
	[[ "$1" == -- ]] && shift
	local -a a=() b=()
	while [[ "$1" != -- ]]; do
		a+=("$1")
		shift
	done
	shift
	b=("$@")
	: >"$prefix.a"
	: >"$prefix.b"
	: >"$prefix.d"
	local i t0 t1 ta tb
	for ((i = 0; i < 10; i++)); do
		"${a[@]}" >/dev/null 2>&1 || true
		"${b[@]}" >/dev/null 2>&1 || true
	done
	# $EPOCHREALTIME is "seconds.micros"; without the dot it is micros.
	# Read inline: a $(...) helper would add a fork to every measurement.
	for ((i = 0; i < N; i++)); do
		if ((i % 2)); then
			t0=${EPOCHREALTIME/./}
			"${b[@]}" >/dev/null 2>&1 || true
			t1=${EPOCHREALTIME/./}
			tb=$((10#$t1 - 10#$t0))
			t0=${EPOCHREALTIME/./}
			"${a[@]}" >/dev/null 2>&1 || true
			t1=${EPOCHREALTIME/./}
			ta=$((10#$t1 - 10#$t0))
		else
			t0=${EPOCHREALTIME/./}
			"${a[@]}" >/dev/null 2>&1 || true
			t1=${EPOCHREALTIME/./}
			ta=$((10#$t1 - 10#$t0))
			t0=${EPOCHREALTIME/./}
			"${b[@]}" >/dev/null 2>&1 || true
			t1=${EPOCHREALTIME/./}
			tb=$((10#$t1 - 10#$t0))
		fi
		echo "$ta" >>"$prefix.a"
		echo "$tb" >>"$prefix.b"
		echo "$((tb - ta))" >>"$prefix.d"
	done
}

ROWS=()
RSS_RT=()
OVER=0

# row LABEL PREFIX [reference]: one markdown table row from bench_pair's
# files; a reference row is not held to the budget
row() {
	local label=$1 p=$2 ma mb md
	ma=$(median "$p.a")
	mb=$(median "$p.b")
	md=$(median "$p.d")
	local diff=$((mb - ma)) ratio
	ratio=$(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.3f", b / a }')
	local verdict=ok
	if [[ "${3:-}" == reference ]]; then
		verdict="(reference)"
	elif ((diff > 1000 || md > 1000)); then
		verdict="OVER"
		OVER=1
	fi
	ROWS+=("| $label | $N | $ma | $mb | $diff | $md | $ratio | $verdict |")
}

maxrss() {
	# maxrss CMD...: the largest %M (KiB) over 20 runs
	local i m max=0
	for ((i = 0; i < 20; i++)); do
		m=$(/usr/bin/time -f '%M' -o "$TEST_TMPDIR/rss" "$@" >/dev/null 2>&1 || true
			tail -n1 "$TEST_TMPDIR/rss")
		((m > max)) && max=$m
	done
	echo "$max"
}

# ------------------------------------------------------------------- stub

STUB="$TEST_TMPDIR/stub-runtime"
cat >"$TEST_TMPDIR/stub.c" <<'EOF'
int main(void) { return 0; }
EOF
cat >"$TEST_TMPDIR/execv.c" <<'EOF'
#include <unistd.h>
int main(int argc, char **argv) { (void)argc; execv(argv[1], argv + 1); return 127; }
EOF
EXECV=""
if cc -O2 -static -o "$STUB" "$TEST_TMPDIR/stub.c" >/dev/null 2>&1; then
	STUB_DESC="static C binary returning 0 (cc -O2 -static)"
	if cc -O2 -o "$TEST_TMPDIR/execv" "$TEST_TMPDIR/execv.c" >/dev/null 2>&1; then
		EXECV="$TEST_TMPDIR/execv"
	fi
else
	ln -s "$(command -v busybox)" "$TEST_TMPDIR/true"
	STUB="$TEST_TMPDIR/true"
	STUB_DESC="busybox-static's true applet (no C compiler found)"
fi
write_json "$TEST_TMPDIR/config-stub.json" "$(jq -n --arg rt "$STUB" '{runtime: $rt}')"

# ------------------------------------------------------------- measuring

SANDBOX="$TEST_TMPDIR/sandbox-bundle"
make_busybox_bundle "$SANDBOX" sleep 86400
bundle_annotate "$SANDBOX" io.kubernetes.cri.container-type sandbox

for rtname in "${RUNTIMES[@]}"; do
	rtbin=$(command -v "$rtname")
	root="$TEST_TMPDIR/root-$rtname"
	id="bench-$rtname"
	cfg="$TEST_TMPDIR/config-$rtname.json"
	write_json "$cfg" "$(jq -n --arg rt "$rtbin" '{runtime: $rt}')"
	cleanup_container "$rtbin" "$root" "$id"
	"$rtbin" --root "$root" run --detach --bundle "$SANDBOX" "$id" >/dev/null
	# sanity: both give the same bytes
	if ! cmp -s <("$rtbin" --root "$root" state "$id") \
		<(FLOX_RUNC_CONFIG=$cfg "$FLOX_RUNC" --root "$root" state "$id"); then
		echo "passthrough.sh: state via flox-runc differs from $rtname's" >&2
		exit 1
	fi
	diag "timing $N x state via $rtname and via flox-runc ..."
	export FLOX_RUNC_CONFIG="$cfg"
	bench_pair "$TEST_TMPDIR/$rtname-state" -- \
		"$rtbin" --root "$root" state "$id" -- \
		"$FLOX_RUNC" --root "$root" state "$id"
	row "\`state\` via $rtname ($("$rtbin" --version | head -1 | awk '{print $NF}'))" \
		"$TEST_TMPDIR/$rtname-state"
	RSS_RT+=("| for comparison: $rtname \`state\` itself | $(maxrss "$rtbin" --root "$root" state "$id") | |")
	"$rtbin" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
done

export FLOX_RUNC_CONFIG="$TEST_TMPDIR/config-stub.json"
sroot="$TEST_TMPDIR/root-stub"
diag "timing $N x state/create with the stub runtime ..."
bench_pair "$TEST_TMPDIR/stub-state" -- \
	"$STUB" --root "$sroot" state x -- \
	"$FLOX_RUNC" --root "$sroot" state x
row "\`state\`, stub runtime (flox-runc alone)" "$TEST_TMPDIR/stub-state"
if [[ -n "$EXECV" ]]; then
	# the floor of any dynamically linked exec wrapper on this machine
	bench_pair "$TEST_TMPDIR/execv" -- \
		"$STUB" --root "$sroot" state x -- \
		"$EXECV" "$STUB" --root "$sroot" state x
	row "reference: 5-line dynamic C \`execv\` wrapper, stub runtime" "$TEST_TMPDIR/execv" reference
fi
bench_pair "$TEST_TMPDIR/stub-create" -- \
	"$STUB" --root "$sroot" --log "$TEST_TMPDIR/log.json" --log-format json \
	create --bundle "$SANDBOX" --pid-file "$TEST_TMPDIR/pid" x -- \
	"$FLOX_RUNC" --root "$sroot" --log "$TEST_TMPDIR/log.json" --log-format json \
	create --bundle "$SANDBOX" --pid-file "$TEST_TMPDIR/pid" x
row "\`create\` of a sandbox, stub runtime (flox-runc alone)" "$TEST_TMPDIR/stub-create"

diag "measuring peak RSS ..."
RSS_FLOOR=$(maxrss "$STUB" state x)
RSS_STATE=$(maxrss "$FLOX_RUNC" --root "$sroot" state x)
RSS_CREATE=$(maxrss "$FLOX_RUNC" --root "$sroot" create --bundle "$SANDBOX" x)
rss_verdict() {
	if (($1 > 2048)); then
		OVER=1
		echo OVER
	else
		echo ok
	fi
}

# ----------------------------------------------------------------- report

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
frv=$(git -C "$SRCDIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
cat <<EOF
### flox-runc passthrough overhead

- flox-runc: \`$FLOX_RUNC\` (commit $frv, $(stat -c %s "$FLOX_RUNC") bytes)
- machine: ${cpu:-unknown CPU}, $(nproc) CPUs, kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")
- $N timed calls per column, interleaved, 10 warm-up rounds; times in µs (wall clock, fork+exec included on both sides)
- stub runtime: $STUB_DESC

| call | N | runtime direct, median | via flox-runc, median | added (difference of medians) | added (median of paired differences) | ratio | budget 1 ms |
|---|---|---|---|---|---|---|---|
EOF
printf '%s\n' "${ROWS[@]}"
cat <<EOF

| peak RSS (KiB, max of 20, \`/usr/bin/time -f %M\`) | KiB | budget 2048 KiB |
|---|---|---|
| flox-runc \`state\` (pure passthrough), stub runtime | $RSS_STATE | $(rss_verdict "$RSS_STATE") |
| flox-runc \`create\` of a sandbox (reads config.json), stub runtime | $RSS_CREATE | $(rss_verdict "$RSS_CREATE") |
| floor: the stub alone under GNU time | $RSS_FLOOR | |
EOF
printf '%s\n' "${RSS_RT[@]}"
echo
if ((OVER)); then
	echo "**Over budget.**"
	((CHECK)) && exit 1
else
	echo "All within budget."
fi
exit 0
