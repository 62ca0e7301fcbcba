#!/usr/bin/env bash
#
# tests/bench/envdisk.sh [-n N] [FAMILY_DIR]
#
# The node disk of 10 related environments' trees, without containerd
# (docs/performance.md, "Lever: environment trees on disk"): the family of
# tests/bench/vs-image.sh's disk scenario (FAMILY_DIR, default
# /var/tmp/flox-runc-bench-envs/v2-family-220-86, built by
# tests/bench/lib/mkenv.sh when missing: 10 environments of 40 paths sharing
# 36), each `flox-runc prefetch`ed once on a warm Nix store, then `du -skx`
# of the store paths, the environment trees and the rest of flox-runc's part
# of the node store.  A/B: FLOX_RUNC_A and FLOX_RUNC_B (default: both this
# build), N rounds alternating, the order flipped every round, flox-runc's
# state removed before each side: the time of the first environment's
# prefetch (nothing shared yet), of the second's (36 of its 40 packages
# already in the first's tree), and the disk after all 10.
set -euo pipefail
export LC_ALL=C
N=3
FAMILY=/var/tmp/flox-runc-bench-envs/v2-family-220-86
while (($#)); do
	case "$1" in
	-n) N=$2; shift 2 ;;
	*) FAMILY=$1; shift ;;
	esac
done
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "usage: envdisk.sh [-n N] [FAMILY_DIR]" >&2; exit 2; }
# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
A=${FLOX_RUNC_A:-$SRCDIR/build/cmd/flox-runc/flox-runc}
B=${FLOX_RUNC_B:-$A}
suite_needs --root --nix jq
tmpdir_setup flox-runc-bench-envdisk
log() { echo "# $(date -u +%T) $*" >&2; }
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }
mib() { awk -v v="$1" 'BEGIN{printf "%.1f", v/1048576}'; }
du_b() { du -skx "$@" 2>/dev/null | awk '{s += $1} END {print s * 1024}'; }

if [[ ! -e "$FAMILY/.complete" ]]; then # as vs-image.sh builds it
	nixcache_build
	bash "$SRCDIR/tests/bench/lib/mkenv.sh" "$FAMILY" 220 86 "$NIX_FX" >"$TEST_TMPDIR/mkenv.log" 2>&1 ||
		{ tail -20 "$TEST_TMPDIR/mkenv.log" >&2; die "mkenv.sh family failed"; }
fi
for k in $(seq 0 9); do
	{ sed -n 1,36p "$FAMILY/paths"; sed -n "$((37 + 5 * k)),$((41 + 5 * k))p" "$FAMILY/paths"; } >"$TEST_TMPDIR/paths-f$k"
done
bash "$SRCDIR/tests/nix/serve-cache.sh" "$FAMILY/cache-xz" "$TEST_TMPDIR/cache.port" --quiet &
cleanup_pid $!
wait_for test -s "$TEST_TMPDIR/cache.port"
hub_start
for k in $(seq 0 9); do
	args=()
	while read -r p; do args+=("${p#/nix/store/*-}=$p"); done <"$TEST_TMPDIR/paths-f$k"
	make_lock "$TEST_TMPDIR/lock-f$k" "${args[@]}"
	hub_publish "bench/f$k" "$TEST_TMPDIR/lock-f$k" >/dev/null
done
STORE=$TEST_TMPDIR/store STATE=$TEST_TMPDIR/state
jq -n --arg rt "$(command -v runc)" --arg hub "$HUB_URL" --arg store "$STORE" --arg st "$STATE" \
	--arg sub "http://127.0.0.1:$(cat "$TEST_TMPDIR/cache.port")" --arg key "$(cat "$FAMILY/key.pub")" \
	'{runtime: $rt, floxhub_url: $hub, store_root: $store, state_dir: $st, substituters: [$sub],
	  trusted_public_keys: [$key], fresh_seconds: 86400, auth_window_seconds: 86400,
	  deadline_seconds: 300}' >"$TEST_TMPDIR/config.json"
export FLOX_RUNC_CONFIG=$TEST_TMPDIR/config.json
log "realising the family's $(wc -l <"$FAMILY/paths") paths once"
for k in $(seq 0 9); do "$A" prefetch "bench/f$k:1" >/dev/null; done

reset_state() {
	rm -rf "$STORE/nix/var/flox-runc" "$STORE/nix/var/nix/gcroots/flox-runc" \
		"$STATE/envs" "$STATE/views" "$STATE/containers"
	sync
}
for side in a b; do : >"$TEST_TMPDIR/first.$side"; : >"$TEST_TMPDIR/second.$side"; done
for i in $(seq "$N"); do
	sides="a b"
	((i % 2)) || sides="b a"
	for side in $sides; do
		bin=$A
		[[ $side == b ]] && bin=$B
		reset_state
		t0=$(now_us)
		"$bin" prefetch bench/f0:1 >/dev/null
		t1=$(now_us)
		"$bin" prefetch bench/f1:1 >/dev/null
		t2=$(now_us)
		echo $((t1 - t0)) >>"$TEST_TMPDIR/first.$side"
		echo $((t2 - t1)) >>"$TEST_TMPDIR/second.$side"
		for k in $(seq 2 9); do "$bin" prefetch "bench/f$k:1" >/dev/null; done
		sync
		total=$(du_b "$STORE" "$STATE")
		paths=$(du_b "$STORE/nix/store")
		trees=$(du_b "$STORE/nix/var/flox-runc")
		entries=$(find "$STORE/nix/var/flox-runc/envs" -mindepth 2 | wc -l)
		dirs=$(find "$STORE/nix/var/flox-runc/envs" -mindepth 2 -type d | wc -l)
		inodes=$(find "$STORE/nix/var/flox-runc/envs" -mindepth 2 -type l -printf '%i\n' | sort -u | wc -l)
		echo "$total $paths $trees $entries $dirs $inodes" >"$TEST_TMPDIR/disk.$side"
	done
done
echo "| side | first environment, prefetch | second environment, prefetch | node store + state after 10 | store paths | flox-runc trees (nix/var/flox-runc) | tree entries (directories) | symlink inodes | load |"
echo "|---|---|---|---|---|---|---|---|---|"
for side in a b; do
	read -r total paths trees entries dirs inodes <"$TEST_TMPDIR/disk.$side"
	echo "| ${side^^} | $(median <"$TEST_TMPDIR/first.$side") µs | $(median <"$TEST_TMPDIR/second.$side") µs | $(mib "$total") MiB | $(mib "$paths") MiB | $(mib "$trees") MiB | $entries ($dirs) | $inodes | $(cut -d' ' -f1-3 /proc/loadavg) |"
done
