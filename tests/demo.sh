#!/usr/bin/env bash
# tests/demo.sh - quick start command 1 (Debian 12, as root): installs the
# dependencies, builds flox-runc, and runs the Flox demo entirely on this
# machine:
#   - a signed Nix binary cache on 127.0.0.1 with test packages built from
#     Debian's busybox-static (tests/nix/build-cache.sh),
#   - a test FloxHub on 127.0.0.1 (git http-backend, tests/hub/) holding the
#     environment demo/hello,
#   - a container with an EMPTY rootfs annotated
#     flox.dev/environment: demo/hello, run through flox-runc and the real
#     runc: `hello` comes from the environment.
# Then it shows a refused create (invalid annotation).  Everything lives in a
# temporary directory that is removed at the end.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
bash "$src/tests/deps.sh"
bash "$src/tests/build.sh" "$src/build"

export FLOX_RUNC_SRCDIR=$src
flox_runc=$src/build/cmd/flox-runc/flox-runc
# shellcheck source=tests/lib/common.sh
. "$src/tests/lib/common.sh"
# shellcheck source=tests/lib/hub.sh
. "$src/tests/lib/hub.sh"
tmpdir_setup demo

say() { printf '\n== %s\n' "$*"; }

say "test packages and a signed binary cache (nix-store, busybox-static)"
fixtures=${FLOX_RUNC_NIX_FIXTURES:-/var/tmp/flox-runc-nix-fixtures}
bash "$src/tests/nix/build-cache.sh" "$fixtures" | tail -1
bash "$src/tests/nix/serve-cache.sh" "$fixtures/cache" "$TEST_TMPDIR/cache.port" --quiet &
cleanup_pid $!
wait_for test -s "$TEST_TMPDIR/cache.port"
cache_url=http://127.0.0.1:$(cat "$TEST_TMPDIR/cache.port")
echo "binary cache: $cache_url (key $(cat "$fixtures/key.pub"))"

say "a test FloxHub with the environment demo/hello"
hub_start
python3 "$src/tests/nix/make-lock.py" --packages "$fixtures/packages.json" hello \
  --var GREETING="hello from the demo" -o "$TEST_TMPDIR/manifest.lock"
hub_publish demo/hello "$TEST_TMPDIR/manifest.lock" | jq -c '{environment: "\(.owner)/\(.name)", generation, commit}'
echo "FloxHub: $HUB_URL"

store=$TEST_TMPDIR/node-store
cat >"$TEST_TMPDIR/config.json" <<JSON
{
  "runtime": "$(command -v runc)",
  "floxhub_url": "$HUB_URL",
  "store_root": "$store",
  "state_dir": "$TEST_TMPDIR/state",
  "substituters": ["$cache_url"],
  "trusted_public_keys": ["$(cat "$fixtures/key.pub")"]
}
JSON
export FLOX_RUNC_CONFIG=$TEST_TMPDIR/config.json
root=$TEST_TMPDIR/runc-root

say "an empty rootfs annotated flox.dev/environment: demo/hello, command [\"hello\"]"
mkdir -p "$TEST_TMPDIR/hello/rootfs"
(cd "$TEST_TMPDIR/hello" && runc spec)
bundle_jq "$TEST_TMPDIR/hello" '.process.terminal = false | .process.args = ["hello"]
  | .annotations = {"flox.dev/environment": "demo/hello"}'
echo "rootfs entries: $(find "$TEST_TMPDIR/hello/rootfs" -mindepth 1 | wc -l)"
cleanup_container "$flox_runc" "$root" demo-hello
"$flox_runc" --root "$root" --log "$TEST_TMPDIR/hello/log.json" --log-format json \
  run --bundle "$TEST_TMPDIR/hello" demo-hello
echo "(progress was logged to log.json: $(wc -l <"$TEST_TMPDIR/hello/log.json") lines)"

say "the same environment again: already on the node"
"$flox_runc" --root "$root" run --bundle "$TEST_TMPDIR/hello" demo-hello-2

say "an invalid annotation is refused before runc runs; the bundle is untouched"
mkdir -p "$TEST_TMPDIR/bad/rootfs"
(cd "$TEST_TMPDIR/bad" && runc spec)
bundle_annotate "$TEST_TMPDIR/bad" flox.dev/environment '../etc/shadow'
before=$(sha256sum <"$TEST_TMPDIR/bad/config.json")
cleanup_container "$flox_runc" "$root" demo-bad
if "$flox_runc" --root "$root" --log "$TEST_TMPDIR/bad/log.json" --log-format json \
    create --bundle "$TEST_TMPDIR/bad" demo-bad 2>"$TEST_TMPDIR/bad/stderr"; then
  echo "demo: the invalid annotation was accepted" >&2
  exit 1
fi
echo "stderr:   $(cat "$TEST_TMPDIR/bad/stderr")"
echo "log.json: $(tail -1 "$TEST_TMPDIR/bad/log.json")"
[ "$before" = "$(sha256sum <"$TEST_TMPDIR/bad/config.json")" ] && echo "config.json unchanged"
say "demo done"
