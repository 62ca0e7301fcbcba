#!/bin/sh
# tests/nix/with-private-nix.sh DIR CMD [ARG...]
#
# Runs CMD with a Nix that reads no configuration of the machine or the user
# and keeps its state, caches and temporary files under DIR: NIX_CONF_DIR
# (DIR/etc/nix.conf, written when missing), NIX_STATE_DIR, NIX_LOG_DIR, HOME,
# XDG_* and TMPDIR all point into DIR; NIX_REMOTE and NIX_PATH are unset.
# Pair it with `--store STOREDIR` (a chroot store) and the machine's /nix is
# never touched.  The nix.conf: no substituters unless given on the command
# line, signatures required, no build users, narinfo lookups not cached (so a
# test can change a cache between two realisations).
set -eu
[ $# -ge 2 ] || { echo "usage: with-private-nix.sh DIR CMD [ARG...]" >&2; exit 2; }
mkdir -p "$1"
d=$(cd "$1" && pwd -P)
shift
mkdir -p "$d/etc" "$d/state" "$d/log" "$d/home" "$d/cache" "$d/config" "$d/data" "$d/tmp"
if [ ! -f "$d/etc/nix.conf" ]; then
	cat >"$d/etc/nix.conf.tmp.$$" <<'CONF'
build-users-group =
substituters =
trusted-public-keys =
require-sigs = true
experimental-features = nix-command
narinfo-cache-negative-ttl = 0
narinfo-cache-positive-ttl = 0
connect-timeout = 5
CONF
	mv "$d/etc/nix.conf.tmp.$$" "$d/etc/nix.conf"
fi
unset NIX_REMOTE NIX_PATH NIX_SSHOPTS NIX_BUILD_HOOK NIX_USER_PROFILE_DIR NIX_PROFILES || true
export HOME="$d/home" NIX_CONF_DIR="$d/etc" NIX_USER_CONF_FILES="$d/etc/nix.conf" \
	NIX_STATE_DIR="$d/state" NIX_LOG_DIR="$d/log" NIX_DATA_DIR="$d/data" \
	XDG_CACHE_HOME="$d/cache" XDG_CONFIG_HOME="$d/config" XDG_DATA_HOME="$d/data" \
	XDG_STATE_HOME="$d/xstate" TMPDIR="$d/tmp"
exec "$@"
