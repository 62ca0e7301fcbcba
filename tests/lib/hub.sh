# shellcheck shell=bash
#
# tests/lib/hub.sh - the test FloxHub (tests/hub/) for shell suites.
# Source after tests/lib/common.sh and tmpdir_setup.
#
#   hub_start                  start floxhub.py on 127.0.0.1 (own root, port,
#                              control file, request log); stopped at cleanup.
#                              Sets HUB_ROOT, HUB_URL (http://127.0.0.1:PORT),
#                              HUB_CTL, HUB_LOG, HUB_PID.
#   hub_stop                   stop it (the port then refuses connections).
#   hub_publish OWNER/NAME LOCKFILE [publish.py args...]
#                              publish a new generation; prints publish.py's JSON.
#   hub_switch OWNER/NAME N    make generation N live again.
#   hub_private OWNER          make OWNER's floxmeta private.
#   hub_token TOKEN OWNERS     accept TOKEN for OWNERS (comma separated).
#   hub_jwt EXP                print a JWT expiring at EXP (unix time).
#   hub_fault JSON             set the fault knobs (README of tests/hub).
#   hub_requests [REGEX]       number of requests logged so far (matching REGEX
#                              against the log line).
#   make_lock FILE [NAME=STOREPATH ...]
#                              a lockfile-version 1 manifest.lock with one
#                              store-path package per NAME for this system.

HUB_PY=${FLOX_RUNC_SRCDIR:?}/tests/hub

hub_start() {
	require_cmd python3 git
	HUB_ROOT=$TEST_TMPDIR/hub
	HUB_CTL=$TEST_TMPDIR/hub.ctl
	HUB_LOG=$TEST_TMPDIR/hub.log
	mkdir -p "$HUB_ROOT"
	: >"$HUB_LOG"
	rm -f "$TEST_TMPDIR/hub.port"
	python3 "$HUB_PY/floxhub.py" --root "$HUB_ROOT" --port "${HUB_PORT:-0}" \
		--port-file "$TEST_TMPDIR/hub.port" --control "$HUB_CTL" --log "$HUB_LOG" \
		--quiet &
	HUB_PID=$!
	cleanup_pid "$HUB_PID"
	wait_for test -s "$TEST_TMPDIR/hub.port" || die "the test hub did not start"
	HUB_PORT=$(cat "$TEST_TMPDIR/hub.port")
	HUB_URL=http://127.0.0.1:$HUB_PORT
}

hub_stop() {
	kill "$HUB_PID" 2>/dev/null || true
	wait "$HUB_PID" 2>/dev/null || true
}

hub_publish() {
	local ref=$1 lock=$2
	shift 2
	python3 "$HUB_PY/publish.py" publish --root "$HUB_ROOT" "$ref" --lock "$lock" "$@"
}

hub_switch() { python3 "$HUB_PY/publish.py" switch --root "$HUB_ROOT" "$1" "$2" >/dev/null; }
hub_private() { python3 "$HUB_PY/publish.py" private --root "$HUB_ROOT" "$1" >/dev/null; }
hub_token() { python3 "$HUB_PY/publish.py" token --root "$HUB_ROOT" "$1" --owners "$2" >/dev/null; }
hub_jwt() { python3 "$HUB_PY/publish.py" jwt --exp "$1"; }

hub_fault() {
	printf '%s\n' "$1" >"$HUB_CTL.new"
	mv "$HUB_CTL.new" "$HUB_CTL"
}

hub_requests() {
	if [[ $# -gt 0 ]]; then
		grep -cE -- "$1" "$HUB_LOG" || true
	else
		wc -l <"$HUB_LOG"
	fi
}

nix_system() {
	case $(uname -m) in
	x86_64) echo x86_64-linux ;;
	aarch64) echo aarch64-linux ;;
	*) echo "$(uname -m)-linux" ;;
	esac
}

make_lock() {
	local file=$1
	shift
	local sys pkgs="[]" kv name path
	sys=$(nix_system)
	for kv in "$@"; do
		name=${kv%%=*}
		path=${kv#*=}
		pkgs=$(jq -c --arg n "$name" --arg p "$path" --arg s "$sys" \
			'. + [{install_id: $n, store_path: $p, system: $s, priority: 5}]' <<<"$pkgs")
	done
	jq -n --argjson pkgs "$pkgs" '{"lockfile-version": 1,
		manifest: {version: 1, install: {}, vars: {GREETING: "hello"},
		           hook: {"on-activate": "echo activated >&2"}, options: {}},
		packages: $pkgs}' >"$file"
}
