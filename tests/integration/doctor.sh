#!/usr/bin/env bash
#
# tests/integration/doctor.sh - `flox-runc doctor` on a good node and on
# broken ones: a node config naming a missing runtime, an unreachable hub, a
# hub that answers 5xx, a URL that is no binary cache, a malformed key,
# containerd configs without the runtime / with the wrong runtime_type /
# without the pod annotations, the runtime registered in an `imports`
# drop-in (judged by the real containerd's `config dump`, and by following
# the imports when no containerd binary is there), a drop-in that makes
# containerd 1.x drop the node's CRI settings, a version 3 config that
# containerd 1.x does not read, CRI-O drop-ins with and without flox-runc, a
# private environment with no, a valid and an expired token, credentials in
# the hub and cache URLs (masked, never printed or logged), CRIU for
# checkpoint/restore (its `criu check` verdict, Debian's 3.17 and the one on
# PATH; a crun that reads no org.criu.config; allow_criu_config_annotation
# set: notes).  Each broken
# case must exit 1 with its own PROBLEM line; the good node exits 0.  Uses
# the test hub, the test binary cache on 127.0.0.1 and Debian's containerd
# (1.6: config version 2).  TAP; 77 = skipped (under CI=true: a failure).
set -euo pipefail
# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
suite_needs --root --flox-runc jq python3 git nix-store runc crun criu containerd
tmpdir_setup flox-runc-doctor

FIX=${FLOX_RUNC_NIX_FIXTURES:-/var/tmp/flox-runc-nix-fixtures}
bash "$SRCDIR/tests/nix/build-cache.sh" "$FIX" >/dev/null
bash "$SRCDIR/tests/nix/serve-cache.sh" "$FIX/cache" "$TEST_TMPDIR/cache.port" --quiet &
cleanup_pid $!
wait_for test -s "$TEST_TMPDIR/cache.port"
CACHE=http://127.0.0.1:$(cat "$TEST_TMPDIR/cache.port")
hub_start
make_lock "$TEST_TMPDIR/lock"
hub_publish secretcorp/tools "$TEST_TMPDIR/lock" >/dev/null
hub_private secretcorp
hub_token "tok-$TEST_ID" secretcorp
printf 'tok-%s\n' "$TEST_ID" >"$TEST_TMPDIR/token"
hub_jwt 1700000000 >"$TEST_TMPDIR/expired"

config() { # extra JSON merged into a good node config
	jq -n --arg rt "$(command -v runc)" --arg hub "$HUB_URL" --arg st "$TEST_TMPDIR/state" \
		--arg store "$TEST_TMPDIR/store" --arg sub "$CACHE" --arg key "$(cat "$FIX/key.pub")" \
		--argjson x "${1:-{\}}" \
		'{runtime: $rt, floxhub_url: $hub, state_dir: $st, store_root: $store,
		  substituters: [$sub], trusted_public_keys: [$key]} + $x' >"$TEST_TMPDIR/config.json"
	export FLOX_RUNC_CONFIG=$TEST_TMPDIR/config.json
}

containerd_conf() { # FILE RUNTIME_TYPE POD_ANNOTATIONS BINARY
	cat >"$1" <<TOML
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.flox]
  runtime_type = "$2"  # the stock runc shim
  pod_annotations = $3
  container_annotations = [
    "flox.dev/*",
  ]
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.flox.options]
    BinaryName = "$4"
    SystemdCgroup = true
TOML
}
GOOD_CD=$TEST_TMPDIR/containerd-good.toml
containerd_conf "$GOOD_CD" io.containerd.runc.v2 '["flox.dev/*"]' "$FLOX_RUNC"

doctor() { capture "$FLOX_RUNC" doctor --containerd-config "$GOOD_CD" "$@"; }

t_good() {
	config
	doctor --environment secretcorp/tools --token-file "$TEST_TMPDIR/token"
	assert_rc 0 "a good node"
	assert_contains "$CAP_OUT" "0 problems" "summary"
	assert_contains "$CAP_OUT" "ok       real runtime $(command -v runc): runc version" "runtime and version"
	assert_contains "$CAP_OUT" "ok       Nix: nix-store (Nix)" "Nix"
	# the closure hook as create chooses it: the static program beside
	# flox-runc (built whenever musl-gcc is there, as under CI), else a note
	if [[ -e $(dirname "$(readlink -f "$FLOX_RUNC")")/flox-runc-hook || ${CI:-} == true ]]; then
		assert_contains "$CAP_OUT" "ok       closure hook: $(dirname "$(readlink -f "$FLOX_RUNC")")/flox-runc-hook (a static program)" "the static closure hook"
	fi
	assert_contains "$CAP_OUT" "ok       environment secretcorp/tools is accessible with the token" "private environment with the token"
	assert_contains "$CAP_OUT" "ok       substituter $CACHE is a binary cache for /nix/store" "substituter"
	assert_contains "$CAP_OUT" "runtime \"flox\" runs flox-runc" "containerd registration"
	assert_contains "$CAP_OUT" "passes flox.dev/* pod annotations" "pod annotations"
	assert_not_contains "$CAP_OUT" "PROBLEM" "no problem"
	assert_contains "$CAP_OUT" "ok       checkpoint/restore: $(command -v criu) (Version: " "CRIU (tests/deps.sh installs one that works)"
	assert_not_contains "$CAP_OUT" "reads no org.criu.config" "runc reads org.criu.config"
	# a flox-runc alone, without the static hook beside it
	local lone=$TEST_TMPDIR/lone/flox-runc
	mkdir -p "${lone%/*}" && cp "$FLOX_RUNC" "$lone"
	capture "$lone" doctor --containerd-config "$GOOD_CD" --environment secretcorp/tools --token-file "$TEST_TMPDIR/token"
	assert_contains "$CAP_OUT" "note     closure hook: \`$lone bind-closure\`: no usable flox-runc-hook beside it" "a flox-runc without the static hook: a note"
	assert_contains "$CAP_OUT" "0 problems" "a note, not a problem"
}

# checkpoint/restore notes: doctor's verdict is criu check's own, for each
# criu found first on PATH (Debian 12's 3.17 in /usr/sbin fails on kernels
# from 6.13 on); crun 1.8.1 cannot checkpoint the hook's binds.
t_checkpoint() {
	local criu verdict
	config
	for criu in /usr/sbin/criu "$(command -v criu)"; do
		[[ -x "$criu" ]] || continue
		PATH="${criu%/*}:$PATH" capture "$FLOX_RUNC" doctor --containerd-config "$GOOD_CD"
		assert_rc 0 "CRIU findings are notes"
		if "$criu" check >/dev/null 2>&1; then
			assert_contains "$CAP_OUT" "ok       checkpoint/restore: $criu (" "$criu passes criu check"
		else
			verdict=$("$criu" check 2>&1 | grep -m1 Error || true)
			assert_contains "$CAP_OUT" "note     checkpoint/restore: \`$criu check\` fails on this kernel ($verdict" "$criu fails criu check"
		fi
	done
	config "$(jq -n --arg rt "$(command -v crun)" '{runtime: $rt}')"
	doctor
	assert_contains "$CAP_OUT" "note     checkpoint/restore: crun version $(crun --version | sed -n 's/^crun version //p') reads no org.criu.config (crun 1.26 does): a checkpoint of a container whose closure flox-runc's hook binds (closure_hook_min_paths $("$FLOX_RUNC" config | jq .closure_hook_min_paths) and more paths) fails; set closure_hook_min_paths to 1000000 where checkpoints matter" "crun"
	config "$(jq -n --arg rt "$(command -v crun)" '{runtime: $rt, closure_hook_min_paths: 1000000}')"
	doctor
	assert_not_contains "$CAP_OUT" "reads no org.criu.config" "crun without the hook"
	assert_not_contains "$CAP_OUT" "allow_criu_config_annotation" "no note by default"
	config '{"allow_criu_config_annotation": true}'
	doctor
	assert_contains "$CAP_OUT" "note     checkpoint/restore: allow_criu_config_annotation is true: a Flox container keeps its spec's org.criu.config" "a note where pods may choose CRIU's configuration"
}

expect_problem() { # TEXT
	assert_rc 1 "exit status on a problem"
	assert_contains "$CAP_OUT" "PROBLEM" "a PROBLEM line"
	assert_contains "$CAP_OUT" "$1" "the finding"
}

t_runtime_missing() {
	config '{"runtime": "/nonexistent/runc"}'
	doctor
	expect_problem "real runtime: the real runtime \`/nonexistent/runc\` named by the node config's \`runtime\` is not an executable file"
}

t_hub_unreachable() {
	config '{"floxhub_url": "http://127.0.0.1:1"}'
	doctor
	expect_problem "FloxHub git service http://127.0.0.1:1/git: cannot reach"
}

t_hub_status() {
	config
	# the test hub answers 404 at /git: reachable, but that proves nothing
	doctor
	assert_rc 0 "a 404 at the root is no problem"
	assert_contains "$CAP_OUT" "note     FloxHub git service $HUB_URL/git is reachable but answers HTTP 404 at its root" "said, not judged"
	assert_not_contains "$CAP_OUT" "ok       FloxHub git service" "a 404 is not \"answers\""
	# a failing hub: 503 on the service and on the environment's repository
	config "$(jq -n --arg g "$HUB_URL/git/acme/floxmeta" '{floxhub_git_url: $g}')"
	hub_fault '{"status": 503}'
	doctor
	hub_fault '{}'
	expect_problem "FloxHub git service $HUB_URL/git/acme/floxmeta answers HTTP 503: the hub is failing"
	config
	hub_fault '{"status": 502}'
	doctor --environment secretcorp/tools --token-file "$TEST_TMPDIR/token"
	hub_fault '{}'
	expect_problem "environment secretcorp/tools: "
	assert_contains "$CAP_OUT" "502" "the status named"
}

t_substituter_and_key() {
	config "$(jq -n --arg hub "$HUB_URL" '{substituters: [$hub], trusted_public_keys: ["k:short"]}')"
	doctor
	expect_problem "is not a Nix binary cache for /nix/store"
	assert_contains "$CAP_OUT" "trusted public key k: not \`name:base64 of 32 bytes\`" "malformed key"
}

t_containerd_broken() {
	config
	containerd_conf "$TEST_TMPDIR/cd.toml" io.containerd.runc.v1 '["flox.dev/*"]' "$FLOX_RUNC"
	capture "$FLOX_RUNC" doctor --containerd-config "$TEST_TMPDIR/cd.toml"
	expect_problem "has runtime_type io.containerd.runc.v1: set runtime_type = \"io.containerd.runc.v2\""
	containerd_conf "$TEST_TMPDIR/cd.toml" io.containerd.runc.v2 '[]' "$FLOX_RUNC"
	capture "$FLOX_RUNC" doctor --containerd-config "$TEST_TMPDIR/cd.toml"
	expect_problem "does not pass pod annotations: add pod_annotations = [\"flox.dev/*\"]"
	containerd_conf "$TEST_TMPDIR/cd.toml" io.containerd.runc.v2 '["flox.dev/*"]' /usr/sbin/runc
	capture "$FLOX_RUNC" doctor --containerd-config "$TEST_TMPDIR/cd.toml"
	expect_problem "no runtime has BinaryName pointing at this flox-runc"
	printf 'version = 2\n[plugins\n' >"$TEST_TMPDIR/cd.toml"
	capture "$FLOX_RUNC" doctor --containerd-config "$TEST_TMPDIR/cd.toml"
	expect_problem "a table header without ']'"
}

# containerd's own reading of a config and the file model without it
NOCD_PATH=$TEST_TMPDIR/nocd-bin
mkdir -p "$NOCD_PATH"
ln -s "$(command -v nix-store)" "$NOCD_PATH/nix-store"
doctor_nocd() { capture env PATH="$NOCD_PATH" "$FLOX_RUNC" doctor "$@"; }

runtime_table() { # PLUGIN-TABLE BINARY
	cat <<TOML
[$1.containerd.runtimes.flox]
  runtime_type = "io.containerd.runc.v2"
  pod_annotations = ["flox.dev/*"]
  container_annotations = ["flox.dev/*"]
  [$1.containerd.runtimes.flox.options]
    BinaryName = "$2"
TOML
}
V2='plugins."io.containerd.grpc.v1.cri"'
V3="plugins.'io.containerd.cri.v1.runtime'"

t_containerd_imports() {
	config
	local d=$TEST_TMPDIR/imports
	mkdir -p "$d/conf.d"
	printf 'version = 2\nimports = ["%s/conf.d/*.toml"]\n' "$d" >"$d/config.toml"
	{ echo "version = 2"; runtime_table "$V2" "$FLOX_RUNC"; } >"$d/conf.d/flox.toml"
	capture "$FLOX_RUNC" doctor --containerd-config "$d/config.toml"
	assert_rc 0 "registered in a drop-in: containerd's dump sees it"
	assert_contains "$CAP_OUT" "ok       containerd (\`containerd config dump\` of $d/config.toml): runtime \"flox\" runs flox-runc" "found through containerd"
	doctor_nocd --containerd-config "$d/config.toml"
	assert_rc 0 "registered in a drop-in: imports followed"
	assert_contains "$CAP_OUT" "ok       containerd ($d/conf.d/flox.toml): runtime \"flox\" runs flox-runc" "found in the drop-in"
	# a relative import, resolved against the importing file's directory
	printf 'version = 2\nimports = ["conf.d/flox.toml"]\n' >"$d/config.toml"
	doctor_nocd --containerd-config "$d/config.toml"
	assert_rc 0 "relative import"
	# not imported: not registered, whatever lies in the directory
	printf 'version = 2\n' >"$d/config.toml"
	doctor_nocd --containerd-config "$d/config.toml"
	expect_problem "containerd ($d/config.toml): no runtime has BinaryName pointing at this flox-runc"
	capture "$FLOX_RUNC" doctor --containerd-config "$d/config.toml"
	expect_problem "no runtime has BinaryName pointing at this flox-runc"
	# TOML flox-runc's reader does not take (a multi-line string) but
	# containerd does: containerd's reading counts, the rest is a note
	{
		printf 'version = 2\n[plugins."io.containerd.internal.v1.opt"]\n  path = """\n/opt/c"""\n'
		runtime_table "$V2" "$FLOX_RUNC"
	} >"$d/config.toml"
	containerd --config "$d/config.toml" config dump >/dev/null 2>&1 || die "containerd refuses the multi-line string"
	capture "$FLOX_RUNC" doctor --containerd-config "$d/config.toml"
	assert_rc 0 "containerd's reading counts"
	assert_contains "$CAP_OUT" "note     containerd config (followed by flox-runc's reader): $d/config.toml:3: multi-line strings are not supported here" "a note"
}

t_containerd_section_replaced() {
	config
	local d=$TEST_TMPDIR/replaced
	mkdir -p "$d/conf.d"
	# what the old DaemonSet did: the node's CRI settings in config.toml, the
	# runtime alone in a drop-in; containerd 1.6 then loses sandbox_image
	cat >"$d/config.toml" <<TOML
version = 2
imports = ["$d/conf.d/*.toml"]
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "example.com/pause:9"
TOML
	{ echo "version = 2"; runtime_table "$V2" "$FLOX_RUNC"; } >"$d/conf.d/flox.toml"
	containerd --config "$d/config.toml" config dump >"$d/dump" 2>/dev/null
	assert_not_contains "$(cat "$d/dump")" 'example.com/pause:9' "containerd 1.6 really drops it"
	capture "$FLOX_RUNC" doctor --containerd-config "$d/config.toml"
	expect_problem "containerd ($d/config.toml): its [plugins.\"io.containerd.grpc.v1.cri\"] settings are ignored: $d/conf.d/flox.toml replaces that whole section"
	doctor_nocd --containerd-config "$d/config.toml"
	assert_rc 0 "without containerd's version: a note, not a problem"
	assert_contains "$CAP_OUT" "note     containerd ($d/config.toml): its [plugins.\"io.containerd.grpc.v1.cri\"] settings are ignored by containerd 1.x" "a note"
}

t_containerd_v3() {
	config
	local d=$TEST_TMPDIR/v3
	mkdir -p "$d"
	{ echo "version = 3"; runtime_table "$V3" "$FLOX_RUNC"; } >"$d/config.toml"
	# containerd 2.x reads it: the file model says so
	doctor_nocd --containerd-config "$d/config.toml"
	assert_rc 0 "version 3 without containerd"
	assert_contains "$CAP_OUT" "runtime \"flox\" runs flox-runc" "found"
	# containerd 1.6 is here: it does not read version 3, and doctor says so
	capture "$FLOX_RUNC" doctor --containerd-config "$d/config.toml"
	expect_problem "config version 3, which containerd 1.x does not read"
	assert_contains "$CAP_OUT" "PROBLEM  containerd (\`containerd config dump\` of $d/config.toml): no runtime has BinaryName" "the dump has no runtime"
	# a version 3 table in a version 2 config is not read either
	{ echo "version = 2"; runtime_table "$V3" "$FLOX_RUNC"; } >"$d/config.toml"
	doctor_nocd --containerd-config "$d/config.toml"
	expect_problem "is registered under plugins.\"io.containerd.cri.v1.runtime\", which a config of version 2 does not read"
}

t_crio() {
	config
	cat >"$TEST_TMPDIR/crio.conf" <<TOML
[crio.runtime.runtimes.flox]
runtime_path = "$FLOX_RUNC"
runtime_type = "oci"
runtime_root = "/run/flox-runc"
TOML
	capture "$FLOX_RUNC" doctor --containerd-config "$GOOD_CD" --crio-config "$TEST_TMPDIR/crio.conf"
	assert_rc 0 "CRI-O registration"
	assert_contains "$CAP_OUT" "CRI-O ($TEST_TMPDIR/crio.conf): runtime \"flox\" runs flox-runc" "found"
	sed -i 's|^runtime_path = .*|runtime_path = "/usr/sbin/runc"|' "$TEST_TMPDIR/crio.conf"
	capture "$FLOX_RUNC" doctor --containerd-config "$GOOD_CD" --crio-config "$TEST_TMPDIR/crio.conf"
	expect_problem "CRI-O: no [crio.runtime.runtimes.<name>] has runtime_path pointing at this flox-runc"
}

t_private_env() {
	config
	doctor --environment secretcorp/tools
	expect_problem "private environments need the floxhub-token secret"
	doctor --environment secretcorp/tools --token-file "$TEST_TMPDIR/expired"
	expect_problem "token: the FloxHub token in the floxhub-token secret expired at 2023-11-14T22:13:20Z"
}

# Credentials in the hub's and the caches' URLs: doctor shows them masked as
# `flox-runc config` does, on ok and on PROBLEM lines, and never writes the
# passwords to stdout, stderr or the --log file.
t_credentials() {
	local pw=hubpw-$TEST_ID cpw=cachepw-$TEST_ID dpw=deadpw-$TEST_ID log=$TEST_TMPDIR/doctor-creds.log
	: >"$log"
	config "$(jq -n --arg g "${HUB_URL/:\/\//://hubuser:$pw@}/git" \
		--arg s "${CACHE/:\/\//://cacheuser:$cpw@}" --arg d "http://deaduser:$dpw@127.0.0.1:1" \
		'{floxhub_git_url: $g, substituters: [$s, $d]}')"
	capture "$FLOX_RUNC" --log "$log" doctor --containerd-config "$GOOD_CD"
	expect_problem "substituter http://***@127.0.0.1:1: cannot reach"
	assert_contains "$CAP_OUT" "FloxHub git service ${HUB_URL/:\/\//://***@}/git" "the hub, masked"
	assert_contains "$CAP_OUT" "ok       substituter ${CACHE/:\/\//://***@} is a binary cache" "the cache, masked"
	local all
	all="$CAP_OUT$CAP_ERR$(cat "$log")"
	for p in "$pw" "$cpw" "$dpw" hubuser cacheuser deaduser; do
		assert_not_contains "$all" "$p" "no $p in stdout, stderr or the log"
	done
	# the hub answering 503 to a URL with credentials: the PROBLEM line too
	config "$(jq -n --arg g "${HUB_URL/:\/\//://hubuser:$pw@}/git/acme/floxmeta" '{floxhub_git_url: $g}')"
	hub_fault '{"status": 503}'
	capture "$FLOX_RUNC" --log "$log" doctor --containerd-config "$GOOD_CD"
	hub_fault '{}'
	expect_problem "FloxHub git service ${HUB_URL/:\/\//://***@}/git/acme/floxmeta answers HTTP 503"
	all="$CAP_OUT$CAP_ERR$(cat "$log")"
	assert_not_contains "$all" "$pw" "no hub password on a 503"
}

t_bad_node_config() {
	printf '{"runtim": "runc"}\n' >"$TEST_TMPDIR/config.json"
	export FLOX_RUNC_CONFIG=$TEST_TMPDIR/config.json
	doctor
	assert_rc 1 "unknown key"
	assert_contains "$CAP_OUT$CAP_ERR" "unknown key \`runtim\`" "names the key"
}

tap_test "a good node: no problem" t_good
tap_test "checkpoint/restore: criu check's verdict, crun without org.criu.config, allow_criu_config_annotation (notes)" t_checkpoint
tap_test "node config naming a missing runtime" t_runtime_missing
tap_test "unreachable hub" t_hub_unreachable
tap_test "hub: 404 at the root is a note, 5xx a problem" t_hub_status
tap_test "a URL that is no binary cache, a malformed key" t_substituter_and_key
tap_test "containerd: wrong type, no annotations, no flox-runc, unparsable" t_containerd_broken
tap_test "containerd: runtime in an imports drop-in, found (dump and imports)" t_containerd_imports
tap_test "containerd 1.x: a drop-in that replaces the CRI section" t_containerd_section_replaced
tap_test "containerd: config version 3" t_containerd_v3
tap_test "CRI-O drop-in with and without flox-runc" t_crio
tap_test "private environment: no token, expired token" t_private_env
tap_test "node config with an unknown key" t_bad_node_config
tap_test "credentials in the hub and cache URLs are masked, never printed or logged" t_credentials
tap_done
