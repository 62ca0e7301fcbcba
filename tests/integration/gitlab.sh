#!/usr/bin/env bash
#
# tests/integration/gitlab.sh - the GitLab CI case of Flox's documentation,
# through containerd's CRI plugin with the runtime `flox` (meson suite `cri`,
# test `gitlab`; same parts as tests/integration/cri.sh).
#
# A job pod shaped like the one GitLab Runner's Kubernetes executor makes
# (attach strategy): the pod annotations the Flox docs give for GitLab,
#   flox.dev/environment: acme/tools
#   flox.dev/skip-containers: init-permissions,helper
#   flox.dev/skip-containers-exec: build
#   flox.dev/activate-mode: dev
# the emptyDir volumes scripts-<id> and logs-<id> shared by all containers,
# and three containers:
#   init-permissions  (busybox image) prepares the log file, runs to completion
#                     before the others (an init container), untouched
#   helper            (busybox image) the runner's helper, untouched
#   build             (the empty image docker.io/flox/empty:1.0.0) a shell
#                     started with stdin open (stdin, stdin_once) that waits
#                     for the runner's commands
# and the runner's moves: the step script is written into the scripts
# volume through the helper, then the runner attaches to the build
# container (CRI Attach, the websocket streaming protocol, tests/tools/cri/attach.js)
# and writes the command that runs the script into the build shell's stdin,
# the output tee'd into the logs volume; the runner reads the log through
# the helper.  Asserted:
#   1. init-permissions runs to completion first; helper runs untouched
#      (spec byte-identical to containerd's, no /nix, no FLOX_ENV).
#   2. an exec into build (skip-containers-exec) runs outside the
#      environment: no FLOX_ENV, PATH the image's.
#   3. the job script fed to the build container's main process runs inside
#      the environment in dev mode: `hello` is found in FLOX_ENV, FLOX_ENV
#      and CPATH are set; its output reaches the build container's CRI log
#      and the log the helper reads; the job's exit code is 0 and the build
#      container exits 0 when its stdin closes.
#   4. the pod's removal leaves nothing behind.
#
# Environment: FLOX_RUNC, FLOX_RUNC_SRCDIR (set by meson).  Root only.
# TAP; exit 77 when it cannot run here (a failure under CI=true, tests/lib/skip.sh).
# shellcheck disable=SC2016 # the job script is single-quoted on purpose
set -euo pipefail

# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
engines_cri_suite flox-runc-gitlab

JOB=runner-abc123-project-42-concurrent-0
POD_NAME=$JOB
SCRIPTS=/scripts-42-1001 # the runner's volume names: scripts-<project>-<job>
LOGS=/logs-42-1001
VOL=$TEST_TMPDIR/volumes
mkdir -p "$VOL/scripts" "$VOL/logs" "$TEST_TMPDIR/pods/$POD_NAME"
S=$TEST_TMPDIR/state-files # ids passed between test subshells
mkdir -p "$S"

POD_CFG=$(jq -nc --arg name "$POD_NAME" --arg logdir "$TEST_TMPDIR/pods/$POD_NAME" '{
	metadata: {name: $name, namespace: "gitlab-runner", uid: "5e1c0a7e-gitlab-job", attempt: 0},
	log_directory: $logdir,
	labels: {"io.kubernetes.pod.name": $name, "io.kubernetes.pod.namespace": "gitlab-runner",
		"io.kubernetes.pod.uid": "5e1c0a7e-gitlab-job", pod: $name, "job.runner.gitlab.com/id": "1001"},
	annotations: {
		"flox.dev/environment": "acme/tools",
		"flox.dev/skip-containers": "init-permissions,helper",
		"flox.dev/skip-containers-exec": "build",
		"flox.dev/activate-mode": "dev",
		"job.runner.gitlab.com/url": "https://gitlab.example.com/acme/app/-/jobs/1001"
	},
	linux: {security_context: {namespace_options: {network: "NODE", pid: "CONTAINER", ipc: "POD"}}}
}')

# container NAME IMAGE COMMAND-JSON [EXTRA-JSON]: CreateContainer in the job
# pod with the two volumes mounted; prints the id.
container() {
	local name=$1 image=$2 cmd=$3 extra=${4:-'{}'}
	mkdir -p "$TEST_TMPDIR/pods/$POD_NAME/$name"
	jq -nc --arg pod "$(cat "$S/pod")" --arg name "$name" --arg image "$image" --argjson cmd "$cmd" \
		--argjson x "$extra" --argjson sc "$POD_CFG" --arg vol "$VOL" --arg scripts "$SCRIPTS" --arg logs "$LOGS" '{
		pod_sandbox_id: $pod,
		config: ({
			metadata: {name: $name, attempt: 0},
			image: {image: $image},
			command: $cmd,
			envs: [{key: "CI_JOB_ID", value: "1001"}, {key: "CI_JOB_NAME", value: "hello-job"},
				{key: "CI_PROJECT_DIR", value: "/builds/acme/app"}],
			mounts: [{container_path: $scripts, host_path: ($vol + "/scripts")},
				{container_path: $logs, host_path: ($vol + "/logs")}],
			log_path: ($name + "/0.log"),
			labels: {"io.kubernetes.container.name": $name, "io.kubernetes.pod.name": $sc.metadata.name,
				"io.kubernetes.pod.namespace": "gitlab-runner", "io.kubernetes.pod.uid": $sc.metadata.uid},
			linux: {security_context: {namespace_options: $sc.linux.security_context.namespace_options}}
		} * $x),
		sandbox_config: $sc
	}' | cri CreateContainer - | jq -er .container_id
}

state_of() { cri ContainerStatus "{\"container_id\":\"$1\"}" | jq -r .status.state; }
state_is() { [[ "$(state_of "$1")" == "$2" ]]; }
spec_of() {
	ctr_ k8s.io containers info "$1" | jq -cj .Spec |
		sed 's/&/\\u0026/g; s/</\\u003c/g; s/>/\\u003e/g'
}
exec_sync() { # ID CMD...: sets EXEC_OUT, EXEC_RC
	local id=$1 resp
	shift
	resp=$(jq -nc --arg id "$id" --argjson cmd "$(json_array "$@")" \
		'{container_id: $id, cmd: $cmd, timeout: 30}' | cri ExecSync -)
	EXEC_OUT=$(jq -r .stdout <<<"$resp")
	EXEC_RC=$(jq -r .exit_code <<<"$resp")
}

t_pod() {
	local pod id
	pod=$(jq -c '{config: ., runtime_handler: "flox"}' <<<"$POD_CFG" | cri RunPodSandbox - | jq -er .pod_sandbox_id)
	echo "$pod" >"$S/pod"

	# init container: runs to completion before the others start
	id=$(container init-permissions "$IMG_BUSYBOX" \
		"$(json_array sh -c "touch $LOGS/output.log && chmod 777 $LOGS/output.log")")
	cri StartContainer "{\"container_id\":\"$id\"}" >/dev/null
	WAIT_TIMEOUT=30 wait_for state_is "$id" CONTAINER_EXITED
	assert_json "$(cri ContainerStatus "{\"container_id\":\"$id\"}")" '.status.exit_code == 0' "init-permissions exit code"
	[[ -f "$VOL/logs/output.log" ]] || die "init-permissions did not create the log file"

	id=$(container helper "$IMG_BUSYBOX" '["sh"]' '{"stdin": true}')
	echo "$id" >"$S/helper"
	cri StartContainer "{\"container_id\":\"$id\"}" >/dev/null
	WAIT_TIMEOUT=30 wait_for state_is "$id" CONTAINER_RUNNING
	spec_of "$id" >"$TEST_TMPDIR/helper.spec"
	assert_same_file "$TEST_TMPDIR/helper.spec" "$(cri_bundle "$id")/config.json" "helper spec vs containerd's"

	id=$(container build "$IMG_EMPTY" '["sh"]' '{"stdin": true, "stdin_once": true}')
	echo "$id" >"$S/build"
	cri StartContainer "{\"container_id\":\"$id\"}" >/dev/null
	WAIT_TIMEOUT=30 wait_for state_is "$id" CONTAINER_RUNNING
	assert_json "$(cri_bundle "$id")/config.json" '.process.env | any(startswith("FLOX_ENV=/nix/"))' "build's main process is activated"
	assert_json "$(cri_bundle "$id")/config.json" '.process.env | any(startswith("CPATH=/nix/"))' "in dev mode"
}

t_helper_untouched() {
	local helper
	helper=$(cat "$S/helper")
	exec_sync "$helper" sh -c 'ls -d /nix 2>&1; echo "FLOX_ENV=${FLOX_ENV-unset}"; command -v hello || echo no-hello'
	assert_eq $'ls: /nix: No such file or directory\nFLOX_ENV=unset\nno-hello' "$EXEC_OUT" "inside helper"
}

t_build_exec_outside() {
	local build env_bin
	build=$(cat "$S/build")
	# the empty image has no shell of its own: run the store's env by path
	env_bin=$(nixcache_path busybox)/bin/env
	exec_sync "$build" "$env_bin"
	assert_eq 0 "$EXEC_RC" "exec into build"
	assert_not_contains "$EXEC_OUT" "FLOX_ENV=" "exec env"
	assert_contains $'\n'"$EXEC_OUT"$'\n' $'\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n' "the image's PATH"
	assert_contains "$EXEC_OUT" "CI_JOB_NAME=hello-job" "the container's own env"
}

t_job() {
	local helper build url
	helper=$(cat "$S/helper")
	build=$(cat "$S/build")
	# the step script, written into the scripts volume (through the helper)
	exec_sync "$helper" sh -c "cat >$SCRIPTS/step_script <<'EOF'
set -e
echo \"Running job \$CI_JOB_NAME\"
hello
echo \"hello is \$(command -v hello)\"
echo \"FLOX_ENV=\$FLOX_ENV\"
echo \"CPATH=\$CPATH\"
EOF"
	assert_eq 0 "$EXEC_RC" "writing the step script"

	# attach to build and type the runner's command into its shell
	url=$(cri Attach "{\"container_id\":\"$build\",\"stdin\":true,\"stdout\":false,\"stderr\":false,\"tty\":false}" | jq -er .url)
	capture node "$CRI_DIR/attach.js" "$url" --timeout 60 \
		<<<"(sh $SCRIPTS/step_script; echo \"{\\\"command_exit_code\\\": \$?}\") 2>&1 | tee -a $LOGS/output.log"
	assert_rc 0 "attach"
	WAIT_TIMEOUT=30 wait_for state_is "$build" CONTAINER_EXITED
	assert_json "$(cri ContainerStatus "{\"container_id\":\"$build\"}")" '.status.exit_code == 0' "build exit code"

	local fe log out
	log=$(cut -d' ' -f2- "$TEST_TMPDIR/pods/$POD_NAME/build/0.log")
	exec_sync "$helper" cat "$LOGS/output.log"
	out=$EXEC_OUT
	fe=$(sed -n 's/^FLOX_ENV=//p' <<<"$out")
	assert_match "$fe" '^/nix/(store|var/flox-runc/envs)/' "FLOX_ENV in the job"
	local want="Running job hello-job
Hello, world!
hello is $fe/bin/hello
FLOX_ENV=$fe
CPATH=$fe/include
{\"command_exit_code\": 0}"
	assert_eq "$want" "$out" "the job log the runner reads through the helper"
	assert_eq "stdout F ${want//$'\n'/$'\n'stdout F }" "$log" "the build container's CRI log"
	# no line of flox-runc's (its messages start "flox-runc:"; runc-style JSON)
	assert_empty "$(grep -h -e 'flox-runc:' -e '"level":' "$TEST_TMPDIR"/pods/"$POD_NAME"/*/0.log || true)" "flox-runc lines in container logs"
}

t_teardown() {
	local pod
	pod=$(cat "$S/pod")
	cri StopPodSandbox "{\"pod_sandbox_id\":\"$pod\"}" >/dev/null
	cri RemovePodSandbox "{\"pod_sandbox_id\":\"$pod\"}" >/dev/null
	assert_eq 0 "$(cri ListContainers '{}' | jq '.containers | length')" "containers left"
	assert_empty "$(engines_leftovers)" "flox-runc leftovers"
}

tap_test "a GitLab job pod: init-permissions, helper, build" t_pod
tap_test "helper (skip-containers) runs untouched" t_helper_untouched
tap_test "an exec into build (skip-containers-exec) runs outside the environment" t_build_exec_outside
tap_test "the job script fed to build's shell runs hello from the environment (dev)" t_job
tap_test "removing the job pod leaves nothing behind" t_teardown
diag "gitlab suite: $SECONDS s"
tap_done
