#!/usr/bin/env bash
#
# tests/integration/install.sh - `flox-runc install` against real host roots
# and the real containerd (Debian 12: containerd 1.6, which reads config
# versions 1 and 2, not 3).  Each host root is a directory holding the
# node's containerd binary and the libraries it needs, so the installer's
# validation runs the real `containerd config dump` inside it (chroot), as
# it does on a node.
#
# Layouts found in the wild, each installed, checked with containerd's own
# reading, installed a second time (nothing changes, byte for byte) and
# uninstalled (the host root is byte for byte what it was):
#   1. a single config.toml (version 2) with the node's CRI settings: the
#      runtime is appended after them, the runc runtime's options copied;
#   2. `imports` already present, the CRI settings in a drop-in: the runtime
#      goes into that drop-in (containerd 1.x lets an import replace a whole
#      plugin section), `imports` stays one key, config.toml is untouched;
#      `imports` present and no CRI section anywhere: config.toml;
#   3. a table on the first line (no `version`: containerd reads version 1);
#   4. no config.toml at all;
#   5. version 3, which containerd 1.6 does not read: validation fails and
#      every file is put back; a configuration containerd refuses: the same;
#      version 3 with a MOCK containerd 2.x (named so: none can be installed
#      here): a drop-in, `imports` added after `version` or the drop-in put
#      in the directory an existing import names.
# Then: a runtime of that name defined by hand (refused, nothing changed),
# a file changed after installing (uninstall removes only flox-runc's
# block), --node-config (validated, installed), --restart-command, CRI-O
# (drop-in; validated by reading: no crio here).
# End to end: the installer registers flox-runc with a containerd whose
# config lives in a host root; that containerd (its /usr/local/bin the host
# root's, in a private mount namespace) runs a Flox pod through the
# runtime `flox` over the CRI API.  And the DaemonSet of
# docs/kubernetes/daemonset.yaml: its image is built with
# tests/tools/mkimage-installer.sh, and its install container is run by
# containerd (ctr) with the volumes the manifest declares, against a test
# host root.
#
# Environment: FLOX_RUNC, FLOX_RUNC_SRCDIR (meson).  Root only.  TAP.
set -euo pipefail

# shellcheck source=tests/lib/suite.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
suite_needs --root --flox-runc --nix chroot unshare ldd python3 sha256sum cmp git busybox jq bash-static
engines_require_cri
python3 -c 'import yaml' 2>/dev/null || skip_all "python3-yaml is needed to read daemonset.yaml (apt-get install python3-yaml)"
tmpdir_setup flox-runc-install
unset FLOX_RUNC_CONFIG

# ------------------------------------------------------------------ helpers

# A host root with the node's containerd and what it needs to run.
BASE=$TEST_TMPDIR/host-base
mkdir -p "$BASE/etc" "$BASE/usr/bin"
cp "$(command -v containerd)" "$BASE/usr/bin/containerd"
while read -r lib; do
	mkdir -p "$BASE$(dirname "$lib")"
	cp -L "$lib" "$BASE$lib"
done < <(ldd "$(command -v containerd)" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')

# new_host NAME: a fresh host root (hard links to the base's binaries).
new_host() {
	local h=$TEST_TMPDIR/$1
	rm -rf "$h"
	cp -al "$BASE" "$h"
	echo "$h"
}

# snapshot H: every path with its type and mode, and every file's sha256.
snapshot() {
	(cd "$1" && find . -printf '%p %y %m\n' | LC_ALL=C sort && find . -type f -exec sha256sum {} + | LC_ALL=C sort)
}

# the static closure hook beside flox-runc (cmd/flox-runc-hook), which
# install puts beside the installed binary; built whenever musl-gcc is
# there, as under CI
HOOK=$(dirname "$FLOX_RUNC")/flox-runc-hook
check_hook() { # H: the hook installed beside the binary
	if [[ -e $HOOK || ${CI:-} == true ]]; then
		cmp "$HOOK" "$1/usr/local/bin/flox-runc-hook" || die "the installed closure hook differs"
		[[ $(stat -c %a "$1/usr/local/bin/flox-runc-hook") == 755 ]] || die "the closure hook's mode"
	fi
}

install_() { # H ARGS...
	local h=$1
	shift
	capture "$FLOX_RUNC" install --host-root "$h" --no-restart "$@"
}

# dump H: containerd's own reading of H's configuration, inside H.
dump() { chroot "$1" containerd --config /etc/containerd/config.toml config dump 2>/dev/null || true; }

# full cycle H: install, check idempotence and uninstall; the caller checks
# containerd's reading in between through the function named by $2.
cycle() { # H CHECK-FUNCTION
	local h=$1 before after
	before=$(snapshot "$h")
	install_ "$h"
	assert_rc 0 "install"
	assert_contains "$CAP_OUT" "containerd validated the configuration" "validated by containerd"
	cmp "$FLOX_RUNC" "$h/usr/local/bin/flox-runc" || die "the installed binary differs"
	check_hook "$h"
	"$2" "$h"
	after=$(snapshot "$h")
	install_ "$h"
	assert_rc 0 "second install"
	assert_contains "$CAP_OUT" "nothing to change" "second install: nothing to do"
	assert_eq "$after" "$(snapshot "$h")" "second install changes nothing, byte for byte"
	install_ "$h" --uninstall
	assert_rc 0 "uninstall"
	assert_eq "$before" "$(snapshot "$h")" "uninstall restores the host root byte for byte"
	assert_not_contains "$(dump "$h")" "runtimes.flox]" "containerd has no flox runtime after uninstall"
}

# registered H [SANDBOX-IMAGE]: containerd's dump has runtime flox with
# flox-runc and the flox.dev annotations (and keeps the node's sandbox_image).
registered() {
	local d
	d=$(dump "$1")
	assert_contains "$d" '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.flox]' "runtime flox in containerd's reading"
	assert_contains "$d" 'BinaryName = "/usr/local/bin/flox-runc"' "BinaryName"
	assert_contains "$d" 'pod_annotations = ["flox.dev/*"]' "pod annotations"
	if [[ -n "${2:-}" ]]; then
		assert_contains "$d" "sandbox_image = \"$2\"" "the node's CRI settings are kept"
	fi
}

CRI_SETTINGS='[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "example.com/pause:7"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = true'

# ------------------------------------------------------------ the layouts

check_single() {
	registered "$1" example.com/pause:7
	# the runc runtime's options go to flox too (SystemdCgroup must match)
	local d
	d=$(dump "$1" | sed -n '/runtimes.flox.options\]/,/^$/p')
	assert_contains "$d" "SystemdCgroup = true" "runc's SystemdCgroup copied"
	# appended after the node's own text, which is unchanged
	cmp -n "$(stat -c %s "$TEST_TMPDIR/orig.toml")" "$TEST_TMPDIR/orig.toml" "$1/etc/containerd/config.toml" ||
		die "the node's text was changed, not appended to"
}

t_single() {
	local h
	h=$(new_host single)
	mkdir -p "$h/etc/containerd"
	printf 'version = 2\nroot = "/var/lib/containerd"\n\n%s\n' "$CRI_SETTINGS" >"$h/etc/containerd/config.toml"
	chmod 0600 "$h/etc/containerd/config.toml"
	cp "$h/etc/containerd/config.toml" "$TEST_TMPDIR/orig.toml"
	cycle "$h" check_single
}

check_imports() {
	registered "$1" example.com/pause:7
	assert_eq 1 "$(grep -c '^imports' "$1/etc/containerd/config.toml")" "one imports key"
	cmp "$TEST_TMPDIR/orig.toml" "$1/etc/containerd/config.toml" || die "config.toml was changed"
	assert_contains "$(cat "$1/etc/containerd/conf.d/10-cri.toml")" "# flox-runc: begin" "the runtime went into the drop-in with the CRI section"
}

t_imports() {
	local h
	h=$(new_host imports)
	mkdir -p "$h/etc/containerd/conf.d"
	printf 'version = 2\nimports = ["/etc/containerd/conf.d/*.toml"]\n' >"$h/etc/containerd/config.toml"
	printf 'version = 2\n%s\n' "$CRI_SETTINGS" >"$h/etc/containerd/conf.d/10-cri.toml"
	printf 'version = 2\n[plugins."io.containerd.internal.v1.opt"]\n  path = "/opt/containerd"\n' >"$h/etc/containerd/conf.d/20-opt.toml"
	cp "$h/etc/containerd/config.toml" "$TEST_TMPDIR/orig.toml"
	cycle "$h" check_imports
}

check_imports_nocri() {
	registered "$1"
	assert_eq 1 "$(grep -c '^imports' "$1/etc/containerd/config.toml")" "one imports key"
	assert_contains "$(cat "$1/etc/containerd/config.toml")" "# flox-runc: begin" "the runtime went into config.toml"
}

t_imports_nocri() {
	local h
	h=$(new_host imports-nocri)
	mkdir -p "$h/etc/containerd/conf.d"
	printf 'version = 2\nimports = [\n  "/etc/containerd/conf.d/*.toml",\n]\n' >"$h/etc/containerd/config.toml"
	printf 'version = 2\n[plugins."io.containerd.internal.v1.opt"]\n  path = "/opt/containerd"\n' >"$h/etc/containerd/conf.d/20-opt.toml"
	cycle "$h" check_imports_nocri
}

check_first_line() {
	local d
	d=$(dump "$1")
	assert_contains "$d" '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.flox]' "runtime flox read (version 1 names)"
	assert_contains "$d" 'sandbox_image = "example.com/pause:8"' "the node's settings kept"
	assert_eq '[plugins.cri]' "$(head -1 "$1/etc/containerd/config.toml")" "the first line is still the table"
	assert_contains "$(cat "$1/etc/containerd/config.toml")" "[plugins.cri.containerd.runtimes.flox]" "version 1 table names"
}

t_first_line() {
	local h
	h=$(new_host first-line)
	mkdir -p "$h/etc/containerd"
	printf '[plugins.cri]\n  sandbox_image = "example.com/pause:8"\n' >"$h/etc/containerd/config.toml"
	cycle "$h" check_first_line
}

check_missing() {
	registered "$1"
	assert_eq "version = 2" "$(head -1 "$1/etc/containerd/config.toml")" "a version 2 config (containerd 1.6)"
}

t_missing() {
	local h
	h=$(new_host missing)
	cycle "$h" check_missing
	[[ ! -e "$h/etc/containerd" ]] || die "/etc/containerd left behind"
}

t_v3_unreadable() {
	local h before
	h=$(new_host v3)
	mkdir -p "$h/etc/containerd"
	printf 'version = 3\nroot = "/var/lib/containerd"\n\n[plugins.'"'"'io.containerd.cri.v1.images'"'"']\n  snapshotter = "overlayfs"\n' >"$h/etc/containerd/config.toml"
	before=$(snapshot "$h")
	install_ "$h"
	assert_rc 1 "containerd 1.6 does not read version 3"
	assert_contains "$CAP_ERR" "containerd does not read the runtime as written" "said"
	assert_contains "$CAP_ERR" "nothing changed on the node" "and undone"
	assert_eq "$before" "$(snapshot "$h")" "every file put back"
	# a configuration containerd refuses outright
	printf 'version = 2\noom_score = "high"\n' >"$h/etc/containerd/config.toml"
	before=$(snapshot "$h")
	install_ "$h"
	assert_rc 1 "refused configuration"
	assert_contains "$CAP_ERR" "containerd does not accept the configuration" "containerd's refusal"
	assert_eq "$before" "$(snapshot "$h")" "every file put back"
}

# MOCK containerd 2.x: Debian 12 has only containerd 1.6, which does not read
# config version 3.  It answers --version as 2.0 and `config dump` with the
# root config followed by the files under /etc/containerd/*/ (what its
# imports name here), `version` lines dropped: enough for the installer to
# find the runtime; what containerd 2 itself makes of the files is not
# tested here (the unit tests check the edits, docs say so).
mock_containerd2() { # H
	mkdir -p "$1/bin"
	cp /bin/busybox "$1/bin/busybox"
	for a in sh cat sed; do ln -sf busybox "$1/bin/$a"; done
	rm -f "$1/usr/bin/containerd"
	cat >"$1/usr/bin/containerd" <<'SH'
#!/bin/sh
# MOCK of containerd 2.x (tests/integration/install.sh)
[ "$1" = --version ] && { echo "containerd github.com/containerd/containerd v2.0.0 mock"; exit 0; }
[ "$1 $3 $4" = "--config config dump" ] || exit 2
cat "$2" || exit 1
for f in /etc/containerd/*/*.toml; do [ -f "$f" ] && { echo; sed '/^version/d' "$f"; }; done
exit 0
SH
	chmod 0755 "$1/usr/bin/containerd"
}

check_v3() {
	local c=$1/etc/containerd/config.toml
	assert_eq $'version = 3\nimports = ["/etc/containerd/conf.d/*.toml"]\nroot = "/var/lib/containerd"' "$(head -3 "$c")" "imports added after version, before any table"
	assert_contains "$(cat "$1/etc/containerd/conf.d/flox-runc.toml")" "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.flox]" "a version 3 drop-in"
	assert_eq "version = 3" "$(head -1 "$1/etc/containerd/conf.d/flox-runc.toml")" "the drop-in's version"
}

check_v3_imports() {
	cmp "$TEST_TMPDIR/orig.toml" "$1/etc/containerd/config.toml" || die "config.toml changed: its imports already cover the drop-in"
	[[ -f "$1/etc/containerd/config.d/flox-runc.toml" ]] || die "the drop-in is not in the imported directory"
}

t_v3_mock() {
	local h
	h=$(new_host v3-mock)
	mock_containerd2 "$h"
	mkdir -p "$h/etc/containerd"
	printf 'version = 3\nroot = "/var/lib/containerd"\n\n[plugins.'"'"'io.containerd.cri.v1.images'"'"']\n  snapshotter = "overlayfs"\n' >"$h/etc/containerd/config.toml"
	cycle "$h" check_v3
	# imports already naming a directory: the drop-in goes there
	printf 'version = 3\nimports = ["/etc/containerd/config.d/*.toml"]\n[plugins.x]\n  a = 1\n' >"$h/etc/containerd/config.toml"
	mkdir -p "$h/etc/containerd/config.d"
	cp "$h/etc/containerd/config.toml" "$TEST_TMPDIR/orig.toml"
	cycle "$h" check_v3_imports
}

t_conflict() {
	local h before
	h=$(new_host conflict)
	mkdir -p "$h/etc/containerd"
	printf 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.flox]\n  runtime_type = "io.containerd.runc.v2"\n' >"$h/etc/containerd/config.toml"
	before=$(snapshot "$h")
	install_ "$h"
	assert_rc 1 "a hand-made runtime flox"
	assert_contains "$CAP_ERR" "/etc/containerd/config.toml:2 already defines the containerd runtime \"flox\"" "names it"
	assert_eq "$before" "$(snapshot "$h")" "nothing changed"
	install_ "$h" --runtime-name flox-runc
	assert_rc 0 "another name"
	assert_contains "$(dump "$h")" "runtimes.flox-runc]" "registered under that name"
}

t_changed_then_uninstalled() {
	local h
	h=$(new_host changed)
	mkdir -p "$h/etc/containerd"
	printf 'version = 2\n' >"$h/etc/containerd/config.toml"
	install_ "$h"
	assert_rc 0 "install"
	printf '# the admin was here\n' >>"$h/etc/containerd/config.toml"
	install_ "$h" --uninstall
	assert_rc 0 "uninstall"
	assert_contains "$CAP_OUT" "/etc/containerd/config.toml changed since flox-runc was installed: only flox-runc's block is removed" "said"
	assert_eq $'version = 2\n# the admin was here' "$(cat "$h/etc/containerd/config.toml")" "the admin's line stays, the block goes"
	[[ ! -e "$h/usr/local/bin/flox-runc" && ! -e "$h/usr/local/bin/flox-runc-hook" ]] || die "binary left"
}

# a flox-runc without the closure hook beside it (a build without musl):
# an older hook on the node goes, it would run with this flox-runc's
# arguments; uninstall puts it back
t_no_hook() {
	local h bin=$TEST_TMPDIR/nohook/flox-runc before
	h=$(new_host no-hook)
	mkdir -p "$h/etc/containerd" "$h/usr/local/bin" "${bin%/*}"
	printf 'version = 2\n\n%s\n' "$CRI_SETTINGS" >"$h/etc/containerd/config.toml"
	printf 'an older hook\n' >"$h/usr/local/bin/flox-runc-hook"
	chmod 0755 "$h/usr/local/bin/flox-runc-hook"
	cp "$FLOX_RUNC" "$bin"
	before=$(snapshot "$h")
	install_ "$h" --binary "$bin"
	assert_rc 0 "install"
	cmp "$bin" "$h/usr/local/bin/flox-runc" || die "the installed binary differs"
	[[ ! -e "$h/usr/local/bin/flox-runc-hook" ]] || die "the older closure hook was left beside the new flox-runc"
	install_ "$h" --uninstall
	assert_rc 0 "uninstall"
	assert_eq "$before" "$(snapshot "$h")" "uninstall restores the host root byte for byte, the older hook too"
}

t_node_config() {
	local h
	h=$(new_host node-config)
	printf '{"runtim": "/usr/sbin/runc"}\n' >"$TEST_TMPDIR/bad.json"
	install_ "$h" --node-config "$TEST_TMPDIR/bad.json"
	assert_rc 1 "an invalid node config"
	assert_contains "$CAP_ERR" "unknown key \`runtim\`" "names the key"
	[[ ! -e "$h/usr/local/bin/flox-runc" && ! -e "$h/etc/flox-runc" ]] || die "something was installed"
	printf '{"runtime": "/usr/sbin/runc"}\n' >"$TEST_TMPDIR/good.json"
	install_ "$h" --node-config "$TEST_TMPDIR/good.json"
	assert_rc 0 "a valid node config"
	cmp "$TEST_TMPDIR/good.json" "$h/etc/flox-runc/config.json" || die "node config not installed"
	assert_contains "$CAP_OUT" "WARNING  the node has no nix-store" "the node's requirements checked"
	assert_contains "$CAP_OUT" "WARNING  the node config's \`runtime\` /usr/sbin/runc is not on the node" "the runtime the config names"
	assert_contains "$CAP_OUT" "WARNING  the node has no /bin/bash-static (the node config's \`bash\`)" "bash-static checked"
	# a node that has them: no warning (the test machine's own files)
	mkdir -p "$h/bin" "$h/usr/sbin" "$h/usr/bin"
	cp "$(command -v runc)" "$h/usr/sbin/runc"
	host_nix "$h"
	install_ "$h"
	assert_rc 0 "again"
	assert_not_contains "$CAP_OUT" "WARNING" "nothing missing"
}

# host_nix H: the test machine's nix-store (the `nix` binary under that
# name) and its libraries in H, a user name for Nix, a static bash: a
# node where Nix works (inside H, by chroot, as the installer runs it).
host_nix() {
	local h=$1 lib
	mkdir -p "$h/usr/bin" "$h/bin" "$h/etc" "$h/tmp"
	cp "$(readlink -f "$(command -v nix-store)")" "$h/usr/bin/nix-store"
	while read -r lib; do
		mkdir -p "$h$(dirname "$lib")"
		cp -L --remove-destination "$lib" "$h$lib"
	done < <(ldd "$(command -v nix-store)" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
	grep '^root:' /etc/passwd >"$h/etc/passwd"
	cp "$(command -v bash-static)" "$h/bin/bash-static"
}

# The node's static bash: added to the node's store by the install and
# rooted by a node-level GC root (so no Flox create pays `nix-store --add`),
# which Nix's GC keeps; found by a second install; released by --uninstall.
t_node_bash() {
	local h pkg st=/var/lib/test-store
	h=$(new_host node-bash)
	host_nix "$h"
	printf '{"store_root": "%s"}\n' "$st" >"$TEST_TMPDIR/nb.json"
	install_ "$h" --node-config "$TEST_TMPDIR/nb.json"
	assert_rc 0 "install"
	assert_contains "$CAP_OUT" "ok       /bin/bash-static added to the node's store as /nix/store/" "said"
	pkg=$(readlink "$h$st/nix/var/nix/gcroots/flox-runc/node/bash/0") || die "no node GC root for the bash"
	[[ "$pkg" =~ ^/nix/store/[0-9a-z]{32}-flox-runc-bash$ ]] || die "root names $pkg"
	cmp "$h/bin/bash-static" "$h$st$pkg/bin/bash" || die "not the node's bash in the store"
	assert_eq "$pkg" "$(jq -r .path "$h/var/lib/flox-runc/bash.json")" "bash.json names it"
	assert_not_contains "$CAP_OUT" "rooted after the add" "the path computed is the one Nix made"
	install_ "$h"
	assert_rc 0 "again"
	assert_contains "$CAP_OUT" "/bin/bash-static already in the node's store as $pkg" "found, not added again"
	chroot "$h" /usr/bin/nix-store --store "$st" --gc >/dev/null 2>&1 || die "nix-store --gc"
	[[ -e "$h$st$pkg/bin/bash" ]] || die "Nix's GC took the rooted bash"
	install_ "$h" --uninstall
	assert_rc 0 "uninstall"
	assert_contains "$CAP_OUT" "the node's bash is no longer rooted" "said"
	[[ ! -e "$h$st/nix/var/nix/gcroots/flox-runc/node/bash" && ! -e "$h/var/lib/flox-runc/bash.json" ]] ||
		die "root or bash.json left"
	chroot "$h" /usr/bin/nix-store --store "$st" --gc >/dev/null 2>&1 || die "nix-store --gc"
	[[ ! -e "$h$st$pkg" ]] || die "the released bash stayed"
}

t_restart_command() {
	local h
	h=$(new_host restart)
	capture "$FLOX_RUNC" install --host-root "$h" \
		--restart-command "echo \"\$FLOX_RUNC_ENGINE \$FLOX_RUNC_HOST_ROOT\" >>'$TEST_TMPDIR/restarts'"
	assert_rc 0 "install"
	assert_eq "containerd $h" "$(cat "$TEST_TMPDIR/restarts")" "the hook ran once, for containerd"
	assert_contains "$CAP_OUT" "containerd restarted (--restart-command)" "said"
	capture "$FLOX_RUNC" install --host-root "$h" --restart-command "echo again >>'$TEST_TMPDIR/restarts'"
	assert_eq "containerd $h" "$(cat "$TEST_TMPDIR/restarts")" "nothing changed: no restart"
	capture "$FLOX_RUNC" install --host-root "$h" --uninstall --restart-command "exit 3"
	assert_rc 1 "a failing hook"
	assert_contains "$CAP_ERR" "--restart-command for containerd failed (status 3)" "said"
	# no systemd in a host root without /run/systemd/system: a note
	install_ "$h"
	capture "$FLOX_RUNC" install --host-root "$h" --uninstall
	assert_rc 0 "uninstall"
	assert_contains "$CAP_OUT" "containerd not restarted: the node does not run systemd" "said"
}

t_crio() {
	local h before
	h=$TEST_TMPDIR/crio-host
	mkdir -p "$h/etc/crio"
	printf '[crio.runtime]\ndefault_runtime = "runc"\n' >"$h/etc/crio/crio.conf"
	before=$(snapshot "$h")
	install_ "$h"
	assert_rc 0 "install for CRI-O"
	assert_contains "$CAP_OUT" "CRI-O: runtime \"flox\" runs /usr/local/bin/flox-runc" "validated by reading"
	assert_contains "$(cat "$h/etc/crio/crio.conf.d/50-flox-runc.conf")" 'runtime_path = "/usr/local/bin/flox-runc"' "drop-in"
	local after
	after=$(snapshot "$h")
	install_ "$h"
	assert_contains "$CAP_OUT" "nothing to change" "idempotent"
	assert_eq "$after" "$(snapshot "$h")" "byte for byte"
	install_ "$h" --uninstall
	assert_eq "$before" "$(snapshot "$h")" "uninstalled byte for byte"
	mkdir -p "$h/etc/crio/crio.conf.d"
	printf '[crio.runtime.runtimes.flox]\nruntime_path = "/usr/bin/runc"\n' >"$h/etc/crio/crio.conf.d/60-mine.conf"
	install_ "$h"
	assert_rc 1 "a runtime flox of the admin's"
	assert_contains "$CAP_ERR" "/etc/crio/crio.conf.d/60-mine.conf:1 already defines the CRI-O runtime \"flox\"" "names it"
}

tap_test "a single config.toml (version 2)" t_single
tap_test "imports present, CRI settings in a drop-in" t_imports
tap_test "imports present (multi-line list), no CRI section" t_imports_nocri
tap_test "a table on the first line (version 1)" t_first_line
tap_test "no config.toml" t_missing
tap_test "version 3 and a refused config: validation fails, files put back" t_v3_unreadable
tap_test "version 3 with a MOCK containerd 2.x: drop-in and imports" t_v3_mock
tap_test "a runtime flox defined by hand" t_conflict
tap_test "uninstall after the admin changed the file" t_changed_then_uninstalled
tap_test "--node-config and the node's requirements" t_node_config
tap_test "a flox-runc without the closure hook beside it" t_no_hook
tap_test "the node's bash in its store, rooted" t_node_bash
tap_test "--restart-command, no systemd" t_restart_command
tap_test "CRI-O drop-in" t_crio

# ------------------------------------------- end to end: a Flox pod, the DaemonSet

# The node: a host root whose containerd config is a test daemon's (own
# root, state, socket, runc Root), without any flox runtime.
NODE=$TEST_TMPDIR/node
CD_ROOT=$TEST_TMPDIR/containerd/root
CD_STATE=$TEST_TMPDIR/containerd/state
CD_SOCK=$TEST_TMPDIR/containerd/containerd.sock
CD_LOG=$TEST_TMPDIR/containerd.log
CD_RUNC_ROOT=$TEST_TMPDIR/runc-root
node_setup() {
	new_host node >/dev/null
	mkdir -p "$TEST_TMPDIR/containerd" "$CD_RUNC_ROOT" "$NODE/etc/containerd" "$TEST_TMPDIR/cni/bin" "$TEST_TMPDIR/cni/conf"
	containerd_config_toml "$CD_ROOT" "$CD_STATE" "$CD_SOCK" "$IMG_PAUSE" "$(free_port)" "$CD_RUNC_ROOT" \
		"$TEST_TMPDIR/cni" >"$NODE/etc/containerd/config.toml"
}

# The engine restart: containerd with the host root's config, in a private
# mount namespace whose /usr/local/bin is the host root's (where the
# installer put flox-runc, the BinaryName it registered), the node config
# the installer put in place.
node_containerd_start() {
	FLOX_RUNC_CONFIG=$NODE/etc/flox-runc/config.json unshare -m --propagation private \
		sh -c 'mount --bind "$1/usr/local/bin" /usr/local/bin && exec containerd --config "$1/etc/containerd/config.toml"' \
		sh "$NODE" >"$CD_LOG" 2>&1 &
	CD_PID=$!
	echo "$CD_PID" >"$TEST_TMPDIR/cd.pid"
	cleanup_add node_containerd_stop
	WAIT_TIMEOUT=15 wait_for ctr -a "$CD_SOCK" version
}

# at cleanup (the trap's shell: the pid comes from the file)
node_containerd_stop() {
	CD_PID=$(cat "$TEST_TMPDIR/cd.pid" 2>/dev/null || true)
	containerd_stop
}

exited() { [[ "$(cri ContainerStatus "{\"container_id\":\"$1\"}" | jq -r .status.state)" == CONTAINER_EXITED ]]; }

t_flox_pod() {
	engines_flox_setup
	engines_images
	node_setup
	capture "$FLOX_RUNC" install --host-root "$NODE" --node-config "$FLOX_CFG" \
		--restart-command "echo restart >>'$TEST_TMPDIR/node-restarts'"
	assert_rc 0 "install on the node"
	assert_eq restart "$(cat "$TEST_TMPDIR/node-restarts")" "restart hook"
	unset FLOX_RUNC_CONFIG
	node_containerd_start
	local img pod uid cfg id st
	for img in pause empty; do
		containerd_import k8s.io "$TEST_TMPDIR/images/$img.tar"
	done
	uid=$(printf 'pod-%s' "$TEST_ID" | sha256sum | cut -c1-32)
	mkdir -p "$TEST_TMPDIR/pods/hello"
	cfg=$(jq -nc --arg uid "$uid" --arg logdir "$TEST_TMPDIR/pods" '{
		metadata: {name: "hello", namespace: "default", uid: $uid, attempt: 0},
		log_directory: $logdir,
		annotations: {"flox.dev/environment": "acme/hello"},
		linux: {security_context: {namespace_options: {network: "NODE", pid: "CONTAINER", ipc: "POD"}}}}')
	pod=$(jq -nc --argjson c "$cfg" '{config: $c, runtime_handler: "flox"}' | cri RunPodSandbox - | jq -er .pod_sandbox_id)
	id=$(jq -nc --arg pod "$pod" --arg img "$IMG_EMPTY" --argjson c "$cfg" '{pod_sandbox_id: $pod,
		config: {metadata: {name: "hello", attempt: 0}, image: {image: $img}, command: ["hello"],
			log_path: "hello/0.log", linux: {security_context: {namespace_options: $c.linux.security_context.namespace_options}}},
		sandbox_config: $c}' | cri CreateContainer - | jq -er .container_id)
	cri StartContainer "{\"container_id\":\"$id\"}" >/dev/null
	WAIT_TIMEOUT=60 wait_for exited "$id"
	st=$(cri ContainerStatus "{\"container_id\":\"$id\"}")
	assert_json "$st" '.status.exit_code == 0' "hello exited 0"
	assert_eq "stdout F Hello, world!" "$(cut -d' ' -f2- "$TEST_TMPDIR/pods/hello/0.log")" "the environment's hello ran"
	# (the empty image has no hello: the installed flox-runc projected the
	# environment)
	cri StopPodSandbox "{\"pod_sandbox_id\":\"$pod\"}" >/dev/null
	cri RemovePodSandbox "{\"pod_sandbox_id\":\"$pod\"}" >/dev/null
	assert_empty "$(engines_leftovers)" "nothing left behind"
}

# The DaemonSet's install container, run by containerd with the volumes of
# docs/kubernetes/daemonset.yaml: hostPath / -> a test host root, the
# ConfigMap -> its data as files.
t_daemonset() {
	local ds=$SRCDIR/docs/kubernetes/daemonset.yaml host cm img=docker.io/flox-runc/installer:test
	ctr -a "$CD_SOCK" version >/dev/null 2>&1 || die "the node's containerd (previous test) is not running"
	bash "$SRCDIR/tests/tools/mkimage-installer.sh" "$TEST_TMPDIR/installer.tar" "$img" "$FLOX_RUNC" 2>/dev/null ||
		die "mkimage-installer.sh failed"
	containerd_import flox-runc-install "$TEST_TMPDIR/installer.tar"
	host=$(new_host ds-host)
	mkdir -p "$host/etc/containerd"
	printf 'version = 2\n\n%s\n' "$CRI_SETTINGS" >"$host/etc/containerd/config.toml"
	cm=$TEST_TMPDIR/ds-configmap
	mkdir -p "$cm"
	# the pod as the manifest declares it: command and mounts
	python3 - "$ds" "$host" "$cm" >"$TEST_TMPDIR/ds.args" <<'PY'
import os, sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
ds = next(d for d in docs if d["kind"] == "DaemonSet")
cms = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
spec = ds["spec"]["template"]["spec"]
ic = spec["initContainers"][0]
vols = {v["name"]: v for v in spec["volumes"]}
for m in ic["volumeMounts"]:
    v = vols[m["name"]]
    if "hostPath" in v:
        assert v["hostPath"]["path"] == "/", "the installer mounts the node's root"
        src = sys.argv[2]
    else:
        src = sys.argv[3]
        for k, text in cms[v["configMap"]["name"]]["data"].items():
            open(os.path.join(src, k), "w").write(text)
    opts = "rbind:" + ("ro" if m.get("readOnly") else "rw")
    print("--mount")
    print("type=bind,src=%s,dst=%s,options=%s" % (src, m["mountPath"], opts))
assert ic["securityContext"]["privileged"]
print("--privileged")
print("--")
for a in ic["command"] + ic.get("args", []):
    print(a)
PY
	mapfile -t args <"$TEST_TMPDIR/ds.args"
	local sep
	for sep in "${!args[@]}"; do [[ "${args[$sep]}" == -- ]] && break; done
	capture ctr -a "$CD_SOCK" -n flox-runc-install run --rm "${args[@]:0:$sep}" "$img" "ds-$TEST_ID" "${args[@]:$((sep + 1))}"
	assert_rc 0 "the install container ran"
	assert_contains "$CAP_OUT" "containerd validated the configuration" "validated by the node's containerd"
	assert_contains "$CAP_OUT" "containerd not restarted: the node does not run systemd" "no systemd in the test host root"
	cmp "$FLOX_RUNC" "$host/usr/local/bin/flox-runc" || die "binary not installed"
	check_hook "$host"
	cmp "$cm/config.json" "$host/etc/flox-runc/config.json" || die "node config not installed"
	registered "$host" example.com/pause:7
}

tap_test "installed runtime runs a Flox pod (CRI, handler flox)" t_flox_pod
tap_test "the DaemonSet's install container, run by containerd" t_daemonset
tap_done
