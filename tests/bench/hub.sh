#!/usr/bin/env bash
#
# tests/bench/hub.sh [-n N] [--rtt MS]   (meson benchmark `hub`)
#
# FloxHub round trips of a resolution (docs/performance.md, "Lever: FloxHub
# round trips"): `flox-runc resolve REF` against the test FloxHub (tests/hub:
# git http-backend behind its front) on 127.0.0.1, over http and over https
# (a throw-away certificate), with git's v2 server as the test hub configures
# it and with uploadpack.allowRefInWant (the server offers ref-in-want):
#   cold pinned   owner/name:1, empty state directory
#   cold live     owner/name, empty state directory
#   known hub     owner/name:1 on a node that resolved another environment
#                 of that hub (and kept its capabilities) and not this one
#   warm live     owner/name on a node that has it, fresh_seconds 0 (the
#                 branch is asked for: an unchanged one is verified)
#   20 at once    20 cold resolutions of owner/name started together,
#                 fresh_seconds and auth_window_seconds 0: time until all
#                 are done
# Per row: the requests and connections the hub logged (per resolution),
# and the median time.  A/B: FLOX_RUNC_A and FLOX_RUNC_B (default: both this
# build), alternating, the order flipped every round.  --rtt MS: the hub
# holds every request MS ms (its delay_ms knob), as a remote hub's round
# trip would (connection set-up is not modelled: loopback).
# Prints a markdown table on stdout, progress on stderr.
set -euo pipefail
export LC_ALL=C
N=11
RTT=0
while (($#)); do
	case "$1" in
	-n) N=$2; shift 2 ;;
	--rtt) RTT=$2; shift 2 ;;
	*) echo "usage: hub.sh [-n N] [--rtt MS]" >&2; exit 2 ;;
	esac
done
# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
A=${FLOX_RUNC_A:-$SRCDIR/build/cmd/flox-runc/flox-runc}
B=${FLOX_RUNC_B:-$A}
suite_needs --root jq python3 git openssl
tmpdir_setup flox-runc-bench-hub
log() { echo "# $*" >&2; }
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }

hub_start
# the same repositories over https, with a certificate for 127.0.0.1
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:TRUE \
	-keyout "$TEST_TMPDIR/tls.key" -out "$TEST_TMPDIR/tls.pem" 2>/dev/null
TLS_CTL=$TEST_TMPDIR/tls.ctl TLS_LOG=$TEST_TMPDIR/tls.log
python3 "$HUB_PY/floxhub.py" --root "$HUB_ROOT" --port 0 --port-file "$TEST_TMPDIR/tls.port" \
	--tls-cert "$TEST_TMPDIR/tls.pem" --tls-key "$TEST_TMPDIR/tls.key" --control "$TLS_CTL" \
	--log "$TLS_LOG" --quiet &
cleanup_pid $!
wait_for test -s "$TEST_TMPDIR/tls.port" || die "the TLS hub did not start"
: >>"$TLS_LOG"
TLS_URL=https://127.0.0.1:$(cat "$TEST_TMPDIR/tls.port")

# five generations, as an environment edited a few times has
for g in 1 2 3 4 5; do
	make_lock "$TEST_TMPDIR/l$g" "hello=/nix/store/${g}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-$g" \
		"tool=/nix/store/${g}bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-tool-$g"
	hub_publish bench/env "$TEST_TMPDIR/l$g" >/dev/null
done
hub_publish bench/other "$TEST_TMPDIR/l1" >/dev/null
STATE=$TEST_TMPDIR/state

# setup SCHEME SERVER: the node config and the hub's knobs; sets LOG, CTL
setup() {
	local url knobs
	if [[ $1 == https ]]; then url=$TLS_URL LOG=$TLS_LOG CTL=$TLS_CTL; else url=$HUB_URL LOG=$HUB_LOG CTL=$HUB_CTL; fi
	knobs=$(jq -nc --argjson d "$RTT" --argjson r "$([[ $2 == ref-in-want ]] && echo true || echo false)" \
		'{ref_in_want: $r} + (if $d > 0 then {delay_ms: $d} else {} end)')
	printf '%s\n' "$knobs" >"$CTL.new" && mv "$CTL.new" "$CTL"
	jq -n --arg hub "$url" --arg st "$STATE" --arg ca "$TEST_TMPDIR/tls.pem" \
		'{floxhub_url: $hub, state_dir: $st, ca_file: $ca, deadline_seconds: 60,
		  fresh_seconds: 0, auth_window_seconds: 0}' >"$TEST_TMPDIR/config.json"
	export FLOX_RUNC_CONFIG=$TEST_TMPDIR/config.json
}

# one BIN CASE: prints "µs requests connections" of one resolution (20 at
# once: of all of them)
one() {
	local bin=$1 case=$2 t0 t1 from i pids=()
	case $case in
	cold-pinned | cold-live | 20-at-once) rm -rf "$STATE" ;;
	warm-live) rm -rf "$STATE" && "$bin" resolve bench/env >/dev/null ;;
	known-hub) rm -rf "$STATE" && "$bin" resolve bench/other >/dev/null ;;
	esac
	from=$(wc -l <"$LOG")
	t0=$(now_us)
	case $case in
	cold-pinned | known-hub) "$bin" resolve bench/env:1 >/dev/null ;;
	cold-live | warm-live) "$bin" resolve bench/env >/dev/null ;;
	20-at-once)
		for ((i = 0; i < 20; i++)); do
			"$bin" resolve bench/env >/dev/null &
			pids+=($!)
		done
		for i in "${pids[@]}"; do wait "$i" || die "a resolution failed"; done
		;;
	esac
	t1=$(now_us)
	echo "$((t1 - t0)) $(tail -n +"$((from + 1))" "$LOG" | wc -l) $(tail -n +"$((from + 1))" "$LOG" | jq -r .client | sort -u | wc -l)"
}

ms() { awk -v u="$1" 'BEGIN {printf "%.1f", u / 1000}'; }
echo "### FloxHub round trips: $(date -u '+%Y-%m-%d %H:%M') UTC, $N rounds, medians"
echo
echo "\`FLOX_RUNC_A=$A FLOX_RUNC_B=$B tests/bench/hub.sh -n $N --rtt $RTT\`; load before: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| scheme | server | case | A requests (connections) | B requests (connections) | A ms | B ms | B/A |"
echo "|---|---|---|---|---|---|---|---|"
for scheme in http https; do
	for server in v2 ref-in-want; do
		setup "$scheme" "$server"
		for case in cold-pinned cold-live known-hub warm-live 20-at-once; do
			log "$scheme $server $case"
			: >"$TEST_TMPDIR/a" && : >"$TEST_TMPDIR/b"
			for ((r = 0; r < N; r++)); do
				if ((r % 2)); then
					one "$B" "$case" >>"$TEST_TMPDIR/b"
					one "$A" "$case" >>"$TEST_TMPDIR/a"
				else
					one "$A" "$case" >>"$TEST_TMPDIR/a"
					one "$B" "$case" >>"$TEST_TMPDIR/b"
				fi
			done
			ta=$(cut -d' ' -f1 "$TEST_TMPDIR/a" | median) tb=$(cut -d' ' -f1 "$TEST_TMPDIR/b" | median)
			echo "| $scheme | $server | $case | $(cut -d' ' -f2 "$TEST_TMPDIR/a" | median) ($(cut -d' ' -f3 "$TEST_TMPDIR/a" | median)) |" \
				"$(cut -d' ' -f2 "$TEST_TMPDIR/b" | median) ($(cut -d' ' -f3 "$TEST_TMPDIR/b" | median)) |" \
				"$(ms "$ta") | $(ms "$tb") | $(awk -v a="$ta" -v b="$tb" 'BEGIN {printf "%.2f", b / a}') |"
		done
	done
done
echo
echo "Load after: $(cut -d' ' -f1-3 /proc/loadavg)."
