#!/usr/bin/env bash
#
# tests/integration/ctr.sh - flox-runc behind containerd's runc v2 shim,
# driven by `ctr` (meson suite `ctr`).  Real parts only: a private
# containerd (tests/lib/engines.sh), the real runc, the test FloxHub, a
# signed binary cache on 127.0.0.1 and the node's nix-store.
#
#   1. `ctr run --runc-binary FLOX_RUNC --annotation flox.dev/environment=acme/tools`
#      on the empty image (docker.io/flox/empty:1.0.0, tests/tools/mkimage-empty.sh)
#      runs `hello` from the environment: ctr prints exactly its output.
#   2. `ctr task exec` into a running Flox container is activated (FLOX_ENV
#      set, `hello` found in it); the task's own process also is.
#   3. an unknown environment: `ctr run` fails with flox-runc's message in
#      the error ctr prints (`OCI runtime create failed: flox-runc: ...`).
#   4. a container without flox.dev/environment fails saying so.
#   5. after each container is removed: no container record, GC root or
#      mount of flox-runc's is left.
#   6. `ctr container checkpoint --task --rw` of a running Flox container
#      whose closure the createContainer hook binds (closure_hook_min_paths
#      1), then `ctr container restore --live --rw` under another id: the
#      shim's runc checkpoint/restore through flox-runc (containerd keeps
#      the original spec and hands it to the restore); the same process
#      counts on, exec is activated, nothing is left.
#
# Environment: FLOX_RUNC, FLOX_RUNC_SRCDIR (set by meson).  Root only.
# TAP; exit 77 when it cannot run here (a failure under CI=true, tests/lib/skip.sh).
# shellcheck disable=SC2016 # sh -c scripts and jq programs are single-quoted on purpose
set -euo pipefail

# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
suite_needs --root --flox-runc --nix python3 git
engines_require_containerd

tmpdir_setup flox-runc-ctr
engines_flox_setup
engines_images
containerd_start
NS=flox-ctr-$TEST_ID
containerd_import "$NS" "$TEST_TMPDIR/images/empty.tar"
containerd_import "$NS" "$TEST_TMPDIR/images/busybox.tar"
RROOT=$CD_RUNC_ROOT # runc root of ctr run (--runc-root): containerd_stop cleans it
diag "containerd $(containerd --version | awk '{print $3}'), socket $CD_SOCK; hub $HUB_URL"

# run_flox ID ENV IMAGE [ctr run options] -- CMD...: `ctr run` through
# flox-runc (no annotation when ENV is empty)
run_flox() {
	local id=$1 env=$2 image=$3
	shift 3
	local -a opts=()
	while [[ $# -gt 0 && "$1" != -- ]]; do
		opts+=("$1")
		shift
	done
	shift
	local -a ann=()
	[[ -n "$env" ]] && ann=(--annotation "flox.dev/environment=$env")
	ctr_ "$NS" run --runc-binary "$FLOX_RUNC" --runc-root "$RROOT" "${ann[@]}" "${opts[@]}" \
		"$image" "$id" "$@"
}

task_status() { ctr_ "$NS" task ls 2>/dev/null | awk -v id="$1" '$1 == id {print $3}'; }
task_is() { [[ "$(task_status "$1")" == "$2" ]]; }

t_run_hello() {
	capture run_flox ctr-hello acme/tools "$IMG_EMPTY" --rm -- hello
	assert_rc 0 "ctr run hello"
	assert_eq "Hello, world!" "$CAP_OUT" "ctr's stdout is the container's output"
	assert_eq "$(printf 'Hello, world!\n' | sha256sum)" "$(sha256sum <"$CAP_OUT_FILE")" "stdout bytes"
	assert_empty "$CAP_ERR" "ctr stderr"
	assert_empty "$(ctr_ "$NS" container ls -q)" "containers after --rm"
	assert_empty "$(engines_leftovers)" "leftovers after ctr run --rm"
}

t_exec() {
	run_flox ctr-exec acme/tools "$IMG_EMPTY" -d --null-io -- sleep 3600 >/dev/null
	WAIT_TIMEOUT=20 wait_for task_is ctr-exec RUNNING
	# the bundle the shim gave flox-runc: /nix mounted read-only, process activated
	local b=$CD_STATE/io.containerd.runtime.v2.task/$NS/ctr-exec
	assert_json "$b/config.json" '[.mounts[] | select(.destination == "/nix")] | length == 1' "one /nix mount"
	assert_json "$b/config.json" '.process.env | any(startswith("FLOX_ENV=/nix/"))' "FLOX_ENV in the task's env"
	assert_eq 0 "$(find "$b/rootfs" -mindepth 1 -type f | wc -l)" "files in the empty image's rootfs"

	capture ctr_ "$NS" task exec --exec-id x1 ctr-exec sh -c 'echo "FLOX_ENV=$FLOX_ENV"; command -v hello; hello'
	assert_rc 0 "ctr task exec"
	local fe
	fe=$(sed -n 's/^FLOX_ENV=//p' <<<"$CAP_OUT")
	assert_match "$fe" '^/nix/(store|var/flox-runc/envs)/' "FLOX_ENV in the exec"
	assert_eq "FLOX_ENV=$fe"$'\n'"$fe/bin/hello"$'\n'"Hello, world!" "$CAP_OUT" "exec output"
	# PID 1 of the task runs in the same environment
	capture ctr_ "$NS" task exec --exec-id x2 ctr-exec sh -c 'tr "\0" "\n" </proc/1/environ | grep ^FLOX_ENV='
	assert_eq "FLOX_ENV=$fe" "$CAP_OUT" "the task's own FLOX_ENV"
	assert_ne "" "$(find "$FLOX_STATE/containers" -name 'ctr-exec.json' 2>/dev/null)" "a record while it runs"

	ctr_ "$NS" task kill -s SIGKILL ctr-exec
	WAIT_TIMEOUT=20 wait_for task_is ctr-exec STOPPED
	ctr_ "$NS" task rm ctr-exec >/dev/null 2>&1
	ctr_ "$NS" container rm ctr-exec
	assert_empty "$(engines_leftovers)" "leftovers after task rm"
}

t_unknown_env() {
	capture run_flox ctr-unknown acme/nope "$IMG_EMPTY" --rm -- hello
	assert_fail "ctr run of an unknown environment"
	assert_empty "$CAP_OUT" "stdout"
	assert_eq "ctr: failed to create shim task: OCI runtime create failed: flox-runc: container ctr-unknown: environment acme/nope not found on FloxHub ($HUB_URL): check the owner and name in flox.dev/environment: unknown" \
		"$CAP_ERR" "ctr's error"
	ctr_ "$NS" container rm ctr-unknown >/dev/null 2>&1 || true
	assert_empty "$(engines_leftovers)" "leftovers after a failed create"
}

t_missing_env() {
	capture run_flox ctr-noenv "" "$IMG_BUSYBOX" --rm -- true
	assert_fail "ctr run without flox.dev/environment"
	assert_eq "ctr: failed to create shim task: OCI runtime create failed: flox-runc: container ctr-noenv: no flox.dev/environment annotation: add \`flox.dev/environment: owner/name\` to the pod's (or container's) annotations, or run it with the plain runtime: unknown" \
		"$CAP_ERR" "ctr's error"
	ctr_ "$NS" container rm ctr-noenv >/dev/null 2>&1 || true
}

# t_checkpoint: a counter (a token drawn at start, a number every 0.1 s in
# /tmp/count, a tmpfs CRIU dumps) goes on after the restore.
COUNTER='t=$$-$RANDOM$RANDOM; i=0; while :; do i=$((i + 1)); echo "$t $i" >/tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done'
t_checkpoint() {
	local ref=flox-runc.test/checkpoint:$TEST_ID before after
	count() { ctr_ "$NS" task exec --exec-id "c$RANDOM" "$1" cat /tmp/count 2>/dev/null; }
	counts_past() { local c; c=$(count "$1") && (("${c#* }" > $2)); }
	gone() { ctr_ "$NS" task rm "$1" >/dev/null 2>&1 || true; ctr_ "$NS" container rm "$1" >/dev/null 2>&1 || true; }
	# the shim's flox-runc reads the node config at each call
	cp "$FLOX_CFG" "$TEST_TMPDIR/node-config.saved"
	jq '.closure_hook_min_paths = 1' "$TEST_TMPDIR/node-config.saved" >"$FLOX_CFG"
	run_flox ctr-ckpt acme/tools "$IMG_EMPTY" -d --null-io -- sh -c "$COUNTER" >/dev/null
	WAIT_TIMEOUT=20 wait_for counts_past ctr-ckpt 2
	local b=$CD_STATE/io.containerd.runtime.v2.task/$NS/ctr-ckpt
	assert_json "$b/config.json" '.hooks.createContainer[0].args | index("bind-closure") != null' "the closure hook"
	capture ctr_ "$NS" container checkpoint --task --rw ctr-ckpt "$ref"
	assert_rc 0 "ctr container checkpoint --task"
	assert_eq RUNNING "$(task_status ctr-ckpt)" "the container runs on after its checkpoint"
	before=$(count ctr-ckpt)
	ctr_ "$NS" task kill -s SIGKILL ctr-ckpt
	WAIT_TIMEOUT=20 wait_for task_is ctr-ckpt STOPPED
	gone ctr-ckpt
	capture ctr_ "$NS" container restore --live --rw ctr-ckpt2 "$ref"
	assert_rc 0 "ctr container restore --live (another id)"
	WAIT_TIMEOUT=20 wait_for task_is ctr-ckpt2 RUNNING
	WAIT_TIMEOUT=20 wait_for counts_past ctr-ckpt2 "${before#* }"
	after=$(count ctr-ckpt2)
	assert_eq "${before%% *}" "${after%% *}" "the restored process is the checkpointed one (its token)"
	capture ctr_ "$NS" task exec --exec-id x3 ctr-ckpt2 sh -c 'echo "FLOX_ENV=$FLOX_ENV"; hello'
	assert_rc 0 "ctr task exec into the restored container"
	assert_contains "$CAP_OUT" "Hello, world!" "exec runs in the environment"
	ctr_ "$NS" task kill -s SIGKILL ctr-ckpt2
	WAIT_TIMEOUT=20 wait_for task_is ctr-ckpt2 STOPPED
	gone ctr-ckpt2
	ctr_ "$NS" image rm "$ref" >/dev/null 2>&1 || true
	cp "$TEST_TMPDIR/node-config.saved" "$FLOX_CFG"
	assert_empty "$(engines_leftovers)" "leftovers after task rm"
}

tap_test "ctr run: hello from the environment on the empty image" t_run_hello
tap_test "ctr task exec into a Flox container runs in the environment" t_exec
tap_test "ctr run of an unknown environment shows flox-runc's message" t_unknown_env
tap_test "ctr run without flox.dev/environment is refused" t_missing_env
t_nothing_left() {
	assert_empty "$(engines_leftovers)" "flox-runc leftovers"
	assert_empty "$(runc --root "$RROOT/$NS" list -q 2>/dev/null)" "containers in runc's root"
}

tap_test "ctr container checkpoint --task and restore --live of a Flox container (the closure hook) under another id" t_checkpoint
tap_test "nothing left after the containers are gone" t_nothing_left
diag "ctr suite: $SECONDS s"
tap_done
