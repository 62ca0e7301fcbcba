#!/bin/bash
# capture.sh: re-capture the OCI spec fixtures in this directory from real
# engines (runc/crun `spec`, containerd 1.6 via ctr and via the CRI API,
# podman + conmon), by registering tests/tools/capture-runtime.sh as the OCI
# runtime and copying what the engine hands it.
#
#   sudo spec-fixtures/capture.sh [ENGINE...]
#
# ENGINE: spec ctr cri podman (default: all). Run as root on Debian 12.
# Environment:
#   OUT=DIR          write fixtures there instead of this directory
#   SKIP_INSTALL=1   do not apt-get/npm anything (tools must be present)
#   KEEP_TMP=1       keep the temp dir (logs, responses) for debugging
#
# Hermetic: everything lives in one mktemp dir (own containerd root, state,
# socket and config; own runc --root; podman --root/--runroot/--tmpdir, vfs,
# cgroupfs, file events, no network; CONTAINERS_CONF pointing to a private
# file). An EXIT trap removes containers, stops the daemon and shims it
# started, and unmounts everything below the temp dir, even on failure.
# The only shared path touched is /run/containerd/s (containerd 1.6 puts
# shim sockets there, named by a hash of our private address).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
OUT="${OUT:-$HERE}"
WRAPPER="$REPO/tests/tools/capture-runtime.sh"
MKIMAGE="$REPO/tests/tools/mkimage.sh"
# shellcheck source=tests/lib/containerd-config.sh
. "$REPO/tests/lib/containerd-config.sh"
CRI_DIR="$REPO/tests/tools/cri"

BB_IMAGE="docker.io/library/busybox-test:1"
PAUSE_IMAGE="registry.k8s.io/pause:3.6"
CTR_NS="flox-capture"

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'capture.sh: %s\n' "$*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root"

engines=("$@")
[[ ${#engines[@]} -gt 0 ]] || engines=(spec ctr cri podman)
for e in "${engines[@]}"; do
	case "$e" in spec | ctr | cri | podman) ;; *) die "unknown engine $e (spec ctr cri podman)" ;; esac
done
want() { local e; for e in "${engines[@]}"; do [[ "$e" == "$1" ]] && return 0; done; return 1; }

# --- dependencies ---------------------------------------------------------------
install_deps() {
	local pkgs=() c
	declare -A pkg_of=(
		[containerd]=containerd [ctr]=containerd [containerd-shim-runc-v2]=containerd
		[runc]=runc [crun]=crun [podman]=podman [conmon]=conmon [jq]=jq
		[flock]=util-linux [findmnt]=util-linux
	)
	for c in "${!pkg_of[@]}"; do
		command -v "$c" >/dev/null 2>&1 || pkgs+=("${pkg_of[$c]}")
	done
	if ! { ldd /bin/busybox 2>&1 || true; } | grep -qE 'not a dynamic|statically linked'; then
		pkgs+=(busybox-static)
	fi
	command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
	command -v npm >/dev/null 2>&1 || pkgs+=(npm)
	if [[ ${#pkgs[@]} -gt 0 ]]; then
		mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
		log "apt-get install ${pkgs[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update
		apt-get install -y --no-install-recommends ca-certificates "${pkgs[@]}"
	fi
	if [[ ! -d "$CRI_DIR/node_modules/@grpc/grpc-js" || ! -d "$CRI_DIR/node_modules/@grpc/proto-loader" ]]; then
		log "npm ci in tests/tools/cri"
		(cd "$CRI_DIR" && npm ci --no-audit --no-fund)
	fi
}
[[ "${SKIP_INSTALL:-0}" == 1 ]] || install_deps

# --- temp dir and cleanup -----------------------------------------------------
T="$(mktemp -d /tmp/flox-capture.XXXXXX)"
chmod 0755 "$T"
CD_ROOT="$T/containerd"
SOCK="$CD_ROOT/containerd.sock"
RUNC_ROOT="$T/runc-root"
CONTAINERD_PID=""
PODMAN=()

unmount_below() {
	local mp
	# mountinfo field 5 is the mount point (octal-escaped); deepest first
	awk -v t="$1" '{ mp=$5; gsub(/\\040/, " ", mp); if (index(mp, t "/") == 1) print mp }' /proc/self/mountinfo |
		sort -r | while IFS= read -r mp; do
		umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
	done
}

cleanup() {
	local rc=$? pid id
	set +e
	trap - EXIT INT TERM
	log "cleanup (exit status $rc)"
	# shim sockets of our tasks (in the shared /run/containerd/s): a shim
	# that is killed leaves its socket behind
	local shim_socks=()
	mapfile -t shim_socks < <(cat "$CD_ROOT"/state/io.containerd.runtime.v2.task/*/*/address 2>/dev/null | sed 's#^unix://##')
	if [[ ${#PODMAN[@]} -gt 0 ]]; then
		"${PODMAN[@]}" rm --all --force --time 0 >/dev/null 2>&1
		"${PODMAN[@]}" system prune --all --force >/dev/null 2>&1
	fi
	if [[ -n "$CONTAINERD_PID" ]] && kill -0 "$CONTAINERD_PID" 2>/dev/null; then
		if [[ -d "$CRI_DIR/node_modules" ]]; then
			for id in $(cri ListContainers '{}' 2>/dev/null | jq -r '.containers[]?.id'); do
				cri StopContainer "{\"container_id\":\"$id\",\"timeout\":0}" >/dev/null 2>&1
				cri RemoveContainer "{\"container_id\":\"$id\"}" >/dev/null 2>&1
			done
			for id in $(cri ListPodSandbox '{}' 2>/dev/null | jq -r '.items[]?.id'); do
				cri StopPodSandbox "{\"pod_sandbox_id\":\"$id\"}" >/dev/null 2>&1
				cri RemovePodSandbox "{\"pod_sandbox_id\":\"$id\"}" >/dev/null 2>&1
			done
		fi
		for id in $(ctr -a "$SOCK" -n "$CTR_NS" task ls -q 2>/dev/null); do
			ctr -a "$SOCK" -n "$CTR_NS" task kill -s SIGKILL "$id" >/dev/null 2>&1
			sleep 0.5
			ctr -a "$SOCK" -n "$CTR_NS" task rm -f "$id" >/dev/null 2>&1
		done
		for id in $(ctr -a "$SOCK" -n "$CTR_NS" container ls -q 2>/dev/null); do
			ctr -a "$SOCK" -n "$CTR_NS" container rm "$id" >/dev/null 2>&1
		done
		kill "$CONTAINERD_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$CONTAINERD_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$CONTAINERD_PID" 2>/dev/null
	fi
	# shims outlive containerd: stop the ones started for our private address
	for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $SOCK" 2>/dev/null); do
		kill -9 "$pid" 2>/dev/null
	done
	# anything still registered in our runc root
	local rroot
	for rroot in "$RUNC_ROOT"/*/; do
		[[ -d "$rroot" ]] || continue
		for id in $(runc --root "$rroot" list -q 2>/dev/null); do
			runc --root "$rroot" delete --force "$id" >/dev/null 2>&1
		done
	done
	for id in "${shim_socks[@]}"; do
		[[ "$id" == /run/containerd/s/* && -S "$id" ]] && rm -f "$id"
	done
	unmount_below "$T"
	if [[ "${KEEP_TMP:-0}" == 1 || $rc -ne 0 ]]; then
		echo "capture.sh: temp dir kept: $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A per-engine runtime path: a symlink to the capture wrapper with a
# "<path>.env" beside it, because conmon does not pass our environment on.
make_runtime() { # name -> prints runtime path; captures go to $T/capture/<name>
	local bin="$T/bin/$1-runtime"
	mkdir -p "$T/bin" "$T/capture/$1"
	ln -sf "$WRAPPER" "$bin"
	printf 'CAPTURE_DIR=%s\nCAPTURE_RUNTIME=%s\n' "$T/capture/$1" "$(command -v runc)" >"$bin.env"
	printf '%s' "$bin"
}

cri() { node "$CRI_DIR/cri.js" --socket "$SOCK" --timeout 60 "$@"; }

# Save a captured file byte-for-byte.
save() { # src name
	cp -- "$1" "$OUT/$2"
	chmod 0644 "$OUT/$2"
	echo "  $2" >&2
}
save_argv() { # engine name
	mkdir -p "$OUT/argv"
	cp -- "$T/capture/$1/argv.log" "$OUT/argv/$2.log"
	echo "  argv/$2.log" >&2
}

# find the single captured file matching a jq filter
pick() { # dir glob jq-filter
	local f hits=()
	for f in "$1"/$2; do
		[[ -f "$f" ]] || continue
		jq -e "$3" "$f" >/dev/null 2>&1 && hits+=("$f")
	done
	[[ ${#hits[@]} -ge 1 ]] || die "no capture in $1 matching $2 $3"
	printf '%s' "${hits[0]}"
}

mkdir -p "$OUT" "$T/images"
cd "$T" # engines and runtimes inherit this cwd; keep the repo path out of argv.log
{
	echo "# captured by spec-fixtures/capture.sh on $(date -u +%Y-%m-%d)"
	# shellcheck disable=SC1091
	echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "kernel: $(uname -r) $(uname -m)"
	echo "cgroup: $(stat -fc %T /sys/fs/cgroup)"
	for p in containerd runc crun podman conmon busybox-static nodejs; do
		echo "$p: $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo '?')"
	done
} >"$T/versions"

if want ctr || want cri || want podman; then
	log "building images"
	"$MKIMAGE" "$T/images/busybox.tar" "$BB_IMAGE"
	"$MKIMAGE" "$T/images/pause.tar" "$PAUSE_IMAGE"
fi

# --- 1. runc spec / crun spec ------------------------------------------------------
if want spec; then
	log "runc spec / crun spec"
	mkdir -p "$T/spec/runc" "$T/spec/crun"
	(cd "$T/spec/runc" && runc spec)
	(cd "$T/spec/crun" && crun spec)
	save "$T/spec/runc/config.json" runc-spec.json
	save "$T/spec/crun/config.json" crun-spec.json
fi

# --- containerd -----------------------------------------------------------------
start_containerd() {
	local cri_rt
	cri_rt="$(make_runtime containerd-cri)"
	mkdir -p "$CD_ROOT" "$T/cni/bin" "$T/cni/conf" "$T/pod-logs"
	containerd_config_toml "$CD_ROOT/root" "$CD_ROOT/state" "$SOCK" "$PAUSE_IMAGE" 0 "$RUNC_ROOT" "$T/cni" "$cri_rt" \
		>"$CD_ROOT/config.toml"
	log "starting containerd ($SOCK)"
	containerd --config "$CD_ROOT/config.toml" >"$T/containerd.log" 2>&1 &
	CONTAINERD_PID=$!
	for _ in $(seq 100); do
		ctr -a "$SOCK" version >/dev/null 2>&1 && break
		kill -0 "$CONTAINERD_PID" 2>/dev/null || { tail -30 "$T/containerd.log" >&2; die "containerd exited"; }
		sleep 0.2
	done
	ctr -a "$SOCK" version >/dev/null || die "containerd did not come up"
}

if want ctr || want cri; then
	start_containerd
fi

# --- 2. containerd via ctr ---------------------------------------------------------
if want ctr; then
	log "containerd: ctr run / ctr task exec"
	rt="$(make_runtime containerd-ctr)"
	CTR=(ctr -a "$SOCK" -n "$CTR_NS")
	CONTAINERD_SNAPSHOTTER=native "${CTR[@]}" image import "$T/images/busybox.tar"
	CONTAINERD_SNAPSHOTTER=native "${CTR[@]}" run -d --null-io \
		--runc-binary "$rt" --runc-root "$RUNC_ROOT" \
		--annotation flox.dev/environment=acme/hello \
		"$BB_IMAGE" flox-ctr sleep 3600
	"${CTR[@]}" task exec --exec-id capture-exec flox-ctr sh -c 'echo hello from exec'
	"${CTR[@]}" task kill -s SIGKILL flox-ctr
	for _ in $(seq 50); do
		"${CTR[@]}" task ls | grep -q 'flox-ctr.*STOPPED' && break
		sleep 0.1
	done
	"${CTR[@]}" task rm flox-ctr
	"${CTR[@]}" container rm flox-ctr
	c="$T/capture/containerd-ctr"
	save "$(pick "$c" '*-create-config.json' '.annotations["flox.dev/environment"] == "acme/hello"')" containerd-ctr-config.json
	save "$(pick "$c" '*-exec-process.json' '.args[0] == "sh"')" containerd-ctr-exec-process.json
	save_argv containerd-ctr containerd-ctr
fi

# --- 3. containerd CRI ---------------------------------------------------------------
if want cri; then
	log "containerd CRI: RunPodSandbox / CreateContainer / StartContainer / ExecSync"
	r="$T/cri-responses"
	mkdir -p "$r"
	ctr -a "$SOCK" -n k8s.io image import --snapshotter native "$T/images/pause.tar"
	ctr -a "$SOCK" -n k8s.io image import --snapshotter native "$T/images/busybox.tar"
	cri Version '{}' >"$r/Version.json"
	cri ListImages '{}' >"$r/ListImages.json"
	jq -e --arg i "$BB_IMAGE" '[.images[].repo_tags[]] | index($i)' "$r/ListImages.json" >/dev/null ||
		die "CRI does not list $BB_IMAGE"

	pod_config=$(jq -n --arg logdir "$T/pod-logs" '{
		metadata: {name: "flox-capture", namespace: "default", uid: "0f1c2a3b-flox-capture", attempt: 0},
		log_directory: $logdir,
		labels: {"io.kubernetes.pod.name": "flox-capture", "io.kubernetes.pod.namespace": "default",
			"io.kubernetes.pod.uid": "0f1c2a3b-flox-capture", app: "flox-capture"},
		annotations: {
			"flox.dev/environment": "acme/hello:3",
			"flox.dev/activate-mode": "dev",
			"flox.dev/skip-containers": "sidecar",
			"flox.dev/skip-containers-exec": "debug",
			"flox.dev/disable-metrics": "true",
			"kubernetes.io/config.source": "api",
			"example.com/not-flox": "must-be-filtered"
		},
		linux: {security_context: {namespace_options: {network: "NODE", pid: "CONTAINER", ipc: "POD"}}}
	}')
	jq -n --argjson c "$pod_config" '{config: $c, runtime_handler: "flox"}' >"$r/RunPodSandbox.request.json"
	cri RunPodSandbox "@$r/RunPodSandbox.request.json" >"$r/RunPodSandbox.json"
	pod_id=$(jq -r .pod_sandbox_id "$r/RunPodSandbox.json")

	jq -n --arg pod "$pod_id" --arg image "$BB_IMAGE" --argjson sc "$pod_config" '{
		pod_sandbox_id: $pod,
		config: {
			metadata: {name: "app", attempt: 0},
			image: {image: $image},
			command: ["sleep", "3600"],
			envs: [{key: "APP_ENV", value: "capture"}],
			log_path: "app/0.log",
			labels: {"io.kubernetes.container.name": "app", "io.kubernetes.pod.name": "flox-capture",
				"io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": "0f1c2a3b-flox-capture"},
			annotations: {"io.kubernetes.container.restartCount": "0",
				"io.kubernetes.container.terminationMessagePath": "/dev/termination-log"},
			linux: {security_context: {namespace_options: $sc.linux.security_context.namespace_options}}
		},
		sandbox_config: $sc
	}' >"$r/CreateContainer.request.json"
	mkdir -p "$T/pod-logs/app"
	cri CreateContainer "@$r/CreateContainer.request.json" >"$r/CreateContainer.json"
	ctr_id=$(jq -r .container_id "$r/CreateContainer.json")
	cri StartContainer "{\"container_id\":\"$ctr_id\"}" >"$r/StartContainer.json"
	cri ExecSync "{\"container_id\":\"$ctr_id\",\"cmd\":[\"sh\",\"-c\",\"echo hello from exec\"],\"timeout\":30}" >"$r/ExecSync.json"
	jq -e '.exit_code == 0 and (.stdout | test("hello from exec"))' "$r/ExecSync.json" >/dev/null ||
		die "ExecSync failed: $(cat "$r/ExecSync.json")"
	cri ContainerStatus "{\"container_id\":\"$ctr_id\"}" >"$r/ContainerStatus.json"
	cri ListContainers '{}' >"$r/ListContainers.json"
	cri StopContainer "{\"container_id\":\"$ctr_id\",\"timeout\":0}" >"$r/StopContainer.json"
	cri RemoveContainer "{\"container_id\":\"$ctr_id\"}" >"$r/RemoveContainer.json"
	cri StopPodSandbox "{\"pod_sandbox_id\":\"$pod_id\"}" >"$r/StopPodSandbox.json"
	cri RemovePodSandbox "{\"pod_sandbox_id\":\"$pod_id\"}" >"$r/RemovePodSandbox.json"

	c="$T/capture/containerd-cri"
	save "$(pick "$c" '*-create-config.json' '.annotations["io.kubernetes.cri.container-type"] == "sandbox"')" containerd-cri-sandbox-config.json
	save "$(pick "$c" '*-create-config.json' '.annotations["io.kubernetes.cri.container-type"] == "container"')" containerd-cri-container-config.json
	save "$(pick "$c" '*-exec-process.json' '.args[0] == "sh"')" containerd-cri-exec-process.json
	save_argv containerd-cri containerd-cri
fi

# --- 4. podman + conmon ------------------------------------------------------------
if want podman; then
	log "podman + conmon: run / exec"
	rt="$(make_runtime podman-conmon)"
	P="$T/podman"
	mkdir -p "$P/root" "$P/runroot" "$P/tmp" "$P/volumes"
	cat >"$P/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$P/events.log"
volume_path = "$P/volumes"
EOF
	: >"$P/registries.conf"
	export CONTAINERS_CONF="$P/containers.conf" CONTAINERS_REGISTRIES_CONF="$P/registries.conf"
	PODMAN=(podman --root "$P/root" --runroot "$P/runroot" --tmpdir "$P/tmp"
		--storage-driver vfs --cgroup-manager cgroupfs --events-backend file
		--runtime "$rt" --runtime-flag "root=$RUNC_ROOT/podman")
	"${PODMAN[@]}" load -i "$T/images/busybox.tar"
	"${PODMAN[@]}" run -d --name flox-podman --network none \
		--ulimit nofile=20000:20000 --ulimit nproc=32768:32768 \
		--annotation flox.dev/environment=acme/hello \
		"$BB_IMAGE" sleep 3600
	"${PODMAN[@]}" exec flox-podman sh -c 'echo hello from exec'
	"${PODMAN[@]}" rm --force --time 0 flox-podman
	c="$T/capture/podman-conmon"
	save "$(pick "$c" '*-create-config.json' '.annotations["flox.dev/environment"] == "acme/hello"')" podman-conmon-config.json
	save "$(pick "$c" '*-exec-process.json' '.args[0] == "sh"')" podman-conmon-exec-process.json
	save_argv podman-conmon podman-conmon
fi

cp "$T/versions" "$OUT/VERSIONS"

# Refresh the generated argv section of README.md (between the markers).
update_readme() {
	local readme="$OUT/README.md" section="$T/argv-section.md" f
	[[ -f "$readme" ]] && grep -q '^<!-- BEGIN argv' "$readme" || return 0
	{
		for f in "$OUT"/argv/*.log; do
			[[ -f "$f" ]] || continue
			# shellcheck disable=SC2016
			printf '#### `argv/%s`\n\n```\n' "$(basename "$f")"
			cat "$f"
			printf '```\n\n'
		done
	} >"$section"
	awk -v section="$section" '
		/^<!-- BEGIN argv/ { print; while ((getline line < section) > 0) print line; skip = 1; next }
		/^<!-- END argv/ { skip = 0 }
		!skip { print }
	' "$readme" >"$readme.tmp" && mv "$readme.tmp" "$readme"
}
update_readme
log "done: fixtures in $OUT"
