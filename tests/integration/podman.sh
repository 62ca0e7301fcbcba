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

tap_test "podman run: hello from the environment on the empty image" t_run_hello
tap_test "podman exec into a Flox container runs in the environment" t_exec
tap_test "a container that exits is cleaned up by conmon's exit command" t_exit_cleanup
tap_test "podman run of an unknown environment shows flox-runc's message" t_unknown_env
tap_test "podman run without flox.dev/environment is refused" t_missing_env
diag "podman suite: $SECONDS s"
tap_done
