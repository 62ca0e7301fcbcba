#!/usr/bin/env bash
#
# tests/integration/help.sh - `flox-runc --help` (and -h): flox-runc's own
# verbs and options first, then the real runtime's own help, byte for byte
# (runc and crun); a verb's --help stays the runtime's (passthrough).  TAP.
set -euo pipefail
# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
suite_needs --flox-runc runc crun jq
tmpdir_setup flox-runc-help

node_config() { # RUNTIME
	jq -n --arg rt "$(command -v "$1")" --arg st "$TEST_TMPDIR/state" \
		'{runtime: $rt, state_dir: $st}' >"$TEST_TMPDIR/config.json"
	export FLOX_RUNC_CONFIG=$TEST_TMPDIR/config.json
}

t_help() { # RUNTIME FLAG
	local rt=$1 flag=$2 path ours
	node_config "$rt"
	path=$(command -v "$rt")
	capture "$FLOX_RUNC" "$flag"
	assert_rc 0 "exit status"
	for verb in "resolve OWNER/NAME" "prefetch OWNER/NAME" "gc [--max-age" "doctor [--containerd-config" \
		"config" "install [--host-root DIR]"; do
		assert_contains "$CAP_OUT" "  $verb" "names $verb"
	done
	assert_contains "$CAP_OUT" "[--uninstall]" "install --uninstall"
	assert_contains "$CAP_OUT" "FLOX_RUNC_CONFIG" "the node configuration"
	assert_contains "$CAP_OUT" "The real runtime, $path:" "then the runtime"
	# what follows the heading is exactly the runtime's own --help
	ours=$(sed -n "/^The real runtime, /,\$p" "$CAP_OUT_FILE" | tail -n +3)
	"$rt" --help >"$TEST_TMPDIR/rt.help" 2>&1 || true
	assert_eq "$(cat "$TEST_TMPDIR/rt.help")" "$ours" "$rt --help follows unchanged"
	# flox-runc's part comes first
	assert_eq "flox-runc" "$(head -c 9 "$CAP_OUT_FILE")" "flox-runc's help first"
}

t_verb_help_passthrough() {
	node_config runc
	capture "$FLOX_RUNC" list --help
	local ours=$CAP_OUT rc=$CAP_RC
	capture runc list --help
	assert_eq "$CAP_RC" "$rc" "exit status of runc list --help"
	assert_eq "$CAP_OUT" "$ours" "flox-runc list --help is runc's"
	assert_not_contains "$ours" "flox-runc's own commands" "no flox-runc help on a verb"
}

t_no_runtime() {
	jq -n '{runtime: "/nonexistent/runc"}' >"$TEST_TMPDIR/config.json"
	export FLOX_RUNC_CONFIG=$TEST_TMPDIR/config.json
	capture "$FLOX_RUNC" --help
	assert_rc 1 "no runtime: exit 1"
	assert_contains "$CAP_OUT" "flox-runc's own commands" "its own help still printed"
	assert_contains "$CAP_ERR" "/nonexistent/runc" "the runtime's problem named"
}

tap_test "--help: flox-runc's verbs, then runc --help" t_help runc --help
tap_test "-h with crun: flox-runc's verbs, then crun --help" t_help crun -h
tap_test "a verb's --help is the runtime's" t_verb_help_passthrough
tap_test "--help with no real runtime: own help, then the error" t_no_runtime
tap_done
