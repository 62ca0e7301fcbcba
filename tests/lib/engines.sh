# shellcheck shell=bash disable=SC2016 # jq programs are single-quoted on purpose
#
# tests/lib/engines.sh - real container engines for flox-runc's engine suites
# (tests/integration/{cri,ctr,podman,gitlab}.sh): a private containerd (own
# root, state, socket, config, runc Root, CRI plugin with the runtime `flox`),
# the CRI client (tests/tools/cri), podman with conmon, local images, and the
# Flox side every suite shares (test FloxHub, signed binary cache, node
# configuration).  Source after tests/lib/common.sh, hub.sh and nixcache.sh;
# everything needs tmpdir_setup first and registers its own cleanup, which
# runs also when a step fails.
#
# Requirements (each skip_all when missing: exit 77, a failure under CI=true)
#   engines_require_containerd   containerd, ctr, containerd-shim-runc-v2
#   engines_require_cri          + node and the npm packages of tests/tools/cri
#                                (tests/deps.sh runs `npm ci` there; the suites
#                                never use the network)
#   engines_require_podman       podman, conmon
#
# Flox side
#   engines_flox_setup           test packages + signed cache (nixcache_build,
#                                nixcache_serve), the test hub, and these
#                                environments on it:
#                                  acme/tools        busybox + hello (sh, sleep, tee, env...)
#                                  acme/hello        hello only
#                                  secretcorp/tools  busybox + hello, private;
#                                                    token $FLOX_TOKEN accepted
#                                Writes the node config $FLOX_CFG (runtime: real
#                                runc, store_root $FLOX_STORE, state_dir
#                                $FLOX_STATE) and exports FLOX_RUNC_CONFIG.
#   engines_token_volume DIR TOKEN
#                                a secret volume as kubelet writes it: DIR/..<ts>/floxhub-token,
#                                DIR/..data -> ..<ts>, DIR/floxhub-token -> ..data/floxhub-token
#   engines_leftovers            prints what a finished pod may not leave:
#                                mounts of the store/state/overlays, container
#                                GC roots, per-container records (empty = clean)
#
# Images (no network; built once per run into $TEST_TMPDIR/images)
#   engines_images               busybox.tar (docker.io/library/busybox-test:1),
#                                pause.tar (registry.k8s.io/pause:3.6),
#                                empty.tar (docker.io/flox/empty:1.0.0);
#                                sets IMG_BUSYBOX, IMG_PAUSE, IMG_EMPTY
#
# containerd
#   containerd_start             private daemon under $TEST_TMPDIR/containerd
#                                with FLOX_RUNC_CONFIG in its environment (the
#                                runc v2 shim passes its environment on to the
#                                runtime it calls); CRI plugin: native
#                                snapshotter, restrict_oom_score_adj, sandbox
#                                image = the pause stand-in, runtimes `runc`
#                                and `flox` (BinaryName = $FLOX_RUNC,
#                                pod/container_annotations flox.dev/*), runc
#                                Root $CD_RUNC_ROOT, a streaming server on a
#                                free loopback port. Sets CD_SOCK, CD_STATE,
#                                CD_ROOT, CD_LOG, CD_PID.  Stopped at cleanup.
#   containerd_stop              remove CRI pods/containers and ctr tasks,
#                                stop the daemon and its shims, delete what
#                                is left in the runc roots (through flox-runc,
#                                so it releases its roots and records)
#   containerd_import NS TAR     ctr image import (native snapshotter)
#   ctr_ NS ARG...               ctr -a $CD_SOCK -n NS ARG...
#   cri METHOD [REQUEST]         tests/tools/cri/cri.js on $CD_SOCK
#   cri_bundle ID                the shim's bundle dir of a CRI container/sandbox
#
# podman
#   podman_setup                 PODMAN=(podman --root/--runroot/--tmpdir under
#                                $TEST_TMPDIR/podman, vfs, cgroupfs, file
#                                events, --runtime $FLOX_RUNC) and a private
#                                containers.conf; PODMAN_RUN_OPTS: --network
#                                none and the ulimits these machines need.
#                                podman calls the runtime for start/kill/delete
#                                with an environment of its own and drops
#                                --runtime-flag in conmon's exit command, so
#                                the node config is installed at flox-runc's
#                                default path $PODMAN_NODE_CONFIG (skip_all when
#                                a file is there already; removed at cleanup)
#                                and runc keeps its default root.

ENGINES_SRC=${FLOX_RUNC_SRCDIR:?}
# shellcheck source=tests/lib/containerd-config.sh
. "$ENGINES_SRC/tests/lib/containerd-config.sh"
CRI_DIR=$ENGINES_SRC/tests/tools/cri
IMG_BUSYBOX=docker.io/library/busybox-test:1
IMG_PAUSE=registry.k8s.io/pause:3.6
IMG_EMPTY=docker.io/flox/empty:1.0.0
PODMAN_NODE_CONFIG=/etc/flox-runc/config.json
CD_PID=""
PODMAN=()

# ------------------------------------------------------------ requirements

engines_require_containerd() {
	require_cmd containerd ctr containerd-shim-runc-v2 runc jq
}

engines_require_cri() {
	engines_require_containerd
	require_cmd node
	[[ -d "$CRI_DIR/node_modules/@grpc/grpc-js" && -d "$CRI_DIR/node_modules/@grpc/proto-loader" ]] ||
		skip_all "the CRI client's modules are not installed: run tests/deps.sh (npm ci in tests/tools/cri)"
}

engines_require_podman() {
	require_cmd podman conmon runc jq
}

# --------------------------------------------------------------- flox side

engines_flox_setup() {
	nixcache_build
	nixcache_serve main signed
	hub_start
	local l=$TEST_TMPDIR/locks
	mkdir -p "$l"
	nixcache_lock "$l/tools" busybox hello
	nixcache_lock "$l/hello" hello
	hub_publish acme/tools "$l/tools" >/dev/null
	hub_publish acme/hello "$l/hello" >/dev/null
	hub_publish secretcorp/tools "$l/tools" >/dev/null
	hub_private secretcorp
	FLOX_TOKEN=tok-$TEST_ID
	hub_token "$FLOX_TOKEN" secretcorp

	FLOX_STORE=$TEST_TMPDIR/store
	FLOX_STATE=$TEST_TMPDIR/state
	FLOX_CFG=$TEST_TMPDIR/flox-runc.json
	jq -n --arg rt "$(command -v runc)" --arg hub "$HUB_URL" --arg store "$FLOX_STORE" \
		--arg state "$FLOX_STATE" --arg sub "$(nixcache_url main)" --arg key "$NIX_FX_KEY" \
		'{runtime: $rt, floxhub_url: $hub, store_root: $store, state_dir: $state,
		  substituters: [$sub], trusted_public_keys: [$key],
		  fresh_seconds: 0, deadline_seconds: 60}' >"$FLOX_CFG"
	export FLOX_RUNC_CONFIG=$FLOX_CFG
}

engines_token_volume() {
	local dir=$1 token=$2 ts=..2024_01_01_00_00_00.$RANDOM
	rm -rf "$dir"
	mkdir -p "$dir/$ts"
	printf '%s' "$token" >"$dir/$ts/floxhub-token"
	chmod 0644 "$dir/$ts/floxhub-token"
	ln -s "$ts" "$dir/..data"
	ln -s ..data/floxhub-token "$dir/floxhub-token"
}

engines_leftovers() {
	local store=${FLOX_STORE:?} state=${FLOX_STATE:?}
	# (the views' pins, lib/viewpin.h, go with the views, not the pods)
	awk -v a="$store" -v b="$state" -v p="$state/viewns" '($5 == a || index($5, a "/") == 1 || $5 == b || index($5, b "/") == 1) &&
		$5 != p && index($5, p "/") != 1 {print "mount: " $5}' /proc/self/mountinfo
	find "$store/nix/var/nix/gcroots/flox-runc/containers" -mindepth 1 -printf 'gcroot: %p\n' 2>/dev/null || true
	find "$state/containers" -mindepth 1 -type f -printf 'record: %p\n' 2>/dev/null || true
	find "$state/overlays" -mindepth 1 -maxdepth 2 -printf 'overlay dir: %p\n' 2>/dev/null || true
	# FLOX_ENV_CACHE goes with its pod sandbox (or container)
	find "$state/env-cache" -mindepth 2 -maxdepth 2 -printf 'env cache: %p\n' 2>/dev/null || true
}

# ------------------------------------------------------------------ images

engines_images() {
	local d=$TEST_TMPDIR/images
	mkdir -p "$d"
	bash "$ENGINES_SRC/tests/tools/mkimage.sh" "$d/busybox.tar" "$IMG_BUSYBOX" 2>/dev/null ||
		die "mkimage.sh busybox failed"
	bash "$ENGINES_SRC/tests/tools/mkimage.sh" "$d/pause.tar" "$IMG_PAUSE" 2>/dev/null ||
		die "mkimage.sh pause failed"
	bash "$ENGINES_SRC/tests/tools/mkimage-empty.sh" "$d/empty.tar" "$IMG_EMPTY" 2>/dev/null ||
		die "mkimage-empty.sh failed"
}

# -------------------------------------------------------------- containerd

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

containerd_start() {
	local d=$TEST_TMPDIR/containerd
	CD_ROOT=$d/root
	CD_STATE=$d/state
	CD_SOCK=$d/containerd.sock
	CD_LOG=$TEST_TMPDIR/containerd.log
	CD_RUNC_ROOT=$TEST_TMPDIR/runc-root
	CD_CONFIG=$d/config.toml
	mkdir -p "$d" "$TEST_TMPDIR/cni/bin" "$TEST_TMPDIR/cni/conf" "$CD_RUNC_ROOT"
	CD_STREAM_PORT=$(free_port)
	containerd_config_toml "$CD_ROOT" "$CD_STATE" "$CD_SOCK" "$IMG_PAUSE" "$CD_STREAM_PORT" "$CD_RUNC_ROOT" \
		"$TEST_TMPDIR/cni" "$FLOX_RUNC" >"$CD_CONFIG"
	# FLOX_RUNC_CONFIG reaches flox-runc through containerd -> shim -> runtime.
	FLOX_RUNC_CONFIG=${FLOX_RUNC_CONFIG:?} containerd --config "$CD_CONFIG" >"$CD_LOG" 2>&1 &
	CD_PID=$!
	disown "$CD_PID" 2>/dev/null || true
	cleanup_add containerd_stop
	for _ in $(seq 150); do
		ctr -a "$CD_SOCK" version >/dev/null 2>&1 && break
		if ! kill -0 "$CD_PID" 2>/dev/null; then
			diag "$(tail -20 "$CD_LOG")"
			die "containerd exited while starting"
		fi
		sleep 0.1
	done
	ctr -a "$CD_SOCK" version >/dev/null 2>&1 || die "containerd did not come up ($CD_LOG)"
}

ctr_() {
	local ns=$1
	shift
	ctr -a "$CD_SOCK" -n "$ns" "$@"
}

containerd_import() {
	ctr -a "$CD_SOCK" -n "$1" image import --snapshotter native "$2" >/dev/null ||
		die "ctr image import $2 failed"
}

cri() {
	node "$CRI_DIR/cri.js" --socket "$CD_SOCK" --timeout "${CRI_TIMEOUT:-90}" "$@"
}

cri_bundle() {
	printf '%s/io.containerd.runtime.v2.task/k8s.io/%s\n' "$CD_STATE" "$1"
}

containerd_stop() {
	set +e
	local id ns pid f rroot
	local -a socks=() pids=()
	local -a namespaces=(k8s.io)
	mapfile -t socks < <(cat "$CD_STATE"/io.containerd.runtime.v2.task/*/*/address 2>/dev/null | sed 's#^unix://##')
	if [[ -n "$CD_PID" ]] && kill -0 "$CD_PID" 2>/dev/null; then
		mapfile -t -O 1 namespaces < <(ctr -a "$CD_SOCK" namespaces ls -q 2>/dev/null | grep -vx k8s.io)
		if [[ -d "$CRI_DIR/node_modules/@grpc/grpc-js" ]]; then
			for id in $(CRI_TIMEOUT=20 cri ListContainers '{}' 2>/dev/null | jq -r '.containers[]?.id'); do
				CRI_TIMEOUT=20 cri StopContainer "{\"container_id\":\"$id\",\"timeout\":0}" >/dev/null 2>&1
				CRI_TIMEOUT=20 cri RemoveContainer "{\"container_id\":\"$id\"}" >/dev/null 2>&1
			done
			for id in $(CRI_TIMEOUT=20 cri ListPodSandbox '{}' 2>/dev/null | jq -r '.items[]?.id'); do
				CRI_TIMEOUT=20 cri StopPodSandbox "{\"pod_sandbox_id\":\"$id\"}" >/dev/null 2>&1
				CRI_TIMEOUT=20 cri RemovePodSandbox "{\"pod_sandbox_id\":\"$id\"}" >/dev/null 2>&1
			done
		fi
		for ns in $(ctr -a "$CD_SOCK" namespaces ls -q 2>/dev/null); do
			[[ "$ns" == k8s.io ]] && continue
			for id in $(ctr_ "$ns" task ls -q 2>/dev/null); do
				ctr_ "$ns" task kill -s SIGKILL "$id" >/dev/null 2>&1
				ctr_ "$ns" task rm -f "$id" >/dev/null 2>&1
			done
			for id in $(ctr_ "$ns" container ls -q 2>/dev/null); do
				ctr_ "$ns" container rm "$id" >/dev/null 2>&1
			done
		done
		kill "$CD_PID" 2>/dev/null
		for _ in $(seq 50); do
			kill -0 "$CD_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$CD_PID" 2>/dev/null
	fi
	# shims outlive containerd: stop the ones of our tasks, by their pid files
	for f in "$CD_STATE"/io.containerd.runtime.v2.task/*/*/shim.pid; do
		[[ -f "$f" ]] || continue
		pid=$(cat "$f" 2>/dev/null)
		[[ "$pid" =~ ^[0-9]+$ ]] && pids+=("$pid")
	done
	for pid in "${pids[@]}"; do
		# only a containerd shim started for our socket
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-address $CD_SOCK" && kill -9 "$pid" 2>/dev/null
	done
	for rroot in "$CD_RUNC_ROOT"/*/; do
		[[ -d "$rroot" ]] || continue
		for id in $(runc --root "$rroot" list -q 2>/dev/null); do
			"$FLOX_RUNC" --root "${rroot%/}" delete --force "$id" >/dev/null 2>&1
		done
	done
	for f in "${socks[@]}"; do
		[[ "$f" == /run/containerd/s/* && -S "$f" ]] && rm -f "$f"
	done
	# the cgroups of our containers (cgroupsPath /<namespace>/<id>); a busy
	# one (another daemon's k8s.io) refuses rmdir
	engines_rm_cgroups "${namespaces[@]}"
	CD_PID=""
	return 0
}

# engines_rm_cgroups NAME...: remove the cgroup directories /NAME (and what
# is below them) in every hierarchy, where nothing runs in them any more.
engines_rm_cgroups() {
	local n d
	for n in "$@"; do
		[[ -n "$n" && "$n" != */* && "$n" != . && "$n" != .. ]] || continue
		for d in /sys/fs/cgroup/"$n" /sys/fs/cgroup/*/"$n"; do
			[[ -d "$d" ]] && find "$d" -depth -type d -exec rmdir {} + >/dev/null 2>&1
		done
	done
	return 0
}

# ------------------------------------------------------------------ podman

podman_setup() {
	local p=$TEST_TMPDIR/podman
	mkdir -p "$p/root" "$p/runroot" "$p/tmp" "$p/volumes"
	cat >"$p/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$p/events.log"
volume_path = "$p/volumes"
EOF
	: >"$p/registries.conf"
	export CONTAINERS_CONF=$p/containers.conf CONTAINERS_REGISTRIES_CONF=$p/registries.conf
	PODMAN=(podman --root "$p/root" --runroot "$p/runroot" --tmpdir "$p/tmp"
		--storage-driver vfs --cgroup-manager cgroupfs --events-backend file
		--runtime "$FLOX_RUNC")
	# shellcheck disable=SC2034 # used by the suites
	PODMAN_RUN_OPTS=(--network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)

	# podman runs `start`, `kill` and `delete` itself with an environment of
	# its own (XDG_RUNTIME_DIR only), and conmon's exit command (`podman
	# container cleanup`) drops --runtime-flag: the node config must be at
	# the default path and runc's root the default one, as on a real node.
	[[ ! -e "$PODMAN_NODE_CONFIG" ]] ||
		skip_all "$PODMAN_NODE_CONFIG exists: this suite installs its own node config there"
	if [[ ! -d "${PODMAN_NODE_CONFIG%/*}" ]]; then
		mkdir -p "${PODMAN_NODE_CONFIG%/*}"
		cleanup_add rmdir "${PODMAN_NODE_CONFIG%/*}"
	fi
	cleanup_add rm -f "$PODMAN_NODE_CONFIG"
	cp "${FLOX_RUNC_CONFIG:?}" "$PODMAN_NODE_CONFIG"
	unset FLOX_RUNC_CONFIG
	cleanup_add podman_cleanup
}

podman_cleanup() {
	set +e
	local id
	local -a ids=()
	mapfile -t ids < <("${PODMAN[@]}" ps -aq --no-trunc 2>/dev/null)
	"${PODMAN[@]}" rm --all --force --time 0 >/dev/null 2>&1
	for id in "${ids[@]}"; do
		runc state "$id" >/dev/null 2>&1 && "$FLOX_RUNC" delete --force "$id" >/dev/null 2>&1
	done
	"${PODMAN[@]}" system prune --all --force >/dev/null 2>&1
	engines_rm_cgroups libpod_parent
	return 0
}

# engines_cri_suite NAME: the start of a CRI suite (after tests/lib/suite.sh):
# the checks that skip it, a scratch directory NAME, the test hub and Nix
# cache with flox-runc's node config, the images, a private containerd with
# them imported.
engines_cri_suite() {
	suite_needs --root --flox-runc --nix python3 git
	engines_require_cri
	tmpdir_setup "$1"
	engines_flox_setup
	engines_images
	containerd_start
	local img
	for img in pause busybox empty; do
		containerd_import k8s.io "$TEST_TMPDIR/images/$img.tar"
	done
	diag "containerd $(containerd --version | awk '{print $3}'), socket $CD_SOCK; hub $HUB_URL"
}
