#!/bin/sh
# tests/nix/serve-cache.sh DIR PORTFILE [serve-cache.py options...]
#
# Serves the binary cache DIR on http://127.0.0.1:PORT (a free port) in the
# foreground; PORT is written to PORTFILE once the socket listens.  Start it
# in the background and wait for PORTFILE:
#     tests/nix/serve-cache.sh "$out/cache" "$tmp/cache.port" --log "$tmp/cache.log" &
#     while [ ! -s "$tmp/cache.port" ]; do sleep 0.05; done
# SIGTERM stops it (exit 0).  Extra options: --control FILE, --log FILE,
# --quiet, --port N (see serve-cache.py).
set -eu
[ $# -ge 2 ] || { echo "usage: serve-cache.sh DIR PORTFILE [--log F] [--control F] [--quiet]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=$(command -v python3 || true); fi
fi
[ -n "$PYTHON" ] || { echo "serve-cache.sh: python3 not found: install Debian package python3" >&2; exit 1; }
dir=$1 portfile=$2
shift 2
exec "$PYTHON" "$here/serve-cache.py" --dir "$dir" --port-file "$portfile" "$@"
