#!/usr/bin/env bash
#
# tests/bench/vs-image.sh [-n N]  (meson benchmark `vs-image`, issue 12)
#
# flox-runc against the same software pulled as a container image, through
# one private containerd driven by ctr, everything on 127.0.0.1:
#  - environments built offline by tests/bench/lib/mkenv.sh (2 MiB/4 paths,
#    100 MiB/40 paths of Debian files), a signed binary cache with xz NARs,
#    the test FloxHub;
#  - the image: exactly the same store paths in one gzip layer
#    (tests/bench/lib/mkoci.py), pushed by skopeo to Debian's docker-registry;
#  - cold start to the command's first output: `ctr run --rm` of
#    `busybox echo ready` until it printed, with
#    flox-runc: `--runc-binary flox-runc` on the empty image, node store and
#      state emptied before each run (FloxHub fetch, Nix realisation,
#      environment build, run);
#    image: `ctr images pull --plain-http` then `ctr run`, the image and its
#      content removed (`ctr images rm --sync`) before each run.
#  - warm start: the same with the environment already on the node and the
#    image already pulled (`ctr run` alone on the image side).
#  N rounds (default 5) of each, sides alternating, cleanup untimed; medians.
# Prints a markdown table on stdout, progress on stderr.
set -euo pipefail
export LC_ALL=C
N=5
while (($#)); do
	case "$1" in
	-n) N=$2; shift 2 ;;
	*) echo "usage: vs-image.sh [-n N]" >&2; exit 2 ;;
	esac
done

# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
FLOX_RUNC=${FLOX_RUNC:-$SRCDIR/build/cmd/flox-runc/flox-runc}
suite_needs --root --flox-runc --nix python3 jq skopeo docker-registry /usr/bin/time
engines_require_containerd
tmpdir_setup flox-runc-bench-vs-image
log() { echo "# $*" >&2; }
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }

nixcache_build
ENVS=${FLOX_RUNC_BENCH_ENVS:-/var/tmp/flox-runc-bench-envs}
SIZES=("2 4" "100 40")
for s in "${SIZES[@]}"; do
	read -r mib np <<<"$s"
	log "environment ${mib} MiB / $np paths"
	bash "$SRCDIR/tests/bench/lib/mkenv.sh" "$ENVS/$mib-$np" "$mib" "$np" "$NIX_FX" >/dev/null 2>&1
done

# the registry
REG_PORT=$(free_port)
sed -e '/^auth:/,/^[^ ]/{/^auth:/d;/^ /d}' -e "s#rootdirectory: .*#rootdirectory: $TEST_TMPDIR/registry#" \
	-e "s#addr: .*#addr: 127.0.0.1:$REG_PORT#" /etc/docker/registry/config.yml >"$TEST_TMPDIR/registry.yml"
docker-registry serve "$TEST_TMPDIR/registry.yml" >"$TEST_TMPDIR/registry.log" 2>&1 &
cleanup_pid $!
wait_for curl -sf "http://127.0.0.1:$REG_PORT/v2/"
REG=127.0.0.1:$REG_PORT

hub_start
mkdir -p "$TEST_TMPDIR/empty-img"
bash "$SRCDIR/tests/tools/mkimage-empty.sh" "$TEST_TMPDIR/empty-img/empty.tar" "$IMG_EMPTY" 2>/dev/null
# one cache server per size, on its own port; the config lists them all
subs=() keys=()
for s in "${SIZES[@]}"; do
	read -r mib np <<<"$s"
	e=$ENVS/$mib-$np
	bash "$SRCDIR/tests/nix/serve-cache.sh" "$e/cache" "$TEST_TMPDIR/cache-$mib.port" --quiet &
	cleanup_pid $!
	wait_for test -s "$TEST_TMPDIR/cache-$mib.port"
	subs+=("http://127.0.0.1:$(cat "$TEST_TMPDIR/cache-$mib.port")")
	keys+=("$(cat "$e/key.pub")")
	args=()
	while read -r p; do args+=("${p#/nix/store/*-}=$p"); done <"$e/paths"
	make_lock "$TEST_TMPDIR/lock-$mib" "${args[@]}"
	hub_publish "bench/s$mib" "$TEST_TMPDIR/lock-$mib" >/dev/null
	python3 "$SRCDIR/tests/bench/lib/mkoci.py" "$e/store" "$e/paths" "$TEST_TMPDIR/oci-$mib" >"$TEST_TMPDIR/layer-$mib"
	skopeo copy -q --dest-tls-verify=false "oci:$TEST_TMPDIR/oci-$mib:latest" "docker://$REG/bench/s$mib:1" >&2
done
STORE=$TEST_TMPDIR/store STATE=$TEST_TMPDIR/state
jq -n --arg rt "$(command -v runc)" --arg hub "$HUB_URL" --arg store "$STORE" --arg st "$STATE" \
	--args '{runtime: $rt, floxhub_url: $hub, store_root: $store, state_dir: $st,
	  substituters: $ARGS.positional[0:($ARGS.positional | length / 2)],
	  trusted_public_keys: $ARGS.positional[($ARGS.positional | length / 2):],
	  fresh_seconds: 86400, auth_window_seconds: 86400, deadline_seconds: 120}' "${subs[@]}" "${keys[@]}" >"$TEST_TMPDIR/flox-runc.json"
export FLOX_RUNC_CONFIG=$TEST_TMPDIR/flox-runc.json
containerd_start
NS=bench
containerd_import "$NS" "$TEST_TMPDIR/empty-img/empty.tar"

# first_output CMD...: µs from now until CMD printed its first line (then it is waited for)
first_output() {
	local t0 t1 line
	t0=$(now_us)
	exec 3< <("$@" 2>"$TEST_TMPDIR/side.err")
	IFS= read -r line <&3 || { cat "$TEST_TMPDIR/side.err" >&2; die "no output from $*"; }
	t1=$(now_us)
	cat <&3 >/dev/null
	exec 3<&-
	[[ "$line" == ready ]] || die "unexpected output '$line' from $*"
	echo $((t1 - t0))
}
image_side() { # REF ID BB
	ctr_ "$NS" images pull --plain-http "$1" >/dev/null && ctr_ "$NS" run --rm "$1" "$2" "$3/bin/busybox" echo ready
}
flox_side() { # ENV ID
	ctr_ "$NS" run --rm --runc-binary "$FLOX_RUNC" --runc-root "$CD_RUNC_ROOT" \
		--annotation "flox.dev/environment=$1" "$IMG_EMPTY" "$2" busybox echo ready
}
rows=()
for s in "${SIZES[@]}"; do
	read -r mib np <<<"$s"
	e=$ENVS/$mib-$np
	bb=$(head -1 "$e/paths")
	ref=$REG/bench/s$mib:1
	nar=$(du -sb "$e/cache/nar" | cut -f1)
	unpacked=$(sed "s#^#$e/store#" "$e/paths" | xargs du -scb | tail -1 | cut -f1)
	files=$(sed "s#^#$e/store#" "$e/paths" | xargs find | wc -l)
	for mode in cold warm; do
		: >"$TEST_TMPDIR/fr-$mode" && : >"$TEST_TMPDIR/img-$mode"
		log "$mode start, $mib MiB: $N rounds"
		# warm: the environment on the node, the image pulled (the last cold round's)
		for i in $(seq "$N"); do
			sides="fr img"
			((i % 2)) || sides="img fr"
			for side in $sides; do
				if [[ $mode == cold && $side == fr ]]; then # untimed: a cold node for this side
					rm -rf "$STORE" "$STATE"
				elif [[ $mode == cold ]]; then
					ctr_ "$NS" images rm --sync "$ref" >/dev/null 2>&1 || true
				fi
				if [[ $side == fr ]]; then
					first_output flox_side "bench/s$mib" "fr-$mode-$mib-$i" >>"$TEST_TMPDIR/fr-$mode"
				elif [[ $mode == cold ]]; then
					first_output image_side "$ref" "img-$mode-$mib-$i" "$bb" >>"$TEST_TMPDIR/img-$mode"
				else
					first_output ctr_ "$NS" run --rm "$ref" "img-$mode-$mib-$i" "$bb/bin/busybox" echo ready >>"$TEST_TMPDIR/img-$mode"
				fi
			done
		done
	done
	fr=$(median <"$TEST_TMPDIR/fr-cold")
	img=$(median <"$TEST_TMPDIR/img-cold")
	wfr=$(median <"$TEST_TMPDIR/fr-warm")
	wimg=$(median <"$TEST_TMPDIR/img-warm")
	rows+=("| $((unpacked >> 20)) MiB, $np paths, $files files (xz NARs $((nar >> 20)) MiB, gzip layer $(($(cat "$TEST_TMPDIR/layer-$mib") >> 20)) MiB) | $(awk -v v="$fr" 'BEGIN{printf "%.2f", v/1e6}') s | $(awk -v v="$img" 'BEGIN{printf "%.2f", v/1e6}') s | $(awk -v a="$fr" -v b="$img" 'BEGIN{printf "%.2f", a/b}') | $(awk -v v="$wfr" 'BEGIN{printf "%.3f", v/1e6}') s | $(awk -v v="$wimg" 'BEGIN{printf "%.3f", v/1e6}') s | $(awk -v a="$wfr" -v b="$wimg" 'BEGIN{printf "%.2f", a/b}') |")
done
ctr_ "$NS" images rm --sync "$REG/bench/s2:1" "$REG/bench/s100:1" >/dev/null 2>&1 || true
# memory: peak RSS of a cold `flox-runc prefetch` of the largest (GNU time:
# the largest of flox-runc and each child it waited for, e.g. nix-store)
rm -rf "$STORE" "$STATE"
/usr/bin/time -f %M -o "$TEST_TMPDIR/rss" "$FLOX_RUNC" prefetch "bench/s${SIZES[-1]%% *}" >/dev/null
rss=$(cat "$TEST_TMPDIR/rss")
cat <<MD
### flox-runc vs the same closure as an image: start to first output ($N rounds, medians; containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | head -1 | awk '{print $3}'))

| environment | cold flox-runc | cold image pull + run | ratio | warm flox-runc | warm image run | warm ratio |
|---|---|---|---|---|---|---|
$(printf '%s\n' "${rows[@]}")

Peak RSS of a cold \`flox-runc prefetch\` of the ${SIZES[-1]%% *} MiB environment (largest of flox-runc and its children): $((rss / 1024)) MiB.
MD
