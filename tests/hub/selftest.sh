#!/bin/sh
# Self-test of the test FloxHub (floxhub.py + publish.py) with real git.
# Exit 0: every check passed; 1: a check failed; 77: git or python3 missing
# (99 under CI=true: tests/lib/skip.sh).
set -u

here=$(cd "$(dirname "$0")" && pwd)
# skip_all: exit 77, a failure under CI=true
. "$here/../lib/skip.sh"

if [ -z "${PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3
	else PYTHON=$(command -v python3 || true); fi
fi
if [ -z "$PYTHON" ] || ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 7))' 2>/dev/null; then
	skip_all "python3 not found: install Debian package python3"
fi
command -v git >/dev/null 2>&1 || skip_all "git not found: install Debian package git"
command -v curl >/dev/null 2>&1 || skip_all "curl not found: install Debian package curl"
have_curl=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/floxhub-selftest.XXXXXX")
srv_pid=
cleanup() {
	rc=$?
	if [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null
		wait "$srv_pid" 2>/dev/null
	fi
	if [ "$rc" -ne 0 ] && [ -f "$tmp/server.err" ]; then
		echo "--- server stderr"; tail -n 20 "$tmp/server.err"
		echo "--- request log (last 10)"; tail -n 10 "$tmp/requests.log" 2>/dev/null
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# A git that ignores the machine's configuration and never prompts.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0 GIT_ASKPASS=/bin/false SSH_ASKPASS=
unset GIT_DIR GIT_WORK_TREE GIT_PROTOCOL 2>/dev/null || true
export HOME="$tmp/home"; mkdir -p "$HOME"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export NO_PROXY='*'

fails=0 passes=0
pass() {
	passes=$((passes + 1)); echo "ok   - $*"
	[ -z "${SELFTEST_VERBOSE:-}" ] || sed 's/^/     | /' "$tmp/out" | tail -n 15
}
fail() { fails=$((fails + 1)); echo "FAIL - $*"; }
check() { # check DESCRIPTION COMMAND...
	d=$1; shift
	if "$@" >"$tmp/out" 2>&1; then pass "$d"; else fail "$d"; sed 's/^/     | /' "$tmp/out" | tail -n 15; fi
}
check_fails() { # check_fails DESCRIPTION PATTERN COMMAND...  (must fail, output matching PATTERN)
	d=$1; pat=$2; shift 2
	if "$@" >"$tmp/out" 2>&1; then fail "$d (unexpectedly succeeded)"
	elif grep -Eq "$pat" "$tmp/out"; then pass "$d"
	else fail "$d (no /$pat/ in output)"; sed 's/^/     | /' "$tmp/out" | tail -n 15; fi
}

root=$tmp/root ctl=$tmp/control.json log=$tmp/requests.log
mkdir -p "$root"
pub() { "$PYTHON" "$here/publish.py" "$@"; }
setctl() { printf '%s\n' "$1" >"$ctl.new" && mv "$ctl.new" "$ctl"; }
nolog() { : >"$log"; }
logcount() { grep -c "$1" "$log" 2>/dev/null || true; }

# --- fixtures -------------------------------------------------------------------
cat >"$tmp/lock1.json" <<'EOF'
{"lockfile-version":1,"manifest":{"version":1,"install":{"hello":{"pkg-path":"hello"}},"vars":{"GREETING":"one"},"options":{}},"packages":[]}
EOF
cat >"$tmp/lock2.json" <<'EOF'
{"lockfile-version":1,"manifest":{"version":1,"install":{"hello":{"pkg-path":"hello"},"curl":{"pkg-path":"curl"}},"vars":{"GREETING":"two"},"options":{}},"packages":[]}
EOF
check "publish acme/hello gen 1 (v2)" pub publish --root "$root" acme/hello --lock "$tmp/lock1.json"
check "publish acme/hello gen 2 (v2, install)" pub publish --root "$root" acme/hello --lock "$tmp/lock2.json" --kind install --targets curl
check "publish acme/legacy (v1)" pub publish --root "$root" acme/legacy --lock "$tmp/lock1.json" --metadata-version 1
check "publish secretcorp/tools" pub publish --root "$root" secretcorp/tools --lock "$tmp/lock1.json"
check "mark secretcorp private" pub private --root "$root" secretcorp
good=tok-$$-good other=tok-$$-other
expired=$(pub jwt --exp 1000000000 --handle tester)
future=$(pub jwt --exp $(( $(date +%s) + 3600 )) --handle tester)
check "grant tokens" sh -c "'$PYTHON' '$here/publish.py' token --root '$root' '$good' --owners secretcorp &&
	'$PYTHON' '$here/publish.py' token --root '$root' '$other' --owners acme &&
	'$PYTHON' '$here/publish.py' token --root '$root' '$expired' --owners secretcorp &&
	'$PYTHON' '$here/publish.py' token --root '$root' '$future' --owners secretcorp"

bare=$root/acme/floxmeta
tree_ok() {
	git --git-dir="$bare" cat-file -e hello:metadata.json &&
	git --git-dir="$bare" cat-file -e hello:1/env/manifest.toml &&
	git --git-dir="$bare" cat-file -e hello:1/env/manifest.lock &&
	git --git-dir="$bare" cat-file -e hello:2/env/manifest.toml &&
	git --git-dir="$bare" cat-file -e hello:2/env/manifest.lock &&
	git --git-dir="$bare" show hello:2/env/manifest.lock | cmp - "$tmp/lock2.json" &&
	git --git-dir="$bare" show hello:metadata.json | "$PYTHON" -c '
import json, sys
m = json.load(sys.stdin)
assert m["version"] == 2 and m["total_generations"] == 2, m
h = m["history"]
assert [e["kind"] for e in h] == ["initialize", "install"], h
assert h[-1]["current_generation"] == "2" and h[-1]["previous_generation"] == "1", h
assert "previous_generation" not in h[0] and h[1]["targets"] == ["curl"], h' &&
	git --git-dir="$bare" show legacy:metadata.json | "$PYTHON" -c '
import json, sys
m = json.load(sys.stdin)
assert m["version"] == 1 and m["currentGen"] == "1" and set(m["generations"]["1"]) == {"created", "lastActive", "description"}, m'
}
check "branch trees and metadata as FloxHub stores them" tree_ok

# --- server -----------------------------------------------------------------------
"$PYTHON" "$here/floxhub.py" --root "$root" --port 0 --port-file "$tmp/port" \
	--control "$ctl" --log "$log" >"$tmp/server.out" 2>"$tmp/server.err" &
srv_pid=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 100 ]; do
	kill -0 "$srv_pid" 2>/dev/null || break
	sleep 0.1; i=$((i + 1))
done
[ -s "$tmp/port" ] || { echo "FAIL - server did not start"; exit 1; }
port=$(cat "$tmp/port")
base=http://127.0.0.1:$port/git
echo "# hub listening on $base (pid $srv_pid)"

lsr() { git -c protocol.version=2 ls-remote "$@"; }
ls_remote_v2() {
	nolog
	lsr "$base/acme/floxmeta" >"$tmp/refs" || return 1
	grep -q "refs/heads/hello$" "$tmp/refs" && grep -q "refs/heads/legacy$" "$tmp/refs" &&
	grep -q '"git_protocol": "version=2"' "$log"
}
check "ls-remote (protocol v2) lists hello and legacy" ls_remote_v2

clone_shallow() {
	rm -rf "$tmp/c1"
	git -c protocol.version=2 clone -q --depth 1 --branch hello --filter=blob:none \
		"$base/acme/floxmeta" "$tmp/c1" || return 1
	[ "$(git -C "$tmp/c1" rev-list --count HEAD)" = 1 ] &&
	[ "$(git -C "$tmp/c1" rev-parse HEAD)" = "$(git --git-dir="$bare" rev-parse hello)" ] &&
	cmp "$tmp/c1/2/env/manifest.lock" "$tmp/lock2.json" &&
	[ -f "$tmp/c1/1/env/manifest.toml" ]
}
check "clone --depth 1 --branch hello --filter=blob:none" clone_shallow

fetch_commit_then_blob() {
	rm -rf "$tmp/f1"; git init -q "$tmp/f1" || return 1
	c=$(git --git-dir="$bare" rev-parse hello) blob=$(git --git-dir="$bare" rev-parse hello:2/env/manifest.lock)
	git -C "$tmp/f1" -c protocol.version=2 fetch -q --depth 1 --filter=blob:none "$base/acme/floxmeta" "$c" || return 1
	git -C "$tmp/f1" cat-file -e "$c^{tree}" || return 1
	# blob:none: the blob must not be here yet; fetch it by id.
	GIT_NO_LAZY_FETCH=1 git -C "$tmp/f1" cat-file -e "$blob" 2>/dev/null && { echo "blob came with filter"; return 1; }
	git -C "$tmp/f1" -c protocol.version=2 fetch -q --no-tags "$base/acme/floxmeta" "$blob" || return 1
	git -C "$tmp/f1" cat-file -p "$blob" | cmp - "$tmp/lock2.json"
}
check "fetch one commit (deepen 1, blob:none), then a blob by id" fetch_commit_then_blob

check_fails "unknown owner is 404" "404|not found" lsr "$base/nobody/floxmeta"

v0_only() {
	setctl '{"v0_only": true}'
	nolog
	GIT_TRACE_PACKET=1 git -c protocol.version=2 ls-remote "$base/acme/floxmeta" >"$tmp/refs" 2>"$tmp/trace" || return 1
	setctl '{}'
	grep -q "refs/heads/hello$" "$tmp/refs" || return 1
	grep -q "version 2" "$tmp/trace" && { echo "server still spoke v2"; return 1; }
	grep -q "# service=git-upload-pack" "$tmp/trace" || return 1
	rm -rf "$tmp/c0"
	git -c protocol.version=0 clone -q --depth 1 --branch hello "$base/acme/floxmeta" "$tmp/c0" &&
	cmp "$tmp/c0/2/env/manifest.lock" "$tmp/lock2.json"
}
check "v0_only: v2 client falls back, protocol.version=0 clone works" v0_only

# --- auth -------------------------------------------------------------------------
hostp=127.0.0.1:$port
auth_none() {
	nolog
	if [ "$have_curl" = 1 ]; then
		code=$(curl -s -o /dev/null -w '%{http_code}' "$base/secretcorp/floxmeta/info/refs?service=git-upload-pack")
		[ "$code" = 401 ] || { echo "curl got $code"; return 1; }
	fi
	lsr "$base/secretcorp/floxmeta" 2>&1 && return 1
	grep -q '"status": 401' "$log"
}
check "private owner without credentials: 401" auth_none
check "private owner with valid token (oauth:TOKEN@)" lsr "http://oauth:$good@$hostp/git/secretcorp/floxmeta"
check "private owner with unexpired JWT" lsr "http://oauth:$future@$hostp/git/secretcorp/floxmeta"
check_fails "token of another owner: 403" "403" lsr "http://oauth:$other@$hostp/git/secretcorp/floxmeta"
check_fails "unknown token: 401" "Authentication failed|401" lsr "http://oauth:nope@$hostp/git/secretcorp/floxmeta"
check_fails "expired JWT: 401" "Authentication failed|401" lsr "http://oauth:$expired@$hostp/git/secretcorp/floxmeta"
check "public owner ignores credentials" lsr "http://oauth:nope@$hostp/git/acme/floxmeta"
no_secret_in_log() { ! grep -q -e "$good" -e "$other" -e "$expired" -e "$future" "$log" && grep -q '"user": "oauth"' "$log"; }
check "request log names user oauth, never the token" no_secret_in_log
if [ "$have_curl" = 1 ]; then
	check "curl: private clone info/refs 200 with basic auth" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -u 'oauth:$good' '$base/secretcorp/floxmeta/info/refs?service=git-upload-pack')\" = 200 ]"
	check "curl: read-only hub refuses receive-pack" sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$base/acme/floxmeta/info/refs?service=git-receive-pack')\" = 403 ]"
fi

# --- faults -----------------------------------------------------------------------
status_once() {
	setctl '{"status": 503, "remaining": 1}'
	nolog
	lsr "$base/acme/floxmeta" >/dev/null 2>"$tmp/err1" && { echo "first request did not fail"; return 1; }
	grep -q 503 "$tmp/err1" || { cat "$tmp/err1"; return 1; }
	lsr "$base/acme/floxmeta" >/dev/null || return 1
	"$PYTHON" -c 'import json,sys; assert json.load(open(sys.argv[1]))["remaining"] == 0' "$ctl" &&
	[ "$(logcount '"status": 503')" = 1 ]
}
check "status 503 for the next request only (remaining: 1)" status_once

status_paths() {
	# first 2 upload-pack POSTs fail, info/refs untouched
	setctl '{"status": 500, "remaining": 2, "only_paths_matching": "/git-upload-pack$"}'
	nolog
	lsr "$base/acme/floxmeta" >/dev/null 2>&1 && return 1
	lsr "$base/acme/floxmeta" >/dev/null 2>&1 && return 1
	lsr "$base/acme/floxmeta" >/dev/null || return 1
	[ "$(logcount '"status": 500')" = 2 ] && [ "$(grep '"status": 500' "$log" | grep -c 'info/refs')" = 0 ]
}
check "only_paths_matching + remaining: 2 POSTs fail, then OK" status_paths

truncated() {
	setctl '{"truncate_after": 40, "only_paths_matching": "/git-upload-pack$"}'
	nolog
	rm -rf "$tmp/ct"
	git -c protocol.version=2 clone -q --depth 1 --branch hello "$base/acme/floxmeta" "$tmp/ct" 2>"$tmp/err2" && { echo "clone succeeded"; return 1; }
	setctl '{}'
	cat "$tmp/err2"
	grep -q '"truncated": true' "$log"
}
check "truncated body makes git fail" truncated

dropped() {
	setctl '{"drop_connection": true, "remaining": 1}'
	nolog
	lsr "$base/acme/floxmeta" >/dev/null 2>"$tmp/err3" && return 1
	cat "$tmp/err3"
	grep -q '"dropped": true' "$log" && lsr "$base/acme/floxmeta" >/dev/null
}
check "drop_connection: no response, then OK" dropped

delayed() {
	setctl '{"delay_ms": 1200, "remaining": 1}'
	nolog
	t0=$("$PYTHON" -c 'import time; print(time.time())')
	lsr "$base/acme/floxmeta" >/dev/null || return 1
	"$PYTHON" -c 'import sys, time; d = time.time() - float(sys.argv[1]); print("took %.2fs" % d); sys.exit(d < 1.2)' "$t0" &&
	grep '"delay_ms": 1200' "$log" | grep -q '"status": 200'
}
check "delay_ms delays a response" delayed
setctl '{}'

concurrent() {
	nolog
	pids=
	for n in 1 2 3 4 5 6 7 8; do
		rm -rf "$tmp/cc$n"
		git -c protocol.version=2 clone -q --depth 1 --branch hello --filter=blob:none "$base/acme/floxmeta" "$tmp/cc$n" >"$tmp/cc$n.log" 2>&1 &
		pids="$pids $!"
	done
	ok=0
	for p in $pids; do wait "$p" || ok=1; done
	[ "$ok" = 0 ] && for n in 1 2 3 4 5 6 7 8; do cmp -s "$tmp/cc$n/2/env/manifest.lock" "$tmp/lock2.json" || return 1; done
}
check "8 concurrent clones" concurrent

publish_live() {
	pub publish --root "$root" acme/hello --lock "$tmp/lock1.json" >/dev/null &&
	pub switch --root "$root" acme/hello 2 >/dev/null || return 1
	new=$(git --git-dir="$bare" rev-parse hello)
	lsr "$base/acme/floxmeta" refs/heads/hello | grep -q "^$new" || return 1
	git --git-dir="$bare" show hello:metadata.json | "$PYTHON" -c '
import json, sys
m = json.load(sys.stdin); h = m["history"]
assert m["total_generations"] == 3 and h[-1]["kind"] == "switch_generation", m
assert h[-1]["current_generation"] == "2" and h[-1]["previous_generation"] == "3", h'
}
check "publish + switch while serving" publish_live

sigterm() {
	kill -TERM "$srv_pid"
	i=0
	while kill -0 "$srv_pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	kill -0 "$srv_pid" 2>/dev/null && return 1
	wait "$srv_pid"; rc=$?
	srv_pid=
	[ "$rc" = 0 ]
}
check "SIGTERM stops the server cleanly (exit 0)" sigterm

echo "# $passes passed, $fails failed"
[ "$fails" = 0 ]
