#!/usr/bin/env bash
#
# tests/integration/runtimes.sh RUNTIME      (RUNTIME: runc | crun)
#
# Drives the REAL runtime through flox-runc and proves that flox-runc is a
# drop-in for it:
#   a. lifecycle: create (--bundle, --pid-file, --log/--log-format json),
#      state, start, ps, exec --process (output and exit code), kill, delete,
#      and non-detached `run` (output and exit code propagate), for passthrough
#      containers selected by a sandbox annotation (containerd's and CRI-O's
#      keys), by flox.dev/skip-containers, or by the node setting
#      on_missing_environment=passthrough; bundle and process files untouched.
#   b. byte-for-byte passthrough of `features`, `state`, `ps`, `list`, and of
#      `update --resources -` (JSON on stdin, checked in the cgroup).
#   c. invalid annotations and a missing flox.dev/environment fail the create
#      before the runtime runs: exit status, one runc-style line in the --log
#      file (json and text formats), the same message on stderr, nothing on
#      stdout, config.json byte-identical, no container.
#   d. argv edge cases: a container named `create`, --root=DIR / --root DIR,
#      --flag=value forms of the other global flags, bundle from the cwd.
#   e. the closure hook (bind-closure) reads its stdin to the end (crun
#      fails on EPIPE writing the state to a hook that has exited).
#
# Environment: FLOX_RUNC (absolute path of the flox-runc binary),
# FLOX_RUNC_SRCDIR (repository root; defaults to this script's ../..).
# Must run as root. Exit 0 pass, 77 skip (not root / runtime missing;
# a failure under CI=true), else failure. Output is TAP.

# shellcheck disable=SC2016 # jq programs and sh -c scripts are single-quoted on purpose
set -euo pipefail

# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
suite_runtime "${1:-}"
suite_needs --root --flox-runc jq busybox sha256sum chroot

if [[ "$RT_NAME" == crun ]]; then
	crun_cgroup_workaround "$0" "$@"
fi

tmpdir_setup "flox-runc-rt-$RT_NAME"
ROOT="$TEST_TMPDIR/state"
CFG_DEFAULT="$TEST_TMPDIR/config-default.json"
CFG_PASS="$TEST_TMPDIR/config-passthrough.json"
write_json "$CFG_DEFAULT" "$(jq -n --arg rt "$RT_BIN" '{runtime: $rt}')"
write_json "$CFG_PASS" "$(jq -n --arg rt "$RT_BIN" \
	'{runtime: $rt, on_missing_environment: "passthrough"}')"
export FLOX_RUNC_CONFIG="$CFG_DEFAULT"

diag "runtime: $RT_BIN ($("$RT_BIN" --version | head -1))"
diag "flox-runc: $FLOX_RUNC"

RFC3339='^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$'

fr() { "$FLOX_RUNC" --root "$ROOT" "$@"; }
rt() { "$RT_BIN" --root "$ROOT" "$@"; }

# use_variant VARIANT BUNDLE: make BUNDLE a passthrough container of one kind
# and point FLOX_RUNC_CONFIG at the matching node config (test bodies run in
# subshells, so the export does not leak).
use_variant() {
	local v=$1 b=$2
	export FLOX_RUNC_CONFIG="$CFG_DEFAULT"
	case "$v" in
	sandbox)
		bundle_annotate "$b" io.kubernetes.cri.container-type sandbox
		bundle_annotate "$b" io.kubernetes.cri.sandbox-id "sb-$TEST_ID"
		;;
	crio-sandbox)
		bundle_annotate "$b" io.kubernetes.cri-o.ContainerType sandbox
		;;
	skip-container)
		bundle_annotate "$b" io.kubernetes.cri.container-type container
		bundle_annotate "$b" io.kubernetes.cri.container-name sidecar
		bundle_annotate "$b" flox.dev/environment acme/tools
		bundle_annotate "$b" flox.dev/skip-containers "vault-agent,sidecar"
		;;
	passthrough-config)
		export FLOX_RUNC_CONFIG="$CFG_PASS"
		;;
	*) die "unknown variant $v" ;;
	esac
}

# Everything in the bundle except rootfs and the files runc itself writes.
bundle_snapshot() {
	(cd "$1" && find . -path ./rootfs -prune -o -type f \
		! -name log.json ! -name init.pid ! -name exec.pid -print0 |
		sort -z | xargs -0 -r sha256sum)
}

rt_status() {
	rt state "$1" 2>/dev/null | jq -r .status
}

status_is() {
	[[ "$(rt_status "$1")" == "$2" ]]
}

# check_state ID STATUS PID: `state` through flox-runc and directly agree on
# .status/.id/.pid and on the set of keys, and have the expected values.
check_state() {
	local id=$1 status=$2 pid=$3
	capture fr state "$id"
	assert_rc 0 "flox-runc state"
	local via="$CAP_OUT"
	capture rt state "$id"
	assert_rc 0 "$RT_NAME state"
	local direct="$CAP_OUT"
	assert_eq "$(jq -c '[.status, .id, .pid]' <<<"$direct")" \
		"$(jq -c '[.status, .id, .pid]' <<<"$via")" "state .status/.id/.pid vs direct"
	assert_eq "$(jq -c 'keys' <<<"$direct")" "$(jq -c 'keys' <<<"$via")" "state keys vs direct"
	assert_eq "$status" "$(jq -r .status <<<"$via")" "state .status"
	assert_eq "$id" "$(jq -r .id <<<"$via")" "state .id"
	assert_eq "$pid" "$(jq -r .pid <<<"$via")" "state .pid"
}

cgroup_file() {
	# cgroup_file BUNDLE CONTROLLER FILE: the path of FILE in the container's
	# cgroup (v1 controller hierarchy or the unified one).
	local cg
	cg=$(jq -r .linux.cgroupsPath "$1/config.json")
	if [[ -e "/sys/fs/cgroup/$2$cg/$3" ]]; then
		printf '%s\n' "/sys/fs/cgroup/$2$cg/$3"
	else
		printf '%s\n' "/sys/fs/cgroup$cg/$3"
	fi
}

# ------------------------------------------------------------ a. lifecycle

t_lifecycle() {
	local v=$1 id="lc-$1" b="$TEST_TMPDIR/lc-$1"
	make_busybox_bundle "$b" sleep 86400
	use_variant "$v" "$b"
	write_process_file "$b/proc-ok.json" sh -c 'echo exec-out; echo exec-err >&2'
	write_process_file "$b/proc-rc.json" sh -c 'exit 7'
	write_process_file "$b/proc-detach.json" sleep 60
	local sha snap
	sha=$(sha256_of "$b/config.json")
	snap=$(bundle_snapshot "$b")
	cleanup_container "$RT_BIN" "$ROOT" "$id"

	capture fr --log "$b/log.json" --log-format json \
		create --bundle "$b" --pid-file "$b/init.pid" "$id"
	assert_rc 0 "create"
	assert_empty "$CAP_OUT" "create stdout"
	assert_file_unchanged "$b/config.json" "$sha" "config.json after create"
	local pid
	pid=$(cat "$b/init.pid")
	assert_match "$pid" '^[0-9]+$' "pid file"
	check_state "$id" created "$pid"

	capture fr start "$id"
	assert_rc 0 "start"
	assert_empty "$CAP_OUT" "start stdout"
	check_state "$id" running "$pid"

	capture fr ps --format json "$id"
	assert_rc 0 "ps"
	assert_json "$CAP_OUT" "type == \"array\" and any(.[]; . == $pid)" "ps --format json"

	capture fr exec --process "$b/proc-ok.json" "$id"
	assert_rc 0 "exec --process"
	assert_eq "exec-out" "$CAP_OUT" "exec stdout"
	assert_eq "exec-err" "$CAP_ERR" "exec stderr"

	capture fr exec --process "$b/proc-rc.json" "$id"
	assert_rc 7 "exec exit status"

	# containerd's form: --detach --pid-file
	capture fr exec --process "$b/proc-detach.json" --detach --pid-file "$b/exec.pid" "$id"
	assert_rc 0 "exec --detach"
	local epid
	epid=$(cat "$b/exec.pid")
	assert_match "$epid" '^[0-9]+$' "exec pid file"
	kill -0 "$epid"

	capture fr kill "$id" 9
	assert_rc 0 "kill"
	wait_for status_is "$id" stopped

	capture fr delete "$id"
	assert_rc 0 "delete"
	assert_empty "$CAP_OUT" "delete stdout"
	capture rt state "$id"
	assert_fail "$RT_NAME state after delete"
	capture fr delete --force "$id"
	assert_eq "$(rt delete --force "$id" >/dev/null 2>&1; echo $?)" "$CAP_RC" \
		"second delete --force: same status as $RT_NAME's"

	assert_file_unchanged "$b/config.json" "$sha" "config.json after delete"
	assert_eq "$snap" "$(bundle_snapshot "$b")" "bundle files (process files included)"
	if [[ -f "$b/log.json" ]]; then
		assert_not_contains "$(cat "$b/log.json")" '"level":"error"' "log.json"
	fi
}

t_run() {
	local v=$1 id="run-$1" b="$TEST_TMPDIR/run-$1"
	make_busybox_bundle "$b" sh -c 'echo hi; echo oops >&2; exit 3'
	use_variant "$v" "$b"
	local sha
	sha=$(sha256_of "$b/config.json")
	cleanup_container "$RT_BIN" "$ROOT" "$id"
	cleanup_container "$RT_BIN" "$ROOT" "$id-direct"

	capture fr run --bundle "$b" "$id"
	assert_rc 3 "run exit status"
	assert_eq "hi" "$CAP_OUT" "run stdout"
	assert_eq "oops" "$CAP_ERR" "run stderr"
	capture rt state "$id"
	assert_fail "container removed after run"
	assert_file_unchanged "$b/config.json" "$sha" "config.json after run"

	capture rt run --bundle "$b" "$id-direct"
	assert_rc 3 "direct $RT_NAME run (reference)"
	assert_eq "hi" "$CAP_OUT" "direct run stdout"
}

t_run_detached() {
	local id="rund" b="$TEST_TMPDIR/rund"
	make_busybox_bundle "$b" sleep 86400
	use_variant sandbox "$b"
	cleanup_container "$RT_BIN" "$ROOT" "$id"
	capture fr run --detach --bundle "$b" --pid-file "$b/init.pid" "$id"
	assert_rc 0 "run --detach"
	assert_empty "$CAP_OUT" "run --detach stdout"
	check_state "$id" running "$(cat "$b/init.pid")"
	capture fr delete --force "$id"
	assert_rc 0 "delete --force of a running container"
	capture rt state "$id"
	assert_fail "container gone"
}

# ------------------------------------------------ b. byte-for-byte outputs

t_features() {
	capture rt features
	local rc=$CAP_RC
	cp "$CAP_OUT_FILE" "$TEST_TMPDIR/features.direct"
	cp "$CAP_ERR_FILE" "$TEST_TMPDIR/features.direct.err"
	capture fr features
	assert_rc "$rc" "features exit status vs $RT_NAME"
	assert_same_file "$TEST_TMPDIR/features.direct" "$CAP_OUT_FILE" "features stdout"
	assert_same_file "$TEST_TMPDIR/features.direct.err" "$CAP_ERR_FILE" "features stderr"
	if ((rc == 0)); then
		assert_json "$CAP_OUT_FILE" '.ociVersionMin != null' "features JSON"
	fi
}

# strip runc's time="..." so that stderr of two calls compares
strip_time() { sed -E 's/time="[^"]*"//' "$1"; }

t_bytes() {
	local id="bytes" b="$TEST_TMPDIR/bytes"
	make_busybox_bundle "$b" sleep 86400
	use_variant sandbox "$b"
	cleanup_container "$RT_BIN" "$ROOT" "$id"
	capture fr create --bundle "$b" "$id"
	assert_rc 0 "create"

	local args
	# (`ps ID` as a table is left out: its %CPU column changes between calls)
	for args in "state $id" "start $id" "state $id" "ps --format json $id" \
		"list" "list --format json" "list -q" "state no-such-$TEST_ID" \
		"kill no-such-$TEST_ID 9"; do
		[[ "$args" == "start $id" ]] && {
			capture fr start "$id"
			assert_rc 0 "start"
			continue
		}
		# shellcheck disable=SC2086 # word splitting intended
		capture rt $args
		local rc=$CAP_RC
		cp "$CAP_OUT_FILE" "$TEST_TMPDIR/direct.out"
		strip_time "$CAP_ERR_FILE" >"$TEST_TMPDIR/direct.err"
		# shellcheck disable=SC2086
		capture fr $args
		assert_rc "$rc" "'$args' exit status vs $RT_NAME"
		assert_same_file "$TEST_TMPDIR/direct.out" "$CAP_OUT_FILE" "'$args' stdout"
		strip_time "$CAP_ERR_FILE" >"$TEST_TMPDIR/via.err"
		assert_same_file "$TEST_TMPDIR/direct.err" "$TEST_TMPDIR/via.err" "'$args' stderr"
	done
	capture fr delete --force "$id"
	assert_rc 0 "delete --force"
}

t_update() {
	local id="upd" b="$TEST_TMPDIR/upd"
	make_busybox_bundle "$b" sleep 86400
	use_variant sandbox "$b"
	cleanup_container "$RT_BIN" "$ROOT" "$id"
	capture fr run --detach --bundle "$b" "$id"
	assert_rc 0 "run --detach"
	local pids_max
	pids_max=$(cgroup_file "$b" pids pids.max)
	[[ -f "$pids_max" ]] || {
		diag "FAIL: no pids.max for the container at $pids_max"
		return 1
	}

	capture fr update --resources - "$id" <<<'{"pids":{"limit":123}}'
	assert_rc 0 "flox-runc update --resources - (stdin)"
	assert_empty "$CAP_OUT" "update stdout"
	assert_eq 123 "$(cat "$pids_max")" "pids.max after update via flox-runc"

	capture rt update --resources - "$id" <<<'{"pids":{"limit":124}}'
	assert_rc 0 "direct update (reference)"
	assert_eq 124 "$(cat "$pids_max")" "pids.max after direct update"

	capture fr update --pids-limit 125 "$id"
	assert_rc 0 "flox-runc update --pids-limit"
	assert_eq 125 "$(cat "$pids_max")" "pids.max after update --pids-limit"

	# malformed JSON on stdin: the runtime's own error, same status
	capture rt update --resources - "$id" <<<'{"pids":'
	local rc=$CAP_RC
	capture fr update --resources - "$id" <<<'{"pids":'
	assert_rc "$rc" "bad JSON on stdin: same status as $RT_NAME"

	capture fr delete --force "$id"
	assert_rc 0 "delete --force"
}

# --------------------------------------------------------- c. failing create

# check_failed_create BUNDLE ID EXPECTED-SUBSTRING FORMAT
# after a `capture` of the failing create: exit status, stdout, stderr, log
# line (FORMAT json|text|none), container absence.
check_failed_create() {
	local b=$1 id=$2 want=$3 fmt=$4 sha=$5
	assert_fail "create must fail"
	assert_empty "$CAP_OUT" "stdout"
	assert_contains "$CAP_ERR" "flox-runc:" "stderr"
	assert_contains "$CAP_ERR" "$want" "stderr"
	assert_eq 1 "$(grep -c . "$CAP_ERR_FILE")" "number of stderr lines"
	local msg=""
	case "$fmt" in
	json)
		[[ -s "$b/log.json" ]] || {
			diag "FAIL: no --log file $b/log.json"
			return 1
		}
		assert_eq 1 "$(grep -c . "$b/log.json")" "lines in log.json"
		local line
		line=$(grep -F 'flox-runc:' "$b/log.json")
		assert_json "$line" '.level == "error" and (.msg | type) == "string"
			and (.time | type) == "string"' "log line"
		assert_match "$(jq -r .time <<<"$line")" "$RFC3339" "log time is RFC 3339"
		msg=$(jq -r .msg <<<"$line")
		;;
	text)
		[[ -s "$b/log.txt" ]] || {
			diag "FAIL: no --log file $b/log.txt"
			return 1
		}
		assert_eq 1 "$(grep -c . "$b/log.txt")" "lines in log.txt"
		local line re='^time="([^"]+)" level=error msg="(.*)"$'
		line=$(cat "$b/log.txt")
		assert_match "$line" "$re" "text log line"
		[[ "$line" =~ $re ]]
		local time=${BASH_REMATCH[1]} quoted=${BASH_REMATCH[2]}
		assert_match "$time" "$RFC3339" "text log time is RFC 3339"
		# logrus quotes msg Go-style; unescape \" and \\ for the comparison
		msg=$(printf '%s' "$quoted" | sed -e 's/\\"/"/g' -e 's/\\\\/\\/g')
		;;
	none) ;;
	esac
	if [[ -n "$msg" ]]; then
		assert_contains "$msg" "flox-runc:" "log msg"
		assert_contains "$msg" "$want" "log msg"
		assert_contains "$CAP_ERR" "$msg" "stderr repeats the log message"
	fi
	assert_file_unchanged "$b/config.json" "$sha" "config.json"
	[[ ! -e "$b/init.pid" ]] || {
		diag "FAIL: pid file written"
		return 1
	}
	capture rt state "$id"
	assert_fail "no container may exist"
}

invalid_bundle() {
	# invalid_bundle DIR KIND: KIND env-dotdot | activate-mode | no-env
	local b=$1
	make_busybox_bundle "$b" sh -c 'echo SHOULD-NOT-RUN'
	case "$2" in
	env-dotdot)
		bundle_annotate "$b" flox.dev/environment "../etc"
		;;
	activate-mode)
		bundle_annotate "$b" flox.dev/environment "acme/tools"
		bundle_annotate "$b" flox.dev/activate-mode "bogus"
		;;
	no-env) ;;
	*) die "invalid_bundle: $2" ;;
	esac
}

expected_word() {
	case "$1" in
	env-dotdot | no-env) echo "flox.dev/environment" ;;
	activate-mode) echo "flox.dev/activate-mode" ;;
	esac
}

t_invalid_json() {
	local kind=$1 id="inv-$1" b="$TEST_TMPDIR/inv-$1"
	invalid_bundle "$b" "$kind"
	local sha
	sha=$(sha256_of "$b/config.json")
	cleanup_container "$RT_BIN" "$ROOT" "$id"
	capture fr --log "$b/log.json" --log-format json \
		create --bundle "$b" --pid-file "$b/init.pid" "$id"
	check_failed_create "$b" "$id" "$(expected_word "$kind")" json "$sha"
}

t_invalid_text() {
	local kind=$1 id="invt-$1" b="$TEST_TMPDIR/invt-$1"
	invalid_bundle "$b" "$kind"
	local sha
	sha=$(sha256_of "$b/config.json")
	cleanup_container "$RT_BIN" "$ROOT" "$id"
	capture fr --log "$b/log.txt" --log-format text \
		create --bundle "$b" --pid-file "$b/init.pid" "$id"
	check_failed_create "$b" "$id" "$(expected_word "$kind")" text "$sha"
}

t_invalid_nolog() {
	# conmon's form: --root=DIR, no --log; the error must reach stderr
	local id="invn" b="$TEST_TMPDIR/invn"
	invalid_bundle "$b" env-dotdot
	local sha
	sha=$(sha256_of "$b/config.json")
	cleanup_container "$RT_BIN" "$ROOT" "$id"
	capture "$FLOX_RUNC" --root="$ROOT" create --bundle "$b" --pid-file "$b/init.pid" "$id"
	check_failed_create "$b" "$id" flox.dev/environment none "$sha"
}

t_invalid_run() {
	local id="invr" b="$TEST_TMPDIR/invr"
	invalid_bundle "$b" activate-mode
	local sha
	sha=$(sha256_of "$b/config.json")
	cleanup_container "$RT_BIN" "$ROOT" "$id"
	capture fr --log "$b/log.json" --log-format json run --bundle "$b" "$id"
	assert_not_contains "$CAP_OUT" SHOULD-NOT-RUN "the command must not run"
	check_failed_create "$b" "$id" flox.dev/activate-mode json "$sha"
}

# ---------------------------------------------------------- d. argv edges

t_id_create() {
	local id=create b="$TEST_TMPDIR/id-create"
	make_busybox_bundle "$b" sleep 86400
	use_variant sandbox "$b"
	write_process_file "$b/proc.json" echo in-create
	cleanup_container "$RT_BIN" "$ROOT" "$id"
	capture fr --log "$b/log.json" --log-format json \
		create --bundle "$b" --pid-file "$b/init.pid" create
	assert_rc 0 "create ... create"
	check_state create created "$(cat "$b/init.pid")"
	capture fr start create
	assert_rc 0 "start create"
	capture fr exec --process "$b/proc.json" create
	assert_rc 0 "exec create"
	assert_eq in-create "$CAP_OUT" "exec output"
	capture fr kill create 9
	assert_rc 0 "kill create 9"
	wait_for status_is create stopped
	capture fr delete create
	assert_rc 0 "delete create"
	capture rt state create
	assert_fail "container 'create' gone"

	# ... and an invalid bundle under the id `create` still fails closed
	local b2="$TEST_TMPDIR/id-create-bad"
	invalid_bundle "$b2" env-dotdot
	local sha
	sha=$(sha256_of "$b2/config.json")
	capture fr --log "$b2/log.json" --log-format json \
		create --bundle "$b2" --pid-file "$b2/init.pid" create
	check_failed_create "$b2" create flox.dev/environment json "$sha"
}

t_root_forms() {
	local r2="$TEST_TMPDIR/state2" b="$TEST_TMPDIR/rootforms" id="rootforms"
	make_busybox_bundle "$b" sleep 86400
	use_variant sandbox "$b"
	cleanup_container "$RT_BIN" "$r2" "$id"

	capture "$FLOX_RUNC" --root="$r2" create --bundle "$b" "$id"
	assert_rc 0 "create with --root=DIR"
	capture "$RT_BIN" --root "$r2" state "$id"
	assert_rc 0 "$RT_NAME sees the container under DIR"
	capture "$FLOX_RUNC" --root "$r2" start "$id"
	assert_rc 0 "start with --root DIR"
	capture "$FLOX_RUNC" --root="$r2" state "$id"
	assert_rc 0 "state with --root=DIR"
	assert_eq running "$(jq -r .status <<<"$CAP_OUT")" "status"
	capture "$FLOX_RUNC" --root "$r2" delete --force "$id"
	assert_rc 0 "delete --force with --root DIR"
	capture "$RT_BIN" --root "$r2" state "$id"
	assert_fail "gone"

	# the same with --root DIR and --flag=value forms for --log/--log-format
	capture "$FLOX_RUNC" --root "$r2" --log="$b/log.json" --log-format=json \
		create --bundle="$b" --pid-file="$b/init.pid" "$id"
	assert_rc 0 "create with --log=F --log-format=json --bundle=B"
	capture "$FLOX_RUNC" --root "$r2" delete --force "$id"
	assert_rc 0 "delete --force"

	# a failing create with --root=DIR --log=F --log-format=json
	local b2="$TEST_TMPDIR/rootforms-bad"
	invalid_bundle "$b2" env-dotdot
	local sha
	sha=$(sha256_of "$b2/config.json")
	cleanup_container "$RT_BIN" "$r2" "$id-bad"
	capture "$FLOX_RUNC" --root="$r2" --log="$b2/log.json" --log-format=json \
		create --bundle="$b2" --pid-file="$b2/init.pid" "$id-bad"
	check_failed_create "$b2" "$id-bad" flox.dev/environment json "$sha"
	capture "$RT_BIN" --root "$r2" state "$id-bad"
	assert_fail "no container under --root=DIR"
}

t_cwd_bundle() {
	# no --bundle: the bundle is the current directory, for flox-runc too
	local b="$TEST_TMPDIR/cwd-bad" id="cwd"
	invalid_bundle "$b" env-dotdot
	local sha
	sha=$(sha256_of "$b/config.json")
	cleanup_container "$RT_BIN" "$ROOT" "$id"
	capture bash -c 'cd "$1" && shift && exec "$@"' _ "$b" \
		"$FLOX_RUNC" --root "$ROOT" create "$id"
	check_failed_create "$b" "$id" flox.dev/environment none "$sha"

	local b2="$TEST_TMPDIR/cwd-ok"
	make_busybox_bundle "$b2" sh -c 'echo from-cwd'
	use_variant sandbox "$b2"
	capture bash -c 'cd "$1" && shift && exec "$@"' _ "$b2" \
		"$FLOX_RUNC" --root "$ROOT" run "$id"
	assert_rc 0 "run with the bundle in the cwd"
	assert_eq from-cwd "$CAP_OUT" "output"
}

t_hook_stdin() {
	# the closure hook (bind-closure, lib/bindhook.h) reads the state the
	# runtime writes on its stdin to the end before it exits, whatever its
	# outcome: crun fails the create with "writing to pipe: Broken pipe"
	# when the hook is gone before it wrote (seen under load in e2e 8)
	local st rc
	capture bash -c '{ sleep 0.3; head -c 200000 /dev/zero; }| "$1" bind-closure /nonexistent-root /nonexistent-view ""; echo "writer=${PIPESTATUS[0]} hook=${PIPESTATUS[1]}"' _ "$FLOX_RUNC"
	assert_contains "$CAP_OUT" "writer=0 hook=1" "the writer is not cut off (no SIGPIPE); the hook fails"
	assert_contains "$CAP_ERR" "cannot open the container's root" "the hook's error"
}

# ------------------------------------------------------------------- main

for v in sandbox passthrough-config; do
	tap_test "lifecycle create/state/start/ps/exec/kill/delete via flox-runc ($v)" t_lifecycle "$v"
done
for v in sandbox crio-sandbox skip-container passthrough-config; do
	tap_test "run: output and exit status propagate ($v)" t_run "$v"
done
tap_test "run --detach, delete --force" t_run_detached

tap_test "features: stdout/stderr/status identical to $RT_NAME's" t_features
tap_test "state/ps/list/errors: stdout byte-identical to $RT_NAME's" t_bytes
tap_test "update --resources - (stdin) and --pids-limit reach the cgroup" t_update

for k in env-dotdot activate-mode no-env; do
	tap_test "failing create ($k): json log line, stderr, no stdout, spec untouched, no container" t_invalid_json "$k"
done
tap_test "failing create: --log-format text gives runc's text line" t_invalid_text activate-mode
tap_test "failing create without --log (conmon): stderr only" t_invalid_nolog
tap_test "failing run: command never runs, no container" t_invalid_run

tap_test "container id 'create' works and is validated" t_id_create
tap_test "--root=DIR and --root DIR, --flag=value forms" t_root_forms
tap_test "bundle defaults to the current directory" t_cwd_bundle
tap_test "the closure hook reads the runtime's state from its stdin to the end" t_hook_stdin

tap_done
