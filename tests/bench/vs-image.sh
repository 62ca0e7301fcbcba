#!/usr/bin/env bash
#
# tests/bench/vs-image.sh [options]  (meson benchmark `vs-image`, issue 12)
#
# flox-runc against the same software pulled as a container image, through
# one private containerd driven by ctr, everything on 127.0.0.1 and started
# (and stopped, on any exit) by this script:
#  - environments built offline by tests/bench/lib/mkenv.sh (2 MiB/4 paths,
#    100 MiB/40 paths, 500 MiB/150 paths of Debian files; cached in
#    $FLOX_RUNC_BENCH_ENVS, default /var/tmp/flox-runc-bench-envs), signed
#    binary caches with xz and zstd NARs (tests/nix/serve-cache.sh, one server
#    per cache, each request logged with its size), the test FloxHub;
#  - the image: exactly the same store paths, as one gzip layer or one layer
#    per store path (tests/bench/lib/mkoci.py), pushed by skopeo to Debian's
#    docker-registry (which logs every response's size);
#  - the Flox side: `ctr run --runc-binary flox-runc` on the empty image with
#    the annotation flox.dev/environment; the image side: `ctr images pull
#    --plain-http` then `ctr run`.  The command is `busybox echo ready`; a
#    start is timed to its first output.
#
# Scenarios (--only), each figure a median of N rounds in which the variants
# alternate (their order rotates and flips every round), cleanup untimed:
#  cold        per size: flox-runc per NAR compression (a node where
#              flox-runc is installed, its store and state emptied of
#              everything else first, cold_node: FloxHub fetch, Nix
#              realisation, environment build, run) vs image pull + run per image kind (every bench
#              image and its content and snapshots removed first);
#  warm        per size: the environment on the node vs the image pulled;
#  generation  a node that ran generation 1 starts a pod of generation 2,
#              which replaces one package by a new store path: bytes the
#              binary cache served and time to first output, vs the image
#              rebuilt with that package changed, pulled again (bytes the
#              registry served) and run;
#  pods        20 pods of one environment started at once on a cold node:
#              time until all 20 printed, and the cache's log checked for
#              one materialisation (each NAR fetched once); image side: the
#              image pulled once, then 20 runs at once;
#  disk        10 environments sharing 35 of 40 packages (5 unique each):
#              node store + flox-runc state vs containerd's content store +
#              snapshots with the 10 images pulled (per image kind);
#  rss         peak RSS of the runtime calls of one cold pod of the largest
#              size (GNU time around flox-runc via a --runc-binary wrapper:
#              the largest of flox-runc, the runtime it runs and every child
#              it waited for, e.g. nix-store), and of a cold `flox-runc
#              prefetch`.
# generation and pods use the size --at (default 100) and the first
# compression of --compression; disk uses the first compression.
# warm also runs, in the same rounds, the same closure published without
# manifest vars and hook (its command runs without the bash activation
# wrapper), and with FLOX_RUNC_BASE=<another flox-runc binary>, that binary
# (an A/B of a change end to end: "Warm start, parts").
#
# FLOX_RUNC_BENCH_TRACE=DIR: warm starts traced by ftrace (lib/warm-trace.sh;
# the dumps in DIR) and their phases (lib/warm-phases.py) in the report.
#
# Options (default: everything):
#   --sizes 2,100,500  --compression xz,zstd  --image one,layered
#   --only cold,warm,generation,pods,disk,rss  --at MIB  -n N (default 5)
# Prints markdown tables on stdout, progress on stderr.
set -euo pipefail
export LC_ALL=C
N=5 SIZES_ARG=2,100,500 COMPS_ARG=xz,zstd KINDS_ARG=one,layered ONLY_ARG=cold,warm,generation,pods,disk,rss AT=100
usage() {
	echo "usage: vs-image.sh [--sizes 2,100,500] [--compression xz,zstd] [--image one,layered]" >&2
	echo "                   [--only cold,warm,generation,pods,disk,rss] [--at MIB] [-n N]" >&2
	exit 2
}
while (($#)); do
	(($# >= 2)) || usage
	case "$1" in
	-n) N=$2 ;;
	--sizes) SIZES_ARG=$2 ;;
	--compression) COMPS_ARG=$2 ;;
	--image) KINDS_ARG=$2 ;;
	--only) ONLY_ARG=$2 ;;
	--at) AT=$2 ;;
	*) usage ;;
	esac
	shift 2
done
[[ $N =~ ^[1-9][0-9]*$ ]] || usage
declare -A NPATHS=([2]=4 [100]=40 [500]=150)
IFS=, read -r -a SIZES <<<"$SIZES_ARG"
IFS=, read -r -a COMPS <<<"$COMPS_ARG"
IFS=, read -r -a KINDS <<<"$KINDS_ARG"
IFS=, read -r -a ONLY <<<"$ONLY_ARG"
for s in "${SIZES[@]}" "$AT"; do [[ -n "${NPATHS[$s]:-}" ]] || { echo "vs-image.sh: size $s: one of ${!NPATHS[*]}" >&2; exit 2; }; done
for c in "${COMPS[@]}"; do [[ $c == xz || $c == zstd ]] || usage; done
for k in "${KINDS[@]}"; do [[ $k == one || $k == layered ]] || usage; done
for o in "${ONLY[@]}"; do [[ $o =~ ^(cold|warm|generation|pods|disk|rss)$ ]] || usage; done
want() { [[ ",$ONLY_ARG," == *",$1,"* ]]; }

# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
FLOX_RUNC=${FLOX_RUNC:-$SRCDIR/build/cmd/flox-runc/flox-runc}
suite_needs --root --flox-runc
# a benchmark with a missing tool fails, it never skips (tests/deps.sh installs them all)
for c in nix nix-store python3 jq curl skopeo docker-registry /usr/bin/time containerd ctr containerd-shim-runc-v2 runc; do
	command -v "$c" >/dev/null 2>&1 || die "vs-image.sh: missing $c: run tests/deps.sh (as root)"
done
[[ -r /etc/docker/registry/config.yml ]] || die "vs-image.sh: no /etc/docker/registry/config.yml: apt-get install docker-registry (tests/deps.sh)"
engines_require_containerd
tmpdir_setup flox-runc-bench-vs-image
TRACE=${FLOX_RUNC_BENCH_TRACE:-}
if [[ -n $TRACE ]]; then
	# shellcheck source=tests/bench/lib/warm-trace.sh
	. "$SRCDIR/tests/bench/lib/warm-trace.sh"
	mkdir -p "$TRACE"
fi
log() { echo "# $(date -u +%T) $*" >&2; }
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }
sec() { awk -v v="$1" -v d="${2:-2}" 'BEGIN{printf "%.*f", d, v/1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
mib() { awk -v v="$1" 'BEGIN{printf "%.1f", v/1048576}'; }
# rotate WORD...: the words in round $ROUND's order (rotated by the round, flipped every other)
rotate() {
	local -a v=("$@") o=()
	local i n=$#
	for ((i = 0; i < n; i++)); do o+=("${v[$(((i + ROUND) % n))]}"); done
	if ((ROUND % 2)); then for ((i = n - 1; i >= 0; i--)); do printf '%s\n' "${o[$i]}"; done; else printf '%s\n' "${o[@]}"; fi
}

# -------------------------------------------------------------- environments
nixcache_build
ENVS=${FLOX_RUNC_BENCH_ENVS:-/var/tmp/flox-runc-bench-envs}
V=v2 # mkenv.sh's output version (its cache directories' names)
envdir() { echo "$ENVS/$V-$1-${NPATHS[$1]:-86}"; }
need_sizes=("${SIZES[@]}")
{ want generation || want pods; } && need_sizes+=("$AT")
want rss && need_sizes+=("${SIZES[-1]}")
declare -A built=()
for mib in "${need_sizes[@]}"; do
	[[ -z "${built[$mib]:-}" ]] || continue
	built[$mib]=1
	log "environment $mib MiB / ${NPATHS[$mib]} paths ($(envdir "$mib"))"
	bash "$SRCDIR/tests/bench/lib/mkenv.sh" "$(envdir "$mib")" "$mib" "${NPATHS[$mib]}" "$NIX_FX" >"$TEST_TMPDIR/mkenv.log" 2>&1 ||
		{ tail -20 "$TEST_TMPDIR/mkenv.log" >&2; die "mkenv.sh $mib failed"; }
done
FAMILY=$ENVS/$V-family-220-86 # 85 packages: 35 shared + 5 unique for each of 10 environments
if want disk; then
	log "environment family (220 MiB / 86 paths)"
	bash "$SRCDIR/tests/bench/lib/mkenv.sh" "$FAMILY" 220 86 "$NIX_FX" >"$TEST_TMPDIR/mkenv.log" 2>&1 ||
		{ tail -20 "$TEST_TMPDIR/mkenv.log" >&2; die "mkenv.sh family failed"; }
	for k in $(seq 0 9); do
		{ sed -n 1,36p "$FAMILY/paths"; sed -n "$((37 + 5 * k)),$((41 + 5 * k))p" "$FAMILY/paths"; } >"$FAMILY/paths-f$k"
	done
fi

# ------------------------------------------------------------------ services
REG_PORT=$(free_port)
sed -e '/^auth:/,/^[^ ]/{/^auth:/d;/^ /d}' -e "s#rootdirectory: .*#rootdirectory: $TEST_TMPDIR/registry#" \
	-e "s#addr: .*#addr: 127.0.0.1:$REG_PORT#" /etc/docker/registry/config.yml >"$TEST_TMPDIR/registry.yml"
REG_LOG=$TEST_TMPDIR/registry.log
docker-registry serve "$TEST_TMPDIR/registry.yml" >"$REG_LOG" 2>&1 &
cleanup_pid $!
wait_for curl -sf "http://127.0.0.1:$REG_PORT/v2/"
REG=127.0.0.1:$REG_PORT
hub_start
mkdir -p "$TEST_TMPDIR/empty-img"
bash "$SRCDIR/tests/tools/mkimage-empty.sh" "$TEST_TMPDIR/empty-img/empty.tar" "$IMG_EMPTY" 2>/dev/null
STORE=$TEST_TMPDIR/store STATE=$TEST_TMPDIR/state
CONF=$TEST_TMPDIR/flox-runc.json
declare -A CACHE_URL=() CACHE_LOG=()
# serve DIR COMP: a logged server for DIR/cache-COMP (once), its config in $TEST_TMPDIR/conf-<id>
serve() {
	local d=$1 c=$2 id
	id=$(basename "$d")-$c
	[[ -z "${CACHE_URL[$id]:-}" ]] || return 0
	CACHE_LOG[$id]=$TEST_TMPDIR/cache-$id.log
	: >"${CACHE_LOG[$id]}"
	bash "$SRCDIR/tests/nix/serve-cache.sh" "$d/cache-$c" "$TEST_TMPDIR/cache-$id.port" --quiet --log "${CACHE_LOG[$id]}" &
	cleanup_pid $!
	wait_for test -s "$TEST_TMPDIR/cache-$id.port"
	CACHE_URL[$id]=http://127.0.0.1:$(cat "$TEST_TMPDIR/cache-$id.port")
	jq -n --arg rt "$(command -v runc)" --arg hub "$HUB_URL" --arg store "$STORE" --arg st "$STATE" \
		--arg sub "${CACHE_URL[$id]}" --arg key "$(cat "$d/key.pub")" \
		'{runtime: $rt, floxhub_url: $hub, store_root: $store, state_dir: $st,
		  substituters: [$sub], trusted_public_keys: [$key],
		  fresh_seconds: 86400, auth_window_seconds: 86400, deadline_seconds: 300}' >"$TEST_TMPDIR/conf-$id.json"
}
use_cache() { cp "$TEST_TMPDIR/conf-$(basename "$1")-$2.json" "$CONF"; } # DIR COMP: flox-runc's config from now on
# publish NAME PATHS_FILE: a generation of NAME on the hub
publish() {
	local -a args=()
	local p
	while read -r p; do args+=("${p#/nix/store/*-}=$p"); done <"$2"
	make_lock "$TEST_TMPDIR/lock" "${args[@]}"
	hub_publish "$1" "$TEST_TMPDIR/lock" >/dev/null
}
declare -A LAYERS=()
# push_image DIR PATHS_FILE TAG KIND: the OCI layout (built once, cached in DIR) pushed as $REG/bench/TAG-KIND:1
push_image() {
	local d=$1 pf=$2 tag=$3 kind=$4 o
	o=$d/oci-$tag-$kind
	if [[ ! -s "$o.size" ]]; then
		rm -rf "$o"
		python3 "$SRCDIR/tests/bench/lib/mkoci.py" $([[ $kind == layered ]] && echo --layered) "$d/store" "$pf" "$o" >"$o.size.new" ||
			die "mkoci.py $o failed"
		mv "$o.size.new" "$o.size"
	fi
	LAYERS[$tag-$kind]=$(cat "$o.size")
	skopeo copy -q --dest-tls-verify=false "oci:$o:latest" "docker://$REG/bench/$tag-$kind:1" >&2 || die "skopeo copy $o failed"
}
export FLOX_RUNC_CONFIG=$CONF
echo '{}' >"$CONF"
containerd_start
NS=bench
containerd_import "$NS" "$TEST_TMPDIR/empty-img/empty.tar"

# ------------------------------------------------------------------- helpers
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
ID=0
flox_run() { # ENV: one pod of ENV (owner/name or owner/name:N)
	ctr_ "$NS" run --rm --runc-binary "${RUNC_BIN:-$FLOX_RUNC}" --runc-root "$CD_RUNC_ROOT" \
		--annotation "flox.dev/environment=$1" "$IMG_EMPTY" "fr-$((++ID))-$BASHPID" busybox echo ready
}
img_run() { # REF BUSYBOX_PATH
	ctr_ "$NS" run --rm "$1" "img-$((++ID))-$BASHPID" "$2/bin/busybox" echo ready
}
img_pull() { ctr_ "$NS" images pull --plain-http "$1" >/dev/null || die "ctr pull $1 failed"; }
img_pull_run() { img_pull "$1" && img_run "$1" "$2"; }
# cold_node: a node where flox-runc is installed and nothing else of it is:
# what `flox-runc install` leaves (the static bash in the store under the
# node's GC root gcroots/flox-runc/node, bash.json), snapshotted once by
# node_template after a pod added the bash; no state (hub cache included),
# no environment's tree, view, root or path.  Before the snapshot: an empty
# store and state.  (Not `nix-store --gc` per round: Nix 2.8's GC scans
# every process's /proc links and fails on one it cannot read.)
NODE_TEMPLATE=$TEST_TMPDIR/node-template
cold_node() {
	# the views' pins (lib/viewpin.h, mounts in $STATE/viewns) first: rm
	# cannot remove a mount point, and a pin left would outlive its view
	local pin
	for pin in "$STATE"/viewns/*; do
		[[ ! -e $pin ]] || umount -l "$pin" 2>/dev/null || true
	done
	! mountpoint -q "$STATE/viewns" 2>/dev/null || umount -l "$STATE/viewns"
	rm -rf "$STORE" "$STATE"
	if [[ -d $NODE_TEMPLATE ]]; then
		cp -a "$NODE_TEMPLATE" "$STORE"
		mkdir -m 700 -p "$STATE"
		cp "$NODE_TEMPLATE.bash.json" "$STATE/bash.json"
	fi
	sync # what an earlier round left to write (a flush of its own) is not timed in this one
}
node_template() {
	local t
	[[ ! -d $NODE_TEMPLATE ]] || return 0
	rm -rf "$STORE/nix/var/flox-runc" "$STORE/nix/var/nix/gcroots/flox-runc/envs" \
		"$STORE/nix/var/nix/gcroots/flox-runc/containers"
	for t in 1 2 3 4 5 6; do
		nix-store --store "$STORE" --gc >/dev/null 2>"$TEST_TMPDIR/gc.err" && break
		((t < 6)) || die "nix-store --gc of the node store failed: $(grep -v warning "$TEST_TMPDIR/gc.err")"
		sleep 1
	done
	nixcache_drop_unrooted "$STORE"
	cp -a "$STORE" "$NODE_TEMPLATE"
	cp "$STATE/bash.json" "$NODE_TEMPLATE.bash.json"
}
# no bench image, content or snapshot left in containerd
no_images() {
	local refs
	refs=$(ctr_ "$NS" images ls -q | grep "^$REG/" || true)
	[[ -z "$refs" ]] || ctr_ "$NS" images rm --sync $refs >/dev/null || die "ctr images rm failed"
}
lines() { wc -l <"$1"; }
# served LOG FROM_LINE: bytes the cache server sent after line FROM_LINE of LOG
served() { tail -n +"$(($2 + 1))" "$1" | awk '{s += $5} END {print s + 0}'; }
# registry_served FROM_LINE: bytes the registry sent after line FROM_LINE of its log
registry_served() {
	sleep 0.3 # the registry logs a response after sending it
	tail -n +"$(($1 + 1))" "$REG_LOG" | grep -o 'http.response.written=[0-9]*' | awk -F= '{s += $2} END {print s + 0}'
}
env_desc() { # DIR: "X MiB, N paths, F files (xz A MiB, zstd B MiB)"
	local d=$1 unpacked files c nars=""
	unpacked=$(sed "s#^#$d/store#" "$d/paths" | xargs du -scb | tail -1 | cut -f1)
	files=$(sed "s#^#$d/store#" "$d/paths" | xargs find | wc -l)
	for c in "${COMPS[@]}"; do nars+="${nars:+, }$c NARs $(($(du -sb "$d/cache-$c/nar" | cut -f1) >> 20)) MiB"; done
	echo "$((unpacked >> 20)) MiB, $(lines "$d/paths") paths, $files files ($nars)"
}
kind_name() { [[ $1 == one ]] && echo "one-layer image" || echo "layered image"; }
OUT=$TEST_TMPDIR/report.md
: >"$OUT"
md() { printf '%s\n' "$@" >>"$OUT"; }
HEAD=$(git -C "$SRCDIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
md "### vs-image: $(date -u '+%Y-%m-%d %H:%M') UTC, commit $HEAD, $N rounds, medians" \
	"" "\`tests/bench/vs-image.sh -n $N --sizes $SIZES_ARG --compression $COMPS_ARG --image $KINDS_ARG --only $ONLY_ARG --at $AT\`;" \
	"containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | head -1 | awk '{print $3}'), $(nix --version), $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)." ""

# --------------------------------------------------------------- cold / warm
if want cold || want warm; then
	cold_rows=() warm_rows=() parts_rows=() cold_ab_rows=()
	for mib in "${SIZES[@]}"; do
		e=$(envdir "$mib")
		bb=$(head -1 "$e/paths")
		publish "bench/s$mib" "$e/paths"
		if want warm; then # the same closure, no vars and no hook
			make_lock "$TEST_TMPDIR/lock" $(sed 's#^/nix/store/[^-]*-\(.*\)#\1=&#' "$e/paths")
			jq '.manifest.vars = {} | .manifest.hook = {}' "$TEST_TMPDIR/lock" >"$TEST_TMPDIR/lock.plain"
			hub_publish "bench/p$mib" "$TEST_TMPDIR/lock.plain" >/dev/null
		fi
		for c in "${COMPS[@]}"; do serve "$e" "$c"; done
		for k in "${KINDS[@]}"; do push_image "$e" "$e/paths" "s$mib" "$k"; done
		desc=$(env_desc "$e")
		variants=()
		for c in "${COMPS[@]}"; do variants+=("fr-$c"); done
		for k in "${KINDS[@]}"; do variants+=("img-$k"); done
		want warm && variants+=(frplain)
		[[ -z "${FLOX_RUNC_BASE:-}" ]] || variants+=(frbase)
		for v in "${variants[@]}"; do : >"$TEST_TMPDIR/cold-$v" && : >"$TEST_TMPDIR/warm-$v"; done
		modes=()
		want cold && modes+=(cold)
		want warm && modes+=(warm)
		for mode in "${modes[@]}"; do
			log "$mode start, $mib MiB: $N rounds of ${variants[*]}"
			if [[ $mode == cold ]]; then # the node's install (its bash), as cold_node keeps it
				cold_node && use_cache "$e" "${COMPS[0]}"
				flox_run "bench/s$mib" >/dev/null 2>&1 || die "flox-runc pod of bench/s$mib failed"
				node_template
			fi
			if [[ $mode == warm ]]; then # the environment on the node, every image pulled
				use_cache "$e" "${COMPS[0]}"
				flox_run "bench/s$mib" >/dev/null 2>&1 || die "flox-runc pod of bench/s$mib failed"
				flox_run "bench/p$mib" >/dev/null 2>&1 || die "flox-runc pod of bench/p$mib failed"
				[[ -z "${FLOX_RUNC_BASE:-}" ]] || RUNC_BIN=$FLOX_RUNC_BASE flox_run "bench/s$mib" >/dev/null 2>&1 ||
					die "a pod of bench/s$mib with FLOX_RUNC_BASE failed"
				for k in "${KINDS[@]}"; do img_pull "$REG/bench/s$mib-$k:1"; done
			fi
			[[ -z $TRACE || $mode != warm ]] || trace_start
			for ((ROUND = 0; ROUND < N; ROUND++)); do
				for v in $(rotate "${variants[@]}"); do
					[[ -z $TRACE || $mode != warm ]] || trace_mark "BEGIN $mib $v $ROUND"
					if [[ $mode == warm ]]; then
						case $v in
						fr-"${COMPS[0]}") first_output flox_run "bench/s$mib" ;;
						fr-*) continue ;; # the compression plays no part once the environment is there
						frplain) first_output flox_run "bench/p$mib" ;;
						frbase) RUNC_BIN=$FLOX_RUNC_BASE first_output flox_run "bench/s$mib" ;;
						img-*) first_output img_run "$REG/bench/s$mib-${v#img-}:1" "$bb" ;;
						esac
					else
						case $v in
						frplain) continue ;;
						frbase) cold_node && use_cache "$e" "${COMPS[0]}" && RUNC_BIN=$FLOX_RUNC_BASE first_output flox_run "bench/s$mib" ;;
						fr-*) cold_node && use_cache "$e" "${v#fr-}" && first_output flox_run "bench/s$mib" ;;
						img-*) no_images && sync && first_output img_pull_run "$REG/bench/s$mib-${v#img-}:1" "$bb" ;;
						esac
					fi >>"$TEST_TMPDIR/$mode-$v"
					[[ -z $TRACE || $mode != warm ]] || trace_mark "END $mib $v $ROUND"
				done
			done
			[[ -z $TRACE || $mode != warm ]] || trace_stop "$TRACE/trace-$mib.txt"
		done
		no_images
		for mode in "${modes[@]}"; do
			row="| $desc"
			for v in "${variants[@]}"; do
				[[ -s "$TEST_TMPDIR/$mode-$v" ]] || continue
				m=$(median <"$TEST_TMPDIR/$mode-$v")
				eval "m_${v//-/_}=$m"
				[[ $v != frplain && $v != frbase ]] || continue # "Warm start, parts"
				row+=" | $(sec "$m" $([[ $mode == warm ]] && echo 3 || echo 2)) s"
			done
			for v in "${variants[@]}"; do
				[[ $v == fr-* && -s "$TEST_TMPDIR/$mode-$v" ]] || continue
				for k in "${KINDS[@]}"; do
					a=m_${v//-/_} b=m_img_$k
					row+=" | $(ratio "${!a}" "${!b}")"
				done
			done
			if [[ $mode == cold ]]; then
				lay=""
				for k in "${KINDS[@]}"; do lay+=", $k $(mib "${LAYERS[s$mib-$k]}") MiB"; done
				cold_rows+=("${row/ | /; gzip layers${lay#,} | } |")
				if [[ -n "${FLOX_RUNC_BASE:-}" ]]; then
					a=m_fr_${COMPS[0]}
					cold_ab_rows+=("| $desc | $(sec "$m_frbase" 3) s | $(sec "${!a}" 3) s | $(awk -v a="${!a}" -v b="$m_frbase" 'BEGIN{printf "%+.1f", (a-b)/1000}') ms |")
				fi
			else
				a=m_fr_${COMPS[0]}
				for k in "${KINDS[@]}"; do
					b=m_img_$k
					row+=" | $(awk -v a="${!a}" -v b="${!b}" 'BEGIN{printf "%+.1f", (a-b)/1000}') ms"
				done
				warm_rows+=("$row |")
				prow="| $desc | $(sec "${!a}" 3) s | $(sec "$m_frplain" 3) s | $(awk -v a="${!a}" -v b="$m_frplain" 'BEGIN{printf "%+.1f", (a-b)/1000}') ms"
				if [[ -n "${FLOX_RUNC_BASE:-}" ]]; then
					prow+=" | $(sec "$m_frbase" 3) s | $(awk -v a="${!a}" -v b="$m_frbase" 'BEGIN{printf "%+.1f", (a-b)/1000}') ms"
					b=m_img_${KINDS[0]}
					prow+=" | $(awk -v a="$m_frbase" -v b="${!b}" 'BEGIN{printf "%+.1f", (a-b)/1000}') ms"
				fi
				parts_rows+=("$prow |")
			fi
		done
	done
	if want cold; then
		h="| environment" sep="|---"
		for c in "${COMPS[@]}"; do h+=" | flox-runc, $c NARs" sep+="|---"; done
		for k in "${KINDS[@]}"; do h+=" | $(kind_name "$k") pull + run" sep+="|---"; done
		for c in "${COMPS[@]}"; do for k in "${KINDS[@]}"; do h+=" | ratio $c / $k" sep+="|---"; done; done
		md "Cold start to first output (flox-runc: a node where flox-runc is installed, its store and state emptied of all else; image: no bench image, content or snapshot in containerd):" "" "$h |" "$sep|" "${cold_rows[@]}" ""
		[[ -z "${FLOX_RUNC_BASE:-}" ]] ||
			md "Cold start, A/B in the same rounds (${COMPS[0]} NARs): \`$FLOX_RUNC_BASE\` (base) against \`$FLOX_RUNC\`:" "" \
				"| environment | base | flox-runc | flox-runc minus base |" "|---|---|---|---|" "${cold_ab_rows[@]}" ""
	fi
	if want warm; then
		h="| environment | flox-runc" sep="|---|---"
		for k in "${KINDS[@]}"; do h+=" | $(kind_name "$k") run" sep+="|---"; done
		for k in "${KINDS[@]}"; do h+=" | ratio / $k" sep+="|---"; done
		for k in "${KINDS[@]}"; do h+=" | added over $k" sep+="|---"; done
		md "Warm start to first output (environment on the node, image pulled):" "" "$h |" "$sep|" "${warm_rows[@]}" ""
		h="| environment | flox-runc | the same closure, no vars or hook (no bash) | added by the activation" sep="|---|---|---|---"
		[[ -z "${FLOX_RUNC_BASE:-}" ]] || { h+=" | FLOX_RUNC_BASE | flox-runc minus base | base added over ${KINDS[0]}"; sep+="|---|---|---"; }
		md "Warm start, parts (same rounds):" "" "$h |" "$sep|" "${parts_rows[@]}" ""
		if [[ -n $TRACE ]]; then
			for mib in "${SIZES[@]}"; do
				md "Warm start, phases of the $mib MiB rounds, ms, medians (FLOX_RUNC_BENCH_TRACE, tests/bench/lib/warm-phases.py):" ""
				python3 "$SRCDIR/tests/bench/lib/warm-phases.py" "$TRACE/trace-$mib.txt" >>"$OUT" || die "warm-phases.py failed"
				md ""
			done
		fi
	fi
fi

# ---------------------------------------------------------------- generation
if want generation; then
	e=$(envdir "$AT") c=${COMPS[0]}
	bb=$(head -1 "$e/paths")
	read -r old new <"$e/gen2"
	sed "s#^$old\$#$new#" "$e/paths" >"$TEST_TMPDIR/paths-gen2"
	grep -qx "$new" "$TEST_TMPDIR/paths-gen2" || die "generation 2 does not replace $old"
	publish "bench/g$AT" "$e/paths"              # generation 1
	publish "bench/g$AT" "$TEST_TMPDIR/paths-gen2" # generation 2
	serve "$e" "$c"
	clog=${CACHE_LOG[$(basename "$e")-$c]}
	for k in "${KINDS[@]}"; do
		push_image "$e" "$e/paths" "g$AT" "$k"
		push_image "$e" "$TEST_TMPDIR/paths-gen2" "g${AT}v2" "$k"
	done
	use_cache "$e" "$c"
	variants=(fr)
	for k in "${KINDS[@]}"; do variants+=("img-$k"); done
	for v in "${variants[@]}"; do : >"$TEST_TMPDIR/gen-t-$v" && : >"$TEST_TMPDIR/gen-b-$v"; done
	log "generation 2 on a node with generation 1, $AT MiB: $N rounds of ${variants[*]}"
	for ((ROUND = 0; ROUND < N; ROUND++)); do
		for v in $(rotate "${variants[@]}"); do
			if [[ $v == fr ]]; then
				cold_node
				flox_run "bench/g$AT:1" >/dev/null 2>&1 || die "flox-runc pod of bench/g$AT:1 failed"
				from=$(lines "$clog")
				first_output flox_run "bench/g$AT:2" >>"$TEST_TMPDIR/gen-t-$v"
				served "$clog" "$from" >>"$TEST_TMPDIR/gen-b-$v"
			else
				k=${v#img-}
				no_images
				img_pull "$REG/bench/g$AT-$k:1"
				from=$(lines "$REG_LOG")
				first_output img_pull_run "$REG/bench/g${AT}v2-$k:1" "$bb" >>"$TEST_TMPDIR/gen-t-$v"
				registry_served "$from" >>"$TEST_TMPDIR/gen-b-$v"
			fi
		done
	done
	no_images
	tf=$(median <"$TEST_TMPDIR/gen-t-fr") bf=$(median <"$TEST_TMPDIR/gen-b-fr")
	rows=("| flox-runc, pod pinned to generation 2 ($c NARs) | $(mib "$bf") MiB | | $(sec "$tf") s | |")
	for k in "${KINDS[@]}"; do
		t=$(median <"$TEST_TMPDIR/gen-t-img-$k") b=$(median <"$TEST_TMPDIR/gen-b-img-$k")
		rows+=("| $(kind_name "$k") rebuilt, pull + run | $(mib "$b") MiB | $(awk -v a="$b" -v b="$bf" 'BEGIN{printf "%.1f", a/b}')× flox-runc's | $(sec "$t") s | $(ratio "$tf" "$t") |")
	done
	md "New generation changing one package ($(env_desc "$e"); package $(basename "$old") replaced by $(basename "$new")), on a node that ran generation 1: bytes served (binary cache's log: narinfos + NARs; FloxHub's git fetch not counted / registry's log: manifests, config, layers) and time to first output:" "" \
		"| side | bytes served | image bytes / flox-runc bytes | time to first output | ratio flox-runc / image |" "|---|---|---|---|---|" "${rows[@]}" ""
fi

# ---------------------------------------------------------------------- pods
# pods20 OUTFILE CMD...: 20 CMDs at once; µs until all printed "ready" (since $T0)
pods20() {
	local out=$1 i
	shift
	rm -f "$TEST_TMPDIR"/pod.*
	for i in $(seq 20); do
		("$@" 2>>"$TEST_TMPDIR/pod.err.$i" | { IFS= read -r l; echo "$(now_us) $l" >"$TEST_TMPDIR/pod.$i"; cat >/dev/null; }) &
	done
	wait
	for i in $(seq 20); do
		grep -q ' ready$' "$TEST_TMPDIR/pod.$i" 2>/dev/null || { cat "$TEST_TMPDIR/pod.err.$i" >&2; die "pod $i of 20 did not print ready"; }
	done
	cat "$TEST_TMPDIR"/pod.[0-9]* | awk -v t0="$T0" 'BEGIN{m=0} {if ($1 - t0 > m) m = $1 - t0} END {print m}' >>"$out"
}
if want pods; then
	e=$(envdir "$AT") c=${COMPS[0]}
	bb=$(head -1 "$e/paths")
	publish "bench/p$AT" "$e/paths"
	serve "$e" "$c"
	clog=${CACHE_LOG[$(basename "$e")-$c]}
	for k in "${KINDS[@]}"; do push_image "$e" "$e/paths" "s$AT" "$k"; done
	use_cache "$e" "$c"
	variants=(fr)
	for k in "${KINDS[@]}"; do variants+=("img-$k"); done
	for v in "${variants[@]}"; do : >"$TEST_TMPDIR/pods-$v"; done
	npaths=$(lines "$e/paths") fetch_note=""
	log "20 pods at once on a cold node, $AT MiB: $N rounds of ${variants[*]}"
	for ((ROUND = 0; ROUND < N; ROUND++)); do
		for v in $(rotate "${variants[@]}"); do
			if [[ $v == fr ]]; then
				cold_node
				from=$(lines "$clog")
				T0=$(now_us)
				pods20 "$TEST_TMPDIR/pods-fr" flox_run "bench/p$AT"
				# one materialisation: every NAR fetched exactly once
				nars=$(tail -n +"$((from + 1))" "$clog" | awk '$2 == "GET" && $3 ~ /^\/nar\// {print $3}')
				total=$(grep -c . <<<"$nars" || true) distinct=$(sort -u <<<"$nars" | grep -c . || true)
				fetch_note+="${fetch_note:+, }$total"
				((total == npaths && distinct == npaths)) ||
					die "20 pods: $total NAR fetches ($distinct distinct) for $npaths paths: not one materialisation"
			else
				k=${v#img-}
				no_images
				T0=$(now_us)
				img_pull "$REG/bench/s$AT-$k:1"
				pods20 "$TEST_TMPDIR/pods-$v" img_run "$REG/bench/s$AT-$k:1" "$bb"
			fi
		done
	done
	no_images
	tf=$(median <"$TEST_TMPDIR/pods-fr")
	rows=("| flox-runc ($c NARs) | $(sec "$tf") s | |")
	for k in "${KINDS[@]}"; do
		t=$(median <"$TEST_TMPDIR/pods-img-$k")
		rows+=("| $(kind_name "$k"): pull once, 20 runs at once | $(sec "$t") s | $(ratio "$tf" "$t") |")
	done
	md "20 pods of one environment started at once on a cold node ($(env_desc "$e")): time until all 20 printed. flox-runc materialised once in every round: NAR fetches per round $fetch_note for $npaths paths, each NAR once (binary cache's log)." "" \
		"| side | all 20 printed | ratio flox-runc / image |" "|---|---|---|" "${rows[@]}" ""
fi

# ---------------------------------------------------------------------- disk
if want disk; then
	c=${COMPS[0]}
	serve "$FAMILY" "$c"
	use_cache "$FAMILY" "$c"
	for k in $(seq 0 9); do publish "bench/f$k" "$FAMILY/paths-f$k"; done
	log "10 related environments: flox-runc"
	cold_node
	for k in $(seq 0 9); do flox_run "bench/f$k" >/dev/null 2>&1 || die "flox-runc pod of bench/f$k failed"; done
	fr=$(du -skx "$STORE" "$STATE" | awk '{s += $1} END {print s * 1024}')
	frs=$(du -skx "$STORE" | awk '{print $1 * 1024}')
	rows=("| flox-runc: node store + state | $(mib "$fr") MiB (store $(mib "$frs") MiB) | |")
	for kind in "${KINDS[@]}"; do
		log "10 related environments: $(kind_name "$kind")"
		no_images
		for k in $(seq 0 9); do
			push_image "$FAMILY" "$FAMILY/paths-f$k" "f$k" "$kind"
			img_pull "$REG/bench/f$k-$kind:1"
		done
		cs=$(du -skx "$CD_ROOT/io.containerd.content.v1.content" | awk '{print $1 * 1024}')
		sn=$(du -skx "$CD_ROOT"/io.containerd.snapshotter.v1.* | awk '{s += $1} END {print s * 1024}')
		rows+=("| 10 $(kind_name "$kind")s: containerd content + snapshots | $(mib "$((cs + sn))") MiB (content $(mib "$cs"), snapshots $(mib "$sn")) | $(ratio "$fr" "$((cs + sn))") |")
		no_images
	done
	md "Node disk with 10 environments of 40 paths sharing 36 (busybox + 35 packages; 5 unique each; family of $(env_desc "$FAMILY")), each run once (\`du -skx\`: blocks, hard links once):" "" \
		"| node | disk | ratio flox-runc / images |" "|---|---|---|" "${rows[@]}" ""
fi

# ----------------------------------------------------------------------- rss
if want rss; then
	mib=${SIZES[-1]} c=${COMPS[0]}
	e=$(envdir "$mib")
	publish "bench/r$mib" "$e/paths"
	serve "$e" "$c"
	use_cache "$e" "$c"
	RSS_LOG=$TEST_TMPDIR/rss.log
	: >"$RSS_LOG"
	cat >"$TEST_TMPDIR/flox-runc-timed" <<EOF
#!/bin/sh
# flox-runc under GNU time: one line per call, "<first verb> <peak RSS KiB> <seconds>"
verb=other
for a in "\$@"; do case "\$a" in create|start|delete|state|kill|features) verb=\$a; break ;; esac; done
exec /usr/bin/time -a -o "$RSS_LOG" -f "\$verb %M %e" "$FLOX_RUNC" "\$@"
EOF
	chmod +x "$TEST_TMPDIR/flox-runc-timed"
	log "peak RSS: a cold pod and a cold prefetch of $mib MiB"
	cold_node
	RUNC_BIN=$TEST_TMPDIR/flox-runc-timed flox_run "bench/r$mib" >/dev/null 2>"$TEST_TMPDIR/rss.err" ||
		{ cat "$TEST_TMPDIR/rss.err" >&2; die "timed flox-runc pod failed"; }
	create=$(awk '$1 == "create" {print $2, $3}' "$RSS_LOG" | sort -n | tail -1)
	[[ -n "$create" ]] || die "no create in $RSS_LOG: $(cat "$RSS_LOG")"
	others=$(awk '$1 != "create" && $2 ~ /^[0-9]+$/ {print $2}' "$RSS_LOG" | sort -n | tail -1)
	cold_node
	/usr/bin/time -f %M -o "$TEST_TMPDIR/rss" "$FLOX_RUNC" prefetch "bench/r$mib" >/dev/null
	md "Peak RSS, $(env_desc "$e"), $c NARs (GNU time: the largest of flox-runc, the runtime it execs and each child it waited for, e.g. nix-store): cold \`create\` of a pod $((${create% *} / 1024)) MiB (${create#* } s), the pod's other runtime calls at most $((${others:-0} / 1024)) MiB; cold \`flox-runc prefetch\` $(($(cat "$TEST_TMPDIR/rss") / 1024)) MiB." ""
fi

md "Load after: $(cut -d' ' -f1-3 /proc/loadavg)."
cat "$OUT"
