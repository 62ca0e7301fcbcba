#!/usr/bin/env bash
#
# tests/integration/podman.sh - flox-runc behind conmon, CRI-O's way of
# calling an OCI runtime, driven by podman (meson suite `podman`): `podman
# --runtime FLOX_RUNC` with conmon, private storage (vfs) under the test's
# directory, cgroupfs, file events, no network.  conmon passes no --log:
# errors reach the user through the runtime's stderr.  podman itself calls
# the runtime (start, kill, delete) with an environment of its own, so the
# node config is where a node keeps it: flox-runc's default path
# (/etc/flox-runc/config.json, installed for the run and removed after; the
# suite skips when a file is there already), runc's root the default one.
#
#   1. `podman run --annotation flox.dev/environment=acme/tools` on the empty
#      image (docker.io/flox/empty:1.0.0) runs `hello` from the environment.
#   2. `podman exec` into a running Flox container runs inside the
#      environment (FLOX_ENV set, `hello` found); its main process too.
#   3. a failing create (unknown environment, a container without
#      flox.dev/environment): podman's error shows flox-runc's message
#      (conmon relays the runtime's stderr), exactly.
#   4. after `podman rm`: no container record, GC root or mount is left.
#   5. `podman container checkpoint` and `restore` of a Flox container whose
#      closure the createContainer hook binds (closure_hook_min_paths 1),
#      in place and through an exported archive restored under another
#      name: the same process counts on, exec is activated, nothing is
#      left after rm.  (podman checks that the runtime answers
#      `checkpoint --help`.)
#
# Environment: FLOX_RUNC, FLOX_RUNC_SRCDIR (set by meson).  Root only.
# TAP; exit 77 when it cannot run here (a failure under CI=true, tests/lib/skip.sh).
# shellcheck disable=SC2016 # sh -c scripts and jq programs are single-quoted on purpose
set -euo pipefail

# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
suite_needs --root --flox-runc --nix python3 git
engines_require_podman

tmpdir_setup flox-runc-podman
cd "$TEST_TMPDIR" # podman's own runtime calls inherit this cwd
engines_flox_setup
engines_images
podman_setup
[[ "$("$FLOX_RUNC" config 2>/dev/null | jq -r .state_dir)" == "$FLOX_STATE" ]] ||
	die "flox-runc does not read the node config at $PODMAN_NODE_CONFIG"
"${PODMAN[@]}" load -q -i "$TEST_TMPDIR/images/empty.tar" >/dev/null
"${PODMAN[@]}" load -q -i "$TEST_TMPDIR/images/busybox.tar" >/dev/null
diag "podman $(podman --version | awk '{print $3}'), conmon $(conmon --version | awk 'NR==1 {print $3}'); hub $HUB_URL"

prun() { "${PODMAN[@]}" run "${PODMAN_RUN_OPTS[@]}" "$@"; }
pod_state() { "${PODMAN[@]}" inspect --format '{{.State.Status}}' "$1" 2>/dev/null; }
state_is() { [[ "$(pod_state "$1")" == "$2" ]]; }
record_of() { find "$FLOX_STATE/containers" -name "$1.json" 2>/dev/null || true; }

t_run_hello() {
	capture prun --rm --name p-hello --annotation flox.dev/environment=acme/tools "$IMG_EMPTY" hello
	assert_rc 0 "podman run hello"
	assert_eq "Hello, world!" "$CAP_OUT" "podman's stdout is the container's output"
	assert_eq "$(printf 'Hello, world!\n' | sha256sum)" "$(sha256sum <"$CAP_OUT_FILE")" "stdout bytes"
	assert_empty "$CAP_ERR" "podman stderr"
	assert_empty "$("${PODMAN[@]}" ps -aq)" "containers after --rm"
	assert_empty "$(engines_leftovers)" "leftovers after podman run --rm"
}

t_exec() {
	local id fe
	id=$(prun -d --name p-exec --annotation flox.dev/environment=acme/tools "$IMG_EMPTY" sleep 3600)
	WAIT_TIMEOUT=20 wait_for state_is p-exec running
	local spec=$TEST_TMPDIR/podman/root/vfs-containers/$id/userdata/config.json
	assert_json "$spec" '[.mounts[] | select(.destination == "/nix" and (.options | index("ro")))] | length == 1' "one read-only /nix mount"
	fe=$(jq -r '.process.env[] | select(startswith("FLOX_ENV=")) | ltrimstr("FLOX_ENV=")' "$spec")
	assert_match "$fe" '^/nix/(store|var/flox-runc/envs)/' "FLOX_ENV in the spec"
	assert_ne "" "$(record_of "$id")" "a record while it runs"

	capture "${PODMAN[@]}" exec p-exec sh -c 'echo "FLOX_ENV=$FLOX_ENV"; command -v hello; hello'
	assert_rc 0 "podman exec"
	assert_eq "FLOX_ENV=$fe"$'\n'"$fe/bin/hello"$'\n'"Hello, world!" "$CAP_OUT" "exec output"
	capture "${PODMAN[@]}" exec p-exec sh -c 'tr "\0" "\n" </proc/1/environ | grep ^FLOX_ENV='
	assert_eq "FLOX_ENV=$fe" "$CAP_OUT" "the main process's FLOX_ENV"

	"${PODMAN[@]}" rm --force --time 0 p-exec >/dev/null
	assert_empty "$(engines_leftovers)" "leftovers after podman rm"
}

t_exit_cleanup() {
	# a container that exits by itself is reaped by conmon's exit command
	# (`podman container cleanup`), whose runtime delete carries no --root
	prun -d --name p-exit --annotation flox.dev/environment=acme/tools "$IMG_EMPTY" hello >/dev/null
	WAIT_TIMEOUT=20 wait_for state_is p-exit exited
	assert_eq "Hello, world!" "$("${PODMAN[@]}" logs p-exit 2>&1)" "podman logs"
	assert_eq 0 "$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' p-exit)" "exit code"
	"${PODMAN[@]}" rm p-exit >/dev/null
	WAIT_TIMEOUT=10 wait_for test -z "$(engines_leftovers)" || true
	assert_empty "$(engines_leftovers)" "leftovers after the container exited and was removed"
}

t_unknown_env() {
	capture prun --name p-unknown --annotation flox.dev/environment=acme/nope "$IMG_EMPTY" hello
	assert_fail "podman run of an unknown environment"
	assert_empty "$CAP_OUT" "stdout"
	local id
	id=$("${PODMAN[@]}" inspect --format '{{.Id}}' p-unknown)
	assert_eq "Error: OCI runtime error: $FLOX_RUNC: flox-runc: container $id: environment acme/nope not found on FloxHub ($HUB_URL): check the owner and name in flox.dev/environment" \
		"$CAP_ERR" "podman's error"
	"${PODMAN[@]}" rm --force p-unknown >/dev/null 2>&1 || true
	assert_empty "$(engines_leftovers)" "leftovers after a failed create"
}

t_missing_env() {
	capture prun --name p-noenv "$IMG_BUSYBOX" true
	assert_fail "podman run without flox.dev/environment"
	local id
	id=$("${PODMAN[@]}" inspect --format '{{.Id}}' p-noenv)
	assert_eq "Error: OCI runtime error: $FLOX_RUNC: flox-runc: container $id: no flox.dev/environment annotation: add \`flox.dev/environment: owner/name\` to the pod's (or container's) annotations, or run it with the plain runtime" \
		"$CAP_ERR" "podman's error"
	"${PODMAN[@]}" rm --force p-noenv >/dev/null 2>&1 || true
}

# t_checkpoint: the counter (a token drawn at start, a number every 0.1 s
# in /tmp/count, a tmpfs CRIU dumps) goes on after each restore.
COUNTER='t=$$-$RANDOM$RANDOM; i=0; while :; do i=$((i + 1)); echo "$t $i" >/tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done'
t_checkpoint() {
	local cfg=$PODMAN_NODE_CONFIG saved=$TEST_TMPDIR/node-config.saved
	local -a P=("${PODMAN[@]}")
	local before after n archive=$TEST_TMPDIR/ckpt.tar
	cp "$cfg" "$saved"
	jq '.closure_hook_min_paths = 1' "$saved" >"$cfg"
	count() { "${P[@]}" exec "$1" cat /tmp/count 2>/dev/null; }
	counts_past() { local c; c=$(count "$1") && (("${c#* }" > $2)); }

	"${P[@]}" run "${PODMAN_RUN_OPTS[@]}" -d --name p-ckpt --annotation flox.dev/environment=acme/tools \
		"$IMG_EMPTY" sh -c "$COUNTER" >/dev/null
	WAIT_TIMEOUT=20 wait_for counts_past p-ckpt 2
	local id spec
	id=$("${P[@]}" inspect --format '{{.Id}}' p-ckpt)
	spec=$TEST_TMPDIR/podman/root/vfs-containers/$id/userdata/config.json
	assert_json "$spec" '.hooks.createContainer[0].args | index("bind-closure") != null' "the closure hook"

	capture "${P[@]}" container checkpoint p-ckpt
	assert_rc 0 "podman container checkpoint"
	assert_eq exited "$(pod_state p-ckpt)" "state after the checkpoint"
	capture "${P[@]}" container restore p-ckpt
	assert_rc 0 "podman container restore"
	WAIT_TIMEOUT=20 wait_for state_is p-ckpt running
	before=$(count p-ckpt)
	WAIT_TIMEOUT=20 wait_for counts_past p-ckpt "$(("${before#* }" + 2))"
	after=$(count p-ckpt)
	assert_eq "${before%% *}" "${after%% *}" "the restored process is the checkpointed one (its token)"
	capture "${P[@]}" exec p-ckpt sh -c 'echo "FLOX_ENV=$FLOX_ENV"; hello'
	assert_rc 0 "podman exec into the restored container"
	assert_contains "$CAP_OUT" "Hello, world!" "exec runs in the environment"

	# exported, removed, imported under another name (another id)
	capture "${P[@]}" container checkpoint --compress none --export "$archive" p-ckpt
	assert_rc 0 "podman container checkpoint --export"
	assert_contains "$(tar -tf "$archive")" "checkpoint/flox-runc.json" "the archive carries the environment's generation"
	"${P[@]}" rm --force --time 0 p-ckpt >/dev/null
	capture "${P[@]}" container restore --import "$archive" --name p-ckpt2
	assert_rc 0 "podman container restore --import --name"
	WAIT_TIMEOUT=20 wait_for state_is p-ckpt2 running
	n=$(count p-ckpt2)
	assert_eq "${after%% *}" "${n%% *}" "the imported process is the checkpointed one (its token)"
	assert_ne "" "$(record_of "$("${P[@]}" inspect --format '{{.Id}}' p-ckpt2)")" "a record of the restored container"
	"${P[@]}" rm --force --time 0 p-ckpt2 >/dev/null
	cp "$saved" "$cfg"
	WAIT_TIMEOUT=10 wait_for test -z "$(engines_leftovers)" || true
	assert_empty "$(engines_leftovers)" "leftovers after podman rm"
}

tap_test "podman run: hello from the environment on the empty image" t_run_hello
tap_test "podman exec into a Flox container runs in the environment" t_exec
tap_test "a container that exits is cleaned up by conmon's exit command" t_exit_cleanup
tap_test "podman run of an unknown environment shows flox-runc's message" t_unknown_env
tap_test "podman run without flox.dev/environment is refused" t_missing_env
tap_test "podman container checkpoint and restore of a Flox container (the closure hook), in place and by archive" t_checkpoint
diag "podman suite: $SECONDS s"
tap_done
