#!/usr/bin/env bash
#
# tests/integration/cri.sh - flox-runc behind containerd's CRI plugin, driven
# through the real CRI API as kubelet drives it (meson suite `cri`).  Real
# parts only: a private containerd 1.6 with the runtime `flox`
# (runtime_type io.containerd.runc.v2, BinaryName = flox-runc,
# pod_annotations/container_annotations flox.dev/*, see tests/lib/engines.sh),
# the CRI client tests/tools/cri (RuntimeService/ImageService over the
# socket), the real runc, the test FloxHub, a signed binary cache on
# 127.0.0.1 and the node's nix-store.  Images are built locally: the pause
# stand-in and busybox (tests/tools/mkimage.sh) and the empty image
# docker.io/flox/empty:1.0.0 (tests/tools/mkimage-empty.sh).
#
# A pod's life (runtime_handler flox, flox.dev/environment: acme/tools,
# skip-containers: sidecar, skip-containers-exec: debug):
#   1. RunPodSandbox: the sandbox passes through untouched (the bundle's
#      config.json is byte-identical to the spec containerd holds for it).
#   2. `hello` on the empty image: the command comes from the environment,
#      the container exits 0 and its CRI log file holds exactly its output.
#   3. `app` (sh from the environment, on the empty image): ExecSync into it
#      runs inside the environment (FLOX_ENV, `hello` found there).
#   4. `sidecar` (flox.dev/skip-containers, busybox image): untouched spec,
#      no /nix inside, no FLOX_ENV.
#   5. `debug` (flox.dev/skip-containers-exec): its main process runs in the
#      environment, ExecSync into it runs outside.
#   6. `scratch` (container annotation flox.dev/nix-mutable: "true"): /nix is
#      writable through an overlay that is mounted on the node while it runs.
#   7. no container log of the pod holds a line of flox-runc's.
#   8. StopPodSandbox + RemovePodSandbox leave no mount of the store/state,
#      no container GC root, no per-container record, nothing in runc's root.
# Errors as a user sees them (kubelet shows the StartContainer error text and
# the container status message), each asserted on the exact text:
#   9. a pod without flox.dev/environment; 10. an invalid annotation;
#  11. an unknown environment; 12. an unknown generation; 13. a private
#      environment without a token and 14. with an expired one (the token
#      mounted as kubelet does: a secret volume with ..data symlinks bound at
#      /var/run/secrets/flox.dev through CRI `mounts`); 15. the same private
#      environment with a valid token runs; 16. then another pod gets nothing
#      of it without a credential of its own (none, or one FloxHub refuses).
#
# Environment: FLOX_RUNC, FLOX_RUNC_SRCDIR (set by meson).  Root only.
# TAP; exit 77 when it cannot run here (a failure under CI=true, tests/lib/skip.sh).
# shellcheck disable=SC2016 # sh -c scripts and jq programs are single-quoted on purpose
set -euo pipefail

# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
engines_cri_suite flox-runc-cri

# The prefix kubelet's message has for a failed StartContainer.
START_ERR='failed to create containerd task: failed to create shim task: OCI runtime create failed'

# ------------------------------------------------------------------ helpers

# pod_config NAME ANNOTATIONS-JSON: a kubelet-like PodSandboxConfig (host
# network: no CNI needed), its log directory created.
pod_config() {
	local name=$1 ann=$2 uid
	uid=$(printf '%s' "$name-$TEST_ID" | sha256sum | cut -c1-32)
	mkdir -p "$TEST_TMPDIR/pods/$name"
	jq -nc --arg name "$name" --arg uid "$uid" --arg logdir "$TEST_TMPDIR/pods/$name" --argjson ann "$ann" '{
		metadata: {name: $name, namespace: "default", uid: $uid, attempt: 0},
		log_directory: $logdir,
		labels: {"io.kubernetes.pod.name": $name, "io.kubernetes.pod.namespace": "default",
			"io.kubernetes.pod.uid": $uid},
		annotations: ({"kubernetes.io/config.source": "api"} + $ann),
		linux: {security_context: {namespace_options: {network: "NODE", pid: "CONTAINER", ipc: "POD"}}}
	}'
}

# run_pod NAME ANNOTATIONS-JSON: RunPodSandbox with runtime_handler flox;
# prints the sandbox id; the config is kept in $TEST_TMPDIR/pods/NAME.json.
run_pod() {
	local cfg=$TEST_TMPDIR/pods/$1.json
	mkdir -p "$TEST_TMPDIR/pods"
	pod_config "$1" "$2" >"$cfg"
	jq -c '{config: ., runtime_handler: "flox"}' "$cfg" | cri RunPodSandbox - | jq -er .pod_sandbox_id
}

# ctr_request POD-NAME POD-ID NAME IMAGE COMMAND-JSON [EXTRA-CONFIG-JSON]:
# a CreateContainerRequest like kubelet's.
ctr_request() {
	local pod=$1 pod_id=$2 name=$3 image=$4 cmd=$5 extra=${6:-'{}'}
	mkdir -p "$TEST_TMPDIR/pods/$pod/$name"
	jq -c --arg pod "$pod_id" --arg name "$name" --arg image "$image" --argjson cmd "$cmd" \
		--argjson x "$extra" '{
		pod_sandbox_id: $pod,
		config: ({
			metadata: {name: $name, attempt: 0},
			image: {image: $image},
			command: $cmd,
			log_path: ($name + "/0.log"),
			labels: {"io.kubernetes.container.name": $name, "io.kubernetes.pod.name": .metadata.name,
				"io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": .metadata.uid},
			annotations: {"io.kubernetes.container.restartCount": "0",
				"io.kubernetes.container.terminationMessagePath": "/dev/termination-log"},
			linux: {security_context: {namespace_options: .linux.security_context.namespace_options}}
		} * $x),
		sandbox_config: .
	}' "$TEST_TMPDIR/pods/$pod.json"
}

# create_ctr POD-NAME POD-ID NAME IMAGE COMMAND-JSON [EXTRA]: prints the id.
create_ctr() {
	ctr_request "$@" | cri CreateContainer - | jq -er .container_id
}

start_ctr() { cri StartContainer "{\"container_id\":\"$1\"}" >/dev/null; }

ctr_state() { cri ContainerStatus "{\"container_id\":\"$1\"}" | jq -r .status.state; }
state_is() { [[ "$(ctr_state "$1")" == "$2" ]]; }

# exec_sync ID CMD...: ExecSync; sets EXEC_OUT, EXEC_ERR, EXEC_RC.
exec_sync() {
	local id=$1 resp
	shift
	resp=$(jq -nc --arg id "$id" --argjson cmd "$(json_array "$@")" \
		'{container_id: $id, cmd: $cmd, timeout: 30}' | cri ExecSync -)
	EXEC_OUT=$(jq -r .stdout <<<"$resp")
	EXEC_ERR=$(jq -r .stderr <<<"$resp")
	EXEC_RC=$(jq -r .exit_code <<<"$resp")
}

# log_lines POD NAME: the container's CRI log file, "<stream> <tag> <text>"
# per line (the timestamp cut off).
log_lines() { cut -d' ' -f2- "$TEST_TMPDIR/pods/$1/$2/0.log"; }

# spec_of ID: the OCI spec containerd holds for ID, as containerd writes it
# to the bundle: Go's json.Marshal, compact, fields in struct order (ctr
# prints them in that order), no newline, <, > and & escaped.
spec_of() {
	ctr_ k8s.io containers info "$1" | jq -cj .Spec |
		sed 's/&/\\u0026/g; s/</\\u003c/g; s/>/\\u003e/g'
}

remove_pod() {
	cri StopPodSandbox "{\"pod_sandbox_id\":\"$1\"}" >/dev/null
	cri RemovePodSandbox "{\"pod_sandbox_id\":\"$1\"}" >/dev/null
}

record_of() { find "$FLOX_STATE/containers" -name "$1.json" 2>/dev/null || true; }

env_value() { sed -n "s/^$1=//p" <<<"$2" | head -1; }

# ----------------------------------------------------------- the pod's life

POD_ANN='{"flox.dev/environment": "acme/tools", "flox.dev/skip-containers": "sidecar",
	"flox.dev/skip-containers-exec": "debug"}'
# Tests run in subshells: the pod's id and its FLOX_ENV are passed on in files.
POD_ID=""
FE=""
load_pod() {
	POD_ID=$(cat "$TEST_TMPDIR/pod.id")
	FE=$(cat "$TEST_TMPDIR/flox_env" 2>/dev/null || true)
}

t_sandbox() {
	POD_ID=$(run_pod flox-pod "$POD_ANN")
	echo "$POD_ID" >"$TEST_TMPDIR/pod.id"
	local b
	b=$(cri_bundle "$POD_ID")
	[[ -f "$b/config.json" ]] || die "no sandbox bundle at $b"
	assert_json "$b/config.json" '.annotations["io.kubernetes.cri.container-type"] == "sandbox"' "sandbox spec"
	assert_json "$b/config.json" '.annotations["flox.dev/environment"] == "acme/tools"' "the pod's annotation reached the sandbox"
	spec_of "$POD_ID" >"$TEST_TMPDIR/sandbox.spec"
	assert_same_file "$TEST_TMPDIR/sandbox.spec" "$b/config.json" "sandbox config.json vs containerd's spec"
	assert_json "$b/config.json" '[.mounts[] | select(.destination == "/nix")] | length == 0' "no /nix in the sandbox"
	assert_empty "$(record_of "$POD_ID")" "record of the sandbox"
	assert_eq SANDBOX_READY "$(cri PodSandboxStatus "{\"pod_sandbox_id\":\"$POD_ID\"}" | jq -r .status.state)" "sandbox state"
}

t_hello() {
	load_pod
	local id
	id=$(create_ctr flox-pod "$POD_ID" hello "$IMG_EMPTY" '["hello"]')
	start_ctr "$id"
	WAIT_TIMEOUT=30 wait_for state_is "$id" CONTAINER_EXITED
	local st
	st=$(cri ContainerStatus "{\"container_id\":\"$id\"}")
	assert_json "$st" '.status.exit_code == 0 and .status.reason == "Completed"' "hello exited 0"
	assert_eq "stdout F Hello, world!" "$(log_lines flox-pod hello)" "hello's CRI log"
	cri RemoveContainer "{\"container_id\":\"$id\"}" >/dev/null
	assert_empty "$(record_of "$id")" "record after RemoveContainer"
}

t_app_exec() {
	load_pod
	local id
	id=$(create_ctr flox-pod "$POD_ID" app "$IMG_EMPTY" '["sh", "-c", "hello; exec sleep 3600"]')
	start_ctr "$id"
	WAIT_TIMEOUT=30 wait_for state_is "$id" CONTAINER_RUNNING
	local b
	b=$(cri_bundle "$id")
	FE=$(jq -r '.process.env[] | select(startswith("FLOX_ENV=")) | ltrimstr("FLOX_ENV=")' "$b/config.json")
	assert_match "$FE" '^/nix/(store|var/flox-runc/envs)/' "FLOX_ENV in the spec"
	echo "$FE" >"$TEST_TMPDIR/flox_env"
	assert_json "$b/config.json" '.process.args == ["sh", "-c", "hello; exec sleep 3600"]' \
		"the command found in the environment keeps its name: PATH finds it (Flox's argv[0])"
	assert_json "$b/config.json" ".process.env | any(startswith(\"PATH=$FE/bin:\"))" "PATH starts in the environment"
	assert_json "$b/config.json" '[.mounts[] | select(.destination == "/nix" and (.options | index("ro")))] | length == 1' "one read-only /nix mount"
	# the empty image brings no file: those in the rootfs are the spec's mount
	# targets runc created (/etc/hosts, /etc/resolv.conf, ...)
	assert_empty "$(comm -23 <(cd "$b/rootfs" && find . -type f | sed 's/^\.//' | sort) \
		<(jq -r '.mounts[].destination' "$b/config.json" | sort))" "files in the rootfs that are not mount targets"
	exec_sync "$id" sh -c 'echo "FLOX_ENV=$FLOX_ENV"; command -v hello; hello'
	assert_eq 0 "$EXEC_RC" "ExecSync exit code"
	assert_eq "FLOX_ENV=$FE"$'\n'"$FE/bin/hello"$'\n'"Hello, world!" "$EXEC_OUT" "ExecSync stdout"
	assert_empty "$EXEC_ERR" "ExecSync stderr"
	WAIT_TIMEOUT=10 wait_for grep -q 'Hello, world!' "$TEST_TMPDIR/pods/flox-pod/app/0.log"
	assert_eq "stdout F Hello, world!" "$(log_lines flox-pod app)" "app's CRI log"
	# /nix is read-only inside
	exec_sync "$id" sh -c 'touch /nix/store/x 2>&1; echo rc=$?'
	assert_contains "$EXEC_OUT" "Read-only file system" "writing /nix"
	assert_ne "" "$(record_of "$id")" "record while it runs"
}

t_sidecar() {
	load_pod
	local id b
	id=$(create_ctr flox-pod "$POD_ID" sidecar "$IMG_BUSYBOX" '["sleep", "3600"]')
	start_ctr "$id"
	WAIT_TIMEOUT=30 wait_for state_is "$id" CONTAINER_RUNNING
	b=$(cri_bundle "$id")
	spec_of "$id" >"$TEST_TMPDIR/sidecar.spec"
	assert_same_file "$TEST_TMPDIR/sidecar.spec" "$b/config.json" "sidecar config.json vs containerd's spec"
	exec_sync "$id" sh -c 'ls -d /nix 2>&1; echo "FLOX_ENV=${FLOX_ENV-unset}"; command -v hello || echo no-hello'
	assert_eq $'ls: /nix: No such file or directory\nFLOX_ENV=unset\nno-hello' "$EXEC_OUT" "inside the sidecar"
	assert_empty "$(record_of "$id")" "record of a skipped container"
}

t_debug() {
	load_pod
	local id
	id=$(create_ctr flox-pod "$POD_ID" debug "$IMG_BUSYBOX" '["sh", "-c", "hello; exec sleep 3600"]')
	start_ctr "$id"
	WAIT_TIMEOUT=30 wait_for state_is "$id" CONTAINER_RUNNING
	WAIT_TIMEOUT=10 wait_for grep -q 'Hello, world!' "$TEST_TMPDIR/pods/flox-pod/debug/0.log"
	exec_sync "$id" sh -c 'tr "\0" "\n" </proc/1/environ | grep ^FLOX_ENV='
	assert_eq "FLOX_ENV=$FE" "$EXEC_OUT" "the main process runs in the environment"
	exec_sync "$id" sh -c 'echo "FLOX_ENV=${FLOX_ENV-unset}"; command -v hello || echo no-hello'
	assert_eq $'FLOX_ENV=unset\nno-hello' "$EXEC_OUT" "ExecSync runs outside the environment"
}

t_mutable() {
	load_pod
	local id merged
	id=$(create_ctr flox-pod "$POD_ID" scratch "$IMG_EMPTY" '["sh", "-c", "echo data >/nix/store/written && cat /nix/store/written && exec sleep 3600"]' \
		'{"annotations": {"flox.dev/nix-mutable": "true"}}')
	start_ctr "$id"
	WAIT_TIMEOUT=30 wait_for state_is "$id" CONTAINER_RUNNING
	WAIT_TIMEOUT=10 wait_for grep -q 'data' "$TEST_TMPDIR/pods/flox-pod/scratch/0.log"
	assert_eq "stdout F data" "$(log_lines flox-pod scratch)" "scratch's CRI log"
	merged=$(awk -v s="$FLOX_STATE/" 'index($5, s) == 1 && $0 ~ / - overlay / {print $5}' /proc/self/mountinfo)
	assert_ne "" "$merged" "the overlay of /nix is mounted on the node"
	[[ ! -e "$FLOX_STORE/nix/store/written" ]] || die "the node's store was written"
}

t_no_noise() {
	local f hits
	# flox-runc's messages start "flox-runc:"; its --log lines are runc-style JSON
	hits=$(grep -l -e 'flox-runc:' -e '"level":' "$TEST_TMPDIR"/pods/flox-pod/*/0.log || true)
	assert_empty "$hits" "container logs with flox-runc lines"
	for f in "$TEST_TMPDIR"/pods/flox-pod/*/0.log; do
		assert_empty "$(grep -v -E '^[^ ]+ stdout F (Hello, world!|data)$' "$f" || true)" "unexpected lines in $f"
	done
}

t_teardown() {
	load_pod
	cri StopPodSandbox "{\"pod_sandbox_id\":\"$POD_ID\"}" >/dev/null
	assert_eq SANDBOX_NOTREADY "$(cri PodSandboxStatus "{\"pod_sandbox_id\":\"$POD_ID\"}" | jq -r .status.state)" "after StopPodSandbox"
	cri RemovePodSandbox "{\"pod_sandbox_id\":\"$POD_ID\"}" >/dev/null
	assert_eq 0 "$(cri ListPodSandbox '{}' | jq '.items | length')" "pods left"
	assert_eq 0 "$(cri ListContainers '{}' | jq '.containers | length')" "containers left"
	assert_empty "$(engines_leftovers)" "flox-runc leftovers"
	assert_empty "$(runc --root "$CD_RUNC_ROOT/k8s.io" list -q 2>/dev/null)" "containers in runc's root"
	# the environment's packages stay on the node for the next pod
	assert_ne "" "$(find "$FLOX_STORE/nix/var/nix/gcroots/flox-runc/envs" -mindepth 1 -maxdepth 1)" "environment roots"
}

# ------------------------------------------------------------------ errors

# start_fails NAME ANNOTATIONS-JSON IMAGE CMD-JSON EXTRA-JSON EXPECTED-FLOX-MSG
# A pod NAME whose container `app` is refused: RunPodSandbox succeeds (the
# sandbox passes through), CreateContainer succeeds, StartContainer fails with
# exactly "<START_ERR>: <EXPECTED>: unknown" (%ID% in EXPECTED: the
# container's id), which is also the container status message kubelet shows;
# nothing is left behind.
start_fails() {
	local name=$1 ann=$2 image=$3 cmd=$4 extra=$5 want=$6 pod id st
	pod=$(run_pod "$name" "$ann")
	id=$(create_ctr "$name" "$pod" app "$image" "$cmd" "$extra")
	capture cri StartContainer "{\"container_id\":\"$id\"}"
	assert_fail "StartContainer"
	want=${want//%ID%/$id}
	assert_eq "$START_ERR: $want: unknown" "$(jq -r .error.details <<<"$CAP_ERR")" "StartContainer error"
	st=$(cri ContainerStatus "{\"container_id\":\"$id\"}")
	assert_json "$st" '.status.state == "CONTAINER_EXITED" and .status.reason == "StartError"' "container status"
	assert_eq "$START_ERR: $want: unknown" "$(jq -r .status.message <<<"$st")" "status message"
	assert_empty "$(cat "$TEST_TMPDIR/pods/$name/app/0.log" 2>/dev/null)" "container log"
	remove_pod "$pod"
	assert_empty "$(engines_leftovers)" "leftovers"
}

t_err_no_env() {
	start_fails err-noenv '{}' "$IMG_BUSYBOX" '["true"]' '{}' \
		"flox-runc: container \"app\": no flox.dev/environment annotation: add \`flox.dev/environment: owner/name\` to the pod's metadata.annotations, list \"app\" in flox.dev/skip-containers, or run the pod without runtimeClassName flox"
}

t_err_invalid() {
	start_fails err-invalid '{"flox.dev/environment": "acme/tools", "flox.dev/activate-mode": "build"}' \
		"$IMG_EMPTY" '["hello"]' '{}' \
		"flox-runc: container \"app\": invalid annotation flox.dev/activate-mode=\"build\": expected \"run\" or \"dev\"; fix the pod's annotation"
}

t_err_unknown_env() {
	start_fails err-unknown '{"flox.dev/environment": "acme/nope"}' "$IMG_EMPTY" '["hello"]' '{}' \
		"flox-runc: container \"app\": environment acme/nope not found on FloxHub ($HUB_URL): check the owner and name in flox.dev/environment"
}

t_err_unknown_gen() {
	start_fails err-gen '{"flox.dev/environment": "acme/tools:9"}' "$IMG_EMPTY" '["hello"]' '{}' \
		"flox-runc: container \"app\": generation 9 of acme/tools does not exist (available generations: 1; the live one is 1): fix the :N in flox.dev/environment or drop it to follow the live generation"
}

token_mount() { # DIR -> the CRI mounts kubelet gives a secret volume
	jq -nc --arg d "$1" '{mounts: [{container_path: "/var/run/secrets/flox.dev", host_path: $d, readonly: true}]}'
}

t_err_no_token() {
	start_fails err-notoken '{"flox.dev/environment": "secretcorp/tools"}' "$IMG_EMPTY" '["hello"]' '{}' \
		"flox-runc: container \"app\": environment secretcorp/tools not found or not accessible: private environments need the floxhub-token secret mounted at /var/run/secrets/flox.dev"
}

t_err_expired() {
	local jwt vol=$TEST_TMPDIR/secrets/expired
	jwt=$(hub_jwt 1700000000)
	hub_token "$jwt" secretcorp
	engines_token_volume "$vol" "$jwt"
	start_fails err-expired '{"flox.dev/environment": "secretcorp/tools"}' "$IMG_EMPTY" '["hello"]' "$(token_mount "$vol")" \
		"flox-runc: container \"app\": the FloxHub token in the floxhub-token secret expired at 2023-11-14T22:13:20Z: create a new one with \`flox auth token | kubectl create secret generic floxhub-token --from-file=floxhub-token=/dev/stdin --dry-run=client -o yaml | kubectl apply -f -\`"
}

t_private_ok() {
	local vol=$TEST_TMPDIR/secrets/valid pod id
	engines_token_volume "$vol" "$FLOX_TOKEN"
	pod=$(run_pod private-ok '{"flox.dev/environment": "secretcorp/tools"}')
	id=$(create_ctr private-ok "$pod" app "$IMG_EMPTY" '["hello"]' "$(token_mount "$vol")")
	start_ctr "$id"
	WAIT_TIMEOUT=30 wait_for state_is "$id" CONTAINER_EXITED
	assert_json "$(cri ContainerStatus "{\"container_id\":\"$id\"}")" '.status.exit_code == 0' "exit code"
	assert_eq "stdout F Hello, world!" "$(log_lines private-ok app)" "log"
	assert_empty "$(grep -rlF "$FLOX_TOKEN" "$FLOX_STATE" "$CD_STATE" "$TEST_TMPDIR/pods" 2>/dev/null || true)" "files holding the token"
	remove_pod "$pod"
	assert_empty "$(engines_leftovers)" "leftovers"
}

# Another tenant's pod on the node where t_private_ok's pod fetched and
# built the private environment: without a token (the live and a pinned
# generation, within auth_window_seconds of the other pod's fetch) or with
# a token FloxHub refuses for that owner, the node's copy is not served:
# the create fails as on a node that never saw it.
t_private_cached_other_pod() {
	local vol=$TEST_TMPDIR/secrets/other
	hub_token "tok-other-$TEST_ID" acme
	engines_token_volume "$vol" "tok-other-$TEST_ID"
	start_fails other-pinned '{"flox.dev/environment": "secretcorp/tools:1"}' "$IMG_EMPTY" '["hello"]' '{}' \
		"flox-runc: container \"app\": environment secretcorp/tools:1 not found or not accessible: private environments need the floxhub-token secret mounted at /var/run/secrets/flox.dev"
	start_fails other-token '{"flox.dev/environment": "secretcorp/tools:1"}' "$IMG_EMPTY" '["hello"]' "$(token_mount "$vol")" \
		"flox-runc: container \"app\": environment secretcorp/tools:1 not found or not accessible: private environments need the floxhub-token secret mounted at /var/run/secrets/flox.dev (FloxHub refused the token that is mounted there)"
	start_fails other-anon '{"flox.dev/environment": "secretcorp/tools"}' "$IMG_EMPTY" '["hello"]' '{}' \
		"flox-runc: container \"app\": environment secretcorp/tools not found or not accessible: private environments need the floxhub-token secret mounted at /var/run/secrets/flox.dev"
}

tap_test "RunPodSandbox: the sandbox passes through untouched" t_sandbox
tap_test "hello on the empty image: command from the environment, output in the CRI log" t_hello
tap_test "ExecSync into a Flox container runs inside the environment" t_app_exec
tap_test "skip-containers: the sidecar runs untouched from its image" t_sidecar
tap_test "skip-containers-exec: main process inside, ExecSync outside" t_debug
tap_test "nix-mutable: a writable /nix overlay while it runs" t_mutable
tap_test "container logs hold the commands' output and no flox-runc line" t_no_noise
tap_test "StopPodSandbox/RemovePodSandbox leave nothing behind" t_teardown
tap_test "error: a pod without flox.dev/environment" t_err_no_env
tap_test "error: an invalid annotation" t_err_invalid
tap_test "error: an unknown environment" t_err_unknown_env
tap_test "error: an unknown generation" t_err_unknown_gen
tap_test "error: a private environment without a token" t_err_no_token
tap_test "error: a private environment with an expired token" t_err_expired
tap_test "a private environment with a valid token runs" t_private_ok
tap_test "another pod gets nothing of the cached private environment without its own credential" t_private_cached_other_pod
diag "cri suite: $SECONDS s"
tap_done
