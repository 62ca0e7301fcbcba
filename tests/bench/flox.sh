#!/usr/bin/env bash
#
# tests/bench/flox.sh [-n N] [--check] [--only cold] [RUNTIME]
#
# --only cold runs part 3 alone (COLD_ROUNDS rounds; COLD_NOINST=0 leaves
# out the node without the install; FLOX_RUNC_BENCH_COLD_LOG=DIR keeps the
# `--debug --log` of each timed prefetch there, as SIDE-ROUND.log (SIDE fr,
# base or noinst), and its start and end (µs since the epoch) in
# SIDE-ROUND.t: phases, a few file appends more on those sides).
# FLOX_RUNC_BASE=other/flox-runc adds an A/B of the stub-runtime rows and of
# the warm creates through the real runtime: that binary against $FLOX_RUNC
# in the same rounds, alternating (a lever's gain).  With
# FLOX_RUNC_BASE_CONFIG_EDIT=JQ-FILTER the base side runs with the node
# config edited so (an A/B of a setting: FLOX_RUNC_BASE=$FLOX_RUNC
# FLOX_RUNC_BASE_CONFIG_EDIT='.closure_hook_min_paths = 1000000').
#
# The Flox-path budgets (BRIEF.md), against the real runtime (default runc),
# the test FloxHub and a signed binary cache on 127.0.0.1:
#  1. warm create: `flox-runc create` of a Flox bundle whose environment is
#     already on the node (pinned generation, credential verified within
#     auth_window_seconds: no network round trip) vs the runtime's own
#     `create` of the bundle flox-runc produces; N interleaved rounds, a
#     fresh bundle copy each time, delete untimed.  Budget: 10 ms added.
#     Again for an environment whose closure has 150 store paths (a package
#     referencing 148 others, built by Nix here): 150 read-only binds in the spec;
#     the runtime's create of that bundle against the small one is what the
#     binds cost the runtime.  And with the stub runtime for an environment
#     of 150 packages (the same closure, each leaf a package of its own):
#     what rooting the container costs per package.
#  2. exec rewrite: `flox-runc exec --process F ID true` vs the runtime's
#     `exec --process F ID true` into one running Flox container (F copied
#     fresh each call).  Budget: 2 ms added.
#     Both again with a stub runtime (a static program that exits 0), which
#     isolates what flox-runc itself adds from runc's noisy tens of ms.
#  3. cold materialisation: `flox-runc prefetch` on a node where flox-runc is
#     installed (its static bash in the store, rooted) and no environment is
#     (resolution cached, so no hub traffic) vs `nix-store --realise` of the
#     same paths into a store emptied the same way (Nix's GC), the sides in
#     turn, their order rotated every round.  Budget: orchestration overhead
#     within 10% of Nix's own time.
# Prints a markdown report on stdout, progress on stderr.
set -euo pipefail
export LC_ALL=C
N=30
ARGS=("$@") # for crun_cgroup_workaround's re-exec: the loop below shifts them away
CHECK=0
ONLY=
RT_NAME=runc
while (($#)); do
	case "$1" in
	-n) N=$2; shift 2 ;;
	--check) CHECK=1; shift ;;
	--only) ONLY=$2; shift 2 ;;
	*) RT_NAME=$1; shift ;;
	esac
done

# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
FLOX_RUNC=${FLOX_RUNC:-$SRCDIR/build/cmd/flox-runc/flox-runc}
suite_runtime "$RT_NAME"
RT=$RT_BIN
suite_needs --root --flox-runc
[[ "$RT_NAME" == crun ]] && crun_cgroup_workaround "$0" "${ARGS[@]}"
tmpdir_setup flox-runc-bench-flox
log() { echo "# $*" >&2; }

FIX=${FLOX_RUNC_NIX_FIXTURES:-/var/tmp/flox-runc-nix-fixtures}
bash "$SRCDIR/tests/nix/build-cache.sh" "$FIX" >&2
bash "$SRCDIR/tests/nix/serve-cache.sh" "$FIX/cache" "$TEST_TMPDIR/cache.port" --quiet &
cleanup_pid $!
wait_for test -s "$TEST_TMPDIR/cache.port"
hub_start
python3 "$SRCDIR/tests/nix/make-lock.py" --packages "$FIX/packages.json" hello busybox -o "$TEST_TMPDIR/lock"
hub_publish bench/hello "$TEST_TMPDIR/lock" >/dev/null
# the same packages with a var that needs evaluation (as most environments
# have vars or a hook): its build pins the node's static bash too
python3 "$SRCDIR/tests/nix/make-lock.py" --packages "$FIX/packages.json" hello busybox \
	--var 'GREETING=hello from $HOSTNAME' -o "$TEST_TMPDIR/lock.var"
hub_publish bench/hellovar "$TEST_TMPDIR/lock.var" >/dev/null

STORE=$TEST_TMPDIR/store
write_config() {
	jq -n --arg rt "$RT" --arg hub "$HUB_URL" --arg store "$STORE" --arg st "$TEST_TMPDIR/state" \
		--arg sub "http://127.0.0.1:$(cat "$TEST_TMPDIR/cache.port")" --arg key "$(cat "$FIX/key.pub")" \
		'{runtime: $rt, floxhub_url: $hub, store_root: $store, state_dir: $st, substituters: [$sub],
		  trusted_public_keys: [$key], auth_window_seconds: 86400, fresh_seconds: 86400}' >"$TEST_TMPDIR/config.json"
}
write_config
export FLOX_RUNC_CONFIG=$TEST_TMPDIR/config.json
BASE_CONFIG=$FLOX_RUNC_CONFIG
if [[ -n ${FLOX_RUNC_BASE_CONFIG_EDIT:-} ]]; then
	BASE_CONFIG=$TEST_TMPDIR/config-base.json
	jq "$FLOX_RUNC_BASE_CONFIG_EDIT" "$FLOX_RUNC_CONFIG" >"$BASE_CONFIG"
fi
ROOT=$TEST_TMPDIR/rt-root
cleanup_add rm -rf "$ROOT"

mkdir -p "$TEST_TMPDIR/pristine/rootfs"
(cd "$TEST_TMPDIR/pristine" && "$RT" spec >/dev/null 2>&1 || runc spec)
bundle_jq "$TEST_TMPDIR/pristine" '.process.terminal = false | .process.args = ["sleep", "1000"]
  | .annotations = {"flox.dev/environment": "bench/hello:1"} | del(.linux.namespaces[] | select(.type == "network"))'

# the order of the two sides flips every round
order() { if (($1 % 2)); then echo rt fr; else echo fr rt; fi; }
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }

# warm_create ENV TAG: prime ENV (resolve, realise, build; keep the projected
# spec for the runtime side in $TEST_TMPDIR/projected-TAG), then N
# interleaved rounds of the runtime's create of the projected bundle and
# flox-runc's create of the pristine one.  Sets CREATE_RT and CREATE_FR
# (medians, µs).
warm_create() {
	local env=$1 tag=$2 i side b t0 t1
	rm -rf "$TEST_TMPDIR/pristine-$tag" "$TEST_TMPDIR/projected-$tag"
	cp -r "$TEST_TMPDIR/pristine" "$TEST_TMPDIR/pristine-$tag"
	bundle_jq "$TEST_TMPDIR/pristine-$tag" '.annotations["flox.dev/environment"] = $e' --arg e "$env"
	cp -r "$TEST_TMPDIR/pristine-$tag" "$TEST_TMPDIR/projected-$tag"
	# prime stays while its projected spec is reused: its FLOX_ENV_CACHE is mounted
	"$FLOX_RUNC" --root "$ROOT" create --bundle "$TEST_TMPDIR/projected-$tag" "prime-$tag" >/dev/null
	log "warm create of $env: $N rounds"
	: >"$TEST_TMPDIR/c.rt"
	: >"$TEST_TMPDIR/c.fr"
	: >"$TEST_TMPDIR/c.base"
	for i in $(seq "$N"); do
		sides=$(order "$i")
		if [[ -n ${FLOX_RUNC_BASE:-} ]]; then # the base binary too, first or last in turn
			if ((i % 2)); then sides="base $sides"; else sides="$sides base"; fi
		fi
		for side in $sides; do
			b=$TEST_TMPDIR/b-$side-$i
			mkdir -p "$b/rootfs"
			if [[ $side == rt ]]; then
				cp "$TEST_TMPDIR/projected-$tag/config.json" "$b/config.json"
				t0=$(now_us)
				"$RT" --root "$ROOT" create --bundle "$b" "c-$side-$i" >/dev/null
				t1=$(now_us)
				"$RT" --root "$ROOT" delete --force "c-$side-$i"
			else
				bin=$FLOX_RUNC cfg=$FLOX_RUNC_CONFIG
				[[ $side == base ]] && bin=$FLOX_RUNC_BASE cfg=$BASE_CONFIG
				cp "$TEST_TMPDIR/pristine-$tag/config.json" "$b/config.json"
				t0=$(now_us)
				FLOX_RUNC_CONFIG=$cfg "$bin" --root "$ROOT" create --bundle "$b" "c-$side-$i" >/dev/null
				t1=$(now_us)
				FLOX_RUNC_CONFIG=$cfg "$bin" --root "$ROOT" delete --force "c-$side-$i"
			fi
			echo $((t1 - t0)) >>"$TEST_TMPDIR/c.$side"
			rm -rf "$b"
		done
	done
	"$FLOX_RUNC" --root "$ROOT" delete --force "prime-$tag"
	CREATE_RT=$(median <"$TEST_TMPDIR/c.rt")
	CREATE_FR=$(median <"$TEST_TMPDIR/c.fr")
	CREATE_BASE=$([[ -s "$TEST_TMPDIR/c.base" ]] && median <"$TEST_TMPDIR/c.base" || echo 0)
}
if [[ $ONLY != cold ]]; then # parts 1 and 2 (not indented: --only cold's guard)
warm_create bench/hello:1 small
create_rt=$CREATE_RT
create_fr=$CREATE_FR
create_base=$CREATE_BASE

# The same for an environment whose closure has 150 store paths: hello,
# busybox and bench-top, which references 148 leaf packages (built here by
# Nix in the node store, busybox as the builder, like tests/nix): 150 binds
# in the spec, 3 packages pinned.  The runtime's own create of that bundle
# against the small one is what the binds cost the runtime.
log "a 150-path environment"
mkdir -p "$TEST_TMPDIR/nixconf" "$TEST_TMPDIR/bb/bin"
printf 'build-users-group =\nsandbox = true\nsandbox-paths =\nsubstituters =\nmax-jobs = 4\n' >"$TEST_TMPDIR/nixconf/nix.conf"
cp "$(command -v busybox)" "$TEST_TMPDIR/bb/bin/busybox"
cat >"$TEST_TMPDIR/big.nix" <<'EOF'
{ bb, system, leaves ? 148, top ? "bench-top" }:
let
  mk = name: script: builtins.derivation {
    inherit name system;
    builder = "${builtins.storePath bb}/bin/busybox";
    args = [ "sh" "-euc" script ];
  };
  ls = builtins.genList (i: let n = toString i; in
    mk "bench-leaf-${n}" "mkdir -p $out/share/bench-leaf-${n}; echo ${n} > $out/share/bench-leaf-${n}/f") leaves;
in
mk top ("mkdir -p $out/share/${top}; "
  + builtins.concatStringsSep "" (map (l: "echo ${l} >> $out/share/${top}/refs; ") ls))
EOF
# build_big [LEAVES TOP]: bench-top (or TOP) and its 148 (LEAVES) leaves into
# the node store; prints its path
build_big() {
	local bb drv
	bb=$(NIX_CONF_DIR=$TEST_TMPDIR/nixconf nix-store --store "$STORE" --add "$TEST_TMPDIR/bb")
	drv=$(NIX_CONF_DIR=$TEST_TMPDIR/nixconf nix-instantiate --store "$STORE" --argstr bb "$bb" \
		--argstr system "$(uname -m)-linux" --arg leaves "${1:-148}" --argstr top "${2:-bench-top}" "$TEST_TMPDIR/big.nix")
	NIX_CONF_DIR=$TEST_TMPDIR/nixconf nix-store --store "$STORE" --realise "$drv" 2>/dev/null
}
top=$(build_big)
jq --arg p "$top" '.packages += [.packages[0] + {install_id: "bench-top", attr_path: "bench-top",
	pname: "bench-top", name: "bench-top", outputs: {out: $p}}]' "$TEST_TMPDIR/lock" >"$TEST_TMPDIR/lock-big"
hub_publish bench/big "$TEST_TMPDIR/lock-big" >/dev/null
# bench/many: hello, busybox and the 148 leaves, each a package of its own:
# 150 packages pinned (the same closure), what a container's GC root costs
# per package
nix-store --store "$STORE" -q --references "$top" | grep . >"$TEST_TMPDIR/leaves"
jq --rawfile ls "$TEST_TMPDIR/leaves" '.packages += [($ls | split("\n") | map(select(. != "")))[] as $p
	| ($p | sub("^/nix/store/[a-z0-9]+-"; "")) as $n
	| .packages[0] + {install_id: $n, attr_path: $n, pname: $n, name: $n, outputs: {out: $p}}]' \
	"$TEST_TMPDIR/lock" >"$TEST_TMPDIR/lock-many"
hub_publish bench/many "$TEST_TMPDIR/lock-many" >/dev/null
# bench/mid: the same with 38 leaves (a 41-path closure; FLOX_RUNC_BENCH_MID_LEAVES),
# between the closure hook's threshold and the big one
MID_LEAVES=${FLOX_RUNC_BENCH_MID_LEAVES:-38}
mid=$(build_big "$MID_LEAVES" "bench-mid-$MID_LEAVES")
jq --arg p "$mid" '.packages += [.packages[0] + {install_id: "bench-mid", attr_path: "bench-mid",
	pname: "bench-mid", name: "bench-mid", outputs: {out: $p}}]' "$TEST_TMPDIR/lock" >"$TEST_TMPDIR/lock-mid"
hub_publish bench/mid "$TEST_TMPDIR/lock-mid" >/dev/null
warm_create bench/mid:1 mid
create_rt_mid=$CREATE_RT
create_fr_mid=$CREATE_FR
create_base_mid=$CREATE_BASE
warm_create bench/big:1 big
# closure paths bound (by spec mounts or the closure hook, which since the
# pinned view names no path): the closure in bench/big's environment record
big_closure=$(jq -rs --arg t "$top" 'map(select((.closure // []) | index($t)) | .closure | length) | max // 0' \
	"$TEST_TMPDIR"/state/envs/*.json)
create_rt_big=$CREATE_RT
create_fr_big=$CREATE_FR
create_base_big=$CREATE_BASE

log "exec rewrite: $N rounds"
cp -r "$TEST_TMPDIR/pristine" "$TEST_TMPDIR/run"
"$FLOX_RUNC" --root "$ROOT" create --bundle "$TEST_TMPDIR/run" ex >/dev/null
cleanup_container "$FLOX_RUNC" "$ROOT" ex
"$FLOX_RUNC" --root "$ROOT" start ex
write_process_file "$TEST_TMPDIR/proc.json" true
: >"$TEST_TMPDIR/e.rt"
: >"$TEST_TMPDIR/e.fr"
for i in $(seq "$N"); do
	for side in $(order "$i"); do
		cp "$TEST_TMPDIR/proc.json" "$TEST_TMPDIR/p.json"
		bin=$RT
		[[ $side == fr ]] && bin=$FLOX_RUNC
		if [[ $side == rt ]]; then
			# the runtime side runs the already-activated process
			"$FLOX_RUNC" --root "$ROOT" exec --process "$TEST_TMPDIR/p.json" ex 2>/dev/null || true
			cp "$TEST_TMPDIR/p.json" "$TEST_TMPDIR/p2.json"
			cp "$TEST_TMPDIR/p2.json" "$TEST_TMPDIR/p.json"
		fi
		t0=$(now_us)
		"$bin" --root "$ROOT" exec --process "$TEST_TMPDIR/p.json" ex
		t1=$(now_us)
		echo $((t1 - t0)) >>"$TEST_TMPDIR/e.$side"
	done
done
exec_rt=$(median <"$TEST_TMPDIR/e.rt")
exec_fr=$(median <"$TEST_TMPDIR/e.fr")
"$FLOX_RUNC" --root "$ROOT" delete --force ex

fi # parts 1 and 2

log "cold materialisation: ${COLD_ROUNDS:-5} rounds each (COLD_ROUNDS)"
ncpu=$(nproc)
NIX_JOBS=$((2 * ncpu < 4 ? 4 : (ncpu >= 8 ? 16 : 2 * ncpu)))
paths=$(jq -r '.packages[].store_paths[]?, .packages[].outputs[]?' "$TEST_TMPDIR/lock" | sort -u)
# The node's install, as `flox-runc install` leaves it: the static bash in
# the store under the node's GC root gcroots/flox-runc/node, and bash.json.
# Snapshotted once (make_node_template, after a create added the bash);
# empty_node STORE then starts each round from it: no environment's record,
# tree, view, root or path, the Nix database of the node kept.  Nix alone
# gets the same store.  (Not `nix-store --gc` per round: Nix 2.8's GC scans
# every process's /proc links and fails on one it cannot read.)
gc_store() { # STORE: Nix's GC, a few tries
	local t
	for t in 1 2 3 4 5; do
		nix-store --store "$1" --gc >/dev/null 2>"$TEST_TMPDIR/gc.err" && nixcache_drop_unrooted "$1" && return 0
		sleep 1
	done
	die "nix-store --gc of $1 failed: $(grep -v -e warning "$TEST_TMPDIR/gc.err")"
}
make_node_template() {
	rm -rf "$TEST_TMPDIR/state/envs" "$TEST_TMPDIR/state/containers" "$TEST_TMPDIR/state/views" \
		"$STORE/nix/var/flox-runc" "$STORE/nix/var/nix/gcroots/flox-runc/envs" "$STORE/nix/var/nix/gcroots/flox-runc/containers"
	gc_store "$STORE"
	rm -rf "$TEST_TMPDIR/node-template"
	cp -a "$STORE" "$TEST_TMPDIR/node-template"
	cp "$TEST_TMPDIR/state/bash.json" "$TEST_TMPDIR/node-template.bash.json"
	# and a node without the install: no bash in the store
	rm -rf "$TEST_TMPDIR/noinst-template"
	cp -a "$STORE" "$TEST_TMPDIR/noinst-template"
	rm -rf "$TEST_TMPDIR/noinst-template/nix/var/nix/gcroots/flox-runc/node"
	gc_store "$TEST_TMPDIR/noinst-template"
}
empty_node() { # STORE [noinst]
	rm -rf "$TEST_TMPDIR/state/envs" "$TEST_TMPDIR/state/containers" "$TEST_TMPDIR/state/views" "$1"
	if [[ ${2:-} == noinst ]]; then
		cp -a "$TEST_TMPDIR/noinst-template" "$1"
		rm -f "$TEST_TMPDIR/state/bash.json"
	else
		cp -a "$TEST_TMPDIR/node-template" "$1"
		cp "$TEST_TMPDIR/node-template.bash.json" "$TEST_TMPDIR/state/bash.json"
	fi
	chattr +T "$1/nix/store" 2>/dev/null || true
}
nix_alone() {
	# the same concurrency and store-directory flag as flox-runc's realisation
	# (lib/store.c frc_store_substitution_jobs; lib/environment.c)
	# shellcheck disable=SC2086
	XDG_CACHE_HOME=$TEST_TMPDIR/state/cache nix-store --store "$TEST_TMPDIR/nixonly" \
		--option substituters "http://127.0.0.1:$(cat "$TEST_TMPDIR/cache.port")" \
		--option trusted-public-keys "$(cat "$FIX/key.pub")" --option require-sigs true \
		--option max-jobs "$NIX_JOBS" --realise $paths >/dev/null 2>&1
}
rm -rf "$TEST_TMPDIR/nixonly"
# the node's install: the first create on the node added the bash (or
# `flox-runc install` did); the rounds below keep it
rm -rf "$STORE"
"$FLOX_RUNC" prefetch bench/hellovar:1 >/dev/null
make_node_template
: >"$TEST_TMPDIR/m.nix"
: >"$TEST_TMPDIR/m.fr"
: >"$TEST_TMPDIR/m.base"
# noinst: the same on a node without flox-runc's install (the create adds
# the static bash to the store itself, as the first create on such a node does)
cold_sides="nix fr noinst"
[[ ${COLD_NOINST:-1} == 1 ]] || cold_sides="nix fr"
[[ -z ${FLOX_RUNC_BASE:-} ]] || cold_sides="$cold_sides base"
COLD_LOG=${FLOX_RUNC_BENCH_COLD_LOG:-}
[[ -z $COLD_LOG ]] || mkdir -p "$COLD_LOG"
: >"$TEST_TMPDIR/m.noinst"
for i in $(seq "${COLD_ROUNDS:-5}"); do
	# the sides rotated one place every round: each side in every position
	# as often, and none right after itself (a side that follows itself
	# finds its own previous tree just deleted, which on this journal-less
	# ext4 makes its symlinks up to 10x slower: docs/performance.md,
	# "Lever: cold materialisation (mat5)")
	read -ra cs <<<"$cold_sides"
	for side in "${cs[@]:i % ${#cs[@]}}" "${cs[@]:0:i % ${#cs[@]}}"; do
		empty_node "$TEST_TMPDIR/nixonly"
		empty_node "$STORE" "$side"
		[[ ${COLD_SYNC:-1} == 0 ]] || sync # COLD_SYNC=0: the earlier rounds' writes still dirty
		bin=$FLOX_RUNC cfg=$FLOX_RUNC_CONFIG
		[[ $side == base ]] && bin=$FLOX_RUNC_BASE cfg=$BASE_CONFIG
		t0=$(now_us)
		logargs=()
		[[ -z $COLD_LOG || $side == nix ]] || logargs=(--debug --log "$COLD_LOG/$side-$i.log")
		if [[ $side == nix ]]; then nix_alone; else FLOX_RUNC_CONFIG=$cfg "$bin" "${logargs[@]}" prefetch bench/hellovar:1 >/dev/null || die "prefetch ($side) failed"; fi
		t1=$(now_us)
		echo $((t1 - t0)) >>"$TEST_TMPDIR/m.$side"
		[[ -z $COLD_LOG || $side == nix ]] || echo "$t0 $t1" >"$COLD_LOG/$side-$i.t"
	done
done
rm -rf "$TEST_TMPDIR/nixonly"
mat_nix=$(median <"$TEST_TMPDIR/m.nix")
mat_fr=$(median <"$TEST_TMPDIR/m.fr")
mat_noinst=$([[ -s "$TEST_TMPDIR/m.noinst" ]] && median <"$TEST_TMPDIR/m.noinst" || echo 0)
if [[ $ONLY == cold ]]; then
	cat <<MD
### flox-runc cold materialisation (--only cold, ${COLD_ROUNDS:-5} rounds; load $(cut -d' ' -f1-3 /proc/loadavg))

| measure | Nix alone, median µs | via flox-runc, median µs | added |
|---|---|---|---|
| cold materialisation (hello + busybox, a var: pins the node's bash) | $mat_nix | $mat_fr | $(((mat_fr - mat_nix) * 100 / mat_nix)) % ($((mat_fr - mat_nix)) µs) |
MD
	[[ ! -s "$TEST_TMPDIR/m.noinst" ]] || echo "| the same on a node without \`flox-runc install\` | $mat_nix | $mat_noinst | $(((mat_noinst - mat_nix) * 100 / mat_nix)) % |"
	if [[ -n ${FLOX_RUNC_BASE:-} ]]; then
		mat_base=$(median <"$TEST_TMPDIR/m.base")
		echo "| A/B: \`$FLOX_RUNC_BASE\` (before) → \`$FLOX_RUNC\` (after), same rounds | $mat_base | $mat_fr | $((mat_base - mat_fr)) µs gained ($(((mat_base - mat_nix) * 100 / mat_nix)) % → $(((mat_fr - mat_nix) * 100 / mat_nix)) %) |"
	fi
	# the same from each round's own differences (the sides of a round ran
	# back to back: steadier than a difference of medians on a busy machine)
	pair() { paste "$TEST_TMPDIR/m.$1" "$TEST_TMPDIR/m.$2" | awk '{print $1 - $2}' | median; }
	echo
	echo "Medians of the rounds' differences: flox-runc − Nix alone $(pair fr nix) µs$([[ -z ${FLOX_RUNC_BASE:-} ]] || echo "; before − Nix alone $(pair base nix) µs; before − after $(pair base fr) µs")."
	for s in nix fr base; do [[ ! -s "$TEST_TMPDIR/m.$s" ]] || log "m.$s: $(sort -n "$TEST_TMPDIR/m.$s" | tr '\n' ' ')"; done
	exit $((CHECK && (mat_fr - mat_nix) * 100 / mat_nix > 10))
fi

log "flox-runc alone (stub runtime): $N rounds"
printf 'int main(void){return 0;}\n' >"$TEST_TMPDIR/stub.c"
cc -O2 -static -o "$TEST_TMPDIR/stub" "$TEST_TMPDIR/stub.c"
jq --arg s "$TEST_TMPDIR/stub" '.runtime = $s' "$TEST_TMPDIR/config.json" >"$TEST_TMPDIR/stub.json"
"$FLOX_RUNC" --root "$ROOT" prefetch bench/hello:1 >/dev/null
# the cold rounds emptied the store: bench-top and its leaves again
build_big >/dev/null
"$FLOX_RUNC" --root "$ROOT" prefetch bench/big:1 >/dev/null
"$FLOX_RUNC" --root "$ROOT" prefetch bench/many:1 >/dev/null
rm -rf "$TEST_TMPDIR/pristine-many"
cp -r "$TEST_TMPDIR/pristine" "$TEST_TMPDIR/pristine-many"
bundle_jq "$TEST_TMPDIR/pristine-many" '.annotations["flox.dev/environment"] = "bench/many:1"'
many_pins=$(jq '.packages | length' "$TEST_TMPDIR/lock-many")
: >"$TEST_TMPDIR/sc.st"
: >"$TEST_TMPDIR/sc.fr"
: >"$TEST_TMPDIR/se.st"
: >"$TEST_TMPDIR/se.fr"
: >"$TEST_TMPDIR/sc.big"
: >"$TEST_TMPDIR/sc.many"
mkdir -p "$TEST_TMPDIR/sb/rootfs"
cp -r "$TEST_TMPDIR/pristine" "$TEST_TMPDIR/stub-ex"
FLOX_RUNC_CONFIG=$TEST_TMPDIR/stub.json "$FLOX_RUNC" --root "$ROOT" create --bundle "$TEST_TMPDIR/stub-ex" stub-ex >/dev/null
# stub_side SRC DST OUT_NEW OUT_BASE CMD...: copies SRC to DST, times CMD with
# $FLOX_RUNC for the word FR into OUT_NEW and, with FLOX_RUNC_BASE set, the
# same with that binary into OUT_BASE, the two in an order that flips every
# round ($i); a create is deleted again, untimed
stub_side() {
	local src=$1 dst=$2 new=$3 base=$4 sides="new" s bin t0 t1
	shift 4
	if [[ -n ${FLOX_RUNC_BASE:-} ]]; then
		if ((i % 2)); then sides="base new"; else sides="new base"; fi
	fi
	for s in $sides; do
		bin=$FLOX_RUNC
		[[ $s == base ]] && bin=$FLOX_RUNC_BASE
		cp "$src" "$dst"
		t0=$(now_us)
		FLOX_RUNC_CONFIG=$TEST_TMPDIR/stub.json "${@/#FR/$bin}"
		t1=$(now_us)
		if [[ $s == new ]]; then echo $((t1 - t0)) >>"$new"; else echo $((t1 - t0)) >>"$base"; fi
		if [[ " $* " == *" create "* ]]; then
			FLOX_RUNC_CONFIG=$TEST_TMPDIR/stub.json "$bin" --root "$ROOT" delete "${*: -1}" >/dev/null
		fi
	done
}
for i in $(seq "$N"); do
	cp "$TEST_TMPDIR/pristine/config.json" "$TEST_TMPDIR/sb/config.json"
	t0=$(now_us)
	"$TEST_TMPDIR/stub" --root "$ROOT" create --bundle "$TEST_TMPDIR/sb" "s$i"
	t1=$(now_us)
	echo $((t1 - t0)) >>"$TEST_TMPDIR/sc.st"
	stub_side "$TEST_TMPDIR/pristine/config.json" "$TEST_TMPDIR/sb/config.json" \
		"$TEST_TMPDIR/sc.fr" "$TEST_TMPDIR/sc.fr.base" FR --root "$ROOT" create --bundle "$TEST_TMPDIR/sb" "s$i"
	stub_side "$TEST_TMPDIR/pristine-big/config.json" "$TEST_TMPDIR/sb/config.json" \
		"$TEST_TMPDIR/sc.big" "$TEST_TMPDIR/sc.big.base" FR --root "$ROOT" create --bundle "$TEST_TMPDIR/sb" "sb$i"
	stub_side "$TEST_TMPDIR/pristine-many/config.json" "$TEST_TMPDIR/sb/config.json" \
		"$TEST_TMPDIR/sc.many" "$TEST_TMPDIR/sc.many.base" FR --root "$ROOT" create --bundle "$TEST_TMPDIR/sb" "sm$i"
	cp "$TEST_TMPDIR/proc.json" "$TEST_TMPDIR/p.json"
	t0=$(now_us)
	"$TEST_TMPDIR/stub" --root "$ROOT" exec --process "$TEST_TMPDIR/p.json" stub-ex
	t1=$(now_us)
	echo $((t1 - t0)) >>"$TEST_TMPDIR/se.st"
	stub_side "$TEST_TMPDIR/proc.json" "$TEST_TMPDIR/p.json" \
		"$TEST_TMPDIR/se.fr" "$TEST_TMPDIR/se.fr.base" FR --root "$ROOT" exec --process "$TEST_TMPDIR/p.json" stub-ex
done
FLOX_RUNC_CONFIG=$TEST_TMPDIR/stub.json "$FLOX_RUNC" --root "$ROOT" delete stub-ex >/dev/null
sc_st=$(median <"$TEST_TMPDIR/sc.st")
sc_fr=$(median <"$TEST_TMPDIR/sc.fr")
sc_big=$(median <"$TEST_TMPDIR/sc.big")
sc_many=$(median <"$TEST_TMPDIR/sc.many")
se_st=$(median <"$TEST_TMPDIR/se.st")
se_fr=$(median <"$TEST_TMPDIR/se.fr")

verdict() { if (($1 <= $2)); then echo ok; else echo "OVER"; fi; }
add_create=$((create_fr - create_rt))
add_create_big=$((create_fr_big - create_rt_big))
add_exec=$((exec_fr - exec_rt))
over=$(((mat_fr - mat_nix) * 100 / mat_nix))
cat <<MD
### flox-runc Flox-path budgets ($RT_NAME $("$RT" --version | head -1 | awk '{print $3}'), $N rounds)

| measure | runtime / Nix alone, median µs | via flox-runc, median µs | added | budget | verdict |
|---|---|---|---|---|---|
| warm create (no network) | $create_rt | $create_fr | $add_create µs | 10000 µs | $(verdict "$add_create" 10000) |
| warm create, $big_closure-path closure | $create_rt_big | $create_fr_big | $add_create_big µs | 10000 µs | $(verdict "$add_create_big" 10000) |
| the runtime's create: $big_closure-path vs 2-path closure (its cost of the binds) | $create_rt | $create_rt_big | $((create_rt_big - create_rt)) µs | | |
| exec rewrite | $exec_rt | $exec_fr | $add_exec µs | 2000 µs | $(verdict "$add_exec" 2000) |
| cold materialisation (hello + busybox, a var: pins the node's bash) | $mat_nix | $mat_fr | $over % | 10 % | $(verdict "$over" 10) |
| the same on a node without \`flox-runc install\` (the create adds the static bash) | $mat_nix | $mat_noinst | $(((mat_noinst - mat_nix) * 100 / mat_nix)) % | | |
| warm create, flox-runc alone (stub runtime) | $sc_st | $sc_fr | $((sc_fr - sc_st)) µs | 10000 µs | $(verdict $((sc_fr - sc_st)) 10000) |
| warm create, $big_closure-path closure, flox-runc alone (stub runtime) | $sc_st | $sc_big | $((sc_big - sc_st)) µs | 10000 µs | $(verdict $((sc_big - sc_st)) 10000) |
| warm create, $many_pins packages pinned, flox-runc alone (stub runtime) | $sc_st | $sc_many | $((sc_many - sc_st)) µs | 10000 µs | $(verdict $((sc_many - sc_st)) 10000) |
| exec rewrite, flox-runc alone (stub runtime) | $se_st | $se_fr | $((se_fr - se_st)) µs | 2000 µs | $(verdict $((se_fr - se_st)) 2000) |
MD
if [[ -n ${FLOX_RUNC_BASE:-} ]]; then
	cat <<MD

A/B, stub runtime, the same rounds: \`$FLOX_RUNC_BASE\` (before) against \`$FLOX_RUNC\` (after), order flipped every round; load $(cut -d' ' -f1-3 /proc/loadavg)

| measure (stub runtime alone: $sc_st µs create, $se_st µs exec) | before, median µs | after, median µs | gain |
|---|---|---|---|
MD
	for row in "warm create:sc.fr" "warm create, $big_closure-path closure:sc.big" "warm create, $many_pins packages pinned:sc.many" "exec rewrite:se.fr"; do
		b=$(median <"$TEST_TMPDIR/${row#*:}.base")
		a=$(median <"$TEST_TMPDIR/${row#*:}")
		echo "| ${row%%:*} | $b | $a | $((b - a)) µs |"
	done
	mat_base=$(median <"$TEST_TMPDIR/m.base")
	echo "| cold materialisation (hello + busybox, a var; Nix alone $mat_nix) | $mat_base | $mat_fr | $((mat_base - mat_fr)) µs |"
	echo "| warm create through $RT_NAME (2-path closure) | $create_base | $create_fr | $((create_base - create_fr)) µs |"
	echo "| warm create through $RT_NAME ($((MID_LEAVES + 3))-path closure) | $create_base_mid | $create_fr_mid | $((create_base_mid - create_fr_mid)) µs |"
	echo "| warm create through $RT_NAME ($big_closure-path closure) | $create_base_big | $create_fr_big | $((create_base_big - create_fr_big)) µs |"
fi
if ((CHECK)) && { ((add_create > 10000)) || ((add_create_big > 10000)) || ((add_exec > 2000)) || ((over > 10)); }; then
	exit 1
fi
