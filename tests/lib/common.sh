# shellcheck shell=bash disable=SC2016 # jq programs are single-quoted on purpose
#
# tests/lib/common.sh - shared helpers for flox-runc's shell test suites,
# benchmarks and demos.
#
# Test suites load it through the shared preamble tests/lib/suite.sh; other
# bash scripts (demos) source it directly, under `set -euo pipefail`:
#
#     . "$FLOX_RUNC_SRCDIR/tests/lib/common.sh"
#
# Nothing here runs on load except defining functions and a few variables;
# call tmpdir_setup to get a scratch directory and the cleanup trap.
#
# Scratch directory and cleanup
#   tmpdir_setup [NAME]          Create $TEST_TMPDIR (mktemp -d) and install a
#                                trap on EXIT/INT/TERM/HUP that undoes
#                                everything registered below, then unmounts
#                                whatever is still mounted under $TEST_TMPDIR
#                                and removes it, also when the test failed.
#                                Sets $TEST_ID, a short unique tag of this run.
#   cleanup_add CMD [ARG...]     Run CMD ARGS at cleanup (last added runs
#                                first). Errors and output are ignored.
#   cleanup_container RT ROOT ID Force-delete container ID of runtime binary
#                                RT (`RT --root ROOT delete --force ID`).
#   cleanup_pid PID              SIGKILL PID at cleanup.
#   cleanup_mount PATH           Unmount PATH (lazily) at cleanup.
#   The registry is a file in $TEST_TMPDIR, so registering also works from the
#   subshells tap_test runs test bodies in.
#
# Skipping and failing (tests fail closed: with CI=true every skip is a
# failure, see tests/lib/skip.sh)
#   skip_all REASON              Print the TAP skip plan and exit 77; under
#                                CI=true "Bail out!" and exit 99.
#   skip_unless_root             skip_all unless running as uid 0.
#   require_cmd CMD...           skip_all when a command is missing.
#   die MSG                      Print "Bail out! MSG" and exit 99 (hard error);
#                                inside a tap_test body: fail that test only.
#   crun_cgroup_workaround ARGV  See the function; re-execs the calling script
#                                in a private mount namespace when crun could
#                                not run containers on this host otherwise.
#
# Bundles and configuration
#   make_busybox_bundle DIR [ARG...]
#                                OCI bundle in DIR: rootfs with Debian's static
#                                busybox at /bin/busybox plus a symlink per
#                                applet, config.json from `runc spec` (or
#                                `crun spec`) with process.terminal=false,
#                                process.args=ARGS (default: sleep 86400) and a
#                                cgroupsPath unique to this bundle.
#   bundle_jq DIR FILTER [JQ-ARG...]
#                                Rewrite DIR/config.json with a jq filter.
#   bundle_annotate DIR KEY VALUE
#                                Set one annotation in DIR/config.json.
#   write_json FILE JSON         Write JSON (validated with jq) to FILE.
#   write_process_file FILE ARG...
#                                OCI `process` object (for `exec --process`)
#                                running ARGS as root in /, PATH=/bin.
#   json_array ARG...            Print ARGS as a JSON array of strings.
#   sha256_of FILE               Print the sha256 of FILE.
#
# Running commands
#   capture CMD [ARG...]         Run CMD without failing the script. Sets
#                                CAP_RC, CAP_OUT, CAP_ERR (text, trailing
#                                newlines stripped) and CAP_OUT_FILE,
#                                CAP_ERR_FILE (exact bytes). stdin is the
#                                caller's, so `capture cmd <<<"$json"` works.
#   wait_for CMD [ARG...]        Retry CMD for up to $WAIT_TIMEOUT seconds
#                                (default 10) until it succeeds.
#
# Assertions: on failure each prints "# FAIL: ..." with expected and actual
# values to stderr and returns 1 (under errexit that ends the test body).
#   assert_eq EXPECTED ACTUAL [WHAT]
#   assert_ne UNEXPECTED ACTUAL [WHAT]
#   assert_contains HAYSTACK NEEDLE [WHAT]
#   assert_not_contains HAYSTACK NEEDLE [WHAT]
#   assert_match STRING ERE [WHAT]          bash =~ extended regex
#   assert_empty VALUE [WHAT]
#   assert_rc EXPECTED [WHAT]               compares with $CAP_RC
#   assert_fail [WHAT]                      $CAP_RC is non-zero
#   assert_same_file FILE1 FILE2 [WHAT]     byte-identical (cmp), diff shown
#   assert_file_unchanged FILE SHA256 [WHAT]
#   assert_json FILE-OR-STRING JQ-FILTER [WHAT]
#                                           jq -e FILTER is true
#
# TAP
#   tap_test NAME FUNC [ARG...]  Run FUNC ARGS in a subshell with errexit and
#                                an ERR trap naming the failing command, then
#                                print "ok N - NAME" or "not ok N - NAME".
#   tap_skip NAME REASON         Print "ok N - NAME # SKIP REASON"; under
#                                CI=true "not ok N - NAME" (a failure).
#   tap_done                     Print the plan "1..N"; return 1 if any test
#                                failed (use as the script's last command).
#
# Variables: TEST_TMPDIR, TEST_ID, CAP_*; TAP_COUNT, TAP_FAILED (counters).

# Guard against double sourcing.
if [[ -n "${FLOX_RUNC_COMMON_SH:-}" ]]; then
	return 0
fi
FLOX_RUNC_COMMON_SH=1

TAP_COUNT=0
TAP_FAILED=0
TEST_TMPDIR=""
TEST_ID=""
CAP_RC=0
CAP_OUT=""
CAP_ERR=""
CAP_OUT_FILE=""
CAP_ERR_FILE=""
_CAP_SEQ=0
_CLEANUP_DONE=0

# ---------------------------------------------------------------- messages

# diag MSG... : a TAP diagnostic line on stderr.
diag() {
	local line
	while IFS= read -r line; do
		printf '# %s\n' "$line" >&2
	done <<<"$*"
}

# die MSG: a broken test setup. Inside a tap_test body it fails that test
# only; elsewhere it aborts the run (TAP "Bail out!", exit 99).
die() {
	if [[ "${_IN_TAP_TEST:-}" == 1 ]]; then
		diag "ERROR: $*"
		exit 1
	fi
	printf 'Bail out! %s\n' "$*"
	exit 99
}

# skip_all: tests/lib/skip.sh (shared with the /bin/sh self-tests).
# shellcheck source=tests/lib/skip.sh
. "${BASH_SOURCE[0]%/*}/skip.sh"

skip_unless_root() {
	if [[ "$(id -u)" != 0 ]]; then
		skip_all "must run as root"
	fi
}

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip_all "missing command: $c (tests/deps.sh installs it)"
	done
}

# ------------------------------------------------------- tmpdir and cleanup

tmpdir_setup() {
	local name=${1:-flox-runc-test}
	TEST_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXXXX")
	TEST_ID=${TEST_TMPDIR##*.}
	: >"$TEST_TMPDIR/.cleanup"
	trap '_common_cleanup' EXIT
	trap '_common_cleanup; trap - INT; kill -INT $$' INT
	trap '_common_cleanup; trap - TERM; kill -TERM $$' TERM
	trap '_common_cleanup; trap - HUP; kill -HUP $$' HUP
}

cleanup_add() {
	[[ -n "$TEST_TMPDIR" ]] || die "cleanup_add before tmpdir_setup"
	local q
	q=$(printf '%q ' "$@")
	printf '%s\n' "$q" >>"$TEST_TMPDIR/.cleanup"
}

cleanup_container() {
	cleanup_add "$1" --root "$2" delete --force "$3"
}

cleanup_pid() {
	cleanup_add kill -9 "$1"
	# no "Killed" job notice from this shell at cleanup
	disown "$1" 2>/dev/null || true
}

cleanup_mount() {
	cleanup_add umount -l "$1"
}

_common_cleanup() {
	local rc=$?
	set +e
	if [[ "$_CLEANUP_DONE" == 1 || -z "$TEST_TMPDIR" ]]; then
		return "$rc"
	fi
	_CLEANUP_DONE=1
	if [[ -f "$TEST_TMPDIR/.cleanup" ]]; then
		local line
		while IFS= read -r line; do
			[[ -n "$line" ]] || continue
			eval "$line" </dev/null >/dev/null 2>&1
		done < <(tac "$TEST_TMPDIR/.cleanup")
	fi
	# Anything still mounted below the scratch directory, deepest first.
	local mp
	while IFS= read -r mp; do
		umount -l "$mp" >/dev/null 2>&1
	done < <(awk -v d="$TEST_TMPDIR" '$5 == d || index($5, d "/") == 1 {print $5}' \
		/proc/self/mountinfo 2>/dev/null | sort -r)
	# cgroups left behind by bundles of this run (see make_busybox_bundle).
	local cg
	for cg in /sys/fs/cgroup/flox-runc-test-"$TEST_ID"-* \
		/sys/fs/cgroup/*/flox-runc-test-"$TEST_ID"-*; do
		[[ -d "$cg" ]] && find "$cg" -depth -type d -exec rmdir {} + >/dev/null 2>&1
	done
	rm -rf --one-file-system "$TEST_TMPDIR"
	return "$rc"
}

# --------------------------------------------------- crun on hybrid cgroups

# crun_cgroup_workaround "$0" "$@"
#
# crun refuses to create containers on a hybrid cgroup host (v1 controllers
# plus a cgroup2 mount at /sys/fs/cgroup/unified) when any controller is bound
# to the v2 hierarchy ("cgroups in hybrid mode not supported, drop all
# controllers from cgroupv2"). Some machines (ours: hugetlb) are like that;
# runc does not care. On such a host this re-executes the calling script in
# a private mount namespace (unshare -m) in which an empty file is bound over
# /sys/fs/cgroup/unified/cgroup.controllers. Only the test process tree sees
# it; the host is not changed and crun manages the v1 controllers as usual.
# Call it before tmpdir_setup. No-op on every other host.
crun_cgroup_workaround() {
	local ctl=/sys/fs/cgroup/unified/cgroup.controllers
	if [[ "${FLOX_RUNC_TEST_PRIVATE_MNTNS:-}" == 1 ]]; then
		local empty
		empty=$(mktemp "${TMPDIR:-/tmp}/flox-runc-empty.XXXXXXXX")
		mount --bind "$empty" "$ctl" || die "cannot bind over $ctl"
		rm -f "$empty"
		return 0
	fi
	if [[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" == tmpfs && -n "$(cat "$ctl" 2>/dev/null)" ]]; then
		require_cmd unshare
		export FLOX_RUNC_TEST_PRIVATE_MNTNS=1
		exec unshare --mount --propagation private -- "${BASH:-bash}" "$@"
	fi
}

# ------------------------------------------------------------------ bundles

make_busybox_bundle() {
	local dir=$1
	shift
	local busybox spec_tool tag
	busybox=$(command -v busybox || true)
	[[ -n "$busybox" ]] || die "make_busybox_bundle: no busybox (apt-get install busybox-static)"
	mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" \
		"$dir/rootfs/dev" "$dir/rootfs/tmp" "$dir/rootfs/etc"
	chmod 1777 "$dir/rootfs/tmp"
	cp "$busybox" "$dir/rootfs/bin/busybox"
	# Running it chrooted also proves it is static (no loader in the rootfs).
	chroot "$dir/rootfs" /bin/busybox --install -s /bin ||
		die "make_busybox_bundle: $busybox does not run in an empty rootfs (is it static? apt-get install busybox-static)"
	printf 'root:x:0:0:root:/:/bin/sh\n' >"$dir/rootfs/etc/passwd"
	printf 'root:x:0:\n' >"$dir/rootfs/etc/group"

	spec_tool=$(command -v runc || command -v crun || true)
	[[ -n "$spec_tool" ]] || die "make_busybox_bundle: neither runc nor crun found"
	rm -f "$dir/config.json"
	(cd "$dir" && "$spec_tool" spec) || die "make_busybox_bundle: $spec_tool spec failed"

	if (($# == 0)); then
		set -- sleep 86400
	fi
	# A cgroup of its own, so that concurrent runs (and two containers named
	# alike under different --root directories) never share one.
	tag=$(printf '%s' "$dir" | sha256sum | cut -c1-12)
	bundle_jq "$dir" '.process.terminal = false
		| .process.args = $args
		| .linux.cgroupsPath = $cg' \
		--arg cg "/flox-runc-test-${TEST_ID:-x}-$tag" --argjson args "$(json_array "$@")"
}

bundle_jq() {
	local dir=$1 filter=$2
	shift 2
	local tmp="$dir/.config.json.tmp"
	jq "$filter" "$@" <"$dir/config.json" >"$tmp" ||
		{
			rm -f "$tmp"
			die "bundle_jq: jq failed on $dir/config.json"
		}
	mv "$tmp" "$dir/config.json"
}

bundle_annotate() {
	bundle_jq "$1" '.annotations[$k] = $v' --arg k "$2" --arg v "$3"
}

write_json() {
	local file=$1 json=$2
	jq . <<<"$json" >"$file" || die "write_json: invalid JSON for $file"
}

write_process_file() {
	local file=$1
	shift
	jq -n '{terminal: false, user: {uid: 0, gid: 0},
		args: $args, cwd: "/",
		env: ["PATH=/bin", "TERM=xterm"]}' --argjson args "$(json_array "$@")" >"$file"
}

# json_array ARG...: print ARGS as a JSON array of strings.
json_array() {
	local -a named=()
	local i=0 a
	for a in "$@"; do
		named+=(--arg "a$i" "$a")
		i=$((i + 1))
	done
	jq -cn --argjson n "$#" "${named[@]}" '[range($n) as $i | $ARGS.named["a\($i)"]]'
}

sha256_of() {
	sha256sum "$1" | cut -d' ' -f1
}

# ----------------------------------------------------------------- running

capture() {
	[[ -n "$TEST_TMPDIR" ]] || die "capture before tmpdir_setup"
	_CAP_SEQ=$((_CAP_SEQ + 1))
	CAP_OUT_FILE="$TEST_TMPDIR/.cap.$BASHPID.$_CAP_SEQ.out"
	CAP_ERR_FILE="$TEST_TMPDIR/.cap.$BASHPID.$_CAP_SEQ.err"
	CAP_RC=0
	"$@" >"$CAP_OUT_FILE" 2>"$CAP_ERR_FILE" || CAP_RC=$?
	CAP_OUT=$(cat "$CAP_OUT_FILE")
	CAP_ERR=$(cat "$CAP_ERR_FILE")
	return 0
}

wait_for() {
	local deadline=$((SECONDS + ${WAIT_TIMEOUT:-10}))
	while ! "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			diag "FAIL: timed out after ${WAIT_TIMEOUT:-10}s waiting for: $*"
			return 1
		fi
		sleep 0.05
	done
}

# -------------------------------------------------------------- assertions

_what() {
	[[ -n "${1:-}" ]] && printf '%s: ' "$1"
	return 0
}

assert_eq() {
	if [[ "$1" != "$2" ]]; then
		diag "FAIL: $(_what "${3:-}")expected [$1]"
		diag "      $(_what "${3:-}")actual   [$2]"
		return 1
	fi
}

assert_ne() {
	if [[ "$1" == "$2" ]]; then
		diag "FAIL: $(_what "${3:-}")expected anything but [$1]"
		return 1
	fi
}

assert_contains() {
	if [[ "$1" != *"$2"* ]]; then
		diag "FAIL: $(_what "${3:-}")[$2] not found in:"
		diag "$1"
		return 1
	fi
}

assert_not_contains() {
	if [[ "$1" == *"$2"* ]]; then
		diag "FAIL: $(_what "${3:-}")[$2] unexpectedly found in:"
		diag "$1"
		return 1
	fi
}

assert_match() {
	if ! [[ "$1" =~ $2 ]]; then
		diag "FAIL: $(_what "${3:-}")[$1] does not match /$2/"
		return 1
	fi
}

assert_empty() {
	if [[ -n "$1" ]]; then
		diag "FAIL: $(_what "${2:-}")expected nothing, got:"
		diag "$1"
		return 1
	fi
}

assert_rc() {
	if [[ "$CAP_RC" != "$1" ]]; then
		diag "FAIL: $(_what "${2:-}")exit status $CAP_RC, expected $1"
		[[ -z "$CAP_OUT" ]] || diag "stdout: $CAP_OUT"
		[[ -z "$CAP_ERR" ]] || diag "stderr: $CAP_ERR"
		return 1
	fi
}

assert_fail() {
	if [[ "$CAP_RC" == 0 ]]; then
		diag "FAIL: $(_what "${1:-}")exit status 0, expected failure"
		[[ -z "$CAP_OUT" ]] || diag "stdout: $CAP_OUT"
		[[ -z "$CAP_ERR" ]] || diag "stderr: $CAP_ERR"
		return 1
	fi
}

assert_same_file() {
	if ! cmp -s "$1" "$2"; then
		diag "FAIL: $(_what "${3:-}")$1 and $2 differ:"
		diag "$(diff -u "$1" "$2" | head -40)"
		return 1
	fi
}

assert_file_unchanged() {
	local now
	now=$(sha256_of "$1" 2>/dev/null || echo "(unreadable)")
	if [[ "$now" != "$2" ]]; then
		diag "FAIL: $(_what "${3:-}")$1 changed: sha256 was $2, now $now"
		return 1
	fi
}

assert_json() {
	local src=$1 filter=$2
	local input
	if [[ -f "$src" ]]; then input=$(cat "$src"); else input=$src; fi
	if ! jq -e "$filter" >/dev/null 2>&1 <<<"$input"; then
		diag "FAIL: $(_what "${3:-}")jq -e '$filter' is not true for:"
		diag "$input"
		return 1
	fi
}

# --------------------------------------------------------------------- TAP

tap_test() {
	local name=$1
	shift
	TAP_COUNT=$((TAP_COUNT + 1))
	local rc=0
	set +e
	(
		set -eEuo pipefail
		_IN_TAP_TEST=1
		trap 'diag "  failed: ${BASH_SOURCE[0]##*/}:${LINENO}: ${BASH_COMMAND}"' ERR
		"$@"
	)
	rc=$?
	set -e
	if ((rc == 0)); then
		printf 'ok %d - %s\n' "$TAP_COUNT" "$name"
	else
		TAP_FAILED=$((TAP_FAILED + 1))
		printf 'not ok %d - %s\n' "$TAP_COUNT" "$name"
	fi
}

tap_skip() {
	TAP_COUNT=$((TAP_COUNT + 1))
	if [[ "${CI:-}" == true ]]; then
		TAP_FAILED=$((TAP_FAILED + 1))
		printf 'not ok %d - %s\n' "$TAP_COUNT" "$1"
		diag "skipped under CI=true (no test may skip): $2"
		return 0
	fi
	printf 'ok %d - %s # SKIP %s\n' "$TAP_COUNT" "$1" "$2"
}

tap_done() {
	printf '1..%d\n' "$TAP_COUNT"
	if ((TAP_FAILED > 0)); then
		diag "$TAP_FAILED of $TAP_COUNT tests failed"
		return 1
	fi
	return 0
}
