#!/usr/bin/env bash
#
# tests/integration/e2e.sh RUNTIME      (RUNTIME: runc | crun)
#
# End to end, with real parts only: the REAL runtime, the test FloxHub
# (tests/hub: git http-backend), real signed binary caches served over HTTP
# on 127.0.0.1 (tests/nix), the node's real nix-store realising into a store
# of the test's own (store_root), and flox-runc between the caller and the
# runtime exactly as an engine calls runc.  Each test is one or more
# assertions that can fail:
#
#   1. the environment's command runs in an EMPTY rootfs (`hello`), and on
#      top of a busybox image (the image's sh finds hello through PATH);
#      `run` prints the command's output only; `create` writes nothing to
#      stdout (an engine's runc stdout is the container's output).  A
#      runtime whose `state` fails with another status than 1 (unknown id)
#      cannot tell: delete, create and gc keep the container's GC root.
#   2. live vs pinned generations: a newly published generation (adding
#      greet) is picked up by the next create; `owner/name:1` is not (greet
#      missing: the create fails with one runc-style JSON log line, the spec
#      untouched, no container).
#   3. run vs dev activation, values as Flox's scripts give them: FLOX_ENV (a
#      /nix path, readable inside), FLOX_ENV_DIRS, FLOX_ENV_DESCRIPTION
#      (owner/name), FLOX_ENV_CACHE (writable), PATH (bin only), MANPATH,
#      INFOPATH and XDG_DATA_DIRS in both modes, dev's CPATH/PKG_CONFIG_PATH/
#      LIBRARY_PATH/ACLOCAL_PATH, SSL_CERT_FILE (the node's bundle, readable
#      in the empty image) and NIX_SSL_CERT_FILE.
#   4. manifest vars evaluated by bash against the container's environment
#      (${PORT:-8000}, $HOME) and the on-activate hook (bash syntax, stdout of
#      the hook goes to stderr, it runs before the command and its exports
#      reach it), on an image without bash; a node without a static bash
#      (missing, or dynamically linked) fails the create of an environment
#      with a hook, saying so.
#   5. read-only /nix (EROFS) vs flox.dev/nix-mutable (writes succeed,
#      except into the closure's own paths); the mutable /nix's Nix
#      database registers exactly the closure (no other tenant's path); the
#      node store (listing + checksums, its db included) is unchanged after
#      both; delete unmounts the overlay and removes its directory.
#   6. flox.dev/skip-containers: the container runs untouched (spec
#      byte-identical, no /nix, no FLOX_ENV); exec (containerd's argv, detached
#      and not) into a Flox container is activated, into a container listed in
#      flox.dev/skip-containers-exec it is not (process file byte-identical).
#   7. GC: `nix-store --gc` while a Flox container runs keeps its closure
#      (its GC root is one link to its environment's; 7b: with 9 packages);
#      `delete` + `delete --force` (both exit 0) release the container's root
#      and record; `flox-runc gc --max-age 0` + `nix-store --gc` then remove
#      hello from the store: a deleted container pins nothing.
#   8. 8 concurrent creates of one cold environment: all succeed, every NAR
#      is downloaded exactly once, the environment is built once, and FloxHub
#      sees the requests of one resolution (though every create asks).
#   9. SIGKILL of flox-runc (its process group) while it realises: nix-store
#      dies with it, nothing of the killed create remains, a retry succeeds
#      and leaves no temporary build directory, root or record behind.
#  10. an unsigned cache and a wrongly signed one are refused: the create
#      fails naming the signature, nothing is realised, the spec untouched.
#  11. a package in no cache fails naming the path and the substituters; two
#      packages with the same file at one priority fail naming both and the
#      file.
#  12. nothing is left: no container record, container GC root, overlay
#      mount or runtime container in the shared node state.
#  13. closure-only /nix: a pod sees its own environment and closure only:
#      no other tenant's environment or packages, no /nix/var/nix, connect()
#      to a nix-daemon stand-in at the node's socket path fails, a mount
#      below a store path on the node does not show (read-only inside);
#      the closure's binds made by flox-runc's createContainer hook
#      (ro,nosuid,nodev inside), by spec mounts when the image's /nix is a
#      symlink.  13b: in a user namespace (the hook's root there cannot
#      read the node's private state) by spec mounts, read-only.  13c: a
#      failing hook's cause is a flox-runc error line in the runtime's log,
#      and without --log (conmon) on the runtime's stderr.
#  14. private on the node: a node user (uid 65534) reads nothing derived
#      from an environment (trees, records, hub cache, GC roots), while a
#      container running as that uid reads its own environment.
#  15. release: a nix-mutable pod nesting 400 directories is deleted; its
#      writable layer is nosuid, nodev and bounded by nix_mutable_max_bytes;
#      gc removes temporary files of killed writes, carries on past a
#      failure and names it.
#  16. rootfs look-ups stay in the rootfs: an image PATH directory or /run
#      that is a symlink to a node directory is not followed onto the node.
#  17. a binary cache answering HTTP 500 (on nix-cache-info, then on the
#      NARs): the create's one line carries Nix's own `error:` line naming
#      the URL and the status.
#  18. helpers get descriptors 0-2 only: nix-store and the runtime children
#      of a foreground `run`, of `delete` and of `gc` do not inherit a
#      descriptor the caller left open
#      (fd 1500, beyond any fixed loop), while run's --preserve-fds still
#      reaches the container.
#  19. a FIFO or a device node planted at the floxhub-token path of the
#      secret volume: the create fails at once naming what it is; nothing
#      blocks, nothing is opened.
#
# Environment: FLOX_RUNC (the flox-runc binary), FLOX_RUNC_SRCDIR (repository
# root; default this script's ../..), FLOX_RUNC_NIX_FIXTURES /
# FLOX_RUNC_BUILDDIR (where the test packages are built once, see
# tests/lib/nixcache.sh).  Must run as root.  Exit 0 pass, 77 skip (not root,
# a needed tool missing; a failure under CI=true), else failure.  Output is TAP.

# shellcheck disable=SC2016 # jq programs and sh -c scripts are single-quoted on purpose
set -euo pipefail

# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
suite_runtime "${1:-}"
suite_needs --root --flox-runc --nix jq busybox sha256sum chroot python3 git setsid pgrep awk find strace

if [[ "$RT_NAME" == crun ]]; then
	crun_cgroup_workaround "$0" "$@"
fi

T0=$SECONDS
tmpdir_setup "flox-runc-e2e-$RT_NAME"
nixcache_build
hub_start
nixcache_serve main signed

RROOT=$TEST_TMPDIR/runtime-root # the runtime's --root, shared by all tests
STORE=$TEST_TMPDIR/store        # the node store of most tests (store_root)
STATE=$TEST_TMPDIR/state
CFG=$TEST_TMPDIR/config.json
RFC3339='^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$'
HELLO=$(nixcache_path hello)
# FLOX_ENV: a directory under the /nix mount (the built environment: a store
# path, or flox-runc's own /nix/var/flox-runc/envs/<key>)
FLOX_ENV_RE='^/nix/(store/[0-9a-z]{32}-[^/]+|var/flox-runc/envs/[0-9a-z]+)$'
SIG_MSG="lacks a valid signature from the node's trusted_public_keys"

diag "runtime: $RT_BIN ($("$RT_BIN" --version | head -1))"
diag "flox-runc: $FLOX_RUNC"
diag "nix fixtures: $NIX_FX; hub: $HUB_URL; cache: $(nixcache_url main)"

# write_config FILE STORE STATE SUBSTITUTER-URL [KEY=JSON...]
write_config() {
	local file=$1 store=$2 state=$3 url=$4 extra="{}" kv
	shift 4
	for kv in "$@"; do
		extra=$(jq -c --argjson v "${kv#*=}" --arg k "${kv%%=*}" '. + {($k): $v}' <<<"$extra")
	done
	jq -n --arg rt "$RT_BIN" --arg hub "$HUB_URL" --arg store "$store" --arg state "$state" \
		--arg sub "$url" --arg key "$NIX_FX_KEY" --argjson x "$extra" \
		'{runtime: $rt, floxhub_url: $hub, store_root: $store, state_dir: $state,
		  substituters: [$sub], trusted_public_keys: [$key],
		  fresh_seconds: 0, deadline_seconds: 60, closure_hook_min_paths: 1} + $x' >"$file"
}
write_config "$CFG" "$STORE" "$STATE" "$(nixcache_url main)"
export FLOX_RUNC_CONFIG=$CFG

# Environments on the test hub.
L=$TEST_TMPDIR/locks
mkdir -p "$L"
nixcache_lock "$L/hello1" hello
nixcache_lock "$L/hello2" hello greet
nixcache_lock "$L/tools" busybox hello devtool
nixcache_lock "$L/hooked" busybox hello --var GREETING=from-manifest --var 'SPACED=a b  c' \
	--var 'PORT=${PORT:-8000}' --var 'WHERE=$HOME/w' --var 'QUOTED=it'"'"'s' \
	--hook-file <(printf '%s\n' '  greet() { [[ -n "$GREETING" ]] && echo "hook-ran $1"; }' \
		'  greet "$FLOX_ENV_DESCRIPTION"' '  ls /nonexistent &>/dev/null || export FROM_HOOK=yes' \
		'  mkdir -p "$FLOX_ENV_CACHE/from-hook"')
nixcache_lock "$L/hooknosh" hello --hook 'echo hook-ran'
nixcache_lock "$L/ghost" hello --fake ghost
nixcache_lock "$L/conflict" conflict-a conflict-b
nixcache_lock "$L/prop" propagator
nixcache_lock "$L/propdev" propagator --mode dev
nixcache_lock "$L/many" busybox hello greet devtool propagator propdep propdeep langtools conflict-a
hub_publish acme/hello "$L/hello1" >/dev/null
hub_publish acme/cold "$L/hello1" >/dev/null # hello only, for the cold-store tests
hub_publish acme/tools "$L/tools" >/dev/null
hub_publish acme/hooked "$L/hooked" >/dev/null
hub_publish acme/hooknosh "$L/hooknosh" >/dev/null
hub_publish acme/ghost "$L/ghost" >/dev/null
hub_publish acme/conflict "$L/conflict" >/dev/null
hub_publish acme/prop "$L/prop" >/dev/null
hub_publish acme/propdev "$L/propdev" >/dev/null
hub_publish acme/many "$L/many" >/dev/null
GHOST=$(jq -r '.packages[] | select(.install_id == "ghost") | .outputs.out' "$L/ghost")

# ------------------------------------------------------------------ helpers

fr() { "$FLOX_RUNC" --root "$RROOT" "$@"; }
rt() { "$RT_BIN" --root "$RROOT" "$@"; }
rt_status() { rt state "$1" 2>/dev/null | jq -r .status; }
status_is() { [[ "$(rt_status "$1")" == "$2" ]]; }

# make_empty_bundle DIR ARG...: an OCI bundle whose rootfs is an empty
# directory (flox/empty), config.json from `RT spec`, the process ARGS.
make_empty_bundle() {
	local dir=$1 tag
	shift
	mkdir -p "$dir/rootfs"
	rm -f "$dir/config.json"
	(cd "$dir" && "$RT_BIN" spec) || die "$RT_NAME spec failed"
	tag=$(printf '%s' "$dir" | sha256sum | cut -c1-12)
	bundle_jq "$dir" '.process.terminal = false | .process.args = $args
		| .linux.cgroupsPath = $cg' \
		--arg cg "/flox-runc-test-$TEST_ID-$tag" --argjson args "$(json_array "$@")"
}

# flox_bundle DIR empty|busybox ENV ARG...: a bundle annotated with
# flox.dev/environment ENV.
flox_bundle() {
	local dir=$1 kind=$2 env=$3
	shift 3
	if [[ "$kind" == empty ]]; then
		make_empty_bundle "$dir" "$@"
	else
		make_busybox_bundle "$dir" "$@"
	fi
	bundle_annotate "$dir" flox.dev/environment "$env"
}

# cri_name DIR NAME: containerd CRI's identity annotations.
cri_name() {
	bundle_annotate "$1" io.kubernetes.cri.container-type container
	bundle_annotate "$1" io.kubernetes.cri.container-name "$2"
	bundle_annotate "$1" io.kubernetes.cri.sandbox-id "sb-$TEST_ID"
}

# run_fg ID BUNDLE: foreground `run` with runc's --log, captured.
run_fg() {
	cleanup_container "$RT_BIN" "$RROOT" "$1"
	capture fr --log "$2/log.json" --log-format json run --bundle "$2" "$1"
}

# create_ok ID BUNDLE: create (containerd's argv; NOLOG=1: conmon's, without
# --log); asserts success and that nothing reached stdout. The create's stdout file later receives the
# container's output: CREATE_OUT.
create_ok() {
	local id=$1 b=$2
	cleanup_container "$RT_BIN" "$RROOT" "$id"
	if [[ -n "${NOLOG:-}" ]]; then # conmon's way: no --log
		capture fr create --bundle "$b" --pid-file "$b/init.pid" "$id"
	else
		capture fr --log "$b/log.json" --log-format json create --bundle "$b" --pid-file "$b/init.pid" "$id"
	fi
	assert_rc 0 "create $id"
	assert_eq 0 "$(stat -c %s "$CAP_OUT_FILE")" "bytes flox-runc wrote to stdout during create"
	CREATE_OUT=$CAP_OUT_FILE
	CREATE_ERR=$CAP_ERR_FILE
	status_is "$id" created || {
		diag "FAIL: $id is not in state created: $(rt_status "$id")"
		return 1
	}
}

# run_to_exit ID BUNDLE: create, start, wait until stopped; OUT holds the
# container's stdout.
run_to_exit() {
	create_ok "$1" "$2"
	capture fr start "$1"
	assert_rc 0 "start $1"
	assert_empty "$CAP_OUT" "start stdout"
	WAIT_TIMEOUT=20 wait_for status_is "$1" stopped
	OUT=$(cat "$CREATE_OUT")
}

# delete_twice ID: what containerd does after a task exits.
delete_twice() {
	capture fr delete "$1"
	assert_rc 0 "delete $1"
	assert_empty "$CAP_OUT" "delete stdout"
	capture fr delete --force "$1"
	assert_rc 0 "delete --force $1 (after delete)"
	capture rt state "$1"
	assert_fail "$1 gone from $RT_NAME"
}

# (find of a directory that does not exist yet prints nothing)
lsfind() { find "$@" 2>/dev/null || true; }
# tmp_leftovers [STATE STORE]: temporary build directories (state_dir/tmp,
# <store_root>/nix/var/flox-runc/tmp)
tmp_leftovers() { lsfind "${1:-$STATE}/tmp" "${2:-$STORE}/nix/var/flox-runc/tmp" -mindepth 1; }
record_of() { lsfind "${2:-$STATE}/containers" -name "$1.json" | head -1; }
gcroots_of() { lsfind "${2:-$STORE}/nix/var/nix/gcroots/flox-runc/containers" -mindepth 1 -maxdepth 1 -name "*-$1"; }

# check_no_container ID [STATE STORE]: no record, no container root, and the
# runtime does not know ID.
check_no_container() {
	local id=$1 state=${2:-$STATE} store=${3:-$STORE}
	assert_empty "$(record_of "$id" "$state")" "container record of $id"
	assert_empty "$(gcroots_of "$id" "$store")" "container GC root of $id"
	capture rt state "$id"
	assert_fail "$RT_NAME must not know $id"
}

# check_failed_create BUNDLE ID SHA WANT...: after a captured failing create.
check_failed_create() {
	local b=$1 id=$2 sha=$3 w line msg
	shift 3
	assert_fail "create must fail"
	assert_empty "$CAP_OUT" "stdout of a failing create"
	[[ -s "$b/log.json" ]] || {
		diag "FAIL: nothing in the --log file $b/log.json"
		return 1
	}
	line=$(grep '"level":"error"' "$b/log.json" || true)
	assert_eq 1 "$(grep -c . <<<"$line")" "error lines in log.json"
	assert_json "$line" '.level == "error" and (.msg | type) == "string" and (.time | type) == "string"' "log line"
	assert_match "$(jq -r .time <<<"$line")" "$RFC3339" "log time is RFC 3339"
	msg=$(jq -r .msg <<<"$line")
	assert_contains "$msg" "flox-runc:" "log msg"
	for w in "$@"; do
		assert_contains "$msg" "$w" "log msg"
		assert_contains "$CAP_ERR" "$w" "stderr"
	done
	assert_file_unchanged "$b/config.json" "$sha" "config.json"
	[[ ! -e "$b/init.pid" ]] || {
		diag "FAIL: pid file written"
		return 1
	}
	check_no_container "$id"
}

# store_snapshot DIR: the names, kinds, modes, link targets and contents of
# everything under DIR/nix.
store_snapshot() {
	(
		cd "$1"
		find nix -printf '%y %m %p -> %l\n' | LC_ALL=C sort
		find nix -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
	)
}

# nix_store STORE ARG...: the test's own nix-store (private config) on STORE.
nix_store() {
	local store=$1
	shift
	nixcache_nix "$TEST_TMPDIR/nix-home" nix-store --store "$store" "$@"
}

# flox_env_of OUTPUT: the FLOX_ENV=... line's value in `env` output.
env_value() { sed -n "s/^$1=//p" <<<"$2" | head -1; }

# ---------------------------------------------------------------- 1. rootfs

t_empty_rootfs() {
	local b=$TEST_TMPDIR/t1
	flox_bundle "$b" empty acme/hello hello
	run_fg e2e-empty "$b"
	assert_rc 0 "run"
	assert_eq "Hello, world!" "$CAP_OUT" "run stdout"
	assert_eq "$(printf 'Hello, world!\n' | sha256sum)" "$(sha256sum <"$CAP_OUT_FILE")" "run stdout bytes"
	assert_empty "$CAP_ERR" "run stderr (progress goes to --log)"
	assert_not_contains "$(cat "$b/log.json")" '"level":"error"' "log.json"
	assert_contains "$(cat "$b/log.json")" "acme/hello:1" "log names the generation"
	assert_eq 0 "$(find "$b/rootfs" -mindepth 1 -type f | wc -l)" "files in the empty rootfs"
	check_no_container e2e-empty

	# the same through create/start/delete (containerd's order)
	local b2=$TEST_TMPDIR/t1c
	flox_bundle "$b2" empty acme/hello hello
	run_to_exit e2e-empty-c "$b2"
	assert_eq "Hello, world!" "$OUT" "container output"
	assert_empty "$(grep -v '"level":"info"' "$CREATE_ERR" || true)" "create stderr"
	delete_twice e2e-empty-c
	check_no_container e2e-empty-c
}

t_busybox_image() {
	local b=$TEST_TMPDIR/t1b
	flox_bundle "$b" busybox acme/hello sh -c 'hello; ls /bin/busybox'
	run_to_exit e2e-bb "$b"
	assert_eq $'Hello, world!\n/bin/busybox' "$OUT" "image sh runs the environment's hello"
	assert_json "$b/config.json" '.process.args[0] == "sh"' "the image's sh stays the command"
	assert_json "$b/config.json" '[.mounts[] | select(.destination == "/nix")] | length == 1' "one /nix mount"
	delete_twice e2e-bb
	check_no_container e2e-bb
}

# A second create of a live id must not touch the live container; a record
# left without its container (a crashed node) is released by the next create.
t_id_reuse() {
	local b=$TEST_TMPDIR/reuse b2=$TEST_TMPDIR/reuse2 root
	flox_bundle "$b" busybox acme/hello sleep 300
	create_ok e2e-reuse "$b"
	root=$(gcroots_of e2e-reuse)
	assert_ne "" "$root" "the live container's GC root"
	local before
	before=$(stat -c %Y.%i "$(record_of e2e-reuse)" "$root")
	sleep 1.1
	flox_bundle "$b2" busybox acme/hello sleep 300
	capture fr create --bundle "$b2" e2e-reuse
	assert_fail "a second create of a live id"
	assert_contains "$CAP_ERR" "already exists" "runc's own refusal"
	assert_eq "$root" "$(gcroots_of e2e-reuse)" "the live container's GC root is kept"
	assert_eq "$before" "$(stat -c %Y.%i "$(record_of e2e-reuse)" "$root")" "record and GC root not rewritten"
	assert_json "$b2/config.json" '[.mounts[] | select(.destination == "/nix")] | length == 0' "the second bundle untouched"
	[[ -n "$(ls -A "$root")" ]] || { diag "FAIL: the GC root was emptied"; return 1; }
	status_is e2e-reuse created || { diag "FAIL: the live container changed"; return 1; }
	# the runtime loses the container behind flox-runc's back: stale record
	rt delete --force e2e-reuse
	assert_ne "" "$(record_of e2e-reuse)" "a stale record"
	flox_bundle "$b2" busybox acme/hello sleep 300
	create_ok e2e-reuse "$b2"
	delete_twice e2e-reuse
	check_no_container e2e-reuse
}

# "Is the container gone" has one answer for create, delete and gc: the
# runtime's `state` exiting 1 (what runc and crun exit with for an unknown
# id).  A runtime whose state fails otherwise (a wrapper exiting 2: a
# transient failure) cannot tell, and the live container keeps its GC root
# and record.  Before, delete released them on any non-zero state.
t_exists_unknown() {
	local b=$TEST_TMPDIR/unknown wrap=$TEST_TMPDIR/rt-flaky.sh cfgw=$TEST_TMPDIR/config-flaky.json root
	printf '#!/bin/sh
for a in "$@"; do
	case $a in
	state) echo "transient failure" >&2; exit 2 ;;
	delete) echo "transient failure" >&2; exit 1 ;;
	esac
done
exec %s "$@"
' \
		"$RT_BIN" >"$wrap"
	chmod 0755 "$wrap"
	jq --arg w "$wrap" '.runtime = $w' "$CFG" >"$cfgw"
	flox_bundle "$b" busybox acme/hello sleep 300
	create_ok e2e-unknown "$b"
	root=$(gcroots_of e2e-unknown)
	assert_ne "" "$root" "the container's GC root"
	# the real runtime knows an unknown id by exit status 1
	capture rt state e2e-no-such-container
	assert_rc 1 "$RT_NAME state of an unknown id"
	export FLOX_RUNC_CONFIG=$cfgw
	capture fr delete e2e-unknown
	assert_rc 1 "a delete the runtime failed"
	assert_eq "$root" "$(gcroots_of e2e-unknown)" "the GC root after the failed delete"
	assert_ne "" "$(record_of e2e-unknown)" "the record after the failed delete"
	capture fr create --bundle "$b" e2e-unknown
	assert_fail "a create of the id while the runtime cannot tell"
	assert_contains "$CAP_ERR" "cannot tell whether it still runs" "the create names the cause"
	# gc past its grace period asks the runtime too
	find "$STATE/containers" -name 'e2e-unknown.json' -exec touch -h -d "$(date -d '-1 day' '+%Y-%m-%d %H:%M:%S')" {} +
	capture fr gc --max-age 100000
	export FLOX_RUNC_CONFIG=$CFG
	assert_eq "$root" "$(gcroots_of e2e-unknown)" "the GC root is kept"
	[[ -n "$(ls -A "$root")" ]] || { diag "FAIL: the GC root was emptied"; return 1; }
	assert_ne "" "$(record_of e2e-unknown)" "the record is kept"
	status_is e2e-unknown created || { diag "FAIL: the container changed"; return 1; }
	delete_twice e2e-unknown
	check_no_container e2e-unknown
}

# A foreground run stays in between: SIGTERM to flox-runc reaches the
# container through runc, and flox-runc releases it when it ends.
t_run_signal() {
	local b=$TEST_TMPDIR/runsig pid rc=0
	flox_bundle "$b" busybox acme/hello sh -c 'trap "exit 7" TERM; echo up; while :; do sleep 0.1; done'
	cleanup_container "$RT_BIN" "$RROOT" e2e-sig
	"$FLOX_RUNC" --root "$RROOT" run --bundle "$b" e2e-sig >"$TEST_TMPDIR/runsig.out" 2>&1 &
	pid=$!
	WAIT_TIMEOUT=20 wait_for grep -q up "$TEST_TMPDIR/runsig.out"
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	assert_eq 7 "$rc" "the container's exit status after SIGTERM through flox-runc"
	check_no_container e2e-sig
}

# ----------------------------------------------------------- 2. generations

t_generations() {
	local b=$TEST_TMPDIR/t2 bp=$TEST_TMPDIR/t2p sha
	hub_publish acme/hello "$L/hello2" >/dev/null
	flox_bundle "$b" empty acme/hello greet
	run_fg e2e-live "$b"
	assert_rc 0 "run greet from the live generation"
	assert_eq "Hello from greet" "$CAP_OUT" "greet output"
	assert_contains "$(cat "$b/log.json")" "acme/hello:2" "log names generation 2"

	flox_bundle "$bp" empty acme/hello:1 greet
	sha=$(sha256_of "$bp/config.json")
	cleanup_container "$RT_BIN" "$RROOT" e2e-pinned
	capture fr --log "$bp/log.json" --log-format json create --bundle "$bp" --pid-file "$bp/init.pid" e2e-pinned
	check_failed_create "$bp" e2e-pinned "$sha" 'command "greet" is in neither the environment' "acme/hello:1"

	# and the pinned generation still runs what it has
	local bh=$TEST_TMPDIR/t2h
	flox_bundle "$bh" empty acme/hello:1 hello
	run_fg e2e-pinned-ok "$bh"
	assert_rc 0 "pinned :1 runs hello"
	assert_eq "Hello, world!" "$CAP_OUT" "pinned output"
}

# ------------------------------------------------------------ 3. run vs dev

t_modes() {
	local b=$TEST_TMPDIR/t3r bd=$TEST_TMPDIR/t3d run dev fe_run fe_dev
	flox_bundle "$b" empty acme/tools env
	run_fg e2e-run "$b"
	assert_rc 0 "run mode"
	run=$CAP_OUT
	flox_bundle "$bd" empty acme/tools env
	bundle_annotate "$bd" flox.dev/activate-mode dev
	run_fg e2e-dev "$bd"
	assert_rc 0 "dev mode"
	dev=$CAP_OUT

	fe_run=$(env_value FLOX_ENV "$run")
	fe_dev=$(env_value FLOX_ENV "$dev")
	assert_match "$fe_run" "$FLOX_ENV_RE" "run FLOX_ENV"
	assert_match "$fe_dev" "$FLOX_ENV_RE" "dev FLOX_ENV"
	assert_ne "$fe_run" "$fe_dev" "run and dev environments are built separately"
	# `runc spec`'s PATH, with each environment's bin first (fix-paths: sbin
	# only with --add-sbin); MANPATH with the trailing ':' fix-paths adds
	local spec_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin mode out fe
	for mode in run dev; do
		if [[ $mode == run ]]; then out=$run fe=$fe_run; else out=$dev fe=$fe_dev; fi
		assert_eq "$fe/bin:$spec_path" "$(env_value PATH "$out")" "$mode PATH"
		assert_eq "$fe" "$(env_value FLOX_ENV_DIRS "$out")" "$mode FLOX_ENV_DIRS"
		assert_eq "acme/tools" "$(env_value FLOX_ENV_DESCRIPTION "$out")" "$mode FLOX_ENV_DESCRIPTION"
		assert_eq "tools" "$(env_value FLOX_PROMPT_ENVIRONMENTS "$out")" "$mode FLOX_PROMPT_ENVIRONMENTS"
		assert_eq "/" "$(env_value FLOX_ENV_PROJECT "$out")" "$mode FLOX_ENV_PROJECT (the cwd)"
		assert_eq "/run/flox/env-cache" "$(env_value FLOX_ENV_CACHE "$out")" "$mode FLOX_ENV_CACHE"
		assert_eq "$fe/share/man:" "$(env_value MANPATH "$out")" "$mode MANPATH"
		assert_eq "$fe/share/info:" "$(env_value INFOPATH "$out")" "$mode INFOPATH"
		assert_eq "$fe/share" "$(env_value XDG_DATA_DIRS "$out")" "$mode XDG_DATA_DIRS"
		assert_eq "/run/flox/ca-bundle.crt" "$(env_value SSL_CERT_FILE "$out")" "$mode SSL_CERT_FILE (the node's bundle)"
		assert_eq "/run/flox/ca-bundle.crt" "$(env_value NIX_SSL_CERT_FILE "$out")" "$mode NIX_SSL_CERT_FILE"
	done
	assert_not_contains "$run" $'\nCPATH=' "run mode sets no CPATH"
	assert_not_contains "$run" $'\nPKG_CONFIG_PATH=' "run mode sets no PKG_CONFIG_PATH"
	assert_eq "$fe_dev/include" "$(env_value CPATH "$dev")" "dev CPATH"
	assert_eq "$fe_dev/lib/pkgconfig:$fe_dev/share/pkgconfig" "$(env_value PKG_CONFIG_PATH "$dev")" "dev PKG_CONFIG_PATH"
	assert_eq "$fe_dev/lib" "$(env_value LIBRARY_PATH "$dev")" "dev LIBRARY_PATH"
	assert_eq "$fe_dev/share/aclocal" "$(env_value ACLOCAL_PATH "$dev")" "dev ACLOCAL_PATH"
	assert_not_contains "$dev" $'\nJAVA_HOME=' "no JAVA_HOME without bin/java"
	assert_not_contains "$dev" $'\nPYTHONPATH=' "no PYTHONPATH without bin/python3"

	# the node's CA bundle is readable in the empty image; FLOX_ENV_CACHE is writable
	local bc=$TEST_TMPDIR/t3c
	flox_bundle "$bc" empty acme/tools sh -c 'sha256sum <"$SSL_CERT_FILE" && touch "$FLOX_ENV_CACHE/w" && echo cache-ok'
	bundle_jq "$bc" '.process.user = {uid: 1000, gid: 1000}'
	run_fg e2e-cacert "$bc"
	assert_rc 0 "the node's CA bundle and FLOX_ENV_CACHE inside (as uid 1000)"
	assert_eq "$(sha256sum </etc/ssl/certs/ca-certificates.crt)"$'\ncache-ok' "$CAP_OUT" "CA bundle identical, cache writable"

	# FLOX_ENV is readable inside, and dev's headers are where CPATH says
	local b2=$TEST_TMPDIR/t3i
	flox_bundle "$b2" empty acme/tools sh -c 'cat "$FLOX_ENV/include/devtool.h" >/dev/null && ls "$FLOX_ENV/bin/hello" && test -r "$FLOX_ENV/lib/pkgconfig/devtool.pc" && echo readable'
	bundle_annotate "$b2" flox.dev/activate-mode dev
	run_fg e2e-readable "$b2"
	assert_rc 0 "reading FLOX_ENV inside"
	assert_eq "$fe_dev/bin/hello"$'\n'readable "$CAP_OUT" "FLOX_ENV contents inside the container"
}

# ------------------------------------------- 3b. propagated packages

# What Flox's builder.pl links besides the installed outputs: run follows
# nix-support/propagated-user-env-packages (recursively), dev also
# propagated-build-inputs; never the rest of the closure (busybox, which
# every test package references, is not linked).  The command is the
# store's busybox by absolute path: the environment installs no shell.
t_propagated() {
	local bb b=$TEST_TMPDIR/t3bp bd=$TEST_TMPDIR/t3bd
	local show='ls "$FLOX_ENV/bin"; ls "$FLOX_ENV/include" 2>/dev/null; "$FLOX_ENV/bin/propagator"'
	bb=$(nixcache_path busybox)
	flox_bundle "$b" empty acme/prop "$bb/bin/sh" -c "$show"
	run_fg e2e-prop-run "$b"
	assert_rc 0 "run mode with propagated packages"
	assert_eq $'propagator\npropdeep\npropuser\npropagator' "$CAP_OUT" \
		"run: propagator, what it propagates as user-env packages, recursively; its own bin/propagator wins"
	flox_bundle "$bd" empty acme/prop "$bb/bin/sh" -c "$show"
	bundle_annotate "$bd" flox.dev/activate-mode dev
	run_fg e2e-prop-dev "$bd"
	assert_rc 0 "dev mode with propagated packages"
	assert_eq $'propagator\npropdeep\npropdep\npropuser\npropdep.h\npropagator' "$CAP_OUT" \
		"dev: the run packages plus the propagated build inputs, not the closure"
	local dev_listing=$CAP_OUT bm=$TEST_TMPDIR/t3bm bmr=$TEST_TMPDIR/t3bmr
	# no annotation: the manifest's options.activate.mode (dev) decides
	flox_bundle "$bm" empty acme/propdev "$bb/bin/sh" -c "$show"
	run_fg e2e-prop-mdev "$bm"
	assert_rc 0 "manifest's mode"
	assert_eq "$dev_listing" "$CAP_OUT" "options.activate.mode = dev gives a dev environment"
	# the annotation wins over the manifest
	flox_bundle "$bmr" empty acme/propdev "$bb/bin/sh" -c "$show"
	bundle_annotate "$bmr" flox.dev/activate-mode run
	run_fg e2e-prop-mrun "$bmr"
	assert_rc 0 "annotated run over the manifest's dev"
	assert_eq $'propagator\npropdeep\npropuser\npropagator' "$CAP_OUT" "the annotation wins"
}

# ---------------------------------------------------------- 4. vars, hook

t_vars_hook() {
	local b=$TEST_TMPDIR/t4
	flox_bundle "$b" empty acme/hooked sh -c 'echo "GREETING=$GREETING"; echo "SPACED=$SPACED"; echo "FROM_HOOK=${FROM_HOOK-unset}"; echo "PORT=$PORT WHERE=$WHERE QUOTED=$QUOTED"; test -d "$FLOX_ENV_CACHE/from-hook" && echo cache-ok'
	bundle_jq "$b" '.process.env += ["PORT=9000", "HOME=/home/u"]'
	run_fg e2e-hook "$b"
	assert_rc 0 "run with a hook"
	assert_eq $'GREETING=from-manifest\nSPACED=a b  c\nFROM_HOOK=yes\nPORT=9000 WHERE=/home/u/w QUOTED=it\'s\ncache-ok' "$CAP_OUT" \
		"manifest vars evaluated by bash, and the hook ran before the command (its export reached it)"
	assert_contains "$CAP_ERR" "hook-ran acme/hooked" "the hook's stdout goes to stderr"
	assert_not_contains "$CAP_OUT" "hook-ran" "nothing of the hook on stdout"
	assert_json "$b/config.json" '.process.args[0] | test("^/nix/store/[0-9a-z]{32}-flox-runc-bash/bin/bash$")' "the node's bash, from the store"
	# added by the create (no `flox-runc install` here) under the node's GC root
	assert_eq "$(jq -r '.process.args[0]' "$b/config.json" | sed 's#/bin/bash$##')" \
		"$(readlink "$STORE/nix/var/nix/gcroots/flox-runc/node/bash/0")" "the node's GC root holds the bash"
	# by a spec mount, or by flox-runc's closure hook (its --bind-rw SRC DST)
	assert_json "$b/config.json" '([.mounts[] | select(.destination == "/run/flox/env-cache")] | length)
		+ ([(.hooks.createContainer // [])[].args | select(index("bind-closure") != null) | . as $a
		| range(0; length) | select($a[.] == "--bind-rw" and $a[. + 2] == "/run/flox/env-cache")] | length) == 1' "FLOX_ENV_CACHE mounted"
	assert_json "$b/config.json" '[.mounts[] | select(.destination | startswith("/run/flox/")) | .options | index("rbind")] | all(. == null)' "FLOX_ENV_CACHE and the CA bundle bound like /nix, not recursively"

	# ${PORT:-8000} without PORT in the container
	local b2=$TEST_TMPDIR/t4d
	flox_bundle "$b2" empty acme/hooked sh -c 'echo "PORT=$PORT"'
	run_fg e2e-hook-default "$b2"
	assert_rc 0 "run with the default"
	assert_eq "PORT=8000" "$CAP_OUT" "the manifest's default"
}

t_hook_no_shell() {
	local b=$TEST_TMPDIR/t4n sha cfg=$TEST_TMPDIR/config-nobash.json
	write_config "$cfg" "$STORE" "$STATE" "$(nixcache_url main)" bash='"/nonexistent/bash-static"'
	flox_bundle "$b" empty acme/hooknosh hello
	sha=$(sha256_of "$b/config.json")
	cleanup_container "$RT_BIN" "$RROOT" e2e-hooknosh
	FLOX_RUNC_CONFIG=$cfg capture fr --log "$b/log.json" --log-format json create --bundle "$b" --pid-file "$b/init.pid" e2e-hooknosh
	check_failed_create "$b" e2e-hooknosh "$sha" "needs bash for its vars or hook" "/nonexistent/bash-static" "bash-static" "acme/hooknosh"
	# the node's own (dynamically linked) bash could not run on an empty image
	write_config "$cfg" "$STORE" "$STATE" "$(nixcache_url main)" bash='"/bin/bash"'
	rm -f "$b/log.json"
	FLOX_RUNC_CONFIG=$cfg capture fr --log "$b/log.json" --log-format json create --bundle "$b" --pid-file "$b/init.pid" e2e-hooknosh
	check_failed_create "$b" e2e-hooknosh "$sha" "is not a statically linked program" "/bin/bash" "bash-static"
	# a dev environment pins the node's bash for its plugin profile.d
	# scripts when the node has one; one with no vars, hook or plugin
	# script needs none, and builds and runs on a node without it
	local st=$TEST_TMPDIR/s4n bd=$TEST_TMPDIR/t4nd
	write_config "$cfg" "$st/store" "$st/state" "$(nixcache_url main)" bash='"/nonexistent/bash-static"'
	flox_bundle "$bd" empty acme/propdev propagator
	FLOX_RUNC_CONFIG=$cfg run_fg e2e-devnosh "$bd"
	assert_rc 0 "a dev environment without bash on the node runs"
	assert_eq propagator "$CAP_OUT" "its command's output"
}

# ------------------------------------------------------- 5. ro vs mutable

# dump_db_paths: the valid paths in `nix-store --dump-db` output (each
# registration: path, hash, size, deriver, count, references), sorted.
dump_db_paths() {
	awk 'st == 0 { print; st = 1; next }
		st < 4 { st++; next }
		st == 4 { n = $1 + 0; st = n > 0 ? 5 : 0; next }
		st == 5 { if (--n == 0) st = 0 }' | LC_ALL=C sort -u
}

t_nix_rw() {
	local bro=$TEST_TMPDIR/t5ro brw=$TEST_TMPDIR/t5rw before after rec overlay
	# warm the environment first: the snapshot is of a node that has it
	local bw=$TEST_TMPDIR/t5w
	flox_bundle "$bw" empty acme/hello hello
	run_fg e2e-warm "$bw"
	assert_rc 0 "warm-up"
	# another tenant on the node: its paths must not be registered in the pod's db
	flox_bundle "$bw" empty acme/tools hello
	run_fg e2e-warm "$bw"
	assert_rc 0 "warm-up of another environment"
	local node_paths
	node_paths=$(nix_store "$STORE" --dump-db | dump_db_paths)
	before=$(store_snapshot "$STORE")

	flox_bundle "$bro" busybox acme/hello sleep 86400
	flox_bundle "$brw" busybox acme/hello sleep 86400
	bundle_annotate "$brw" flox.dev/nix-mutable true
	write_process_file "$TEST_TMPDIR/t5-probe.json" sh -c \
		"touch /nix/probe && echo top-ok; echo x >/nix/store/new-file && echo store-ok; chmod u+w $HELLO/bin/hello && echo '#tampered' >>$HELLO/bin/hello && echo path-ok; hello"
	cp "$TEST_TMPDIR/t5-probe.json" "$TEST_TMPDIR/t5-probe2.json"

	create_ok e2e-ro "$bro"
	capture fr start e2e-ro
	assert_rc 0 "start ro"
	capture fr exec --process "$TEST_TMPDIR/t5-probe.json" e2e-ro
	assert_not_contains "$CAP_OUT" "-ok" "no write under a read-only /nix succeeds"
	assert_contains "$CAP_ERR" "Read-only file system" "EROFS"
	assert_contains "$CAP_OUT" "Hello, world!" "hello still runs"

	create_ok e2e-rw "$brw"
	capture fr start e2e-rw
	assert_rc 0 "start rw"
	rec=$(record_of e2e-rw)
	overlay=$(jq -r .overlay "$rec")
	assert_match "$overlay" "^$STATE/" "overlay under state_dir"
	assert_contains "$(awk '{print $5}' /proc/self/mountinfo)" "$overlay/merged" "overlay mounted"
	capture fr exec --process "$TEST_TMPDIR/t5-probe2.json" e2e-rw
	assert_rc 0 "writes under a mutable /nix"
	# new files anywhere under /nix; the closure's own paths stay read-only
	# binds over the private layer
	assert_eq $'top-ok\nstore-ok\nHello, world!' "$CAP_OUT" "writes succeed, except into a closure path"
	assert_contains "$CAP_ERR" "Read-only file system" "a closure path is read-only in a mutable /nix"

	# Nix's database in the writable /nix registers exactly the closure
	local key want got others
	key=$(jq -r .env_key "$rec")
	want=$(nix_store "$STORE" -qR $(jq -r '.pins[]' "$STATE/envs/$key.json") | LC_ALL=C sort -u)
	got=$(nix_store "local?state=$overlay/merged/var/nix&real=$overlay/merged/store" --dump-db | dump_db_paths)
	assert_ne "" "$want" "the closure"
	assert_eq "$want" "$got" "the paths registered in the mutable /nix's Nix database"
	others=$(LC_ALL=C comm -23 <(echo "$node_paths") <(echo "$want"))
	assert_contains "$others" "devtool" "another tenant's paths on the node"
	assert_empty "$(LC_ALL=C comm -12 <(echo "$others") <(echo "$got"))" "other tenants' paths in the pod's db"
	write_process_file "$TEST_TMPDIR/t5-db.json" ls /nix/var/nix/db
	capture fr exec --process "$TEST_TMPDIR/t5-db.json" e2e-rw
	assert_rc 0 "ls /nix/var/nix/db in the pod"
	assert_contains "$CAP_OUT" "db.sqlite" "the pod sees its Nix database"

	for id in e2e-ro e2e-rw; do
		capture fr kill "$id" 9
		assert_rc 0 "kill $id"
		wait_for status_is "$id" stopped
		delete_twice "$id"
		check_no_container "$id"
	done
	assert_not_contains "$(awk '{print $5}' /proc/self/mountinfo)" "$overlay" "overlay unmounted after delete"
	[[ ! -e "$overlay" ]] || {
		diag "FAIL: overlay directory $overlay still exists"
		return 1
	}
	after=$(store_snapshot "$STORE")
	if [[ "$before" != "$after" ]]; then
		diag "FAIL: the node store changed:"
		diag "$(diff <(echo "$before") <(echo "$after") | head -20)"
		return 1
	fi
	grep -q 'Hello, world' "$STORE$HELLO/bin/hello" || {
		diag "FAIL: hello changed in the node store"
		return 1
	}
}

# ------------------------------------------------------ 6. skip-containers

t_skip_containers() {
	local b=$TEST_TMPDIR/t6 sha
	make_busybox_bundle "$b" sh -c 'if [ -e /nix ]; then echo HAS-NIX; else echo NO-NIX; fi; echo "FLOX_ENV=${FLOX_ENV-unset}"'
	cri_name "$b" sidecar
	bundle_annotate "$b" flox.dev/environment acme/hello
	bundle_annotate "$b" flox.dev/skip-containers "vault-agent,sidecar"
	sha=$(sha256_of "$b/config.json")
	run_fg e2e-skip "$b"
	assert_rc 0 "skipped container runs"
	assert_eq $'NO-NIX\nFLOX_ENV=unset' "$CAP_OUT" "runs untouched from its image"
	assert_empty "$CAP_ERR" "stderr"
	assert_file_unchanged "$b/config.json" "$sha" "config.json byte-identical"
	assert_empty "$(record_of e2e-skip)" "no record"
}

# process_ended PID: gone, or a zombie (its parent, the runtime, is gone too)
process_ended() { [[ ! -e /proc/$1 ]] || [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" == Z ]]; }

# exec_containerd ID PROCESS-FILE LOGDIR: containerd's detached exec; waits
# for the process to end. EXEC_OUT holds its output.
exec_containerd() {
	local id=$1 pf=$2 d=$3 pid
	rm -f "$d/exec.pid"
	capture fr --log "$d/log.json" --log-format json exec --process "$pf" --detach --pid-file "$d/exec.pid" "$id"
	assert_rc 0 "exec --detach into $id"
	pid=$(cat "$d/exec.pid")
	assert_match "$pid" '^[0-9]+$' "exec pid file"
	wait_for process_ended "$pid"
	EXEC_OUT=$(cat "$CAP_OUT_FILE")
}

t_skip_exec() {
	local bf=$TEST_TMPDIR/t6f bs=$TEST_TMPDIR/t6s sha
	flox_bundle "$bf" busybox acme/hello sleep 86400
	cri_name "$bf" app
	bundle_annotate "$bf" flox.dev/skip-containers-exec "debug,other"
	flox_bundle "$bs" busybox acme/hello sleep 86400
	cri_name "$bs" debug
	bundle_annotate "$bs" flox.dev/skip-containers-exec "debug,other"
	create_ok e2e-app "$bf"
	capture fr start e2e-app
	assert_rc 0 "start e2e-app"
	# the other one through `run --detach`
	cleanup_container "$RT_BIN" "$RROOT" e2e-debug
	capture fr --log "$bs/log.json" --log-format json run --detach --pid-file "$bs/init.pid" --bundle "$bs" e2e-debug
	assert_rc 0 "run --detach"
	assert_eq 0 "$(stat -c %s "$CAP_OUT_FILE")" "bytes on stdout of run --detach"
	status_is e2e-debug running

	# a Flox container: detached (containerd) and attached execs are activated
	write_process_file "$bf/p1.json" hello
	exec_containerd e2e-app "$bf/p1.json" "$bf"
	assert_eq "Hello, world!" "$EXEC_OUT" "detached exec of hello"
	write_process_file "$bf/p2.json" sh -c 'echo "FLOX_ENV=${FLOX_ENV-unset}"; hello'
	capture fr --log "$bf/log.json" --log-format json exec --process "$bf/p2.json" e2e-app
	assert_rc 0 "exec into the Flox container"
	assert_match "$CAP_OUT" $'^FLOX_ENV=/nix/[^\n]+\nHello, world!$' "exec sees FLOX_ENV and finds hello"
	assert_match "$(head -1 <<<"$CAP_OUT")" "^FLOX_ENV=${FLOX_ENV_RE#^}" "FLOX_ENV in the exec"

	# a skip-containers-exec container: its main process is activated...
	assert_contains "$(tr '\0' '\n' <"/proc/$(cat "$bs/init.pid")/environ")" "FLOX_ENV=/nix/" "main process activated"
	# ...its execs are not
	write_process_file "$bs/p1.json" sh -c 'echo "FLOX_ENV=${FLOX_ENV-unset}"; echo "PATH=$PATH"'
	cp "$bs/p1.json" "$bs/p2.json"
	sha=$(sha256_of "$bs/p1.json")
	exec_containerd e2e-debug "$bs/p1.json" "$bs"
	assert_eq $'FLOX_ENV=unset\nPATH=/bin' "$EXEC_OUT" "detached exec not activated"
	assert_file_unchanged "$bs/p1.json" "$sha" "process file byte-identical"
	capture fr --log "$bs/log.json" --log-format json exec --process "$bs/p2.json" e2e-debug
	assert_rc 0 "attached exec"
	assert_eq $'FLOX_ENV=unset\nPATH=/bin' "$CAP_OUT" "attached exec not activated"
	assert_file_unchanged "$bs/p2.json" "$sha" "process file byte-identical (attached)"

	for id in e2e-app e2e-debug; do
		capture fr kill "$id" 9
		wait_for status_is "$id" stopped
		delete_twice "$id"
		check_no_container "$id"
	done
}

# ---------------------------------------------------------------- 7. GC

# nix_gc STORE: `nix-store --gc` on STORE, captured. Nix 2.8 also reads
# every process's /proc links (runtime roots) and aborts on one longer than
# PATH_MAX ("reading symlink: File name too long"): a process of a
# concurrent suite inside test 15's deep tree. Retried while that is all.
nix_gc() {
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		capture nix_store "$1" --gc
		[[ $CAP_RC -ne 0 && "$CAP_ERR" == *"File name too long"* ]] || return 0
		sleep 1
	done
}

t_gc() {
	local st=$TEST_TMPDIR/s7 cfg=$TEST_TMPDIR/config7.json b=$TEST_TMPDIR/t7 id=e2e-gc
	local store=$st/store state=$st/state
	write_config "$cfg" "$store" "$state" "$(nixcache_url main)"
	export FLOX_RUNC_CONFIG=$cfg
	flox_bundle "$b" busybox acme/cold sleep 86400
	NOLOG=1 create_ok "$id" "$b" # cold, and without --log: still nothing on stdout
	capture fr start "$id"
	assert_rc 0 "start"

	# flox-runc gc, even long after the create, keeps what a live container uses
	local old
	old=$(date -d '-1 day' '+%Y-%m-%d %H:%M:%S')
	# (not the views' pins: the bind of a namespace's file takes no times)
	find "$state" "$store/nix/var/nix/gcroots/flox-runc" "$store/nix/var/flox-runc" -path "$state/viewns" -prune -o \
		-exec touch -h -d "$old" {} +
	capture fr gc --max-age 0
	assert_rc 0 "flox-runc gc --max-age 0 while the container runs"
	assert_eq nsfs "$(stat -f -c %T "$state/viewns/$(jq -r .env_key "$(record_of "$id" "$state")")")" "the live container's view keeps its pin"
	assert_contains "$CAP_OUT" "removed 0 container records, 0 overlays, 0 container roots, 0 environments" "gc of a live container"
	assert_ne "" "$(record_of "$id" "$state")" "the live container's record"

	nix_gc "$store"
	assert_rc 0 "nix-store --gc while the container runs"
	local p
	for p in $(nixcache_closure "$HELLO"); do
		[[ -e "$store$p" ]] || {
			diag "FAIL: $p was collected while its container runs"
			return 1
		}
	done
	# the container's root is one link to its environment's, which pins
	local key croot
	key=$(jq -r .env_key "$(record_of "$id" "$state")")
	croot=$(gcroots_of "$id" "$store")
	[[ -L "$croot" ]] || {
		diag "FAIL: the container's GC root $croot is not one symlink"
		return 1
	}
	assert_eq "../envs/$key" "$(readlink "$croot")" "the container's GC root refers to its environment's"
	assert_contains "$(nix_store "$store" --gc --print-roots)" "/gcroots/flox-runc/envs/$key/" "the environment's root pins"
	write_process_file "$b/p.json" hello
	capture fr exec --process "$b/p.json" "$id"
	assert_rc 0 "exec hello after the GC"
	assert_eq "Hello, world!" "$CAP_OUT" "hello still works"

	capture fr kill "$id" 9
	wait_for status_is "$id" stopped
	delete_twice "$id"
	assert_empty "$(lsfind "$store/nix/var/nix/gcroots/flox-runc/containers" -mindepth 1)" "container GC roots left"
	assert_empty "$(lsfind "$state/containers" -name '*.json')" "container records left"

	capture fr gc --max-age 0
	assert_rc 0 "flox-runc gc --max-age 0"
	assert_match "$CAP_OUT" 'removed .* [1-9][0-9]* environments' "gc evicted the environment"
	assert_empty "$(lsfind "$store/nix/var/nix/gcroots/flox-runc/envs" -mindepth 1)" "environment GC roots after gc"
	assert_empty "$(lsfind "$store/nix/var/flox-runc/envs" -mindepth 1 -maxdepth 1)" "built environments after gc"
	assert_empty "$(lsfind "$state/viewns" -mindepth 1)" "views' pins after gc"
	assert_empty "$(awk -v d="$state/viewns/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo)" "pins' mounts after gc"
	nix_gc "$store"
	assert_rc 0 "nix-store --gc after delete and flox-runc gc"
	local roots
	roots=$(nix_store "$store" --gc --print-roots)
	for p in $(nixcache_closure "$HELLO"); do
		[[ -e "$store$p" ]] || continue
		# Nix also keeps paths that a running process of the machine uses
		# (/proc/PID/{exe,maps,fd,...}), whichever store that process sees:
		# other tests running busybox from /nix/store. Only such roots may
		# keep it, and none of this test's processes.
		local r pid kept=""
		while IFS= read -r r; do
			[[ -n "$r" ]] || continue
			if [[ "$r" =~ ^/proc/([0-9]+)/ ]]; then
				pid=${BASH_REMATCH[1]}
				if grep -q "$TEST_ID" "/proc/$pid/cgroup" 2>/dev/null; then
					diag "FAIL: $p is kept by a process of this test: $r"
					return 1
				fi
				kept="$kept pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null))"
			else
				diag "FAIL: $p is still in the store, pinned by $r"
				return 1
			fi
		done < <(grep -F -- " -> $p" <<<"$roots" || true)
		if [[ -z "$kept" ]]; then
			diag "FAIL: $p is still in the store after nix-store --gc; roots:"
			diag "$roots"
			return 1
		fi
		diag "note: $p kept only by processes outside this test:$kept"
	done
}

# 7b: many pinned packages: the container's root is still one link; a live
# (nix-mutable) container keeps every package through flox-runc gc and
# nix-store --gc; deleted, the environment, its view and Nix database go.
t_gc_many() {
	local st=$TEST_TMPDIR/s7b cfg=$TEST_TMPDIR/config7b.json b=$TEST_TMPDIR/t7b id=e2e-gc-many
	local store=$st/store state=$st/state key croot pins closure p old
	write_config "$cfg" "$store" "$state" "$(nixcache_url main)"
	export FLOX_RUNC_CONFIG=$cfg
	flox_bundle "$b" busybox acme/many sleep 86400
	bundle_annotate "$b" flox.dev/nix-mutable true
	create_ok "$id" "$b"
	capture fr start "$id"
	assert_rc 0 "start"
	key=$(jq -r .env_key "$(record_of "$id" "$state")")
	pins=$(jq -r '.pins[]' "$state/envs/$key.json")
	[[ $(wc -l <<<"$pins") -ge 9 ]] || {
		diag "FAIL: only $(wc -l <<<"$pins") packages pinned"
		return 1
	}
	closure=$(nix_store "$store" -qR $pins)
	croot=$(gcroots_of "$id" "$store")
	[[ -L "$croot" ]] || {
		diag "FAIL: the container's GC root $croot is not one symlink"
		return 1
	}
	assert_eq "../envs/$key" "$(readlink "$croot")" "the container's GC root refers to its environment's"
	[[ -s "$state/views/$key.nixdb/nix/var/nix/db/db.sqlite" ]] || {
		diag "FAIL: no Nix database template beside the view"
		return 1
	}
	# not Nix's 8 MiB GC reserve, per environment
	assert_empty "$(lsfind "$state/views/$key.nixdb" -name reserved)" "the template's reserved file"

	old=$(date -d '-1 day' '+%Y-%m-%d %H:%M:%S')
	find "$state" "$store/nix/var/nix/gcroots/flox-runc" "$store/nix/var/flox-runc" -exec touch -h -d "$old" {} +
	capture fr gc --max-age 0
	assert_rc 0 "flox-runc gc while the container runs"
	assert_contains "$CAP_OUT" " 0 environments" "the live container's environment is kept"
	nix_gc "$store"
	assert_rc 0 "nix-store --gc while the container runs"
	for p in $closure; do
		[[ -e "$store$p" ]] || {
			diag "FAIL: $p was collected while its container runs"
			return 1
		}
	done

	capture fr kill "$id" 9
	wait_for status_is "$id" stopped
	delete_twice "$id"
	assert_empty "$(lsfind "$store/nix/var/nix/gcroots/flox-runc/containers" -mindepth 1)" "container GC roots left"
	capture fr gc --max-age 0
	assert_rc 0 "flox-runc gc after delete"
	assert_contains "$CAP_OUT" " 1 environments" "gc evicted the environment"
	assert_empty "$(lsfind "$state/views" -mindepth 1 -maxdepth 1)" "views and Nix databases after gc"
	nix_gc "$store"
	assert_rc 0 "nix-store --gc after delete and gc"
	# busybox may be kept by other processes of the machine (see t_gc)
	for p in $pins; do
		[[ "$p" == *-busybox-* || ! -e "$store$p" ]] || {
			diag "FAIL: $p is still in the store after delete, gc and nix-store --gc"
			return 1
		}
	done
}

# 7c: the trees' shared symlinks (lib/linkpool.h): a second environment's
# symlink to a target the first has is the first's inode; gc of one
# environment frees the pool entries only it used and leaves the other's
# tree whole; evicting both empties the pool.
t_link_pool() {
	local st=$TEST_TMPDIR/s7c cfg=$TEST_TMPDIR/config7c.json
	local store=$st/store state=$st/state envs pool k1 k2 before old n
	write_config "$cfg" "$store" "$state" "$(nixcache_url main)"
	export FLOX_RUNC_CONFIG=$cfg
	envs=$store/nix/var/flox-runc/envs pool=$store/nix/var/flox-runc/links
	capture fr prefetch acme/tools # busybox hello devtool
	assert_rc 0 "prefetch acme/tools"
	k1=$(ls "$envs")
	capture fr prefetch acme/hooked # busybox hello
	assert_rc 0 "prefetch acme/hooked"
	k2=$(find "$envs" -mindepth 1 -maxdepth 1 ! -name "$k1" -printf '%f\n')
	[[ -n "$k1" && -n "$k2" ]] || { diag "FAIL: two environments expected in $envs"; return 1; }
	[[ -L "$envs/$k1/bin/hello" ]] || { diag "FAIL: bin/hello is not a symlink in the tree"; return 1; }
	assert_eq "$(readlink "$envs/$k1/bin/hello")" "$(readlink "$envs/$k2/bin/hello")" "one target"
	assert_eq "$(stat -c %i "$envs/$k1/bin/hello")" "$(stat -c %i "$envs/$k2/bin/hello")" "the second tree's bin/hello is the first's inode"
	assert_eq 3 "$(stat -c %h "$envs/$k2/bin/hello")" "links: two trees and the pool"
	assert_eq "" "$(find "$envs/$k2" -type l -links 1)" "every symlink of the second tree is in the pool"
	[[ "$(stat -c %a "$pool")" == 700 ]] || { diag "FAIL: the pool is not mode 0700"; return 1; }

	# gc evicts acme/tools only (acme/hooked used recently)
	before=$(cd "$envs/$k2" && find . -printf '%p %y %l\n' | LC_ALL=C sort)
	old=$(date -d '-2 hours' '+%Y-%m-%d %H:%M:%S')
	touch -d "$old" "$state/envs/$k1.json"
	n=$(find "$pool" -type l -links 2 | wc -l) # entries of one tree only (devtool's: acme/tools's)
	capture fr gc --max-age 3600
	assert_rc 0 "flox-runc gc --max-age 3600"
	assert_match "$CAP_OUT" 'removed .* 1 environments, .* [1-9][0-9]* shared symlinks' "gc evicted acme/tools and freed its own shared symlinks"
	[[ ! -e "$envs/$k1" ]] || { diag "FAIL: acme/tools's tree is still there"; return 1; }
	assert_eq "" "$(find "$pool" -links 1)" "pool entries no tree uses"
	assert_eq "$before" "$(cd "$envs/$k2" && find . -printf '%p %y %l\n' | LC_ALL=C sort)" "acme/hooked's tree is whole after gc"
	assert_eq 2 "$(stat -c %h "$envs/$k2/bin/hello")" "bin/hello: the tree and the pool"
	((n > 0)) || { diag "FAIL: no pool entry was used by one tree only"; return 1; }

	capture fr gc --max-age 0
	assert_rc 0 "flox-runc gc --max-age 0"
	assert_eq "" "$(lsfind "$pool" -mindepth 1)" "the pool is empty once no tree is left"
	export FLOX_RUNC_CONFIG=$CFG
}

# 7d: share_tree_symlinks false: a tree's symlinks are its own (no pool
# entry, no inode shared with another tree).
t_link_pool_off() {
	local st=$TEST_TMPDIR/s7d cfg=$TEST_TMPDIR/config7d.json
	local store=$st/store state=$st/state envs k1 k2
	write_config "$cfg" "$store" "$state" "$(nixcache_url main)" share_tree_symlinks=false
	export FLOX_RUNC_CONFIG=$cfg
	envs=$store/nix/var/flox-runc/envs
	capture fr prefetch acme/tools
	assert_rc 0 "prefetch acme/tools"
	k1=$(ls "$envs")
	capture fr prefetch acme/hooked
	assert_rc 0 "prefetch acme/hooked"
	k2=$(find "$envs" -mindepth 1 -maxdepth 1 ! -name "$k1" -printf '%f\n')
	[[ -n "$k1" && -n "$k2" ]] || { diag "FAIL: two environments expected in $envs"; return 1; }
	assert_eq "$(readlink "$envs/$k1/bin/hello")" "$(readlink "$envs/$k2/bin/hello")" "one target"
	[[ "$(stat -c %i "$envs/$k1/bin/hello")" != "$(stat -c %i "$envs/$k2/bin/hello")" ]] ||
		{ diag "FAIL: the trees share bin/hello's inode with share_tree_symlinks false"; return 1; }
	assert_eq "" "$(find "$envs/$k1" "$envs/$k2" -type l ! -links 1)" "every symlink is its tree's own"
	[[ ! -e $store/nix/var/flox-runc/links ]] || { diag "FAIL: a pool was made"; return 1; }
	export FLOX_RUNC_CONFIG=$CFG
}

# -------------------------------------------------------- 8. concurrency

# lock_openers_are N DIR: N flox-runc processes have a lock file under DIR
# open (the holder and those waiting for it)
lock_openers_are() {
	local p f c=0
	for p in /proc/[0-9]*; do
		[[ $(readlink "$p/exe" 2>/dev/null) == "$(readlink -f "$FLOX_RUNC")" ]] || continue
		for f in "$p"/fd/*; do
			if [[ $(readlink "$f" 2>/dev/null) == "$2"*/.lock* ]]; then
				c=$((c + 1))
				break
			fi
		done
	done
	((c == $1))
}

t_concurrent() {
	local st=$TEST_TMPDIR/s8 cfg=$TEST_TMPDIR/config8.json i pids=() rc=0 n=8
	nixcache_serve c8 signed
	write_config "$cfg" "$st/store" "$st/state" "$(nixcache_url c8)"
	export FLOX_RUNC_CONFIG=$cfg
	for ((i = 0; i < n; i++)); do
		flox_bundle "$st/b$i" empty acme/cold hello
		cleanup_container "$RT_BIN" "$RROOT" "e2e-par-$i"
	done
	# the requests of one cold resolution (fresh_seconds 0: every create asks)
	local one hub0
	write_config "$st/one.json" "$st/one-store" "$st/one-state" "$(nixcache_url c8)"
	hub0=$(hub_requests)
	FLOX_RUNC_CONFIG=$st/one.json "$FLOX_RUNC" resolve acme/cold >/dev/null
	one=$(($(hub_requests) - hub0))
	hub0=$(hub_requests)
	# all creates wait for the first: its FloxHub request held until every
	# create has the environment's lock file open (asked before the first
	# answer; a fixed 700 ms delay lost to a loaded machine's slow starts)
	touch "$st/hold"
	hub_fault "$(jq -cn --arg f "$st/hold" '{hold_file: $f, remaining: 1}')"
	for ((i = 0; i < n; i++)); do
		fr --log "$st/b$i/log.json" --log-format json create --bundle "$st/b$i" \
			--pid-file "$st/b$i/init.pid" "e2e-par-$i" >"$st/out$i" 2>"$st/err$i" &
		pids+=($!)
	done
	WAIT_TIMEOUT=50 wait_for lock_openers_are "$n" "$st/state/hub/" || rc=1
	rm -f "$st/hold"
	for ((i = 0; i < n; i++)); do
		if ! wait "${pids[$i]}"; then
			diag "FAIL: create e2e-par-$i failed: $(cat "$st/err$i")"
			rc=1
		fi
	done
	((rc == 0))
	hub_fault '{}'
	assert_eq "$one" "$(($(hub_requests) - hub0))" "FloxHub requests of $n creates (those of one)"
	for ((i = 0; i < n; i++)); do
		assert_eq 0 "$(stat -c %s "$st/out$i")" "stdout of create $i"
		capture fr start "e2e-par-$i"
		assert_rc 0 "start $i"
	done
	local nars
	nars=$(awk '$2 == "GET" && $3 ~ /^\/nar\// {print $3}' "$(nixcache_log c8)")
	assert_eq "$(nixcache_closure "$HELLO" | wc -l)" "$(grep -c . <<<"$nars")" "NAR downloads (one per closure path)"
	assert_empty "$(sort <<<"$nars" | uniq -d)" "NARs downloaded twice"
	assert_eq 1 "$(cat "$st"/b*/log.json | grep -c 'building the run environment')" "environment builds"
	assert_eq 1 "$(cat "$st"/b*/log.json | grep -c 'realising ')" "realisations"
	local envs
	envs=$(for ((i = 0; i < n; i++)); do jq -r '.process.env[] | select(startswith("FLOX_ENV="))' "$st/b$i/config.json"; done | sort -u)
	assert_eq 1 "$(grep -c . <<<"$envs")" "one environment for all"
	for ((i = 0; i < n; i++)); do
		WAIT_TIMEOUT=20 wait_for status_is "e2e-par-$i" stopped
		assert_eq "Hello, world!" "$(cat "$st/out$i")" "output of container $i"
		delete_twice "e2e-par-$i"
		check_no_container "e2e-par-$i" "$st/state" "$st/store"
	done
}

# ------------------------------------------------------------ 9. SIGKILL

nix_store_pids() { pgrep -f "nix-store --store $1( |\$)" || true; }
nix_store_alive() { [[ -n "$(nix_store_pids "$1")" ]]; }
nix_store_gone() { [[ -z "$(nix_store_pids "$1")" ]]; }

t_sigkill() {
	local st=$TEST_TMPDIR/s9 cfg=$TEST_TMPDIR/config9.json b=$TEST_TMPDIR/t9 id=e2e-kill
	local store=$st/store state=$st/state pid pgid mypgid
	nixcache_serve c9 signed
	write_config "$cfg" "$store" "$state" "$(nixcache_url c9)"
	export FLOX_RUNC_CONFIG=$cfg
	flox_bundle "$b" empty acme/cold hello
	local sha
	sha=$(sha256_of "$b/config.json")
	cleanup_container "$RT_BIN" "$RROOT" "$id"
	nixcache_fault c9 '{"delay_ms": 5000, "only_paths_matching": "^/nar/"}'

	setsid "$FLOX_RUNC" --root "$RROOT" --log "$b/log.json" --log-format json \
		create --bundle "$b" --pid-file "$b/init.pid" "$id" >"$st.out" 2>"$st.err" &
	pid=$!
	cleanup_pid "$pid"
	WAIT_TIMEOUT=20 wait_for nix_store_alive "$store"
	# nix-store starts while FloxHub answers; the paths (and the log line)
	# follow the hub's answer, late on a loaded machine: waited for, not slept
	WAIT_TIMEOUT=30 wait_for grep -q realising "$b/log.json"
	pgid=$(ps -o pgid= -p "$pid" | tr -d ' ')
	mypgid=$(ps -o pgid= -p $$ | tr -d ' ')
	assert_eq "$pid" "$pgid" "flox-runc leads its own process group"
	assert_ne "$mypgid" "$pgid" "not the test's process group"
	assert_eq 1 "$(grep -c . <<<"$(nix_store_pids "$store")")" "one nix-store realising"
	assert_contains "$(cat "$b/log.json")" "realising" "killed while realising"
	kill -9 -- "-$pgid"
	wait "$pid" 2>/dev/null || true
	WAIT_TIMEOUT=5 wait_for nix_store_gone "$store"
	assert_file_unchanged "$b/config.json" "$sha" "config.json after the kill"
	check_no_container "$id" "$state" "$store"

	nixcache_fault c9 '{}'
	rm -f "$b/log.json"
	run_to_exit "$id" "$b"
	assert_eq "Hello, world!" "$OUT" "the retry runs"
	assert_empty "$(tmp_leftovers "$state" "$store")" "temporary build directories after the retry"
	delete_twice "$id"
	check_no_container "$id" "$state" "$store"
	assert_empty "$(lsfind "$store/nix/var/nix/gcroots/flox-runc" -name '*.tmp.*' -o -name '*.old.*')" "half-made GC roots"
	assert_empty "$(nix_store_pids "$store")" "nix-store processes"
}

# crash_build_case N DRAFT ENV HEAD...: flox-runc killed in the middle of
# writing the environment tree (strace delivers SIGKILL at its first
# symlinkat(2), which envbuild makes; the GC roots made before it use
# symlink(2)): the half-built tree of the dead process is never used and the
# retry removes it.  DRAFT: the node's draft_tree.  HEAD: what the log must
# hold at the kill (a "!" prefix: must not hold).
crash_build_case() {
	local n=$1 draft=$2 env=$3 want
	shift 3
	local st=$TEST_TMPDIR/s9b$n cfg=$TEST_TMPDIR/config9b$n.json b=$TEST_TMPDIR/t9b$n id=e2e-crash$n
	local store=$st/store state=$st/state
	write_config "$cfg" "$store" "$state" "$(nixcache_url main)" draft_tree="$draft"
	export FLOX_RUNC_CONFIG=$cfg
	flox_bundle "$b" empty "$env" hello
	cleanup_container "$RT_BIN" "$RROOT" "$id"
	capture strace -o "$st.strace" -e trace=symlinkat -e inject=symlinkat:signal=KILL \
		"$FLOX_RUNC" --root "$RROOT" --log "$b/log.json" --log-format json create --bundle "$b" "$id"
	assert_eq 137 "$CAP_RC" "flox-runc killed (128 + SIGKILL)"
	for want in "$@"; do
		if [[ "$want" == '!'* ]]; then
			assert_not_contains "$(cat "$b/log.json")" "${want#!}" "draft_tree=$draft: killed before: ${want#!}"
		else
			assert_contains "$(cat "$b/log.json")" "$want" "draft_tree=$draft: killed after: $want"
		fi
	done
	assert_ne "" "$(tmp_leftovers "$state" "$store")" "the crash left a half-built tree (else it missed the build)"
	assert_empty "$(lsfind "$state/envs" -name '*.json')" "no environment record for a half-built tree"
	check_no_container "$id" "$state" "$store"
	run_fg "$id" "$b"
	assert_rc 0 "the retry"
	assert_eq "Hello, world!" "$CAP_OUT" "the retry runs hello"
	assert_empty "$(tmp_leftovers "$state" "$store")" "temporary build directories after the retry"
	check_no_container "$id" "$state" "$store"
}

# t_crash_build: the kill in the tree written once Nix is done
# (draft_tree false: deterministically the final build), then in the draft
# written while Nix still fetches: acme/tools links busybox and hello, and
# hello references busybox, so Nix copies hello only once busybox is valid,
# and the draft is written at that copy's line, before the build.
t_crash_build() {
	crash_build_case 1 false acme/cold "building the run environment"
	crash_build_case 2 true acme/tools "copying path" "!building the run environment"
}

# t_durable_build: nothing a crash of the node could leave half written is
# trusted after it (docs/design.md, "Durability"): the view and the tree are
# renamed into place and the record last, with no syncfs on the create's
# path; then another process syncs the store's and state_dir's file systems
# and only after that marks the record (synced: 1) in place.  The record
# names the boot that wrote it (a record of an earlier boot without the
# mark is rebuilt: tests/unit/test_environment.c).
t_durable_build() {
	local st=$TEST_TMPDIR/s9c cfg=$TEST_TMPDIR/config9c.json tr seq pid rec
	local store=$st/store state=$st/state
	write_config "$cfg" "$store" "$state" "$(nixcache_url main)"
	capture env FLOX_RUNC_CONFIG="$cfg" strace -f -o "$st.strace" -e trace=syncfs,rename,renameat,renameat2,execve,fsync,fdatasync,openat \
		"$FLOX_RUNC" prefetch acme/cold
	assert_rc 0 "prefetch"
	# the environment's key remembered (lib/environment.h, <state_dir>/keys),
	# not synced: a cold create does not wait for the disk for it
	assert_ne 0 "$(grep -c "openat(.*$state/keys/" "$st.strace")" "the key remembered"
	# (POSIX awk: match()'s third argument is gawk's; Debian's awk, mawk,
	# failed on it and the empty output passed)
	assert_empty "$(awk '/openat\(/ && / = [0-9]+$/ {fd = $NF; k[$1 " " fd] = ($0 ~ /\/keys\//)}
		/(fsync|fdatasync)\(/ {s = $0; sub(/^[^(]*\(/, "", s); if (k[$1 " " (s + 0)]) print}' "$st.strace")" "no fsync of a remembered key"
	# the hub cache's .capabilities and auth/ files are not synced (a torn
	# one is no v2 advertisement; only auth's mtime is read: docs/design.md,
	# "The hub cache's files"), its lockfile and live.json are
	assert_ne 0 "$(grep -c "openat(.*$state/hub/.*/\.\.capabilities\." "$st.strace")" "the capabilities kept"
	assert_ne 0 "$(grep -c "openat(.*$state/hub/.*/auth/\." "$st.strace")" "the credential check kept"
	hubsync() { # REGEX: the fsyncs of files opened under the hub cache whose path matches it
		# (an openat another traced call interrupted ends on its "resumed" line)
		awk -v re="$1" '/openat\(.*<unfinished/ {p[$1] = ($0 ~ re)}
			/openat\(/ && / = [0-9]+$/ {k[$1 " " $NF] = ($0 ~ re)}
			/<\.\.\. openat resumed>/ && / = [0-9]+$/ {k[$1 " " $NF] = p[$1]}
			/(fsync|fdatasync)\(/ {s = $0; sub(/^[^(]*\(/, "", s); if (k[$1 " " (s + 0)]) print}' "$st.strace"
	}
	assert_empty "$(hubsync '/hub/.*(/[.][.]capabilities[.]|/auth/)')" "no fsync of the hub's capabilities or the credential check"
	assert_ne "" "$(hubsync '/hub/.*/gen/[0-9]+/[.]manifest[.]lock[.]')" "the cached lockfile synced"
	# one nix-store, the realisation: the closure comes from Nix's database
	# (lib/store.h frc_store_closure_db), the same as nix-store -qR's
	# (an execve another traced call interrupts shows as "<unfinished ...>")
	assert_eq 1 "$(grep 'execve("[^"]*/nix-store"' "$st.strace" | grep -vc ' = -1')" "one nix-store process (trace: $(grep execve "$st.strace" | tr '\n' ' '))"
	rec=$(ls "$state"/envs/*.json)
	assert_eq "$(nix_store "$store" -qR $(jq -r '.pins[]' "$rec") | LC_ALL=C sort)" \
		"$(jq -r '.closure[]' "$rec" | LC_ALL=C sort)" "the recorded closure is nix-store -qR's"
	# (a call another process interrupted shows as "<unfinished ...>": kept)
	tr=$(grep -E 'syncfs\(|rename' "$st.strace" | grep -v -e resumed)
	pid=$(head -1 "$st.strace" | cut -d' ' -f1)
	# one letter per call: s = syncfs, v = the view's rename, t = the tree's,
	# r = the record's; S = a syncfs of the create's own process
	seq=$(awk -v pid="$pid" '/syncfs\(/ {printf ($1 == pid ? "S" : "s"); next}
		/\/views\/\.[0-9a-f]+\.[0-9]+"/ {printf "v"; next}
		/\/nix\/var\/flox-runc\/tmp\/[0-9a-f]+\.[0-9]+"/ {printf "t"; next}
		/\/envs\/\.[0-9a-f]+\.json\./ {printf "r"; next}' <<<"$tr")
	assert_eq "vtrss" "$seq" "view, tree, record renamed, then the two syncfs in another process (trace: $(tr '\n' ' ' <<<"$tr"))"
	assert_json "$rec" ".boot == \"$(cat /proc/sys/kernel/random/boot_id)\" and .synced == 1" \
		"the record names this boot and was marked synced after the syncfs"
	# where the file system keeps inode flags (ext4): the store and the
	# build and view parents spread their entries (chattr +T)
	if lsattr -d "$st" >/dev/null 2>&1; then
		for d in "$store/nix/store" "$store/nix/var/flox-runc/tmp" "$state/views"; do
			assert_contains "$(lsattr -d "$d" | cut -d' ' -f1)" T "$d is marked +T"
		done
	fi
}

# t_early_nix: a resolution fetching a generation the node never saw starts
# nix-store (--serve --write) beside the fetch, and the realisation hands it
# the paths, after a first query that sets its substituters up (lib/store.h
# frc_store_early_start; docs/performance.md, "Lever:
# cold start at 5 MiB (cold5)"); when the environment turns out to be on the
# node (its hub cache gone) that nix-store is killed and reaped.  A path in no
# cache still fails with Nix's own account (11a: nix-store --realise runs
# again for it).
t_early_nix() {
	local st=$TEST_TMPDIR/s9d cfg=$TEST_TMPDIR/config9d.json before
	local store=$st/store state=$st/state
	write_config "$cfg" "$store" "$state" "$(nixcache_url main)"
	before=$(wc -l <"$(nixcache_log main)")
	capture env FLOX_RUNC_CONFIG="$cfg" "$FLOX_RUNC" --debug --log "$st.log" prefetch acme/cold
	assert_rc 0 "cold prefetch"
	assert_contains "$(cat "$st.log")" "(started while FloxHub answered)" "the realisation took the nix-store started beside the fetch"
	# its substituters set up before the paths were known: the first
	# narinfo asked is the warm-up's, a path no cache has
	assert_contains "$(tail -n +"$((before + 1))" "$(nixcache_log main)" | grep -m1 '\.narinfo')" \
		"/00000000000000000000000000000000.narinfo" "the first narinfo asked"
	assert_contains "$CAP_OUT" "built now"
	rm -rf "$state/hub"
	: >"$st.log"
	capture env FLOX_RUNC_CONFIG="$cfg" "$FLOX_RUNC" --debug --log "$st.log" prefetch acme/cold
	assert_rc 0 "prefetch with the environment on the node and no hub cache"
	assert_contains "$CAP_OUT" "already on this node"
	assert_eq 1 "$(grep -c 'started before its paths are known' "$st.log")" "one nix-store started beside the fetch"
	assert_contains "$(cat "$st.log")" "is not needed: killed" "the unused nix-store"
	assert_not_contains "$(cat "$st.log")" "realising" "a realisation"
	assert_empty "$(pgrep -af -- "--store $store " || true)" "a nix-store left running"
}

# ------------------------------------------------------ 10. signatures

t_refused() {
	local variant=$1 st=$TEST_TMPDIR/s10-$1 cfg=$TEST_TMPDIR/config10-$1.json b=$TEST_TMPDIR/t10-$1
	local id=e2e-sig-$1 sha
	nixcache_serve "$variant" "$variant"
	write_config "$cfg" "$st/store" "$st/state" "$(nixcache_url "$variant")"
	export FLOX_RUNC_CONFIG=$cfg
	flox_bundle "$b" empty acme/cold hello
	sha=$(sha256_of "$b/config.json")
	cleanup_container "$RT_BIN" "$RROOT" "$id"
	capture fr --log "$b/log.json" --log-format json create --bundle "$b" --pid-file "$b/init.pid" "$id"
	check_failed_create "$b" "$id" "$sha" "$SIG_MSG" "$(nixcache_url "$variant")"
	assert_empty "$(lsfind "$st/store/nix/store" -mindepth 1 -maxdepth 1 -name '*-hello-*' -o -mindepth 1 -maxdepth 1 -name '*-busybox-*')" "paths realised from a refused cache"
	assert_eq 0 "$(nixcache_nar_gets "$variant")" "NARs fetched from a refused cache"
	assert_empty "$(lsfind "$st/state/envs" -name '*.json')" "environment records"
}

# ------------------------------------------------------ 11. missing, conflict

t_missing() {
	local b=$TEST_TMPDIR/t11m sha
	flox_bundle "$b" empty acme/ghost hello
	sha=$(sha256_of "$b/config.json")
	cleanup_container "$RT_BIN" "$RROOT" e2e-ghost
	capture fr --log "$b/log.json" --log-format json create --bundle "$b" --pid-file "$b/init.pid" e2e-ghost
	check_failed_create "$b" e2e-ghost "$sha" "$GHOST" "not available from any substituter" "$(nixcache_url main)"
}

t_conflict() {
	local b=$TEST_TMPDIR/t11c sha
	flox_bundle "$b" empty acme/conflict conflict
	sha=$(sha256_of "$b/config.json")
	cleanup_container "$RT_BIN" "$RROOT" e2e-conflict
	capture fr --log "$b/log.json" --log-format json create --bundle "$b" --pid-file "$b/init.pid" e2e-conflict
	check_failed_create "$b" e2e-conflict "$sha" conflict-a conflict-b bin/conflict
}

# ------------------------------------------------ 13. closure-only /nix

# uconnect PATH: connect(2) to a unix socket; prints CONNECTED or the error.
build_uconnect() {
	[[ -x "$TEST_TMPDIR/uconnect" ]] && return 0
	cc -static -O2 -o "$TEST_TMPDIR/uconnect" -x c - <<'CEOF'
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
int main(int argc, char **argv) {
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (argc < 2 || fd < 0) return 2;
	strncpy(a.sun_path, argv[1], sizeof(a.sun_path) - 1);
	if (connect(fd, (struct sockaddr *) &a, sizeof(a)) == 0) { puts("CONNECTED"); return 0; }
	printf("connect: %s\n", strerror(errno));
	return 1;
}
CEOF
}

t_projection() {
	local b=$TEST_TMPDIR/t13 sock devtool out fe own roots want got
	build_uconnect
	# another tenant's environment, and this pod's, on the node
	capture fr prefetch acme/tools
	assert_rc 0 "prefetch another tenant's environment"
	capture fr prefetch acme/hello
	assert_rc 0 "prefetch the pod's environment"
	devtool=$(nixcache_path devtool)
	[[ -d "$STORE$devtool" ]] || { diag "FAIL: devtool is not on the node"; return 1; }
	# a nix-daemon stand-in at the node's socket path
	sock=$STORE/nix/var/nix/daemon-socket/socket
	mkdir -p "${sock%/*}"
	rm -f "$sock"
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(16)
while True: s.accept()[0].close()' "$sock" &
	cleanup_pid $!
	wait_for test -S "$sock"
	assert_eq CONNECTED "$("$TEST_TMPDIR/uconnect" "$sock")" "the stand-in accepts on the node"
	# a writable mount below a store path on the node
	mount -t tmpfs -o mode=1777 tmpfs "$STORE$HELLO/bin"
	cleanup_mount "$STORE$HELLO/bin"
	touch "$STORE$HELLO/bin/node-probe" || { diag "FAIL: the nested mount is not writable on the node"; return 1; }

	flox_bundle "$b" busybox acme/hello sh -c "echo FLOX_ENV=\$FLOX_ENV; echo NIX=\$(ls -A /nix); echo VAR=\$(ls -A /nix/var);
		echo FRC=\$(ls -A /nix/var/flox-runc); echo ENVS=\$(ls -A /nix/var/flox-runc/envs); ls -A /nix/store | sed 's/^/S /';
		test -e /nix/var/nix && echo HAS-VAR-NIX; test -e $devtool && echo HAS-DEVTOOL;
		/bin/uconnect /nix/var/nix/daemon-socket/socket;
		touch $HELLO/bin/pod-probe && echo NESTED-WRITABLE; ls $HELLO/bin | sed 's/^/B /';
		grep ' $HELLO ' /proc/self/mountinfo | sed 's/^/M /'; grep \" \$FLOX_ENV \" /proc/self/mountinfo | sed 's/^/T /';
		grep ' /nix/store ' /proc/self/mountinfo | sed 's/^/P /'; touch /nix/store/probe 2>/dev/null && echo STORE-WRITABLE;
		grep ' /run/flox/env-cache ' /proc/self/mountinfo | sed 's/^/E /'; grep ' /run/flox/ca-bundle.crt ' /proc/self/mountinfo | sed 's/^/C /';
		touch /run/flox/env-cache/probe && echo CACHE-WRITABLE; head -c 10 /run/flox/ca-bundle.crt >/dev/null && echo CA-READABLE; hello"
	cp "$TEST_TMPDIR/uconnect" "$b/rootfs/bin/uconnect"
	run_fg e2e-proj "$b"
	out=$CAP_OUT
	umount "$STORE$HELLO/bin"
	assert_rc 0 "the pod runs"
	fe=$(env_value FLOX_ENV "$out")
	own=${fe##*/}
	assert_eq "store var" "$(env_value NIX "$out")" "/nix holds store and var only"
	assert_eq "flox-runc" "$(env_value VAR "$out")" "/nix/var holds flox-runc only"
	assert_eq "envs" "$(env_value FRC "$out")" "/nix/var/flox-runc holds envs only (no shared symlinks, no builds)"
	[[ -d "$STORE/nix/var/flox-runc/links" ]] || { diag "FAIL: no pool of shared symlinks on the node"; return 1; }
	assert_eq "$own" "$(env_value ENVS "$out")" "the pod sees its own environment only"
	assert_ne 1 "$(find "$STORE/nix/var/flox-runc/envs" -mindepth 1 -maxdepth 1 | wc -l)" "other environments are on the node"
	assert_not_contains "$out" "HAS-VAR-NIX" "/nix/var/nix absent"
	assert_not_contains "$out" "HAS-DEVTOOL" "another tenant's package absent"
	assert_not_contains "$out" "CONNECTED" "connect() to the daemon socket"
	assert_contains "$out" "connect: No such file or directory" "no daemon socket"
	assert_not_contains "$out" "NESTED-WRITABLE" "a nested mount below a store path is not writable"
	assert_contains "$out" "B hello" "the store path's own content shows, not the node's nested mount"
	assert_contains "$out" "Hello, world!" "hello runs"
	# /nix/store holds exactly the environment's closure
	roots=$(for l in "$STORE/nix/var/nix/gcroots/flox-runc/envs/$own"/*; do readlink "$l"; done)
	# shellcheck disable=SC2086 # one argument per root
	want=$(nix_store "$STORE" -qR $roots | sed 's|^/nix/store/||' | LC_ALL=C sort)
	got=$(sed -n 's/^S //p' <<<"$out" | LC_ALL=C sort)
	assert_ne "" "$want" "the environment's closure"
	assert_eq "$want" "$got" "/nix/store inside is the environment's closure"
	assert_json "$b/config.json" '[.mounts[] | select(.destination | startswith("/nix")) | .options | index("rbind")] | all(. == null)' "no recursive bind under /nix"
	assert_json "$b/config.json" '[.mounts[] | select(.destination | startswith("/nix")) | (.options | index("ro") != null and index("nosuid") != null and index("nodev") != null)] | all' "ro,nosuid,nodev"
	# the closure's binds are flox-runc's createContainer hook, the first one
	# (lib/bindhook.h): no spec mount per path, each bind read-only, nosuid,
	# nodev inside
	assert_json "$b/config.json" '.hooks.createContainer[0].args | index("bind-closure") != null' "the closure hook, first of createContainer"
	# run by the static flox-runc-hook beside flox-runc (cmd/flox-runc-hook:
	# no dynamic loader; built whenever musl-gcc is there, as under CI)
	local hookbin
	hookbin=$(dirname "$(readlink -f "$FLOX_RUNC")")/flox-runc-hook
	if [[ -e $hookbin || ${CI:-} == true ]]; then
		assert_json "$b/config.json" '.hooks.createContainer[0].path == "'"$hookbin"'" and .hooks.createContainer[0].args[0] == "'"$hookbin"'"' "the hook's program is flox-runc-hook"
		assert_eq 0 "$(readelf -lW "$hookbin" | grep -c 'INTERP\|DYNAMIC')" "flox-runc-hook is static"
	else
		assert_json "$b/config.json" '.hooks.createContainer[0].path == "'"$(readlink -f "$FLOX_RUNC")"'"' "without flox-runc-hook the hook is flox-runc"
	fi
	# the closure named by the view's store, not path by path: the runtime
	# parses the spec and hands it to its init as JSON
	assert_json "$b/config.json" '.hooks.createContainer[0].args | (index("--view-store") != null) and ([.[] | select(startswith("/nix/store/"))] | length == 0)' "the hook names the closure by the view, no store path in its arguments"
	assert_json "$b/config.json" '[.mounts[] | select(.destination | startswith("/nix/store/"))] | length == 0' "no spec mount per closure path"
	assert_contains "$(sed -n 's/^M //p' <<<"$out")" " ro,nosuid,nodev" "the store path's bind inside: ro,nosuid,nodev"
	# all of them in one recursive clone of the view's binds, pinned once
	# per boot in a mount namespace of flox-runc's (lib/viewpin.h): the
	# container's /nix/store is that clone's top, read-only
	assert_eq nsfs "$(stat -f -c %T "$STATE/viewns/$own")" "the view's pin on the node is a namespace file"
	assert_json "$b/config.json" '.hooks.createContainer[0].args | index("--view-pin") != null' "the hook names the pin"
	assert_contains "$(sed -n 's/^P //p' <<<"$out")" " ro,nosuid,nodev" "the container's /nix/store is the clone's top: ro,nosuid,nodev"
	assert_not_contains "$out" "STORE-WRITABLE" "/nix/store is read-only"
	# and its binds of the environment's tree, FLOX_ENV_CACHE and the node's
	# CA bundle (one runtime mount and remount fewer each), with the spec
	# mounts' flags
	assert_json "$b/config.json" '[.mounts[] | select(.destination == "'"$fe"'" or .destination == "/run/flox/env-cache" or .destination == "/run/flox/ca-bundle.crt")] | length == 0' "no spec mount of the tree, FLOX_ENV_CACHE or the CA bundle"
	assert_json "$b/config.json" '.hooks.createContainer[0].args | (index("'"$fe"'") != null) and (index("--bind-rw") != null)' "the hook binds the tree and FLOX_ENV_CACHE"
	assert_contains "$(sed -n 's/^T //p' <<<"$out")" " ro,nosuid,nodev" "the tree's bind inside: ro,nosuid,nodev"
	assert_contains "$(sed -n 's/^E //p' <<<"$out")" " rw,nosuid,nodev" "FLOX_ENV_CACHE inside: rw,nosuid,nodev"
	assert_contains "$out" "CACHE-WRITABLE" "FLOX_ENV_CACHE is writable"
	if [[ -r /etc/ssl/certs/ca-certificates.crt ]]; then # what node_ca_bundle finds on Debian
		assert_contains "$(sed -n 's/^C //p' <<<"$out")" " ro,nosuid,nodev" "the CA bundle's bind inside: ro,nosuid,nodev"
		assert_contains "$out" "CA-READABLE" "the CA bundle is readable"
	fi
	# an image whose /nix is a symlink: the runtime resolves it inside the
	# rootfs, the hook would follow none, so the spec binds each path
	local bl=$TEST_TMPDIR/t13l
	flox_bundle "$bl" busybox acme/hello sh -c "ls -A /nix/store | sed 's/^/S /'; touch $HELLO/x 2>&1; hello"
	mkdir -p "$bl/rootfs/opt/nix"
	ln -s opt/nix "$bl/rootfs/nix"
	run_fg e2e-proj-link "$bl"
	assert_rc 0 "a pod of an image with /nix a symlink runs"
	assert_contains "$CAP_OUT" "Hello, world!" "hello runs through the image's /nix symlink"
	assert_contains "$CAP_OUT" "Read-only file system" "its closure paths are read-only"
	assert_eq "$got" "$(sed -n 's/^S //p' <<<"$CAP_OUT" | LC_ALL=C sort)" "its /nix/store is the closure"
	assert_json "$bl/config.json" '(.hooks.createContainer // []) | map(.args | index("bind-closure")) | all(. == null)' "no closure hook"
	assert_json "$bl/config.json" '[.mounts[] | select(.destination | startswith("/nix/store/"))] | length > 0' "one spec mount per closure path"
	# an image whose /run is an absolute symlink out of its rootfs: the hook
	# still binds the closure, FLOX_ENV_CACHE and the CA bundle go by spec
	# mounts, which the runtime resolves inside the rootfs; the node's
	# directory the symlink names gets nothing
	local br=$TEST_TMPDIR/t13r host=$TEST_TMPDIR/t13r-host
	flox_bundle "$br" busybox acme/hello sh -c "touch /run/flox/env-cache/probe && echo CACHE-WRITABLE; hello"
	mkdir -p "$host" "$br/rootfs$host" # (crun makes no directory through a dangling symlink)
	rm -rf "$br/rootfs/run"
	ln -s "$host" "$br/rootfs/run"
	run_fg e2e-proj-runlink "$br"
	assert_rc 0 "a pod of an image with /run an absolute symlink runs"
	assert_contains "$CAP_OUT" "CACHE-WRITABLE" "its FLOX_ENV_CACHE is writable"
	assert_eq "" "$(ls -A "$host")" "nothing made in the node's directory the image's /run names"
	assert_json "$br/config.json" '.hooks.createContainer[0].args | (index("bind-closure") != null) and (index("--bind-rw") == null)' "the hook binds the closure, not FLOX_ENV_CACHE"
	assert_json "$br/config.json" '[.mounts[] | select(.destination == "/run/flox/env-cache")] | length == 1' "FLOX_ENV_CACHE by a spec mount"
	# a spec with a writable tmpfs at /run (ctr's, Docker's and Podman's
	# defaults): no /run/flox tmpfs of flox-runc's, and the hook makes the
	# FLOX_ENV_CACHE and CA bundle binds in that tmpfs (two runtime binds and
	# remounts fewer); a read-only /run tmpfs leaves them to spec mounts
	local bt=$TEST_TMPDIR/t13t btr=$TEST_TMPDIR/t13tr
	flox_bundle "$bt" busybox acme/hello sh -c "grep ' /run/flox/env-cache ' /proc/self/mountinfo | sed 's/^/E /';
		grep ' /run/flox/ca-bundle.crt ' /proc/self/mountinfo | sed 's/^/C /'; grep ' /run ' /proc/self/mountinfo | sed 's/^/R /';
		touch /run/flox/env-cache/probe && echo CACHE-WRITABLE; head -c 10 /run/flox/ca-bundle.crt >/dev/null && echo CA-READABLE; hello"
	rm -rf "$bt/rootfs/run"
	bundle_jq "$bt" '.mounts += [{destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]}]'
	run_fg e2e-proj-runtmpfs "$bt"
	assert_rc 0 "a pod whose spec mounts a tmpfs at /run runs"
	assert_contains "$CAP_OUT" "Hello, world!" "hello runs"
	assert_contains "$CAP_OUT" "CACHE-WRITABLE" "its FLOX_ENV_CACHE is writable"
	assert_contains "$(sed -n 's/^E //p' <<<"$CAP_OUT")" " rw,nosuid,nodev" "FLOX_ENV_CACHE inside: rw,nosuid,nodev"
	assert_contains "$(sed -n 's/^R //p' <<<"$CAP_OUT")" " - tmpfs " "/run is the spec's tmpfs"
	assert_json "$bt/config.json" '[.mounts[] | select(.destination | startswith("/run/flox"))] | length == 0' "no /run/flox tmpfs, no spec mount of FLOX_ENV_CACHE or the CA bundle"
	assert_json "$bt/config.json" '.hooks.createContainer[0].args | (index("--bind-rw") != null)' "the hook binds FLOX_ENV_CACHE"
	if [[ -r /etc/ssl/certs/ca-certificates.crt ]]; then
		assert_contains "$(sed -n 's/^C //p' <<<"$CAP_OUT")" " ro,nosuid,nodev" "the CA bundle's bind inside: ro,nosuid,nodev"
		assert_contains "$CAP_OUT" "CA-READABLE" "the CA bundle is readable"
	fi
	flox_bundle "$btr" busybox acme/hello hello
	bundle_jq "$btr" '.mounts += [{destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "ro", "mode=755"]}]'
	run_fg e2e-proj-runtmpfs-ro "$btr" # (the spec, as saved before the runtime runs, is what counts)
	assert_json "$btr/config.json" '[.mounts[] | select(.destination == "/run/flox/env-cache")] | length == 1' "FLOX_ENV_CACHE by a spec mount under a read-only /run"
	# a closure smaller than closure_hook_min_paths: spec mounts (running a
	# hook costs runc more than binding a few paths)
	local bs=$TEST_TMPDIR/t13s cfgs=$TEST_TMPDIR/config13s.json
	write_config "$cfgs" "$STORE" "$STATE" "$(nixcache_url main)" closure_hook_min_paths=1000
	flox_bundle "$bs" busybox acme/hello sh -c "ls -A /nix/store | sed 's/^/S /'; touch $HELLO/x 2>&1; hello"
	FLOX_RUNC_CONFIG=$cfgs run_fg e2e-proj-small "$bs"
	assert_rc 0 "a pod whose closure is under closure_hook_min_paths runs"
	assert_contains "$CAP_OUT" "Hello, world!" "hello runs with spec mounts"
	assert_contains "$CAP_OUT" "Read-only file system" "its closure paths are read-only"
	assert_eq "$got" "$(sed -n 's/^S //p' <<<"$CAP_OUT" | LC_ALL=C sort)" "its /nix/store is the closure"
	assert_json "$bs/config.json" '(.hooks.createContainer // []) | map(.args | index("bind-closure")) | all(. == null)' "no closure hook under the threshold"
	assert_json "$bs/config.json" '[.mounts[] | select(.destination | startswith("/nix/store/"))] | length > 0' "one spec mount per closure path under the threshold"

	# an environment recorded before closure-only /nix (no closure, no
	# view): the next create adds them, without rebuilding the tree that
	# running containers may use
	local rec=$STATE/envs/$own.json ino b2=$TEST_TMPDIR/t13b
	jq 'del(.closure)' "$rec" >"$rec.new" && mv "$rec.new" "$rec"
	rm -rf "$STATE/views/$own"
	ino=$(stat -c %i "$STORE/nix/var/flox-runc/envs/$own")
	flox_bundle "$b2" empty acme/hello hello
	run_fg e2e-proj-up "$b2"
	assert_rc 0 "a create on an environment recorded without its closure"
	assert_eq "Hello, world!" "$CAP_OUT" "hello runs"
	assert_json "$rec" '(.closure | length) > 1' "the record has the closure again"
	assert_eq "$ino" "$(stat -c %i "$STORE/nix/var/flox-runc/envs/$own")" "the tree was not rebuilt"
	[[ -d "$STATE/views/$own/store" ]] || { diag "FAIL: no view"; return 1; }
}

# ------------------------------------- 13b. closure in a user namespace

# t_projection_rshared: a pod whose rootfs propagation is rshared (what
# containerd sets for a Bidirectional volume): the closure's binds, made
# inside the container below /nix, never propagate onto the node's view or
# store, with the pin and path by path.
t_projection_rshared() {
	local b=$TEST_TMPDIR/t13d cfg=$TEST_TMPDIR/config13d.json pin
	# the node's state and store in shared mounts, as on a systemd node
	# (its / is shared; this test's namespace is private)
	mkdir -p "$STATE" "$STORE"
	mount --bind "$STATE" "$STATE" && cleanup_mount "$STATE"
	mount --make-shared "$STATE"
	mount --bind "$STORE" "$STORE" && cleanup_mount "$STORE"
	mount --make-shared "$STORE"
	for pin in true false; do
		write_config "$cfg" "$STORE" "$STATE" "$(nixcache_url main)" pin_views="$pin"
		flox_bundle "$b" busybox acme/hello sh -c "grep -c ' /nix/store/' /proc/self/mountinfo; hello"
		bundle_jq "$b" '.linux.rootfsPropagation = "rshared"'
		FLOX_RUNC_CONFIG=$cfg run_fg e2e-rshared "$b"
		assert_rc 0 "pin_views=$pin: the pod runs"
		assert_contains "$CAP_OUT" "Hello, world!" "pin_views=$pin: hello runs"
		assert_empty "$(awk -v v="$STATE/views/" -v s="$STORE/nix/store/" 'index($5, v) == 1 || index($5, s) == 1 {print $5}' /proc/self/mountinfo)" \
			"pin_views=$pin: no mount of the container's on the node's view or store"
	done
	umount -l "$STORE" && umount -l "$STATE"
}


# A pod in a user namespace (linux.uidMappings, Kubernetes hostUsers:
# false): its runtime makes the spec's mounts from sources it opens on the
# node, while a createContainer hook runs as the namespace's root, which
# cannot read the node's private flox-runc state (the view) nor a private
# store prefix: the closure is then bound by spec mounts, read-only.
t_projection_userns() {
	local b=$TEST_TMPDIR/t13u mode state=$TEST_TMPDIR/state13u cfg=$TEST_TMPDIR/config13u.json
	# a state of its own: no pin of this environment's view made before
	write_config "$cfg" "$STORE" "$state" "$(nixcache_url main)"
	# the namespace's root reaches the bundle (as with containerd's bundles)
	mode=$(stat -c %a "$TEST_TMPDIR")
	chmod 0711 "$TEST_TMPDIR"
	flox_bundle "$b" busybox acme/hello sh -c "grep ' $HELLO ' /proc/self/mountinfo | sed 's/^/M /'; touch $HELLO/x 2>&1; id -u; hello"
	chown -R 100000:100000 "$b/rootfs" # the image's files are the namespace's, as containerd does
	bundle_jq "$b" '.linux.namespaces += [{type: "user"}]
		| .linux.uidMappings = [{containerID: 0, hostID: 100000, size: 65536}]
		| .linux.gidMappings = [{containerID: 0, hostID: 100000, size: 65536}]'
	FLOX_RUNC_CONFIG=$cfg run_fg e2e-proj-userns "$b"
	chmod "$mode" "$TEST_TMPDIR"
	assert_rc 0 "a pod in a user namespace runs (log: $(cat "$b/log.json" 2>/dev/null))"
	assert_contains "$CAP_OUT" "Hello, world!" "hello runs"
	assert_contains "$CAP_OUT" "Read-only file system" "its closure paths are read-only"
	assert_contains "$(sed -n 's/^M //p' <<<"$CAP_OUT")" " ro,nosuid,nodev" "the store path's bind inside: ro,nosuid,nodev"
	assert_json "$b/config.json" '(.hooks.createContainer // []) | map(.args | index("bind-closure")) | all(. == null)' "no closure hook in a user namespace"
	# and so no pin of the view (lib/viewpin.h), which only the hook uses
	assert_empty "$(lsfind "$state/viewns" -mindepth 1)" "no pin made for a pod without the hook"
}

# ------------------------------------- 13c. a failing closure hook

# The hook's cause reaches the runtime's --log as flox-runc's own error line
# (crun 1.8.1 sends a hook's stderr to /dev/null and logs only "error
# executing hook"): a spec whose /nix is not the view the hook was given
# (here: its NIX_SOURCE argument changed to another directory) fails, and
# the log names why.
t_hook_failure() {
	local b=$TEST_TMPDIR/t13c
	flox_bundle "$b" busybox acme/hello hello
	cleanup_add "$FLOX_RUNC" --root "$RROOT" delete --force e2e-hookfail
	capture fr --log "$b/log.json" --log-format json create --bundle "$b" e2e-hookfail
	assert_rc 0 "the create"
	# the runtime's container goes, flox-runc's state for it stays
	rt delete --force e2e-hookfail
	assert_json "$b/config.json" '.hooks.createContainer[0].args | index("bind-closure") != null' "the closure hook"
	# the runtime alone, on the spec flox-runc wrote, with the hook's
	# NIX_SOURCE (the argument after ROOT) pointed elsewhere
	bundle_jq "$b" '.hooks.createContainer[0].args |= (index("bind-closure") as $v | .[$v + 2] = "/tmp")'
	: >"$b/log.json"
	cleanup_container "$RT_BIN" "$RROOT" e2e-hookfail2
	capture "$RT_BIN" --root "$RROOT" --log "$b/log.json" --log-format json run --bundle "$b" e2e-hookfail2
	assert_ne 0 "$CAP_RC" "the create fails"
	assert_eq 1 "$(jq -c 'select(.level == "error" and (.msg | startswith("flox-runc: ")))' "$b/log.json" | grep -c "is not \`/tmp\`")" \
		"one flox-runc error line in the runtime's log names the cause (log: $(cat "$b/log.json"))"
	fr delete --force e2e-hookfail
	# conmon's way (CRI-O, podman): no --log, the user reads the runtime's
	# stderr; crun hands the hook the stderr its run.oci.hooks.stderr
	# annotation names (runc puts the hook's stderr in its own error)
	rt delete --force e2e-hookfail2 >/dev/null 2>&1
	cleanup_add "$FLOX_RUNC" --root "$RROOT" delete --force e2e-hookfail3
	bundle_jq "$b" 'del(.hooks)'
	# stderr a pipe, as conmon's
	# (the container's init keeps its stdio: nothing waits for the pipe's end)
	local rc=0
	fr create --bundle "$b" e2e-hookfail3 >/dev/null 2> >(cat >"$b/create.err") || rc=$?
	assert_eq 0 "$rc" "the create without --log"
	assert_json "$b/config.json" '.annotations["run.oci.hooks.stderr"] == "/proc/self/fd/2"' "crun hands the hooks its stderr"
	rt delete --force e2e-hookfail3
	bundle_jq "$b" '.hooks.createContainer[0].args |= (index("bind-closure") as $v | .[$v + 2] = "/tmp")'
	cleanup_container "$RT_BIN" "$RROOT" e2e-hookfail4
	# stderr a pipe, as conmon's
	# (the failure taken by `|| rc=$?`: a bare one fired the ERR trap's diag)
	CAP_ERR=$({ rc=0; "$RT_BIN" --root "$RROOT" run --bundle "$b" e2e-hookfail4 2>&1 >/dev/null || rc=$?; echo "rc=$rc"; } | cat)
	assert_not_contains "$CAP_ERR" "rc=0" "the create fails"
	assert_contains "$CAP_ERR" "flox-runc: the container's /nix is not \`/tmp\`" "the runtime's stderr names the cause"
	fr delete --force e2e-hookfail3
}

# ---------------------------------------- 14. private on the node

as_nobody() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }

t_private() {
	local b=$TEST_TMPDIR/t14 b2=$TEST_TMPDIR/t14b f readable="" n=0 bb
	# node users can reach the test's directories (mktemp made them 0700)
	chmod 0755 "$TEST_TMPDIR"
	# the pod runs as uid 65534 and reads its own environment (vars, envrc)
	flox_bundle "$b" empty acme/hooked sh -c 'echo "GREETING=$GREETING"; cat "$FLOX_ENV/activate.d/envrc" >/dev/null && echo envrc-readable; id -u'
	bundle_jq "$b" '.process.user = {uid: 65534, gid: 65534}'
	run_fg e2e-priv "$b"
	assert_rc 0 "a container running as uid 65534"
	assert_contains "$CAP_OUT" "GREETING=from-manifest" "the manifest's vars"
	assert_contains "$CAP_OUT" "envrc-readable" "its own envrc, read inside"
	assert_contains "$CAP_OUT" $'\n65534' "as uid 65534"
	# a live container, so its record and GC root exist
	flox_bundle "$b2" busybox acme/hooked sleep 300
	create_ok e2e-priv2 "$b2"
	bb=$(nixcache_path busybox)
	as_nobody cat "$STORE$bb/bin/busybox" >/dev/null || { diag "FAIL: control: uid 65534 cannot read the store"; return 1; }
	while IFS= read -r f; do
		n=$((n + 1))
		if as_nobody cat "$f" >/dev/null 2>&1; then readable="$readable $f"; fi
	done < <(find "$STATE" "$STORE/nix/var/flox-runc" "$STORE/nix/var/nix/gcroots/flox-runc" -type f)
	((n > 10)) || { diag "FAIL: only $n files to check"; return 1; }
	assert_empty "$readable" "files a node user can read"
	assert_contains "$(find "$STORE/nix/var/flox-runc" -name envrc -exec grep -l from-manifest {} +)" envrc "an envrc with the vars is on the node"
	capture as_nobody ls "$STATE" "$STORE/nix/var/flox-runc" "$STORE/nix/var/nix/gcroots/flox-runc"
	assert_fail "a node user lists flox-runc's directories"
	capture fr delete --force e2e-priv2
	assert_rc 0 "delete"
}

# ------------------------------------------------------- 15. release

# the options of the mount at $1: per-mount and super-block options
mount_opts() { awk -v m="$1" '$5 == m { for (i = 7; $i != "-"; i++); print $6 "," $(i + 3) }' /proc/self/mountinfo; }

t_release() {
	local cfg=$TEST_TMPDIR/config15.json b=$TEST_TMPDIR/t15 id=e2e-deep rec overlay opts
	write_config "$cfg" "$STORE" "$STATE" "$(nixcache_url main)" nix_mutable_max_bytes=8388608
	export FLOX_RUNC_CONFIG=$cfg
	flox_bundle "$b" busybox acme/hello sh -c 'cd /nix/store && i=0; while [ $i -lt 400 ]; do mkdir d && cd d || exit 1; i=$((i + 1)); done; echo nested; dd if=/dev/zero of=/nix/big bs=1M count=16 2>&1; sleep 300'
	bundle_annotate "$b" flox.dev/nix-mutable true
	create_ok "$id" "$b"
	capture fr start "$id"
	assert_rc 0 "start"
	WAIT_TIMEOUT=20 wait_for grep -q "No space left\|records out" "$CREATE_OUT"
	assert_contains "$(cat "$CREATE_OUT")" "nested" "400 nested directories made"
	assert_contains "$(cat "$CREATE_OUT")" "No space left on device" "the writable layer is bounded by nix_mutable_max_bytes"
	rec=$(record_of "$id")
	overlay=$(jq -r .overlay "$rec")
	opts=$(mount_opts "$overlay")
	assert_contains "$opts" nosuid "the writable layer is nosuid"
	assert_contains "$opts" nodev "the writable layer is nodev"
	assert_contains "$opts" "size=8192k" "its size"
	capture fr kill "$id" 9
	wait_for status_is "$id" stopped
	delete_twice "$id"
	check_no_container "$id"
	[[ ! -e "$overlay" ]] || { diag "FAIL: $overlay left"; return 1; }
	export FLOX_RUNC_CONFIG=$CFG

	# gc: temporary files of killed writes, deep leftovers, one that cannot go
	local st=$TEST_TMPDIR/s15 cfg2=$TEST_TMPDIR/config15b.json old p
	write_config "$cfg2" "$st/store" "$st/state" "$(nixcache_url main)"
	mkdir -p "$st/state/envs" "$st/state/containers/0123456789abcdef" "$st/state/overlays/stuck/x" \
		"$st/store/nix/var/flox-runc/tmp/k.1"
	: >"$st/state/envs/.0123abcd.json.AbC123"
	: >"$st/state/containers/0123456789abcdef/.some-id.json.XyZ789"
	mkdir -p "$st/state/hub/h/acme/x/gen/1" "$st/state/views/.0123abcd.4242/store"
	: >"$st/state/hub/h/acme/x/gen/1/.manifest.lock.QwErT1"
	: >"$st/state/hub/h/acme/x/.lock" # a lock file stays
	p=$st/state/overlays/deep
	mkdir -p "$p"
	(cd "$p" && for ((i = 0; i < 400; i++)); do mkdir d && cd d || exit 1; done)
	(cd "$st/store/nix/var/flox-runc/tmp/k.1" && for ((i = 0; i < 400; i++)); do mkdir d && cd d || exit 1; done)
	mount -t tmpfs tmpfs "$st/state/overlays/stuck/x"
	cleanup_mount "$st/state/overlays/stuck/x"
	old=$(date -d '-1 day' '+%Y-%m-%d %H:%M:%S')
	find "$st" -maxdepth 10 -exec touch -h -d "$old" {} +
	capture env FLOX_RUNC_CONFIG="$cfg2" "$FLOX_RUNC" gc --max-age 0
	assert_fail "gc names what it could not remove"
	assert_contains "$CAP_ERR" "overlays/stuck" "the failure is named"
	assert_contains "$CAP_OUT" "removed " "the summary is printed"
	assert_empty "$(lsfind "$st/state/envs" "$st/state/containers" -name '.*.json.*')" "temporary files after gc"
	assert_empty "$(lsfind "$st/state/hub" -name '.manifest.lock.*')" "temporary files of the hub cache after gc"
	assert_empty "$(lsfind "$st/state/views" -mindepth 1)" "a view a killed build left"
	[[ -e "$st/state/hub/h/acme/x/.lock" ]] || { diag "FAIL: gc removed a lock file"; return 1; }
	[[ ! -e "$p" ]] || { diag "FAIL: the deep orphaned overlay is left"; return 1; }
	assert_empty "$(lsfind "$st/store/nix/var/flox-runc/tmp" -mindepth 1)" "the deep build leftover"
	[[ -d "$st/state/overlays/stuck/x" ]] || { diag "FAIL: gc removed a mount point"; return 1; }
	umount "$st/state/overlays/stuck/x"
}

# ------------------------------------------- 16. rootfs look-ups

t_rootfs_lookup() {
	local b=$TEST_TMPDIR/t16 b2=$TEST_TMPDIR/t16b host=$TEST_TMPDIR/host16 sha
	mkdir -p "$host/bin" "$host/run/flox"
	printf '#!/bin/sh\necho node-only\n' >"$host/bin/nodeonly"
	chmod 0755 "$host/bin/nodeonly"
	# a PATH directory of the image that links to a node directory
	flox_bundle "$b" busybox acme/hello nodeonly
	ln -s "$host/bin" "$b/rootfs/hostbin"
	bundle_jq "$b" '.process.env = ["PATH=/bin:/hostbin"]'
	sha=$(sha256_of "$b/config.json")
	cleanup_container "$RT_BIN" "$RROOT" e2e-look
	capture fr --log "$b/log.json" --log-format json create --bundle "$b" --pid-file "$b/init.pid" e2e-look
	check_failed_create "$b" e2e-look "$sha" 'command "nodeonly" is in neither the environment'
	# /run of the image links to a node directory that has flox/
	flox_bundle "$b2" busybox acme/hello hello
	rm -rf "$b2/rootfs/run"
	ln -s "$host/run" "$b2/rootfs/run"
	mkdir -p "$b2/rootfs$host/run" # where the link leads inside the rootfs: no flox/ there
	create_ok e2e-look2 "$b2"
	assert_json "$b2/config.json" '[.mounts[] | select(.destination == "/run/flox")] | length == 1' "/run/flox is mounted: the node's run/flox does not count"
	[[ -z "$(ls -A "$host/run/flox")" ]] || { diag "FAIL: something was written to the node directory"; return 1; }
	capture fr delete --force e2e-look2
	assert_rc 0 "delete"
}

# ------------------------------------------------------ 17. Nix's own error

t_cache_500() {
	local st=$TEST_TMPDIR/s13 cfg=$TEST_TMPDIR/config13.json b=$TEST_TMPDIR/t13 id=e2e-500 sha url
	nixcache_serve c13 signed
	url=$(nixcache_url c13)
	write_config "$cfg" "$st/store" "$st/state" "$url"
	export FLOX_RUNC_CONFIG=$cfg
	flox_bundle "$b" empty acme/cold hello
	sha=$(sha256_of "$b/config.json")
	cleanup_container "$RT_BIN" "$RROOT" "$id"
	# the whole cache fails: Nix skips it with a warning, then "don't know
	# how to build"; the message must not claim the path is missing
	nixcache_fault c13 '{"status": 500}'
	capture fr --log "$b/log.json" --log-format json create --bundle "$b" --pid-file "$b/init.pid" "$id"
	check_failed_create "$b" "$id" "$sha" \
		"error: unable to download '$url/nix-cache-info': HTTP error 500" "a substituter failed"
	assert_not_contains "$CAP_ERR" "not available from any substituter" "a failing cache is not a missing path"
	# the NARs fail: Nix's error line, not only "build of ... failed"
	rm -f "$b/log.json"
	nixcache_fault c13 '{"status": 500, "only_paths_matching": "^/nar/"}'
	capture fr --log "$b/log.json" --log-format json create --bundle "$b" --pid-file "$b/init.pid" "$id"
	check_failed_create "$b" "$id" "$sha" "error: unable to download '$url/nar/" "HTTP error 500"
	nixcache_fault c13 '{}'
}

# ------------------------------------------------------ 18. descriptors

# fds_to PID FILE: the descriptors of PID open on FILE
fds_to() {
	local f
	for f in /proc/"$1"/fd/*; do
		[[ "$(readlink "$f" 2>/dev/null)" != "$2" ]] || printf '%s\n' "${f##*/}"
	done
}

t_helper_fds() {
	local st=$TEST_TMPDIR/s14 cfg=$TEST_TMPDIR/config14.json b=$TEST_TMPDIR/t14 id=e2e-fds
	local marker=$TEST_TMPDIR/fd-marker pid ns rtpid rc=0
	printf 'preserved-fd-content\n' >"$marker"
	nixcache_serve c14 signed
	write_config "$cfg" "$st/store" "$st/state" "$(nixcache_url c14)"
	export FLOX_RUNC_CONFIG=$cfg
	flox_bundle "$b" empty acme/cold hello
	cleanup_container "$RT_BIN" "$RROOT" "$id"
	# nix-store, stalled on the NARs
	nixcache_fault c14 '{"delay_ms": 2000, "only_paths_matching": "^/nar/"}'
	(
		exec 1500<"$marker"
		exec "$FLOX_RUNC" --root "$RROOT" --log "$b/log.json" --log-format json \
			create --bundle "$b" --pid-file "$b/init.pid" "$id"
	) >"$st.out" 2>"$st.err" &
	pid=$!
	cleanup_add kill -9 "$pid" # (cleanup_pid disowns it: no wait)
	WAIT_TIMEOUT=20 wait_for nix_store_alive "$st/store"
	ns=$(nix_store_pids "$st/store" | head -n1)
	assert_empty "$(fds_to "$ns" "$marker")" "descriptors of nix-store on the caller's fd 1500"
	nixcache_fault c14 '{}'
	wait "$pid" || rc=$?
	assert_eq 0 "$rc" "the create with fd 1500 open: $(cat "$st.err")"
	delete_twice "$id"

	# the runtime child of a foreground run
	local bb=$TEST_TMPDIR/t14b
	flox_bundle "$bb" busybox acme/hello sh -c 'echo up; while :; do sleep 0.1; done'
	cleanup_container "$RT_BIN" "$RROOT" e2e-fds-run
	export FLOX_RUNC_CONFIG=$CFG
	(
		exec 1500<"$marker"
		exec "$FLOX_RUNC" --root "$RROOT" run --bundle "$bb" e2e-fds-run
	) >"$st.run.out" 2>&1 &
	pid=$!
	cleanup_add kill -9 "$pid" # (cleanup_pid disowns it: no wait)
	WAIT_TIMEOUT=20 wait_for grep -q up "$st.run.out"
	rtpid=$(pgrep -P "$pid" | head -n1)
	[[ -n $rtpid ]] || { diag "no runtime child of flox-runc run"; return 1; }
	assert_ne "" "$(fds_to "$pid" "$marker")" "flox-runc itself holds fd 1500 (the test sees it)"
	assert_empty "$(fds_to "$rtpid" "$marker")" "descriptors of the runtime child on the caller's fd 1500"
	rt kill e2e-fds-run KILL
	wait "$pid" || true
	check_no_container e2e-fds-run

	# --preserve-fds 1: fd 3 still reaches the container
	local bp=$TEST_TMPDIR/t14p
	flox_bundle "$bp" busybox acme/hello sh -c 'cat <&3'
	cleanup_container "$RT_BIN" "$RROOT" e2e-fds-keep
	(
		exec 3<"$marker"
		exec "$FLOX_RUNC" --root "$RROOT" run --preserve-fds 1 --bundle "$bp" e2e-fds-keep
	) >"$st.keep.out" 2>"$st.keep.err" || { diag "run --preserve-fds failed: $(cat "$st.keep.err")"; return 1; }
	assert_eq "preserved-fd-content" "$(cat "$st.keep.out")" "fd 3 in the container (--preserve-fds 1)"
	check_no_container e2e-fds-keep

	# the runtime children of delete and gc (`state`), seen by a wrapper
	# that records which of its descriptors lead to the marker
	local wrap=$TEST_TMPDIR/rt-wrap.sh wlog=$TEST_TMPDIR/rt-wrap.log cfgw=$TEST_TMPDIR/config14w.json bw=$TEST_TMPDIR/t14w
	printf '#!/bin/sh\nfor f in /proc/$$/fd/*; do printf "%%s %%s\\n" "$*" "$(readlink "$f")"; done >>%s\nexec %s "$@"\n' \
		"$wlog" "$RT_BIN" >"$wrap"
	chmod 0755 "$wrap"
	: >"$wlog"
	jq --arg w "$wrap" '.runtime = $w' "$CFG" >"$cfgw"
	export FLOX_RUNC_CONFIG=$cfgw
	flox_bundle "$bw" empty acme/hello hello
	create_ok e2e-fds-gc "$bw"
	# past gc's grace period, so that gc asks the runtime
	find "$STATE/containers" -exec touch -h -d "$(date -d '-1 day' '+%Y-%m-%d %H:%M:%S')" {} +
	(
		exec 1500<"$marker"
		"$FLOX_RUNC" --root "$RROOT" gc --max-age 0 >/dev/null
		"$FLOX_RUNC" --root "$RROOT" delete --force e2e-fds-gc
	) || { diag "gc or delete with fd 1500 open failed"; return 1; }
	assert_contains "$(cat "$wlog")" " state e2e-fds-gc" "gc asked the runtime about the container"
	assert_contains "$(cat "$wlog")" " delete --force" "delete ran the runtime"
	assert_empty "$(grep -F "$marker" "$wlog" || true)" "runtime children of gc and delete holding the caller's fd 1500"
	export FLOX_RUNC_CONFIG=$CFG
	check_no_container e2e-fds-gc
}

# ------------------------------------------------------ 19. token file

t_token_special() {
	local b=$TEST_TMPDIR/t19 vol=$TEST_TMPDIR/t19-secret sha kind t0
	for kind in fifo null nodriver; do
		rm -rf "$vol"
		mkdir -p "$vol"
		case $kind in
		fifo) mkfifo "$vol/floxhub-token" ;;
		null) mknod "$vol/floxhub-token" c 1 3 ;;
		nodriver) mknod "$vol/floxhub-token" c 4095 0 ;;
		esac
		flox_bundle "$b" empty acme/hello hello
		bundle_jq "$b" '.mounts += [{destination: "/var/run/secrets/flox.dev", type: "bind",
			source: $v, options: ["rbind", "ro"]}]' --arg v "$vol"
		sha=$(sha256_of "$b/config.json")
		rm -f "$b/log.json"
		cleanup_container "$RT_BIN" "$RROOT" e2e-tok
		t0=$SECONDS
		capture timeout 20 "$FLOX_RUNC" --root "$RROOT" --log "$b/log.json" --log-format json \
			create --bundle "$b" --pid-file "$b/init.pid" e2e-tok
		[[ $CAP_RC -ne 124 ]] || { diag "FAIL: the create blocked on the $kind"; return 1; }
		[[ $((SECONDS - t0)) -le 5 ]] || { diag "FAIL: the create took $((SECONDS - t0)) s"; return 1; }
		if [[ $kind == fifo ]]; then
			check_failed_create "$b" e2e-tok "$sha" "the floxhub-token in \`$vol\` is not a regular file (it is a FIFO)"
		else
			check_failed_create "$b" e2e-tok "$sha" "the floxhub-token in \`$vol\` is not a regular file (it is a character device)"
		fi
	done
}

# ------------------------------------------------------------ 12. leftovers

t_nothing_left() {
	# the pod sandbox of 6's containers: its delete takes their FLOX_ENV_CACHE
	assert_ne "" "$(lsfind "$STATE/env-cache/sandbox/sb-$TEST_ID" -mindepth 2 -maxdepth 2)" "the pod's FLOX_ENV_CACHE before its sandbox is deleted"
	capture fr delete "sb-$TEST_ID"
	assert_empty "$(lsfind "$STATE/env-cache" -mindepth 2 -maxdepth 2)" "FLOX_ENV_CACHE directories"
	assert_empty "$(lsfind "$STATE/containers" -name '*.json')" "container records"
	assert_empty "$(lsfind "$STORE/nix/var/nix/gcroots/flox-runc/containers" -mindepth 1)" "container GC roots"
	assert_empty "$(lsfind "$STATE/overlays" -mindepth 1)" "overlay directories"
	assert_empty "$(awk '$9 == "overlay" {print $5}' /proc/self/mountinfo | grep -F "$TEST_TMPDIR" || true)" "overlay mounts"
	assert_empty "$(rt list -q 2>/dev/null)" "containers in $RT_NAME"
	assert_empty "$(tmp_leftovers)" "temporary build directories"
}

# ------------------------------------------------------------------- main

# t_timed NAME FUNC...: tap_test with the elapsed time in a diagnostic.
# E2E_ONLY=REGEX (matched against NAME) runs a subset, for debugging.
t_timed() {
	local t=$SECONDS
	if [[ -n "${E2E_ONLY:-}" && ! "$1" =~ ${E2E_ONLY} ]]; then
		tap_skip "$1" "not selected by E2E_ONLY"
		return 0
	fi
	tap_test "$@"
	diag "  ($((SECONDS - t)) s)"
}

t_timed "1a. hello runs in an EMPTY rootfs; run prints only its output; create writes no stdout" t_empty_rootfs
t_timed "1b. on a busybox image: the image's sh finds the environment's hello" t_busybox_image
t_timed "1c. a second create of a live id leaves it alone; a stale record is released" t_id_reuse
t_timed "1c2. a runtime that cannot tell whether a container exists keeps its GC root (delete, create, gc)" t_exists_unknown
t_timed "1d. SIGTERM to a foreground run reaches the container; its state is released" t_run_signal
t_timed "2. a new live generation is picked up; a pinned :1 is not (greet missing fails closed)" t_generations
t_timed "3. run vs dev activation: Flox's variables, CA bundle, FLOX_ENV_CACHE" t_modes
t_timed "3b. run links propagated user-env packages, dev also propagated build inputs, not the closure; mode: annotation, else manifest, else run" t_propagated
t_timed "4a. manifest vars evaluated by bash; the on-activate hook (bash) runs first, its output on stderr" t_vars_hook
t_timed "4b. a hook on a node without a static bash fails the create; a dev environment needing none runs" t_hook_no_shell
t_timed "5. read-only /nix (EROFS) vs nix-mutable overlay; node store unchanged; overlay gone" t_nix_rw
t_timed "6a. flox.dev/skip-containers: untouched from its image" t_skip_containers
t_timed "6b. exec activated into a Flox container, not into a skip-containers-exec one" t_skip_exec
t_timed "7. GC keeps a running container's closure; delete + gc free everything" t_gc
t_timed "7b. many packages: one link per container root; a live container keeps all through GC; delete releases" t_gc_many
t_timed "7c. trees share their symlinks' inodes through the node's pool; gc frees what no tree uses" t_link_pool
t_timed "7d. share_tree_symlinks false: every tree's symlinks are its own" t_link_pool_off
t_timed "8. 8 concurrent creates: one download per NAR, one build" t_concurrent
t_timed "9. SIGKILL during materialisation: nothing left, the retry succeeds" t_sigkill
t_timed "9b. SIGKILL while building the tree: the retry removes the half-built one" t_crash_build
t_timed "9c. no syncfs on the create's path: the record names its boot, marked synced after a syncfs" t_durable_build
t_timed "9d. a cold create's nix-store starts while FloxHub answers; killed when the environment is on the node" t_early_nix
t_timed "10a. an unsigned cache is refused" t_refused unsigned
t_timed "10b. a wrongly signed cache is refused" t_refused badsig
t_timed "11a. a package in no cache fails naming the path and the substituters" t_missing
t_timed "11b. an equal-priority file conflict fails naming both packages and the file" t_conflict
t_timed "13. closure-only /nix: no other tenant, no /nix/var/nix, no daemon socket, nested mounts hidden" t_projection
t_timed "13b. a pod in a user namespace: its closure read-only by spec mounts" t_projection_userns
t_timed "13c. a failing closure hook: its cause in the runtime's log" t_hook_failure
t_timed "13d. a pod with rshared rootfs propagation: no mount of it reaches the node's view or store" t_projection_rshared
t_timed "14. a node user reads nothing derived from an environment; the container does" t_private
t_timed "15. a deeply nested mutable pod is released; bounded nosuid,nodev layer; gc carries on" t_release
t_timed "16. image symlinks never lead look-ups onto the node" t_rootfs_lookup
t_timed "17. a cache answering HTTP 500: the message carries Nix's own error line" t_cache_500
t_timed "18. nix-store and the runtime child get no descriptor above 2; --preserve-fds kept" t_helper_fds
t_timed "19. a FIFO or device node at the token path fails the create at once, unopened" t_token_special
t_timed "12. no record, GC root, overlay or container left in the node state" t_nothing_left
diag "total: $((SECONDS - T0)) s"

tap_done
