#!/usr/bin/env bash
#
# tests/integration/hub-interop.sh - FloxHub resolution against independent
# git smart-HTTP servers on 127.0.0.1, through `flox-runc resolve --json`:
# live, pinned, missing-generation and metadata-v1 environments against
#   (a) git http-backend, protocol v2 (the test hub, permissive config)
#   (b) git http-backend, protocol v0 only
#   (c) git http-backend with git's default server configuration (no
#       uploadpack.allowFilter, no allow*SHA1InWant), v2 and v0
#   (d) dulwich's smart-HTTP server (python3-dulwich, v0 only)
#   (e) a server advertising neither shallow nor filter (the test hub's
#       hide_caps knob: such requests are then refused), v2 and v0
#   (f) git http-backend, v2 with uploadpack.allowRefInWant (ref-in-want)
# and, per case, the requests of a cold pinned resolution: exactly the
# expected number (docs/performance.md), at most those of `git fetch --depth
# 1` of the same branch, and over one connection where the server keeps
# connections open (the test hub).
#
# Environment: FLOX_RUNC, FLOX_RUNC_SRCDIR.  TAP output; 77 = skipped (under CI=true: a failure).

set -euo pipefail
# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
suite_needs --root --flox-runc jq python3 git
/usr/bin/python3 -c 'import dulwich' 2>/dev/null || die "python3-dulwich is missing (tests/deps.sh)"

tmpdir_setup flox-runc-interop
hub_start
STATE=$TEST_TMPDIR/state
P1=/nix/store/0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-1
P2=/nix/store/1bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-hello-2
P3=/nix/store/2ccccccccccccccccccccccccccccccc-hello-3

# dulwich's server over the same repositories
DUL_LOG=$TEST_TMPDIR/dulwich.log
: >"$DUL_LOG"
/usr/bin/python3 "$HUB_PY/dulwich_hub.py" --root "$HUB_ROOT" --port 0 \
	--port-file "$TEST_TMPDIR/dulwich.port" --log "$DUL_LOG" 2>"$TEST_TMPDIR/dulwich.err" &
DUL_PID=$!
cleanup_pid "$DUL_PID"
wait_for test -s "$TEST_TMPDIR/dulwich.port" || die "dulwich's server did not start"
DUL_URL=http://127.0.0.1:$(cat "$TEST_TMPDIR/dulwich.port")

make_lock "$TEST_TMPDIR/l1" "hello=$P1"
make_lock "$TEST_TMPDIR/l2" "hello=$P2"
make_lock "$TEST_TMPDIR/l3" "hello=$P3"
hub_publish acme/hello "$TEST_TMPDIR/l1" >/dev/null
hub_publish acme/hello "$TEST_TMPDIR/l2" >/dev/null
hub_publish acme/legacy "$TEST_TMPDIR/l1" --metadata-version 1 >/dev/null
hub_publish acme/legacy "$TEST_TMPDIR/l3" --metadata-version 1 >/dev/null

# case NAME: point the node config at that server (with its knobs) and set
# LOG (the server's request log) and URL.
case_setup() {
	local knobs='{}'
	GIT_DEPTH=1
	EXPECT=2 # v0: info/refs (with the refs), one depth-1 fetch
	KEPT=2   # then, another environment: the same (v0's info/refs has the refs)
	URL=$HUB_URL
	LOG=$HUB_LOG
	case $1 in
	v2) EXPECT=3 ;; # info/refs, ls-refs, one depth-1 fetch; then ls-refs, the fetch
	v2-ref-in-want) knobs='{"ref_in_want": true}' KEPT=1 ;; # info/refs, one fetch by want-ref
	v0) knobs='{"v0_only": true}' ;;
	default-v2) knobs='{"git_defaults": true}' EXPECT=3 ;; # as v2
	default-v0) knobs='{"git_defaults": true, "v0_only": true}' ;;
	# git's own client hangs in a shallow fetch from dulwich 0.21's server:
	# compared with its full fetch (the same requests, more objects)
	dulwich) URL=$DUL_URL LOG=$DUL_LOG GIT_DEPTH= ;;
	noshallow-v2) knobs='{"git_defaults": true, "hide_caps": ["shallow", "filter"]}' GIT_DEPTH= EXPECT=3 ;;
	noshallow-v0) knobs='{"git_defaults": true, "v0_only": true, "hide_caps": ["shallow", "filter"]}' GIT_DEPTH= ;;
	*) die "unknown case $1" ;;
	esac
	hub_fault "$knobs"
	jq -n --arg hub "$URL" --arg st "$STATE" \
		'{floxhub_url: $hub, state_dir: $st, deadline_seconds: 20, fresh_seconds: 0}' \
		>"$TEST_TMPDIR/config.json"
	export FLOX_RUNC_CONFIG=$TEST_TMPDIR/config.json
	rm -rf "$STATE"
}

requests() { wc -l <"$LOG"; }
resolve() { capture "$FLOX_RUNC" resolve --json "$@"; }
expect_ok() {
	resolve "$@"
	if [[ $CAP_RC -ne 0 ]]; then
		diag "resolve $* failed: $CAP_ERR"
		return 1
	fi
}
jqo() { jq -r "$1" <<<"$CAP_OUT"; }

# The requests `git fetch --depth 1` makes for branch hello (what a git
# client needs for the same commit), with git's default protocol.
git_fetch_requests() {
	local before repo=$TEST_TMPDIR/gitclient.$1
	rm -rf "$repo"
	git init -q --bare "$repo"
	before=$(requests)
	# --depth only where the server offers shallow (else git refuses it too)
	GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null timeout 60 git -C "$repo" fetch -q \
		${GIT_DEPTH:+--depth "$GIT_DEPTH"} "$URL/git/acme/floxmeta" refs/heads/hello >/dev/null 2>&1
	echo $(($(requests) - before))
}

t_case() {
	local name=$1 before pinned ours theirs
	case_setup "$name"
	before=$(requests)
	expect_ok acme/hello:1
	pinned=$(($(requests) - before))
	PINNED_LOG=$(tail -n "$pinned" "$LOG" | jq -c '[.method, .path, .status]' | tr '\n' ' ')
	assert_eq 1 "$(jqo .generation)" "pinned generation"
	assert_eq hub "$(jqo .source)" "fetched from the server"
	assert_eq "$EXPECT" "$pinned" "requests of a cold pinned resolution ($PINNED_LOG)"
	assert_eq "$pinned" "$(jqo .requests)" "as counted by flox-runc"
	if [[ $LOG == "$HUB_LOG" ]]; then
		assert_eq 1 "$(tail -n "$pinned" "$LOG" | jq -r .client | sort -u | wc -l)" \
			"connections of a cold pinned resolution"
	fi
	assert_eq "$P1" "$(jqo '.packages[0].store_paths[0]')" "its lockfile"
	before=$(requests)
	expect_ok acme/legacy:1 # the server's v2 capabilities are kept on the node
	assert_eq "$KEPT" "$(($(requests) - before))" "requests of another environment's cold pinned resolution"
	assert_eq "$P1" "$(jqo '.packages[0].store_paths[0]')" "its lockfile"
	expect_ok acme/hello
	assert_eq 2 "$(jqo .generation)" "live generation"
	assert_eq "$P2" "$(jqo '.packages[0].store_paths[0]')" "live lockfile"
	resolve acme/hello:9
	assert_rc 1 "a missing generation"
	assert_contains "$CAP_ERR" "generation 9 of acme/hello does not exist" "names it"
	resolve acme/nope:1
	assert_rc 1 "a missing environment"
	assert_contains "$CAP_ERR" "environment acme/nope not found on FloxHub" "names it"
	rm -rf "$STATE"
	expect_ok acme/legacy
	assert_eq 2 "$(jqo .generation)" "v1 metadata: live"
	assert_eq "$P3" "$(jqo '.packages[0].store_paths[0]')" "v1 lockfile"
	expect_ok acme/legacy:1
	assert_eq "$P1" "$(jqo '.packages[0].store_paths[0]')" "v1 pinned"
	theirs=$(git_fetch_requests "$name")
	ours=$pinned
	diag "$name: cold pinned resolve: $ours requests; git fetch --depth 1: $theirs"
	printf '%s %s %s\n' "$name" "$ours" "$theirs" >>"$TEST_TMPDIR/counts"
	[[ $ours -le $theirs ]] || { diag "more requests than git ($ours > $theirs): $PINNED_LOG"; return 1; }
	hub_fault '{}'
}

for c in v2 v2-ref-in-want v0 default-v2 default-v0 dulwich noshallow-v2 noshallow-v0; do
	tap_test "interop: $c: live, pinned, missing generation and environment, metadata v1; requests <= git" t_case "$c"
done
tap_done
