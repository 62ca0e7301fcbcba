#!/usr/bin/env bash
# tests/demo.sh - quick start command 1: installs dependencies, builds
# flox-runc and runs containers through it with the real runc.
#
# Today flox-runc decides per container and fails closed; materialising Flox
# environments comes next (docs/design.md).  The demo shows:
#   1. a container listed in flox.dev/skip-containers runs from its busybox
#      rootfs, through flox-runc and the real runc;
#   2. a container with an invalid annotation is refused with the one-line
#      message an engine shows, and its bundle is left untouched.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
bash "$src/tests/deps.sh"
bash "$src/tests/build.sh" "$src/build"

export FLOX_RUNC_SRCDIR=$src
flox_runc=$src/build/cmd/flox-runc/flox-runc
# shellcheck source=tests/lib/common.sh
. "$src/tests/lib/common.sh"
tmpdir_setup demo

cat >"$TEST_TMPDIR/config.json" <<JSON
{"runtime": "$(command -v runc)", "state_dir": "$TEST_TMPDIR/state"}
JSON
export FLOX_RUNC_CONFIG=$TEST_TMPDIR/config.json
root=$TEST_TMPDIR/runc-root

echo "== 1. a container through flox-runc and $(command -v runc)"
make_busybox_bundle "$TEST_TMPDIR/hello" sh -c 'echo "hello from busybox $(busybox | head -1 | cut -d" " -f2) through flox-runc"'
bundle_annotate "$TEST_TMPDIR/hello" io.kubernetes.cri.container-name sidecar
bundle_annotate "$TEST_TMPDIR/hello" flox.dev/skip-containers sidecar
bundle_annotate "$TEST_TMPDIR/hello" flox.dev/environment flox/hello
cleanup_container "$flox_runc" "$root" demo-hello
"$flox_runc" --root "$root" run --bundle "$TEST_TMPDIR/hello" demo-hello

echo "== 2. an invalid annotation is refused, the bundle untouched"
make_busybox_bundle "$TEST_TMPDIR/bad" sh -c 'echo never'
bundle_annotate "$TEST_TMPDIR/bad" flox.dev/environment '../etc/shadow'
before=$(sha256sum <"$TEST_TMPDIR/bad/config.json")
cleanup_container "$flox_runc" "$root" demo-bad
if "$flox_runc" --root "$root" --log "$TEST_TMPDIR/bad/log.json" --log-format json \
    create --bundle "$TEST_TMPDIR/bad" demo-bad 2>"$TEST_TMPDIR/bad/stderr"; then
  echo "demo: the invalid annotation was accepted" >&2
  exit 1
fi
echo "stderr:   $(cat "$TEST_TMPDIR/bad/stderr")"
echo "log.json: $(cat "$TEST_TMPDIR/bad/log.json")"
[ "$before" = "$(sha256sum <"$TEST_TMPDIR/bad/config.json")" ] && echo "config.json unchanged"
echo "== demo done"
