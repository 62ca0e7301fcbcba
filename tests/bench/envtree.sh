#!/usr/bin/env bash
#
# tests/bench/envtree.sh [-n N] [--cold] [--strace] [ENV_DIR]
#
# What a cold create does on the node after Nix has realised the packages
# (docs/performance.md, "Lever: environment build"): `flox-runc prefetch`
# of an environment built by tests/bench/lib/mkenv.sh (default
# /var/tmp/flox-runc-bench-envs/100-40) on a warm Nix store, flox-runc's
# own state removed before each round (environment tree, record, view, GC
# roots; the hub cache stays, so no network but the no-op realisation).
# A/B: FLOX_RUNC_A and FLOX_RUNC_B (default: both this build), alternating,
# the order flipped every round; medians.  --strace: also the file-system
# calls of one round of each, counted by strace -c -f.  --cold: the node
# store emptied too before each round (Nix realises everything again).
set -euo pipefail
export LC_ALL=C
N=9
STRACE=0
COLD=0
ENV_DIR=/var/tmp/flox-runc-bench-envs/100-40
while (($#)); do
	case "$1" in
	-n) N=$2; shift 2 ;;
	--strace) STRACE=1; shift ;;
	--cold) COLD=1; shift ;;
	*) ENV_DIR=$1; shift ;;
	esac
done
# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
A=${FLOX_RUNC_A:-$SRCDIR/build/cmd/flox-runc/flox-runc}
B=${FLOX_RUNC_B:-$A}
suite_needs --root --nix jq strace
tmpdir_setup flox-runc-bench-envtree
log() { echo "# $*" >&2; }
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }

if [[ ! -s "$ENV_DIR/paths" ]]; then # built as vs-image.sh builds it: NAME is MIB-PATHS
	nixcache_build
	n=$(basename "$ENV_DIR")
	bash "$SRCDIR/tests/bench/lib/mkenv.sh" "$ENV_DIR" "${n%-*}" "${n#*-}" "$NIX_FX" >/dev/null 2>&1
fi
CACHE=$ENV_DIR/cache
[[ -d "$CACHE" ]] || CACHE=$ENV_DIR/cache-xz # the bench helper's v2-* environments
bash "$SRCDIR/tests/nix/serve-cache.sh" "$CACHE" "$TEST_TMPDIR/cache.port" --quiet &
cleanup_pid $!
wait_for test -s "$TEST_TMPDIR/cache.port"
hub_start
args=()
while read -r p; do args+=("${p#/nix/store/*-}=$p"); done <"$ENV_DIR/paths"
make_lock "$TEST_TMPDIR/lock" "${args[@]}"
hub_publish bench/env "$TEST_TMPDIR/lock" >/dev/null
STORE=$TEST_TMPDIR/store STATE=$TEST_TMPDIR/state
jq -n --arg rt "$(command -v runc)" --arg hub "$HUB_URL" --arg store "$STORE" --arg st "$STATE" \
	--arg sub "http://127.0.0.1:$(cat "$TEST_TMPDIR/cache.port")" --arg key "$(cat "$ENV_DIR/key.pub")" \
	'{runtime: $rt, floxhub_url: $hub, store_root: $store, state_dir: $st, substituters: [$sub],
	  trusted_public_keys: [$key], fresh_seconds: 86400, auth_window_seconds: 86400,
	  deadline_seconds: 300}' >"$TEST_TMPDIR/config.json"
export FLOX_RUNC_CONFIG=$TEST_TMPDIR/config.json
log "realising $(wc -l <"$ENV_DIR/paths") paths once"
"$A" prefetch bench/env:1 >/dev/null
files=$(find "$STORE/nix/var/flox-runc/envs" | wc -l)

reset_state() {
	((COLD)) && rm -rf "$STORE"
	rm -rf "$STORE/nix/var/flox-runc" "$STORE/nix/var/nix/gcroots/flox-runc" \
		"$STATE/envs" "$STATE/views" "$STATE/containers"
	sync
}
: >"$TEST_TMPDIR/t.a"
: >"$TEST_TMPDIR/t.b"
for i in $(seq "$N"); do
	sides="a b"
	((i % 2)) || sides="b a"
	for side in $sides; do
		bin=$A
		[[ $side == b ]] && bin=$B
		reset_state
		t0=$(now_us)
		"$bin" prefetch bench/env:1 >/dev/null
		t1=$(now_us)
		echo $((t1 - t0)) >>"$TEST_TMPDIR/t.$side"
	done
done
ta=$(median <"$TEST_TMPDIR/t.a")
tb=$(median <"$TEST_TMPDIR/t.b")
echo "| environment | entries in the tree (A) | A median µs | B median µs | B/A | load |"
echo "|---|---|---|---|---|---|"
echo "| $(basename "$ENV_DIR") | $files | $ta | $tb | $(awk -v a="$ta" -v b="$tb" 'BEGIN{printf "%.2f", b/a}') | $(cut -d' ' -f1-3 /proc/loadavg) |"
if ((STRACE)); then
	fsops=mkdir,mkdirat,symlink,symlinkat,openat,open,creat,rename,renameat,renameat2,unlink,unlinkat,rmdir,fsync,fdatasync,syncfs,utimensat,fchmod,fchmodat,chmod,link,linkat
	for side in a b; do
		bin=$A
		[[ $side == b ]] && bin=$B
		reset_state
		strace -f -c -o "$TEST_TMPDIR/strace.$side" -e trace="$fsops" "$bin" prefetch bench/env:1 >/dev/null
		echo
		echo "strace -c -f, side $side (file-system calls, flox-runc and its children):"
		echo '```'
		cat "$TEST_TMPDIR/strace.$side"
		echo '```'
	done
fi
