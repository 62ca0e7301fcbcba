#!/usr/bin/env bash
#
# tests/integration/resolve.sh - FloxHub resolution against the real test hub
# (tests/hub: git http-backend behind a front with auth and fault knobs),
# through `flox-runc resolve --json`:
#   live and pinned generations, a new generation picked up, switch back,
#   metadata v1, the v0 protocol fallback, private environments with a valid,
#   a wrong, a wrong-owner and an expired token, unknown environments and
#   generations, a lockfile for another system, every injected fault
#   (5xx, truncated, dropped, slow past the deadline, refused), offline
#   fallbacks (pinned for a credential verified before, unpinned to the last
#   live generation with a warning), the warm paths (no request / one
#   ls-refs), 8 concurrent resolutions making one fetch, no token in any
#   file the test produced, and the unprivileged fetch child (lib/sandbox.h):
#   its ids, capabilities, no_new_privs and seccomp read from /proc while
#   the hub stalls it, DNS and HTTPS with a root-only CA file working in it,
#   warm resolutions that never fork and cold ones that fork once.
#
# Environment: FLOX_RUNC, FLOX_RUNC_SRCDIR.  TAP output; 77 = skipped (under CI=true: a failure).

# shellcheck disable=SC2016
set -euo pipefail
# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
suite_needs --root --flox-runc jq python3 git openssl strace pgrep

tmpdir_setup flox-runc-resolve
hub_start
STATE=$TEST_TMPDIR/state
SECRET=tok-$TEST_ID-secret
P1=/nix/store/0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-hello-1
P2=/nix/store/1bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-hello-2
P3=/nix/store/2ccccccccccccccccccccccccccccccc-hello-3

# config KEY=JSON... : write the node config with these overrides; the hub
# starts without faults (a failed test must not leave its faults behind)
config() {
	local extra="{}" kv
	hub_fault '{}'
	for kv in "$@"; do
		extra=$(jq -c --argjson v "${kv#*=}" --arg k "${kv%%=*}" '. + {($k): $v}' <<<"$extra")
	done
	jq -n --arg hub "$HUB_URL" --arg st "$STATE" --argjson x "$extra" \
		'{floxhub_url: $hub, state_dir: $st, deadline_seconds: 20} + $x' >"$TEST_TMPDIR/config.json"
	export FLOX_RUNC_CONFIG=$TEST_TMPDIR/config.json
}

resolve() { capture "$FLOX_RUNC" resolve --json "$@"; }

expect_ok() {
	resolve "$@"
	if [[ $CAP_RC -ne 0 ]]; then
		diag "resolve $* failed: $CAP_ERR"
		return 1
	fi
}

jqo() { jq -r "$1" <<<"$CAP_OUT"; }

# Publishing: acme/hello with two generations (v2), acme/legacy (v1),
# secretcorp/tools private, acme/armonly for another system.
make_lock "$TEST_TMPDIR/l1" "hello=$P1"
make_lock "$TEST_TMPDIR/l2" "hello=$P2"
make_lock "$TEST_TMPDIR/l3" "hello=$P3"
hub_publish acme/hello "$TEST_TMPDIR/l1" >/dev/null
hub_publish acme/hello "$TEST_TMPDIR/l2" >/dev/null
hub_publish acme/legacy "$TEST_TMPDIR/l1" --metadata-version 1 >/dev/null
hub_publish acme/legacy "$TEST_TMPDIR/l3" --metadata-version 1 >/dev/null
hub_publish secretcorp/tools "$TEST_TMPDIR/l3" >/dev/null
hub_private secretcorp
hub_token "$SECRET" secretcorp
jq '.packages[0].system = "riscv64-linux" | .manifest.options.systems = ["riscv64-linux"]' \
	"$TEST_TMPDIR/l1" >"$TEST_TMPDIR/lother"
hub_publish acme/armonly "$TEST_TMPDIR/lother" >/dev/null
printf '%s\n' "$SECRET" >"$TEST_TMPDIR/token"
printf 'tok-wrong-%s\n' "$TEST_ID" >"$TEST_TMPDIR/badtoken"

t_live_and_pinned() {
	config fresh_seconds=0
	expect_ok acme/hello
	assert_eq 2 "$(jqo .generation)" "live generation"
	assert_eq hub "$(jqo .source)" "first resolution fetches"
	assert_eq "$P2" "$(jqo '.packages[0].store_paths[0]')" "package of generation 2"
	assert_eq false "$(jqo .pinned)" "unpinned"
	expect_ok acme/hello:1
	assert_eq 1 "$(jqo .generation)" "pinned generation"
	assert_eq true "$(jqo .pinned)" "pinned"
	assert_eq "$P1" "$(jqo '.packages[0].store_paths[0]')" "package of generation 1"
	assert_eq 2 "$(jqo .live)" "live as seen"
}

t_new_generation_and_switch_back() {
	config fresh_seconds=0
	hub_publish acme/hello "$TEST_TMPDIR/l3" >/dev/null
	expect_ok acme/hello
	assert_eq 3 "$(jqo .generation)" "a new generation is picked up"
	expect_ok acme/hello:2
	assert_eq 2 "$(jqo .generation)" "a pinned one stays"
	hub_switch acme/hello 1
	expect_ok acme/hello
	assert_eq 1 "$(jqo .generation)" "switch_generation back to 1 is live"
	assert_eq "$P1" "$(jqo '.packages[0].store_paths[0]')" "its lockfile"
	hub_switch acme/hello 3
}

t_metadata_v1() {
	config
	expect_ok acme/legacy
	assert_eq 2 "$(jqo .generation)" "v1 currentGen"
	assert_eq "$P3" "$(jqo '.packages[0].store_paths[0]')" "v1 lockfile"
	expect_ok acme/legacy:1
	assert_eq "$P1" "$(jqo '.packages[0].store_paths[0]')" "v1 pinned"
}

t_v0_fallback() {
	config fresh_seconds=0
	rm -rf "$STATE"
	hub_fault '{"v0_only": true}'
	local before
	before=$(hub_requests)
	expect_ok acme/hello:2
	assert_eq 2 "$(jqo .generation)" "resolved over protocol v0"
	hub_fault '{}'
	[[ $(hub_requests) -gt $before ]] || { diag "no request was made"; return 1; }
}

t_unknown() {
	config
	resolve acme/nope
	assert_rc 1 "unknown environment"
	assert_contains "$CAP_ERR" "environment acme/nope not found on FloxHub" "message"
	# a hub URL with credentials: named masked, the password never shown
	config "floxhub_url=\"${HUB_URL/:\/\//://hubuser:hubpw-$TEST_ID@}\""
	resolve acme/nope
	assert_rc 1 "unknown environment on a hub URL with credentials"
	assert_contains "$CAP_ERR" "not found on FloxHub (${HUB_URL/:\/\//://***@})" "the hub, masked"
	assert_not_contains "$CAP_ERR$CAP_OUT" "hubpw-$TEST_ID" "no password"
	config
	resolve nobody/hello
	assert_rc 1 "unknown owner"
	assert_contains "$CAP_ERR" "not found" "message"
	resolve acme/hello:9
	assert_rc 1 "unknown generation"
	assert_contains "$CAP_ERR" "generation 9 of acme/hello does not exist (available generations: 1-3; the live one is 3)" "range and live"
	resolve acme/armonly
	assert_rc 1 "a system options.systems excludes"
	assert_contains "$CAP_ERR" "supports only the systems riscv64-linux" "names the systems"
	assert_empty "$CAP_OUT" "stdout on failure"
}

t_private() {
	config
	resolve secretcorp/tools
	assert_rc 1 "no token"
	assert_contains "$CAP_ERR" "environment secretcorp/tools not found or not accessible: private environments need the floxhub-token secret mounted at /var/run/secrets/flox.dev" "401 message"
	resolve secretcorp/tools --token-file "$TEST_TMPDIR/badtoken"
	assert_rc 1 "wrong token"
	assert_contains "$CAP_ERR" "not found or not accessible" "message"
	assert_contains "$CAP_ERR" "refused the token" "says the token was refused"
	expect_ok secretcorp/tools --token-file "$TEST_TMPDIR/token"
	assert_eq 1 "$(jqo .generation)" "private environment with a valid token"
	hub_token "tok-other-$TEST_ID" acme
	printf 'tok-other-%s\n' "$TEST_ID" >"$TEST_TMPDIR/othertoken"
	resolve secretcorp/tools --token-file "$TEST_TMPDIR/othertoken"
	assert_rc 1 "a token for another owner (403)"
	assert_contains "$CAP_ERR" "not found or not accessible" "403 message"
	# a cached private environment is not served to a request without the credential
	resolve secretcorp/tools:1
	assert_rc 1 "cached, but anonymous"
	assert_contains "$CAP_ERR" "not found or not accessible" "cache not served anonymously"
}

t_expired_token() {
	config
	local jwt before
	jwt=$(hub_jwt 1700000000)
	printf '%s\n' "$jwt" >"$TEST_TMPDIR/expired"
	hub_token "$jwt" secretcorp
	before=$(hub_requests)
	resolve secretcorp/tools --token-file "$TEST_TMPDIR/expired"
	assert_rc 1 "expired JWT"
	assert_contains "$CAP_ERR" "expired at 2023-11-14T22:13:20Z" "expiry time"
	assert_contains "$CAP_ERR" "flox auth token | kubectl create secret generic floxhub-token" "the fix"
	assert_eq "$before" "$(hub_requests)" "no request with an expired token"
}

t_warm_paths() {
	config fresh_seconds=60 auth_window_seconds=60
	expect_ok acme/hello:2
	local before
	before=$(hub_requests)
	expect_ok acme/hello:2
	assert_eq cache "$(jqo .source)" "pinned and cached: no request"
	assert_eq 0 "$(jqo .requests)" "zero requests"
	expect_ok acme/hello
	expect_ok acme/hello
	assert_eq cache "$(jqo .source)" "unpinned within fresh_seconds: no request"
	config fresh_seconds=0 auth_window_seconds=60
	before=$(hub_requests)
	expect_ok acme/hello
	assert_eq cache-verified "$(jqo .source)" "unchanged branch: verified"
	assert_eq 1 "$(($(hub_requests) - before))" "one ls-refs round trip (the hub's capabilities kept)"
	config fresh_seconds=60 auth_window_seconds=0
	before=$(hub_requests)
	expect_ok acme/hello:2
	assert_eq cache-verified "$(jqo .source)" "pinned, credential not recent: authorisation check only"
	assert_eq 1 "$(($(hub_requests) - before))" "only the ls-refs round trip"
}

t_faults() {
	config fresh_seconds=0 deadline_seconds=20
	rm -rf "$STATE"
	hub_fault '{"status": 503, "remaining": 2}'
	expect_ok acme/hello:1
	assert_eq 1 "$(jqo .generation)" "recovered after two 503s"
	rm -rf "$STATE"
	hub_fault '{"truncate_after": 30, "only_paths_matching": "/git-upload-pack$", "remaining": 1}'
	expect_ok acme/hello:1
	assert_eq 1 "$(jqo .generation)" "recovered after a truncated answer"
	rm -rf "$STATE"
	hub_fault '{"drop_connection": true, "remaining": 1}'
	expect_ok acme/hello:1
	rm -rf "$STATE"
	hub_fault '{"status": 500}'
	resolve acme/hello:1
	assert_rc 1 "persistent 500"
	assert_contains "$CAP_ERR" "cannot resolve acme/hello:1 from FloxHub" "names the hub"
	assert_contains "$CAP_ERR" "500" "and its error"
	config fresh_seconds=0 deadline_seconds=2
	hub_fault '{"delay_ms": 5000}'
	local t0=$SECONDS
	resolve acme/hello:1
	assert_rc 1 "slower than the deadline"
	assert_contains "$CAP_ERR" "deadline" "says deadline"
	[[ $((SECONDS - t0)) -le 5 ]] || { diag "the deadline was not kept"; return 1; }
	hub_fault '{}'
}

# The hub's v2 capability advertisement, kept on the node: later resolutions
# (other environments too) skip GET info/refs; a server that changed is
# asked again, a broken or old file is not used.
t_kept_capabilities() {
	config fresh_seconds=0 auth_window_seconds=0
	rm -rf "$STATE"
	local caps before
	expect_ok acme/hello:1
	caps=$(echo "$STATE"/hub/*/.capabilities)
	[[ -f $caps ]] || { diag "no capabilities file"; return 1; }
	assert_eq 600 "$(stat -c %a "$caps")" "mode of the capabilities file"
	: >"$HUB_LOG"
	expect_ok acme/legacy:1
	assert_eq hub "$(jqo .source)" "another environment, fetched"
	assert_eq 2 "$(hub_requests)" "ls-refs and the fetch"
	assert_eq 0 "$(hub_requests '"GET"')" "no info/refs"
	: >"$HUB_LOG"
	hub_fault '{"ref_in_want": true}'
	touch -d '-2 hours' "$caps"
	rm -rf "$STATE/hub"/*/acme/hello
	expect_ok acme/hello:2
	assert_eq 2 "$(hub_requests)" "an old file: asked again (info/refs, the fetch by want-ref)"
	: >"$HUB_LOG"
	rm -rf "$STATE/hub"/*/acme/legacy
	expect_ok acme/legacy:2
	assert_eq 1 "$(hub_requests)" "now the fetch by want-ref alone"
	# the server changed: v0 only now
	hub_fault '{"v0_only": true}'
	: >"$HUB_LOG"
	rm -rf "$STATE/hub"/*/acme/hello
	expect_ok acme/hello:1
	assert_eq 1 "$(jqo .generation)" "a changed server: still resolved"
	assert_eq 1 "$(hub_requests '"GET"')" "asked again"
	[[ ! -e $caps ]] || { diag "the capabilities of a v0 server were kept"; return 1; }
	hub_fault '{}'
	expect_ok acme/hello:1
	[[ -f $caps ]] || { diag "the capabilities were not kept again"; return 1; }
	printf '0009hello' >"$caps"
	rm -rf "$STATE/hub"/*/acme/hello
	: >"$HUB_LOG"
	expect_ok acme/hello:1
	assert_eq 1 "$(hub_requests '"GET"')" "a broken file: asked again"
	assert_eq 3 "$(hub_requests)" "and as a cold resolution"
	# An owner moved: its info/refs redirects, its old repository is gone
	# (404).  Discovery follows the redirect; the kept advertisement skips
	# it, so the POST's 404 means "ask again", not "not found"; and the
	# hub's advertisement stays kept (the redirect is the owner's).
	hub_publish movedco/hello "$TEST_TMPDIR/l3" >/dev/null
	hub_fault "{\"redirect\": \"$HUB_URL/git/movedco\", \"redirect_strip\": \"/git/oldco\",
		\"only_paths_matching\": \"^/git/oldco/floxmeta/info/refs\"}"
	[[ -f $caps ]] || { diag "no capabilities file to assume"; return 1; }
	: >"$HUB_LOG"
	expect_ok oldco/hello:1 || return 1
	assert_eq "$P3" "$(jqo '.packages[0].store_paths[0]')" "the moved owner's lockfile"
	assert_eq 1 "$(hub_requests '"GET".*"status": 302')" "the redirect followed"
	[[ -f $caps ]] || { diag "a redirected discovery dropped the hub's capabilities"; return 1; }
	: >"$HUB_LOG"
	rm -rf "$STATE/hub"/*/acme/hello
	expect_ok acme/hello:1
	assert_eq 0 "$(hub_requests '"GET"')" "the kept advertisement still used"
	# a missing environment: the server answered ls-refs, nothing to ask again
	: >"$HUB_LOG"
	resolve acme/nope:1
	assert_rc 1 "a missing environment"
	assert_contains "$CAP_ERR" "environment acme/nope not found on FloxHub" "names it"
	assert_eq 1 "$(hub_requests)" "one ls-refs"
	hub_fault '{}'
}

# A desynchronised server (or middlebox): after a refused request (HTTP 429,
# retried), the bytes of another answer arrive on the kept-open connection
# before the retry is sent.  They are not the retry's answer: read as it,
# they name the branch's commit before its new generation, and the old live
# generation would be served as verified.
t_stale_answer() {
	config fresh_seconds=0 auth_window_seconds=60
	hub_publish acme/stale "$TEST_TMPDIR/l1" >/dev/null
	expect_ok acme/stale || return 1
	local old stale
	old=$(jqo .commit)
	rm -f "$STATE"/hub/*/.capabilities # discovery first: the refused POST is retried after a backoff
	hub_publish acme/stale "$TEST_TMPDIR/l2" >/dev/null
	# an ls-refs answer naming the old commit, as a whole HTTP response
	stale=$(printf '003e%s refs/heads/stale\n0000' "$old")
	stale=$(printf 'HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-result\r\nContent-Length: %d\r\n\r\n%s' \
		"${#stale}" "$stale")
	hub_fault "$(jq -cn --arg s "$stale" '{status: 429, remaining: 1,
		only_paths_matching: "/git-upload-pack$", stale_response: $s}')"
	: >"$HUB_LOG"
	expect_ok acme/stale || return 1
	assert_eq 1 "$(hub_requests '"stale_bytes"')" "the stale bytes were sent"
	assert_eq 2 "$(jqo .generation)" "the new live generation, not the stale answer's"
	assert_eq "$P2" "$(jqo '.packages[0].store_paths[0]')" "its lockfile"
	hub_fault '{}'
}

# A server (or proxy) whose error page quotes the request back, the token
# and its basic-auth header with it: the warnings and the error that quote
# the page never hold the token, whole or cut.
t_echoed_token() {
	config fresh_seconds=0 auth_window_seconds=0
	local b64 jwt
	b64=$(printf 'oauth:%s' "$SECRET" | base64 -w0)
	rm -rf "$STATE"
	hub_fault '{"status": 503, "echo_auth": true, "remaining": 1}'
	expect_ok secretcorp/tools --token-file "$TEST_TMPDIR/token" || return 1
	assert_contains "$CAP_ERR" "retrying" "the refused request is logged"
	assert_contains "$CAP_ERR" "Authorization: Basic ***" "with the quoted header masked"
	assert_not_contains "$CAP_ERR" "$SECRET" "no token in the warning"
	assert_not_contains "$CAP_ERR" "$b64" "no basic-auth header in the warning"
	rm -rf "$STATE"
	hub_fault '{"status": 503, "echo_auth": true}'
	resolve secretcorp/tools --token-file "$TEST_TMPDIR/token"
	assert_rc 1 "a hub failing for good"
	assert_contains "$CAP_ERR" "cannot resolve secretcorp/tools" "says so"
	assert_not_contains "$CAP_ERR" "$SECRET" "no token in the error"
	assert_not_contains "$CAP_ERR" "$b64" "no basic-auth header in the error"
	# a long token (a JWT) whose quote the message cuts: not even its start
	jwt=$(hub_jwt $(($(date +%s) + 3600)))
	hub_token "$jwt" secretcorp
	printf '%s\n' "$jwt" >"$TEST_TMPDIR/jwt"
	b64=$(printf 'oauth:%s' "$jwt" | base64 -w0)
	resolve secretcorp/tools --token-file "$TEST_TMPDIR/jwt"
	assert_rc 1 "a hub failing for good, with a JWT"
	assert_not_contains "$CAP_ERR" "${b64:8:24}" "no part of the basic-auth header"
	assert_not_contains "$CAP_ERR" "${jwt:0:24}" "no part of the JWT"
	# a short token: masked whole
	hub_token "s$TEST_ID" secretcorp
	printf 's%s\n' "$TEST_ID" >"$TEST_TMPDIR/short"
	resolve secretcorp/tools --token-file "$TEST_TMPDIR/short"
	assert_rc 1 "a hub failing for good, with a short token"
	assert_contains "$CAP_ERR" "token ***" "the quoted token masked"
	assert_not_contains "$CAP_ERR" "s$TEST_ID" "no short token in the error"
	# a capability advertisement quoting it is not kept on the node
	rm -rf "$STATE"
	hub_fault '{"echo_auth": true}'
	expect_ok secretcorp/tools --token-file "$TEST_TMPDIR/token" || return 1
	assert_eq hub "$(jqo .source)" "resolved"
	assert_empty "$(grep -rl -e "$SECRET" "$STATE" || true)" "files under state_dir holding the token"
	hub_fault '{}'
	rm -rf "$STATE"
	expect_ok secretcorp/tools --token-file "$TEST_TMPDIR/token" || return 1
	[[ -f $(echo "$STATE"/hub/*/.capabilities) ]] || { diag "a plain advertisement was not kept"; return 1; }
}

# The hub slower than the deadline, concurrent resolutions of an environment
# the node holds for a credential FloxHub accepted before: each starts from
# the node's copy, also those that waited for the lock until their deadline
# (the first ones' fetches took it all).
t_concurrent_offline() {
	config fresh_seconds=0 auth_window_seconds=0 deadline_seconds=3
	rm -rf "$STATE"
	expect_ok acme/hello:1 || return 1
	expect_ok acme/hello || return 1
	local live i pids=() refs=()
	live=$(jqo .generation)
	hub_fault '{"delay_ms": 10000}'
	for i in 0 1 2 3 4 5; do
		refs[i]=acme/hello
		((i % 2)) || refs[i]=acme/hello:1
		"$FLOX_RUNC" resolve --json "${refs[i]}" >"$TEST_TMPDIR/co$i.out" 2>"$TEST_TMPDIR/co$i.err" &
		pids+=($!)
	done
	for i in 0 1 2 3 4 5; do
		wait "${pids[i]}" || diag "${refs[i]} ($i) failed: $(tail -n1 "$TEST_TMPDIR/co$i.err")"
		assert_eq cache-offline "$(jq -r .source "$TEST_TMPDIR/co$i.out")" "${refs[i]} ($i): the node's copy"
	done
	assert_eq 1 "$(jq -r .generation "$TEST_TMPDIR/co0.out")" "pinned"
	assert_eq "$live" "$(jq -r .generation "$TEST_TMPDIR/co1.out")" "live: the last seen"
	hub_fault '{}'
}

t_offline() {
	config fresh_seconds=0 auth_window_seconds=0
	rm -rf "$STATE"
	expect_ok acme/hello:2
	expect_ok acme/hello
	assert_eq 3 "$(jqo .generation)" "live seen: 3"
	hub_stop
	expect_ok acme/hello:2
	assert_eq cache-offline "$(jqo .source)" "pinned, verified before: starts offline"
	expect_ok acme/hello
	assert_eq 3 "$(jqo .generation)" "unpinned: last live generation"
	assert_contains "$CAP_ERR" "FloxHub is unreachable" "with a warning"
	resolve acme/hello:1
	assert_rc 1 "not cached: fails"
	assert_contains "$CAP_ERR" "cannot reach" "names the hub error"
	resolve secretcorp/tools:1
	assert_rc 1 "anonymous never verified: fails"
	hub_start_again
}

# A token FloxHub accepted and then revoked: served from the node's copy
# within auth_window_seconds (docs/security.md, "Known limitations"),
# refused at the first contact after it, and once refused, no longer
# served by the offline fallback either.
t_revoked_token() {
	local tok=tok-revoked-$TEST_ID
	config fresh_seconds=0 auth_window_seconds=300
	rm -rf "$STATE"
	hub_token "$tok" secretcorp
	printf '%s\n' "$tok" >"$TEST_TMPDIR/revoked"
	expect_ok secretcorp/tools:1 --token-file "$TEST_TMPDIR/revoked"
	python3 "$HUB_PY/publish.py" token --root "$HUB_ROOT" "$tok" --owners secretcorp --remove >/dev/null
	expect_ok secretcorp/tools:1 --token-file "$TEST_TMPDIR/revoked"
	assert_eq cache "$(jqo .source)" "revoked, within auth_window_seconds: the node's copy"
	config fresh_seconds=0 auth_window_seconds=0
	resolve secretcorp/tools:1 --token-file "$TEST_TMPDIR/revoked"
	assert_rc 1 "revoked: refused at the next contact"
	assert_contains "$CAP_ERR" "refused the token" "says so"
	hub_fault '{"status": 503}'
	resolve secretcorp/tools:1 --token-file "$TEST_TMPDIR/revoked"
	hub_fault '{}'
	assert_rc 1 "refused once: not served when FloxHub is unavailable"
	assert_not_contains "$CAP_ERR" "starting secretcorp/tools" "no offline start"
}

# One environment's resolutions are serialised by its lock, whoever asks:
# another tenant's pods naming it with refused tokens, each holding the lock
# for a FloxHub round trip, or one that hangs, must not hold up a create
# the node's copy answers (a credential accepted within auth_window_seconds).
# lock_held FILE: another process holds FILE's flock (waited for before
# timing: a fixed sleep let a loaded machine time before the lock was taken)
lock_held() { ! flock -n "$1" true; }

t_cache_hit_unlocked() {
	local lock pid start
	config fresh_seconds=60 auth_window_seconds=60
	rm -rf "$STATE"
	expect_ok acme/hello:2
	expect_ok acme/hello
	lock=$(echo "$STATE"/hub/*/acme/hello/.lock-*)
	[[ -f $lock ]] || { diag "no lock file at $lock"; return 1; }
	flock -o "$lock" sleep 120 & # (-o: killing flock releases the lock)
	pid=$!
	WAIT_TIMEOUT=30 wait_for lock_held "$lock"
	start=$SECONDS
	resolve acme/hello:2
	local rc1=$CAP_RC src1
	src1=$(jqo .source)
	resolve acme/hello
	pkill -P "$pid" sleep 2>/dev/null || true
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	assert_eq 0 "$rc1" "pinned, while another resolution holds the lock"
	assert_eq cache "$src1" "pinned: the node's copy"
	assert_rc 0 "live, while another resolution holds the lock"
	assert_eq cache "$(jqo .source)" "live: the node's copy"
	((SECONDS - start <= 30)) || { # (the holder sleeps 120 s)
		diag "FAIL: the cache hits waited $((SECONDS - start)) s for the lock"
		return 1
	}
}

# A resolution that must ask FloxHub waits only for resolutions with its own
# credential: another tenant's pods naming the environment with refused
# tokens (or a hung one) hold every lock that credential takes, and a create
# with another credential, which must ask (fresh_seconds 0), still answers
# at once from FloxHub.
t_cold_other_credential() {
	local pid start f
	local -a pids=()
	config fresh_seconds=0 auth_window_seconds=0 deadline_seconds=60
	rm -rf "$STATE"
	hub_token "tok-cold-$TEST_ID" acme
	printf 'tok-cold-%s\n' "$TEST_ID" >"$TEST_TMPDIR/coldtoken"
	expect_ok acme/hello
	# every lock file the anonymous resolution made, held
	for f in "$STATE"/hub/*/acme/hello/.lock*; do
		[[ -f $f ]] || { diag "no lock file: $f"; return 1; }
		flock -o "$f" sleep 120 &
		pids+=($!)
		WAIT_TIMEOUT=30 wait_for lock_held "$f"
	done
	start=$SECONDS
	resolve acme/hello --token-file "$TEST_TMPDIR/coldtoken"
	for pid in "${pids[@]}"; do pkill -P "$pid" sleep 2>/dev/null || true; kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
	assert_rc 0 "another credential, while the anonymous one's resolutions hold their locks"
	assert_ne cache "$(jqo .source)" "asked FloxHub (cache-verified: the same commit)"
	((SECONDS - start <= 30)) || { # (the holders sleep 120 s, the deadline 60 s)
		diag "FAIL: waited $((SECONDS - start)) s for another credential's lock"
		return 1
	}
}

# An owner named like a file of the hub's cache directory: a pod naming
# `capabilities/x` neither stops the node from keeping the hub's
# capabilities for everyone, nor is refused by the node for that name.
t_owner_capabilities() {
	config fresh_seconds=0 auth_window_seconds=0
	rm -rf "$STATE"
	resolve capabilities/x
	assert_rc 1 "an unknown owner"
	assert_contains "$CAP_ERR" "not found" "FloxHub says so"
	expect_ok acme/hello:1
	: >"$HUB_LOG"
	expect_ok acme/legacy:1
	assert_eq 0 "$(hub_requests '"GET"')" "the capabilities kept: no info/refs"
	resolve capabilities/x
	assert_rc 1 "again"
	assert_contains "$CAP_ERR" "not found" "FloxHub asked, not a node error"
}

hub_start_again() {
	HUB_PORT=$HUB_PORT hub_start
}

t_concurrent() {
	config fresh_seconds=30 auth_window_seconds=30
	rm -rf "$STATE"
	local one many i
	# one resolution alone
	: >"$HUB_LOG"
	expect_ok acme/legacy
	one=$(hub_requests)
	rm -rf "$STATE"
	: >"$HUB_LOG"
	for i in 1 2 3 4 5 6 7 8; do
		"$FLOX_RUNC" resolve --json acme/legacy >"$TEST_TMPDIR/c$i.out" 2>"$TEST_TMPDIR/c$i.err" &
	done
	wait
	for i in 1 2 3 4 5 6 7 8; do
		assert_eq 2 "$(jq -r .generation "$TEST_TMPDIR/c$i.out")" "resolution $i"
	done
	many=$(hub_requests)
	assert_eq "$one" "$many" "8 concurrent resolutions make the requests of one"
}

# N pods of one environment started at once on a node that asks FloxHub every
# time (fresh_seconds and auth_window_seconds 0), with a token: the waiters
# share the resolution that held the lock (its answer came after they
# asked), live and pinned, cold and warm.  The hub holds the first request
# so that all of them are waiting.
t_concurrent_asking() {
	config fresh_seconds=0 auth_window_seconds=0
	local round ref state n=20 i one many pids
	for round in secretcorp/tools,cold secretcorp/tools:1,cold secretcorp/tools,warm \
		secretcorp/tools:1,warm; do
		ref=${round%,*} state=${round#*,}
		if [[ $state == cold ]]; then
			rm -rf "$STATE"
		else
			expect_ok "$ref" --token-file "$TEST_TMPDIR/token"
		fi
		: >"$HUB_LOG"
		expect_ok "$ref" --token-file "$TEST_TMPDIR/token"
		one=$(hub_requests) # what one resolution asks in that state
		[[ $state == warm ]] || rm -rf "$STATE"
		: >"$HUB_LOG"
		hub_fault '{"delay_ms": 700, "remaining": 1}'
		pids=()
		for ((i = 0; i < n; i++)); do
			"$FLOX_RUNC" resolve --json "$ref" --token-file "$TEST_TMPDIR/token" \
				>"$TEST_TMPDIR/ca$i.out" 2>"$TEST_TMPDIR/ca$i.err" &
			pids+=($!)
		done
		for ((i = 0; i < n; i++)); do
			wait "${pids[$i]}" || diag "resolution $i failed: $(cat "$TEST_TMPDIR/ca$i.err")"
			assert_eq 1 "$(jq -r .generation "$TEST_TMPDIR/ca$i.out")" "$round: resolution $i"
		done
		many=$(hub_requests)
		assert_eq "$one" "$many" "$round: $n concurrent resolutions make the requests of one"
	done
	hub_fault '{}'
}

t_no_token_leak() {
	local hits
	hits=$(grep -rl -e "$SECRET" -e "tok-wrong-$TEST_ID" "$STATE" "$HUB_LOG" "$TEST_TMPDIR"/.cap.* 2>/dev/null || true)
	assert_empty "$hits" "files holding a token"
}

# /proc/PID/status field FIELD of the status text in $1.
status_field() { awk -v f="$2:" '$1 == f { $1 = ""; sub(/^[ \t]+/, ""); print }' <<<"$1"; }

# stalled_child_status REF [ARGS]: resolves REF while the hub stalls its first
# request and prints the /proc status of the fetch child, read once the
# child has installed its seccomp filter; the resolution must succeed.
stalled_child_status() {
	local pid child="" status="" i hold=$TEST_TMPDIR/stall.hold
	# the stall held until the child was seen filtered (a fixed 1.5 s
	# delay could end first on a loaded machine)
	touch "$hold"
	hub_fault "$(jq -cn --arg f "$hold" '{hold_file: $f, only_paths_matching: "/info/refs", remaining: 1}')"
	"$FLOX_RUNC" resolve --json "$@" >"$TEST_TMPDIR/stall.out" 2>"$TEST_TMPDIR/stall.err" &
	pid=$!
	for i in $(seq 1500); do
		kill -0 "$pid" 2>/dev/null || break
		child=$(pgrep -P "$pid" | head -n1 || true)
		if [[ -n $child ]]; then
			status=$(cat "/proc/$child/status" 2>/dev/null || true)
			# its own mount namespace, where /proc is empty
			echo "$(readlink "/proc/$pid/ns/mnt" || true) $(readlink "/proc/$child/ns/mnt" || true)" >"$TEST_TMPDIR/stall.ns"
			[[ $(status_field "$status" Seccomp) != 2 ]] || break
		fi
		sleep 0.02
	done
	rm -f "$hold"
	if ! wait "$pid"; then
		diag "the stalled resolution failed: $(cat "$TEST_TMPDIR/stall.err")"
		return 1
	fi
	[[ -n $status ]] || { diag "no fetch child was seen"; return 1; }
	printf '%s\n' "$status"
}

expect_sandboxed() { # STATUS UID GID
	local st=$1 id
	assert_eq "$2 $2 $2 $2" "$(status_field "$st" Uid | tr -s '\t ' '  ')" "every uid of the child"
	assert_eq "$3 $3 $3 $3" "$(status_field "$st" Gid | tr -s '\t ' '  ')" "every gid of the child"
	assert_empty "$(status_field "$st" Groups)" "no supplementary group"
	for id in CapInh CapPrm CapEff CapBnd CapAmb; do
		assert_eq 0000000000000000 "$(status_field "$st" "$id")" "$id"
	done
	assert_eq 1 "$(status_field "$st" NoNewPrivs)" "no_new_privs"
	assert_eq 2 "$(status_field "$st" Seccomp)" "a seccomp filter"
}

t_fetch_child_unprivileged() {
	local st ns_parent ns_child
	config fresh_seconds=0
	rm -rf "$STATE"
	st=$(stalled_child_status acme/hello:1) || return 1
	expect_sandboxed "$st" 65534 65534
	read -r ns_parent ns_child <"$TEST_TMPDIR/stall.ns"
	[[ -n $ns_child && $ns_child != "$ns_parent" ]] || { diag "mount namespaces: flox-runc $ns_parent, child $ns_child"; return 1; }
	assert_eq 1 "$(jq -r .generation "$TEST_TMPDIR/stall.out")" "the sandboxed fetch resolved"
	config fresh_seconds=0 fetch_uid=4242 fetch_gid=4343
	rm -rf "$STATE"
	st=$(stalled_child_status secretcorp/tools --token-file "$TEST_TMPDIR/token") || return 1
	expect_sandboxed "$st" 4242 4343
	assert_eq 1 "$(jq -r .generation "$TEST_TMPDIR/stall.out")" "private, with the token in memory"
	# the cache is root's alone
	assert_eq "0 600" "$(stat -c '%u %a' "$(jq -r .lockfile "$TEST_TMPDIR/stall.out")")" "cache written by the root parent"
}

# forks TRACE: process-creating calls (not threads) in an strace -f log
forks() { grep -E '^[0-9]+ +(clone3?|fork|vfork)\(' "$1" | grep -v CLONE_THREAD | grep -vc ENOSYS || true; }

t_fork_once() {
	# LeakSanitizer cannot run under ptrace (the sanitizer build of tests/check.sh)
	local -x ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
	config fresh_seconds=60 auth_window_seconds=60
	rm -rf "$STATE"
	capture strace -f -qq -e trace=clone,clone3,fork,vfork -o "$TEST_TMPDIR/cold.trace" \
		"$FLOX_RUNC" resolve --json acme/hello:1
	assert_rc 0 "cold resolution under strace"
	assert_eq 1 "$(forks "$TEST_TMPDIR/cold.trace")" "a cold fetch forks once"
	capture strace -f -qq -e trace=clone,clone3,fork,vfork -o "$TEST_TMPDIR/warm.trace" \
		"$FLOX_RUNC" resolve --json acme/hello:1
	assert_rc 0 "warm resolution under strace"
	assert_eq cache "$(jq -r .source <<<"$CAP_OUT")" "served from the node cache"
	assert_eq 0 "$(forks "$TEST_TMPDIR/warm.trace")" "a cache hit never forks"
}

t_https_dns_in_child() {
	local d=$TEST_TMPDIR/tls tpid
	mkdir -p "$d"
	chmod 700 "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
		-addext subjectAltName=DNS:localhost -keyout "$d/key.pem" -out "$d/cert.pem" 2>/dev/null
	chmod 600 "$d/key.pem" "$d/cert.pem"
	python3 "$HUB_PY/floxhub.py" --root "$HUB_ROOT" --port 0 --port-file "$d/port" \
		--tls-cert "$d/cert.pem" --tls-key "$d/key.pem" --log "$d/log" --quiet &
	tpid=$!
	cleanup_pid "$tpid"
	wait_for test -s "$d/port" || { diag "the TLS hub did not start"; return 1; }
	# a name (NSS, /etc/hosts), TLS, and a CA file only root can read
	config fresh_seconds=0 "ca_file=\"$d/cert.pem\"" "floxhub_url=\"https://localhost:$(cat "$d/port")\""
	rm -rf "$STATE"
	expect_ok acme/hello:1 || { kill "$tpid"; return 1; }
	assert_eq hub "$(jqo .source)" "fetched over HTTPS by the unprivileged child"
	assert_eq "$P1" "$(jqo '.packages[0].store_paths[0]')" "its lockfile"
	[[ $(wc -l <"$d/log") -ge 2 ]] || { diag "the TLS hub saw no request"; kill "$tpid"; return 1; }
	# without the CA the certificate is refused: TLS is really checked
	config fresh_seconds=0 "floxhub_url=\"https://localhost:$(cat "$d/port")\""
	rm -rf "$STATE"
	resolve acme/hello:1
	assert_rc 1 "an unknown CA is refused"
	kill "$tpid"
}

tap_test "live and pinned generations" t_live_and_pinned
tap_test "a new generation is picked up, a pinned one stays, switch back" t_new_generation_and_switch_back
tap_test "metadata version 1" t_metadata_v1
tap_test "protocol v0 fallback" t_v0_fallback
tap_test "unknown environment, owner, generation, system" t_unknown
tap_test "private environment: none, wrong, other-owner and valid tokens" t_private
tap_test "expired JWT fails before any request" t_expired_token
tap_test "a revoked token: the node's copy within auth_window_seconds, then refused, also offline" t_revoked_token
tap_test "warm paths: no request, one ls-refs" t_warm_paths
tap_test "faults: 503 retried, truncated, dropped, 500, deadline" t_faults
tap_test "the hub's capabilities kept: no info/refs, asked again when changed, old or broken" t_kept_capabilities
tap_test "an owner named capabilities" t_owner_capabilities
tap_test "a stale answer on a kept connection is never read as the next one" t_stale_answer
tap_test "a token the hub quotes back is never logged" t_echoed_token
tap_test "concurrent resolutions past the deadline start from the node's copy" t_concurrent_offline
tap_test "offline: pinned verified, unpinned last live, else fail" t_offline
tap_test "8 concurrent resolutions make one fetch" t_concurrent
tap_test "a cache hit does not wait for another resolution's lock" t_cache_hit_unlocked
tap_test "a cold resolution waits only for its own credential's" t_cold_other_credential
tap_test "20 concurrent resolutions asking FloxHub every time make the requests of one" t_concurrent_asking
tap_test "the fetch child: unprivileged ids, no capabilities, no_new_privs, seccomp" t_fetch_child_unprivileged
tap_test "a cold fetch forks once, a cache hit never forks" t_fork_once
tap_test "DNS and HTTPS with a root-only CA file in the fetch child" t_https_dns_in_child
tap_test "no token in any produced file" t_no_token_leak
tap_done
