#!/usr/bin/env bash
#
# tests/integration/hub-proxy.sh - FloxHub and the binary cache through a real
# HTTP proxy (Debian's tinyproxy) on 127.0.0.1:
#   the node config's http_proxy: a prefetch (FloxHub resolution + nix-store
#   substitution) succeeds and the proxy's log shows the FloxHub and the
#   cache requests; the standard http_proxy environment works the same;
#   no_proxy bypasses it; https goes through a CONNECT tunnel; a proxy that
#   is down or refuses gives one line
#   naming the proxy; a binary cache demanding HTTP basic credentials (its
#   URL carries them): realisation works, and the password is on no
#   nix-store command line, in no child's environment, log or error.
#
# Environment: FLOX_RUNC, FLOX_RUNC_SRCDIR.  TAP output; 77 = skipped.

set -euo pipefail
# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
suite_needs --root --flox-runc --nix jq python3 git tinyproxy openssl
unset http_proxy https_proxy HTTPS_PROXY no_proxy NO_PROXY all_proxy ALL_PROXY

tmpdir_setup flox-runc-proxy
nixcache_build
hub_start
nixcache_serve main signed
CACHE_PW="cache pw:$TEST_ID@%"
nixcache_serve authcache signed --basic-auth "cacheuser:$CACHE_PW"
STORE=$TEST_TMPDIR/store
STATE=$TEST_TMPDIR/state
nixcache_lock "$TEST_TMPDIR/hello.lock" hello
hub_publish acme/hello "$TEST_TMPDIR/hello.lock" >/dev/null

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# proxy_start NAME [ALLOW [CONF_LINE]]: tinyproxy on 127.0.0.1 (clients from
# ALLOW only, default 127.0.0.1; CONF_LINE added to its configuration);
# sets PROXY_URL, PROXY_LOG.
proxy_start() {
	local d=$TEST_TMPDIR/proxy.$1 port attempt pid
	mkdir -p "$d"
	chmod 0777 "$d" # tinyproxy writes its log as nobody
	# free_port's port may be taken before tinyproxy binds it: tinyproxy
	# then exits, and another port is tried
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		cat >"$d/conf" <<CONF
User nobody
Group nogroup
Port $port
Listen 127.0.0.1
Timeout 30
LogFile "$d/log"
LogLevel Info
MaxClients 20
Allow ${2:-127.0.0.1}
ViaProxyName "flox-runc-test"
${3:-}
CONF
		: >"$d/log"
		chmod 0666 "$d/log"
		tinyproxy -d -c "$d/conf" 2>"$d/stderr" &
		pid=$!
		cleanup_pid "$pid"
		if proxy_started "$pid" "$d/log"; then
			PROXY_PID=$pid
			PROXY_URL=http://127.0.0.1:$port
			PROXY_LOG=$d/log
			return 0
		fi
		kill -9 "$pid" 2>/dev/null || true
		diag "tinyproxy did not start on port $port (attempt $attempt): $(cat "$d/stderr")"
	done
	die "tinyproxy did not start: $(cat "$d/stderr")"
}
# proxy_started PID LOG: tinyproxy PID listens (it logs its main loop
# only once its sockets are bound) within 10 s; false at once when it has
# exited (it could not bind)
proxy_started() {
	local deadline=$((SECONDS + 10))
	while kill -0 "$1" 2>/dev/null && ((SECONDS < deadline)); do
		grep -q "Starting main loop. Accepting connections." "$2" && return 0
		sleep 0.05
	done
	return 1
}
chmod o+x "$TEST_TMPDIR"
proxy_start main
MAIN_PROXY=$PROXY_URL MAIN_LOG=$PROXY_LOG
proxy_start refusing 10.255.255.254
REFUSING_PROXY=$PROXY_URL
proxy_start auth 127.0.0.1 "BasicAuth alice s3cr3tPW"
AUTH_PROXY=http://alice:s3cr3tPW@${PROXY_URL#http://} AUTH_LOG=$PROXY_LOG

# config [KEY=JSON...]
config() {
	local extra="{}" kv
	for kv in "$@"; do
		extra=$(jq -c --argjson v "${kv#*=}" --arg k "${kv%%=*}" '. + {($k): $v}' <<<"$extra")
	done
	jq -n --arg hub "$HUB_URL" --arg store "$STORE" --arg state "$STATE" \
		--arg sub "$(nixcache_url main)" --arg key "$NIX_FX_KEY" --argjson x "$extra" \
		'{floxhub_url: $hub, store_root: $store, state_dir: $state,
		  substituters: [$sub], trusted_public_keys: [$key],
		  fresh_seconds: 0, deadline_seconds: 60} + $x' >"$TEST_TMPDIR/config.json"
	export FLOX_RUNC_CONFIG=$TEST_TMPDIR/config.json
	rm -rf "$STATE" "$STORE"
}
proxied() { grep -c "$1" "$MAIN_LOG" || true; }
HUB_RE="GET http://127.0.0.1:$HUB_PORT/git/acme/floxmeta/info/refs"
CACHE_PORT=${CACHE_URL:=$(nixcache_url main)}
CACHE_PORT=${CACHE_PORT##*:}
CACHE_RE="GET http://127.0.0.1:$CACHE_PORT/[a-z0-9]*\.narinfo"
NAR_RE="GET http://127.0.0.1:$CACHE_PORT/nar/"

t_config_proxy() {
	config "http_proxy=\"$MAIN_PROXY\""
	: >"$MAIN_LOG"
	capture "$FLOX_RUNC" prefetch acme/hello
	assert_rc 0 "prefetch through the proxy: $CAP_ERR"
	[[ $(proxied "$HUB_RE") -ge 1 ]] || { diag "no FloxHub request in the proxy's log"; return 1; }
	[[ $(proxied "$CACHE_RE") -ge 1 ]] || { diag "no narinfo request in the proxy's log"; return 1; }
	[[ $(proxied "$NAR_RE") -ge 1 ]] || { diag "no NAR request in the proxy's log"; return 1; }
	[[ -e $STORE$(nixcache_path hello) ]] || { diag "hello was not substituted"; return 1; }
}

t_env_proxy() {
	config
	: >"$MAIN_LOG"
	capture env http_proxy="$MAIN_PROXY" "$FLOX_RUNC" prefetch acme/hello
	assert_rc 0 "prefetch through the environment's proxy: $CAP_ERR"
	[[ $(proxied "$HUB_RE") -ge 1 ]] || { diag "no FloxHub request in the proxy's log"; return 1; }
	[[ $(proxied "$NAR_RE") -ge 1 ]] || { diag "no NAR request in the proxy's log"; return 1; }
}

t_no_proxy() {
	config "http_proxy=\"$MAIN_PROXY\"" 'no_proxy="127.0.0.1"'
	: >"$MAIN_LOG"
	capture "$FLOX_RUNC" prefetch acme/hello
	assert_rc 0 "prefetch with no_proxy: $CAP_ERR"
	assert_eq 0 "$(proxied 'GET http')" "the proxy saw nothing"
}

t_proxy_down() {
	local port
	port=$(free_port)
	config "http_proxy=\"http://127.0.0.1:$port\""
	capture "$FLOX_RUNC" resolve --json acme/hello
	assert_rc 1 "a proxy that is down"
	assert_contains "$(tail -n 1 <<<"$CAP_ERR")" "through the proxy http://127.0.0.1:$port" "names the proxy"
}

t_proxy_refuses() {
	config "http_proxy=\"$REFUSING_PROXY\""
	capture "$FLOX_RUNC" resolve --json acme/hello
	assert_rc 1 "a proxy that refuses this client"
	assert_contains "$(tail -n 1 <<<"$CAP_ERR")" "$REFUSING_PROXY" "names the proxy"
}

# https through the proxy: a CONNECT tunnel (the proxy sees the host only)
t_https_connect() {
	local d=$TEST_TMPDIR/tlshub
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
		-addext subjectAltName=DNS:localhost -keyout "$d/key.pem" -out "$d/cert.pem" 2>/dev/null
	python3 "$HUB_PY/floxhub.py" --root "$HUB_ROOT" --port 0 --port-file "$d/port" \
		--tls-cert "$d/cert.pem" --tls-key "$d/key.pem" --log "$d/log" --quiet &
	cleanup_pid "$!"
	wait_for test -s "$d/port" || { diag "the TLS hub did not start"; return 1; }
	config "https_proxy=\"$MAIN_PROXY\"" "ca_file=\"$d/cert.pem\"" \
		"floxhub_url=\"https://localhost:$(cat "$d/port")\""
	: >"$MAIN_LOG"
	capture "$FLOX_RUNC" resolve --json acme/hello
	assert_rc 0 "resolved over https through the proxy: $CAP_ERR"
	[[ $(proxied "CONNECT localhost:$(cat "$d/port")") -ge 1 ]] || { diag "no CONNECT in the proxy's log"; return 1; }
	[[ -s $d/log ]] || { diag "the TLS hub saw no request"; return 1; }
}

# doctor: the path to FloxHub and to each substituter, and which one fails
t_doctor() {
	local line
	config "http_proxy=\"$MAIN_PROXY\""
	: >"$MAIN_LOG"
	capture "$FLOX_RUNC" doctor
	line=$(grep "FloxHub git service" <<<"$CAP_OUT")
	assert_contains "$line" "(through the proxy $MAIN_PROXY)" "FloxHub's path"
	line=$(grep "substituter $(nixcache_url main)" <<<"$CAP_OUT")
	assert_contains "$line" "ok       substituter $(nixcache_url main) is a binary cache for /nix/store (through the proxy $MAIN_PROXY)" "the cache's path"
	[[ $(proxied "GET http://127.0.0.1:$CACHE_PORT/nix-cache-info") -ge 1 ]] || { diag "doctor's cache check did not go through the proxy"; return 1; }
	# a proxy that is down: both checks fail, naming it
	local port
	port=$(free_port)
	config "http_proxy=\"http://127.0.0.1:$port\"" 'no_proxy="localhost"'
	capture "$FLOX_RUNC" doctor
	assert_contains "$(grep "FloxHub git service" <<<"$CAP_OUT")" "cannot reach $HUB_URL/git through the proxy http://127.0.0.1:$port" "FloxHub fails via the proxy"
	assert_contains "$(grep "substituter" <<<"$CAP_OUT")" "PROBLEM  substituter $(nixcache_url main): cannot reach" "the cache check fails"
	assert_contains "$(grep "substituter" <<<"$CAP_OUT")" "through the proxy http://127.0.0.1:$port" "naming the proxy"
	# no_proxy: direct, said so by saying nothing of a proxy
	config "http_proxy=\"http://127.0.0.1:$port\"" 'no_proxy="127.0.0.1"'
	capture "$FLOX_RUNC" doctor
	assert_contains "$(grep "substituter" <<<"$CAP_OUT")" "ok       substituter $(nixcache_url main) is a binary cache for /nix/store" "direct"
	assert_not_contains "$CAP_OUT" "through the proxy" "no proxy named"
}

# A proxy URL's password works (the proxy demands it) and is never shown:
# not by `flox-runc config`, not in the --log file, not on stderr.
t_proxy_credentials_hidden() {
	config "http_proxy=\"$AUTH_PROXY\""
	: >"$AUTH_LOG"
	rm -rf "$STATE" "$STORE"
	capture "$FLOX_RUNC" --debug --log "$TEST_TMPDIR/cred.log" prefetch acme/hello
	assert_rc 0 "prefetch through the authenticating proxy: $CAP_ERR"
	grep -q "GET http://127.0.0.1:$HUB_PORT/git/acme/floxmeta/info/refs" "$AUTH_LOG" ||
		{ diag "no FloxHub request in the authenticating proxy's log"; return 1; }
	assert_not_contains "$CAP_ERR$CAP_OUT$(cat "$TEST_TMPDIR/cred.log")" "s3cr3tPW" "prefetch's output and log"
	capture "$FLOX_RUNC" config
	assert_rc 0 "config: $CAP_ERR"
	assert_not_contains "$CAP_OUT$CAP_ERR" "s3cr3tPW" "config's output"
	assert_contains "$CAP_OUT" "http://***@127.0.0.1:" "config shows that credentials are set"
}

# A cache that demands HTTP basic credentials, given in its URL (the
# password percent-encoded, as a URL has it): nix-store gets the URL
# without them and the credentials in a root-only netrc file; a wrapper
# nix-store records its own /proc/PID/cmdline and environment.
t_cache_credentials() {
	local wrap=$TEST_TMPDIR/nixwrap bare enc sub real
	real=$(command -v nix-store)
	mkdir -p "$wrap"
	cat >"$wrap/nix-store" <<SH
#!/bin/sh
tr '\\0' '\\n' </proc/\$\$/cmdline >>"$wrap/cmdline"
tr '\\0' '\\n' </proc/\$\$/environ >>"$wrap/environ"
exec "$real" "\$@"
SH
	chmod +x "$wrap/nix-store"
	bare=$(nixcache_url authcache)
	enc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$CACHE_PW")
	sub=${bare/:\/\//://cacheuser:$enc@}
	# without the credentials the cache refuses: it really demands them
	config "substituters=[\"$bare\"]"
	capture "$FLOX_RUNC" prefetch acme/hello
	assert_rc 1 "no credentials, no packages"
	grep -q ' 401 ' "$(nixcache_log authcache)" || { diag "the cache answered no 401"; return 1; }
	config "substituters=$(jq -cn --arg s "$sub" '[$s]')"
	: >"$wrap/cmdline"
	: >"$wrap/environ"
	capture env PATH="$wrap:$PATH" "$FLOX_RUNC" --debug --log "$TEST_TMPDIR/cache-cred.log" prefetch acme/hello
	assert_rc 0 "prefetch from the authenticating cache: $CAP_ERR"
	[[ -e $STORE$(nixcache_path hello) ]] || { diag "hello was not substituted"; return 1; }
	grep -q ' GET /nar/.* 200 ' "$(nixcache_log authcache)" || { diag "no NAR served"; return 1; }
	[[ -s $wrap/cmdline ]] || { diag "the wrapper nix-store did not run"; return 1; }
	assert_contains "$(cat "$wrap/cmdline")" "$bare" "the cache's URL on the command line, bare"
	assert_contains "$(cat "$wrap/cmdline")" "netrc-file" "the credentials through a netrc file"
	local all
	all="$(cat "$wrap/cmdline" "$wrap/environ" "$TEST_TMPDIR/cache-cred.log")$CAP_OUT$CAP_ERR"
	for p in "$CACHE_PW" "$enc" cacheuser "cache pw"; do
		assert_not_contains "$all" "$p" "no $p on nix-store's command line, in its environment or flox-runc's output and log"
	done
	assert_eq 600 "$(stat -c %a "$STATE/secrets/netrc")" "the netrc file is 0600"
	assert_eq 700 "$(stat -c %a "$STATE/secrets")" "in a 0700 directory"
	# a failing cache: the error names it masked
	config "substituters=$(jq -cn --arg s "$sub" '[$s]')"
	nixcache_fault authcache '{"status": 500}'
	capture "$FLOX_RUNC" --log "$TEST_TMPDIR/cache-cred.log" prefetch acme/hello
	nixcache_fault authcache '{}'
	assert_rc 1 "a failing cache"
	assert_contains "$CAP_ERR" "${bare/:\/\//://***@}" "the cache named, masked"
	all="$(cat "$TEST_TMPDIR/cache-cred.log")$CAP_OUT$CAP_ERR"
	for p in "$CACHE_PW" "$enc" cacheuser; do
		assert_not_contains "$all" "$p" "no $p in the error or the log"
	done
	# no credentials any more: the netrc file goes
	config
	capture "$FLOX_RUNC" prefetch acme/hello
	assert_rc 0 "prefetch without credentials: $CAP_ERR"
	[[ ! -e $STATE/secrets/netrc ]] || { diag "the netrc file stayed"; return 1; }
}

tap_test "node config http_proxy: FloxHub and the cache through tinyproxy, prefetch works" t_config_proxy
tap_test "http_proxy in the environment: the same" t_env_proxy
tap_test "a proxy's password: used, never printed (config, --log, stderr)" t_proxy_credentials_hidden
tap_test "no_proxy bypasses the proxy" t_no_proxy
tap_test "a proxy that is down: one line naming it" t_proxy_down
tap_test "a proxy that refuses: one line naming it" t_proxy_refuses
tap_test "https_proxy: FloxHub over https through a CONNECT tunnel" t_https_connect
tap_test "doctor: the proxy path to FloxHub and the substituter, which one fails" t_doctor
tap_test "a cache demanding credentials: realised, the password on no command line, environment, log or error" t_cache_credentials
tap_done
