#!/usr/bin/env bash
#
# tests/integration/checkpoint.sh RUNTIME      (RUNTIME: runc | crun)
#
# Checkpoint and restore through flox-runc, as Kubernetes' forensic container
# checkpointing (kubelet -> CRI-O/containerd -> `runtime checkpoint`) and
# `podman container checkpoint/restore` drive it: the REAL runc, the REAL
# criu, the test FloxHub and a signed binary cache on 127.0.0.1.  A container
# runs a counter loop (a token drawn at start, a number incremented every
# 0.1 s, written to a file of its rootfs); after `checkpoint` the container
# is gone; after `restore` the same token goes on counting from where it
# stopped (a restarted process would draw another token and count from 1).
#
#   1. a container that is not a Flox container: checkpoint and restore pass
#      through to runc (config.json byte-identical, nothing of flox-runc's).
#   2. a Flox container whose closure is bound by spec mounts
#      (closure_hook_min_paths above the closure's size): checkpoint, then
#      restore from the engine's spec (what podman and CRI-O write into the
#      restore bundle: the Flox annotations, none of flox-runc's mounts),
#      and again from the bundle as flox-runc left it (a second
#      checkpoint/restore by hand); exec into the restored container is
#      activated; delete releases its GC root and record.
#   3. the same with the closure bound by flox-runc's createContainer hook
#      (closure_hook_min_paths 1), which runc does not run at restore and
#      CRIU does not know as external mounts unless flox-runc declares them;
#      a hook container whose spec lacks that declaration (an older
#      flox-runc's) fails its checkpoint in one line and runs on.
#   4. a restore whose floating environment moved to a new generation since
#      the checkpoint restores the checkpointed generation (the process's
#      open files are in its closure), not the live one; a checkpoint whose
#      record names another environment fails the restore in one line.
#   5. Kubernetes' way: `checkpoint --leave-running` (the container counts
#      on), then a restore under another id from another bundle (a copy of
#      the rootfs, the engine's spec), while the original still runs; each
#      has its own record and GC root.
#   6. a pod's own org.criu.config, whose action-script would run as root at
#      the checkpoint: removed from a Flox container's spec at create and
#      restore (a warning in --log), so the script never runs and the hook
#      container's own value stands; with allow_criu_config_annotation true
#      it is kept (closure by spec mounts) and CRIU runs the script.
#   crun (1.8.1: no org.criu.config before 1.26; Debian's is built without
#   CRIU): the checkpoint of a container whose closure the hook binds fails
#   before crun runs, in one line naming the cause and closure_hook_min_paths;
#   one by spec mounts is crun's own call.
#
# Environment: FLOX_RUNC, FLOX_RUNC_SRCDIR, FLOX_RUNC_BUILDDIR (Nix
# fixtures, tests/lib/nixcache.sh).  Must run as root, with a criu whose
# `criu check` passes (tests/deps.sh).  Exit 0 pass, 77 skip (not root, a
# tool missing; a failure under CI=true), else failure.  Output is TAP.

# shellcheck disable=SC2016 # jq programs and sh -c scripts are single-quoted on purpose
set -euo pipefail

# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
suite_runtime "${1:-}"
suite_needs --root --flox-runc --nix jq busybox criu
criu check >/dev/null 2>&1 ||
	skip_all "criu check fails on this kernel ($(criu check 2>&1 | grep -m1 Error || true)): tests/deps.sh builds a newer criu"
if [[ "$RT_NAME" == crun ]]; then
	crun_cgroup_workaround "$0" "$@"
fi

tmpdir_setup "flox-runc-ckpt"
nixcache_build
hub_start
nixcache_serve main signed

RROOT=$TEST_TMPDIR/runtime-root
STORE=$TEST_TMPDIR/store
STATE=$TEST_TMPDIR/state
CFG=$TEST_TMPDIR/config.json

diag "runtime: $RT_BIN ($("$RT_BIN" --version | sed -n 1p)); criu: $(criu --version | sed -n 1p)"

# write_config FILE KEY=JSON...
write_config() {
	local file=$1 extra="{}" kv
	shift
	for kv in "$@"; do
		extra=$(jq -c --argjson v "${kv#*=}" --arg k "${kv%%=*}" '. + {($k): $v}' <<<"$extra")
	done
	jq -n --arg rt "$RT_BIN" --arg hub "$HUB_URL" --arg store "$STORE" --arg state "$STATE" \
		--arg sub "$(nixcache_url main)" --arg key "$NIX_FX_KEY" --argjson x "$extra" \
		'{runtime: $rt, floxhub_url: $hub, store_root: $store, state_dir: $state,
		  substituters: [$sub], trusted_public_keys: [$key],
		  fresh_seconds: 0, deadline_seconds: 60, on_missing_environment: "passthrough"} + $x' >"$file"
}
write_config "$CFG"
export FLOX_RUNC_CONFIG=$CFG

L=$TEST_TMPDIR/locks
mkdir -p "$L"
nixcache_lock "$L/bb" busybox hello
nixcache_lock "$L/bb2" busybox hello greet
hub_publish acme/counter "$L/bb" >/dev/null

fr() { "$FLOX_RUNC" --root "$RROOT" "$@"; }
rt() { "$RT_BIN" --root "$RROOT" "$@"; }
rt_status() { rt state "$1" 2>/dev/null | jq -r .status; }
status_is() { [[ "$(rt_status "$1")" == "$2" ]]; }
record_of() { { find "$STATE/containers" -name "$1.json" 2>/dev/null || true; } | sed -n 1p; }
gcroots_of() { find "$STORE/nix/var/nix/gcroots/flox-runc/containers" -mindepth 1 -maxdepth 1 -name "*-$1" 2>/dev/null || true; }

# The counter: its own stdio on the container's /dev/null (runc hands CRIU
# only pipes as inherited descriptors), one line "TOKEN N" in /data/count,
# N fixed-width (CRIU checks the size of a file the process has open).
COUNTER='exec </dev/null >/dev/null 2>>/data/err; t=$$-$RANDOM$RANDOM; i=0
while :; do i=$((i + 1)); printf "%s %08d\n" "$t" "$i" >/data/count.new; mv /data/count.new /data/count; sleep 0.1; done'

# counter_bundle DIR flox|plain: a bundle running the counter; flox: an
# empty image annotated with acme/counter (sh, sleep and mv come from the
# environment's busybox in /nix/store); plain: a busybox image.
counter_bundle() {
	local dir=$1 kind=$2 tag
	if [[ "$kind" == plain ]]; then
		make_busybox_bundle "$dir" sh -c "$COUNTER"
	else
		mkdir -p "$dir/rootfs"
		rm -f "$dir/config.json"
		(cd "$dir" && "$RT_BIN" spec) || die "runc spec failed"
		tag=$(printf '%s' "$dir" | sha256sum | cut -c1-12)
		bundle_jq "$dir" '.process.terminal = false | .process.args = ["sh", "-c", $c]
			| .linux.cgroupsPath = $cg' --arg c "$COUNTER" --arg cg "/flox-runc-test-$TEST_ID-$tag"
		bundle_annotate "$dir" flox.dev/environment acme/counter
	fi
	bundle_jq "$dir" '.root.readonly = false'
	mkdir -p "$dir/rootfs/data"
	cp "$dir/config.json" "$dir/engine.json" # the engine's spec, kept for restores
}

count_of() { cat "$1/rootfs/data/count" 2>/dev/null || true; }
token_of() { count_of "$1" | cut -d' ' -f1; }
number_of() {
	local n
	n=$(count_of "$1" | cut -d' ' -f2)
	[[ -z "$n" ]] || echo $((10#$n))
}
counting() { [[ -n "$(number_of "$1")" && "$(number_of "$1")" -ge "$2" ]]; }

# start_counter ID DIR: create (containerd's argv) and start; waits until
# it counts.
start_counter() {
	local id=$1 b=$2
	cleanup_container "$RT_BIN" "$RROOT" "$id"
	capture fr --log "$b/log.json" --log-format json create --bundle "$b" --pid-file "$b/init.pid" "$id"
	assert_rc 0 "create $id"
	capture fr start "$id"
	assert_rc 0 "start $id"
	WAIT_TIMEOUT=20 wait_for counting "$b" 3 || {
		diag "FAIL: $id does not count: $(count_of "$b") ($(rt_status "$id"); $(cat "$b/rootfs/data/err" 2>/dev/null); $(cat "$CAP_ERR_FILE" "$b/log.json" 2>/dev/null))"
		return 1
	}
}

# checkpoint ID DIR N: `checkpoint` (CRI-O's argv) into DIR/ckpt-N; the
# container is gone afterwards, its count stands still.  Sets TOKEN, NUMBER.
checkpoint() {
	local id=$1 b=$2 n=$3
	rm -rf "$b/ckpt-$n" "$b/work-$n"
	capture fr --log "$b/log.json" --log-format json checkpoint --image-path "$b/ckpt-$n" \
		--work-path "$b/work-$n" "$id"
	if [[ "$CAP_RC" != 0 ]]; then
		diag "checkpoint: $CAP_ERR"
		diag "$(grep -m3 Error "$b/work-$n/dump.log" 2>/dev/null)"
	fi
	assert_rc 0 "checkpoint $id"
	assert_empty "$CAP_OUT" "checkpoint stdout"
	capture rt state "$id"
	assert_fail "runc no longer knows $id after its checkpoint"
	TOKEN=$(token_of "$b")
	NUMBER=$(number_of "$b")
	sleep 0.5
	assert_eq "$TOKEN $NUMBER" "$(token_of "$b") $(number_of "$b")" "the count stands still after the checkpoint"
}

# restore ID DIR N: `restore --detach` (CRI-O's argv) from DIR/ckpt-N; the
# same process counts on.
restore() {
	local id=$1 b=$2 n=$3
	capture fr --log "$b/log.json" --log-format json restore --bundle "$b" --image-path "$b/ckpt-$n" \
		--work-path "$b/work-$n" --detach --pid-file "$b/restored.pid" "$id"
	if [[ "$CAP_RC" != 0 ]]; then
		diag "restore: $CAP_ERR"
		diag "$(grep -m3 Error "$b/work-$n/restore.log" 2>/dev/null)"
	fi
	assert_rc 0 "restore $id"
	assert_empty "$CAP_OUT" "restore stdout"
	assert_eq running "$(rt_status "$id")" "$id after its restore"
	WAIT_TIMEOUT=20 wait_for counting "$b" $((NUMBER + 3)) || {
		diag "FAIL: $id does not count on after its restore: $(count_of "$b")"
		return 1
	}
	assert_eq "$TOKEN" "$(token_of "$b")" "the restored process is the checkpointed one (its token)"
}

# ------------------------------------------------------------------ tests

t_plain() {
	local b=$TEST_TMPDIR/plain id=ckpt-plain sha
	counter_bundle "$b" plain
	sha=$(sha256_of "$b/config.json")
	start_counter "$id" "$b"
	checkpoint "$id" "$b" 1
	restore "$id" "$b" 1
	assert_file_unchanged "$b/config.json" "$sha" "config.json of a passthrough container"
	assert_empty "$(record_of "$id")" "a record of a passthrough container"
	capture fr delete --force "$id"
	assert_rc 0 "delete $id"
}

# flox_case ID DIR hook|mounts: checkpoint + restore from the engine's spec,
# then checkpoint + restore from the bundle as flox-runc left it; exec;
# delete.
flox_case() {
	local id=$1 b=$2 how=$3 out
	start_counter "$id" "$b"
	if [[ "$how" == hook ]]; then
		assert_json "$b/config.json" '.hooks.createContainer[0].args | index("bind-closure") != null' "the closure hook"
		assert_json "$b/config.json" '[.mounts[] | select(.destination | startswith("/nix/store/"))] | length == 0' "no spec mount per closure path"
		# the closure in one clone of the view's pin (lib/viewpin.h): CRIU
		# dumps its top, /nix/store, as a bind of the /nix it lies in
		assert_json "$b/config.json" '.hooks.createContainer[0].args | index("--view-pin") != null' "the closure from the view's pin"
		assert_json "$b/config.json" '.annotations["org.criu.config"] | test("/views/[0-9a-f]+[.]criu[.]conf$")' "org.criu.config names flox-runc's CRIU configuration"
		# a bundle of an older flox-runc: the hook, no org.criu.config
		cp "$b/config.json" "$b/config.keep"
		bundle_jq "$b" 'del(.annotations["org.criu.config"])'
		capture fr checkpoint --image-path "$b/ckpt-old" "$id"
		assert_fail "checkpoint of a hook container created without org.criu.config"
		assert_eq "flox-runc: container $id: flox-runc's createContainer hook binds its closure and its spec names no CRIU configuration (created by an older flox-runc): recreate the container to checkpoint it" "$CAP_ERR" "stderr"
		assert_eq running "$(rt_status "$id")" "$id runs on"
		mv "$b/config.keep" "$b/config.json"
	else
		assert_json "$b/config.json" '(.hooks.createContainer // []) | map(.args | index("bind-closure")) | all(. == null)' "no closure hook"
		assert_json "$b/config.json" '.annotations["org.criu.config"] == null' "no org.criu.config"
	fi
	checkpoint "$id" "$b" 1
	cp "$b/engine.json" "$b/config.json" # the engine writes the restore bundle's spec
	restore "$id" "$b" 1
	assert_ne "" "$(record_of "$id")" "the restored container's record"
	assert_ne "" "$(gcroots_of "$id")" "the restored container's GC root"
	# a restore binds the closure by spec mounts: runc runs no
	# createContainer hook at restore
	assert_json "$b/config.json" '(.hooks.createContainer // []) | map(.args | index("bind-closure")) | all(. == null)' "no closure hook after a restore"
	assert_json "$b/config.json" '[.mounts[] | select(.destination | startswith("/nix/store/"))] | length > 0' "spec mounts of the closure after a restore"
	assert_json "$b/config.json" '.annotations["org.criu.config"] == null' "no org.criu.config after a restore"
	checkpoint "$id" "$b" 2
	restore "$id" "$b" 2
	write_process_file "$b/process.json" sh -c 'echo FLOX_ENV=$FLOX_ENV; hello'
	capture fr exec --process "$b/process.json" "$id"
	assert_rc 0 "exec into the restored container"
	out=$CAP_OUT
	assert_contains "$out" "FLOX_ENV=/nix/var/flox-runc/envs/" "exec is activated"
	assert_contains "$out" "Hello, world!" "the environment's hello runs"
	capture fr delete --force "$id"
	assert_rc 0 "delete $id"
	assert_empty "$(record_of "$id")" "record after delete"
	assert_empty "$(gcroots_of "$id")" "GC root after delete"
}

t_spec_mounts() {
	local b=$TEST_TMPDIR/specm
	write_config "$CFG" closure_hook_min_paths=100000
	counter_bundle "$b" flox
	flox_case ckpt-specm "$b" mounts
}

t_hook() {
	local b=$TEST_TMPDIR/hook
	write_config "$CFG" closure_hook_min_paths=1
	counter_bundle "$b" flox
	flox_case ckpt-hook "$b" hook
}

# A new generation of the floating acme/counter is published between the
# checkpoint and the restore: the restore runs generation 1 again (the
# image's flox-runc.json); one naming another environment fails the
# restore in one line, before runc runs.
t_generation() {
	local b=$TEST_TMPDIR/gen id=ckpt-gen sha
	write_config "$CFG" closure_hook_min_paths=1
	counter_bundle "$b" flox
	start_counter "$id" "$b"
	checkpoint "$id" "$b" 1
	assert_json "$b/ckpt-1/flox-runc.json" '.environment == "acme/counter:1"' "the checkpoint records the generation"
	hub_publish acme/counter "$L/bb2" >/dev/null
	cp "$b/engine.json" "$b/config.json"
	cp "$b/ckpt-1/flox-runc.json" "$b/record.json"
	printf '{"environment": "acme/other:1"}' >"$b/ckpt-1/flox-runc.json"
	sha=$(sha256_of "$b/config.json")
	capture fr --log "$b/log.json" --log-format json restore --bundle "$b" --image-path "$b/ckpt-1" --detach "$id"
	assert_fail "restore of a checkpoint of another environment"
	assert_contains "$CAP_ERR" "flox-runc: container $id: the checkpoint was taken of a container of acme/other:1, but the flox.dev/environment annotation names acme/counter: restore it with flox.dev/environment: acme/other:1" "stderr"
	assert_eq 1 "$(grep -c . <<<"$CAP_ERR")" "lines on stderr"
	assert_contains "$(grep '"level":"error"' "$b/log.json")" "the checkpoint was taken of a container of acme/other:1" "--log"
	assert_file_unchanged "$b/config.json" "$sha" "config.json"
	cp "$b/record.json" "$b/ckpt-1/flox-runc.json"
	restore "$id" "$b" 1
	write_process_file "$b/process.json" sh -c 'command -v greet || echo no-greet'
	capture fr exec --process "$b/process.json" "$id"
	assert_rc 0 "exec into the restored container"
	assert_contains "$CAP_OUT" "no-greet" "exec runs generation 1 (no greet), not the live generation 2"
	capture fr delete --force "$id"
	assert_rc 0 "delete $id"
}

t_leave_running() {
	local b=$TEST_TMPDIR/leave b2=$TEST_TMPDIR/leave2 id=ckpt-leave id2=ckpt-leave2 n
	write_config "$CFG" closure_hook_min_paths=1
	counter_bundle "$b" flox
	start_counter "$id" "$b"
	capture fr --log "$b/log.json" --log-format json checkpoint --leave-running --image-path "$b/ckpt" \
		--work-path "$b/work" "$id"
	assert_rc 0 "checkpoint --leave-running"
	assert_eq running "$(rt_status "$id")" "$id runs on"
	TOKEN=$(token_of "$b")
	NUMBER=$(number_of "$b")
	n=$NUMBER
	WAIT_TIMEOUT=20 wait_for counting "$b" $((n + 3))
	# the restore's bundle: the rootfs as it was at the checkpoint (the
	# counter's file rewritten), the engine's spec
	mkdir -p "$b2"
	cp -a "$b/rootfs" "$b2/rootfs"
	printf '%s %08d\n' "$TOKEN" "$NUMBER" >"$b2/rootfs/data/count"
	jq --arg cg "/flox-runc-test-$TEST_ID-leave2" '.linux.cgroupsPath = $cg' "$b/engine.json" >"$b2/config.json"
	cleanup_container "$RT_BIN" "$RROOT" "$id2"
	capture fr --log "$b2/log.json" --log-format json restore --bundle "$b2" --image-path "$b/ckpt" \
		--work-path "$b2/work" --detach "$id2"
	[[ "$CAP_RC" == 0 ]] || diag "$(grep -m3 Error "$b2/work/restore.log" 2>/dev/null)"
	assert_rc 0 "restore under another id"
	WAIT_TIMEOUT=20 wait_for counting "$b2" $((NUMBER + 3))
	assert_eq "$TOKEN" "$(token_of "$b2")" "the restored copy is the checkpointed process"
	assert_eq "$TOKEN" "$(token_of "$b")" "the original counts on"
	assert_eq running "$(rt_status "$id")" "$id after the restore of its copy"
	assert_ne "" "$(record_of "$id")" "the original's record"
	assert_ne "" "$(record_of "$id2")" "the copy's record"
	assert_ne "$(gcroots_of "$id")" "$(gcroots_of "$id2")" "GC roots of each"
	capture fr delete --force "$id2"
	assert_rc 0 "delete $id2"
	assert_empty "$(record_of "$id2")" "the copy's record after delete"
	assert_ne "" "$(record_of "$id")" "the original's record after the copy's delete"
	capture fr delete --force "$id"
	assert_rc 0 "delete $id"
}

# A pod's CRIU configuration: action-script appends CRIU's phase to $ran.
t_pod_criu_config() {
	local b=$TEST_TMPDIR/podcriu id=ckpt-podcriu ran=$TEST_TMPDIR/podcriu-ran
	local script=$TEST_TMPDIR/podcriu.sh pconf=$TEST_TMPDIR/podcriu.conf
	printf '#!/bin/sh\necho "$CRTOOLS_SCRIPT_ACTION" >>%s\n' "$ran" >"$script"
	chmod 0755 "$script"
	printf 'action-script %s\n' "$script" >"$pconf"
	write_config "$CFG" closure_hook_min_paths=1
	counter_bundle "$b" flox
	bundle_annotate "$b" org.criu.config "$pconf"
	cp "$b/config.json" "$b/engine.json"
	start_counter "$id" "$b"
	assert_json "$b/config.json" '.annotations["org.criu.config"] | test("/views/[0-9a-f]+[.]criu[.]conf$")' "flox-runc's own org.criu.config, not the pod's"
	assert_contains "$(grep '"level":"warning"' "$b/log.json")" "removed the spec's org.criu.config \`$pconf\`" "--log names the value"
	checkpoint "$id" "$b" 1
	cp "$b/engine.json" "$b/config.json"
	restore "$id" "$b" 1
	assert_json "$b/config.json" '.annotations["org.criu.config"] == null' "no org.criu.config after a restore"
	assert_eq "" "$(cat "$ran" 2>/dev/null)" "the pod's action-script never ran"
	capture fr delete --force "$id"
	assert_rc 0 "delete $id"
	# where the node allows it: kept, CRIU runs the script
	write_config "$CFG" closure_hook_min_paths=1 allow_criu_config_annotation=true
	cp "$b/engine.json" "$b/config.json"
	rm -f "$b/rootfs/data/count"
	start_counter "$id" "$b"
	assert_json "$b/config.json" ".annotations[\"org.criu.config\"] == \"$pconf\"" "the pod's org.criu.config kept"
	assert_json "$b/config.json" '(.hooks.createContainer // []) | map(.args | index("bind-closure")) | all(. == null)' "no closure hook"
	checkpoint "$id" "$b" 2
	assert_contains "$(cat "$ran" 2>/dev/null)" "post-dump" "CRIU ran the allowed configuration's action-script"
	capture fr delete --force "$id"
	assert_rc 0 "delete $id"
	write_config "$CFG"
}

# crun 1.8.1: the hook's binds cannot reach its CRIU.
t_crun() {
	local b=$TEST_TMPDIR/crunhook bs=$TEST_TMPDIR/crunspec id=ckpt-crun ids=ckpt-crun-spec capture2
	write_config "$CFG" closure_hook_min_paths=1
	counter_bundle "$b" flox
	start_counter "$id" "$b"
	capture fr --log "$b/log.json" --log-format json checkpoint --image-path "$b/ckpt" "$id"
	assert_fail "checkpoint of a hook container with crun 1.8.1"
	assert_eq "flox-runc: container $id: crun version $("$RT_BIN" --version | sed -n 's/^crun version //p') cannot checkpoint it: flox-runc's createContainer hook binds its closure, and crun before 1.26 reads no org.criu.config to tell CRIU those binds; set closure_hook_min_paths to 1000000 in the node config (spec mounts) and recreate the container, or use runc" "$CAP_ERR" "stderr"
	assert_contains "$(grep '"level":"error"' "$b/log.json")" "crun before 1.26 reads no org.criu.config" "--log"
	assert_eq running "$(rt_status "$id")" "the container runs on"
	capture fr delete --force "$id"
	assert_rc 0 "delete $id"
	# spec mounts: crun's own answer
	write_config "$CFG" closure_hook_min_paths=1000000
	counter_bundle "$bs" flox
	start_counter "$ids" "$bs"
	capture fr checkpoint --image-path "$bs/ckpt" "$ids"
	capture2=$CAP_ERR
	capture "$RT_BIN" --root "$RROOT" checkpoint --image-path "$bs/ckpt2" "$ids"
	assert_eq "$CAP_ERR" "$capture2" "flox-runc's checkpoint of a spec-mount container is crun's"
	capture fr delete --force "$ids"
	assert_rc 0 "delete $ids"
}

if [[ "$RT_NAME" == runc ]]; then
	tap_test "1. a passthrough container: checkpoint and restore are runc's" t_plain
	tap_test "2. a Flox container, closure by spec mounts: checkpoint, restore (engine's spec, then flox-runc's), exec, delete" t_spec_mounts
	tap_test "3. a Flox container, closure by the createContainer hook: the same" t_hook
	tap_test "4. a restore runs the checkpointed generation of a floating environment" t_generation
	tap_test "5. checkpoint --leave-running, restore of a copy under another id while the original runs" t_leave_running
	tap_test "6. a pod's org.criu.config: removed from a Flox container unless the node config allows it" t_pod_criu_config
else
	tap_test "crun 1.8.1: the checkpoint of a hook container fails naming the cause; spec mounts pass through" t_crun
fi
tap_done
