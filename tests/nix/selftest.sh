#!/bin/sh
# shellcheck disable=SC2154 # port_NAME variables are set through eval in serve()
# tests/nix/selftest.sh - proves the Nix test fixtures with the real Nix:
# builds the packages and signed caches (build-cache.sh), serves them on
# 127.0.0.1 (serve-cache.py), realises paths into fresh chroot stores the way a
# node does, runs them, and checks that unsigned, forged and foreign-key caches
# are refused.  Prints TAP.  Exit 0: all checks passed; 1: a check failed;
# 77: cannot run here (nix-bin, busybox-static or python3 missing, not root;
# a failure under CI=true: tests/lib/skip.sh).
#
# FLOX_RUNC_NIX_FIXTURES=DIR reuses (and keeps) a fixture directory instead of
# building into a temporary one; SELFTEST_KEEP=1 keeps the temporary directory.
set -u

here=$(cd "$(dirname "$0")" && pwd)

# skip_all: exit 77, a failure under CI=true
. "$here/../lib/skip.sh"

command -v nix-store >/dev/null 2>&1 || skip_all "nix-store not found: install Debian package nix-bin"
command -v nix >/dev/null 2>&1 || skip_all "nix not found: install Debian package nix-bin"
[ -x "${BUSYBOX:-/bin/busybox}" ] || skip_all "${BUSYBOX:-/bin/busybox} not found: install Debian package busybox-static"
if [ -z "${PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=$(command -v python3 || true); fi
fi
[ -n "$PYTHON" ] || skip_all "python3 not found: install Debian package python3"
export PYTHON
[ "$(id -u)" -eq 0 ] || skip_all "needs root (Nix's build sandbox for a chroot store, chroot(8))"
command -v chroot >/dev/null 2>&1 || skip_all "chroot not found: install Debian package coreutils"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nix-selftest.XXXXXX")
pids=
cleanup() {
	rc=$?
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	if [ -n "${SELFTEST_KEEP:-}" ]; then echo "# kept $tmp"; else rm -rf "$tmp"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
show() { sed 's/^/#   | /' "$tmp/out" | tail -n 15; }
check() { # check DESCRIPTION COMMAND...
	d=$1; shift
	if "$@" >"$tmp/out" 2>&1; then ok "$d"; else notok "$d"; show; fi
}
check_fails() { # check_fails DESCRIPTION REGEX COMMAND...  (must fail, output matching REGEX)
	d=$1; pat=$2; shift 2
	if "$@" >"$tmp/out" 2>&1; then notok "$d (unexpectedly succeeded)"; show
	elif grep -Eq "$pat" "$tmp/out"; then ok "$d"
	else notok "$d (no /$pat/ in output)"; show; fi
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }
pj() { "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$out/packages.json" "$1"; }

# Nix for the "nodes": private configuration and state (with-private-nix.sh).
pn() { "$here/with-private-nix.sh" "$tmp/nixenv" "$@"; }
nix_() { pn nix --extra-experimental-features nix-command "$@"; }

# --- 1. build ------------------------------------------------------------------
out=${FLOX_RUNC_NIX_FIXTURES:-$tmp/fixtures}
t=$(now)
check "build-cache.sh builds the packages and caches" "$here/build-cache.sh" "$out"
echo "# build: $(since "$t")s"
[ -s "$out/packages.json" ] || { echo "Bail out! no packages.json"; exit 1; }
t=$(now)
if "$here/build-cache.sh" "$out" >"$tmp/out" 2>&1 && grep -q "up to date" "$tmp/out"; then
	ok "second build-cache.sh run is a no-op ($(since "$t")s)"
else notok "second build-cache.sh run is a no-op"; show; fi

key=$(cat "$out/key.pub")
HELLO=$(pj 'd["packages"]["hello"]["out"]')
BUSYBOX=$(pj 'd["packages"]["busybox"]["out"]')
GREET=$(pj 'd["packages"]["greet"]["out"]')
GREET_MAN=$(pj 'd["packages"]["greet"]["man"]')
DEVTOOL=$(pj 'd["packages"]["devtool"]["out"]')
DEVTOOL_STUBS=$(pj 'd["packages"]["devtool"]["stubs"]')
CA=$(pj 'd["packages"]["conflict-a"]["out"]')
CB=$(pj 'd["packages"]["conflict-b"]["out"]')

check "packages.json: shape, keys, closures" "$PYTHON" - "$out" <<'EOF'
import json, os, re, sys
out = sys.argv[1]
d = json.load(open(os.path.join(out, "packages.json")))
sp = re.compile(r"^/nix/store/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+._?=-]+$")
assert d["system"] in ("x86_64-linux", "aarch64-linux"), d["system"]
assert re.match(r"^flox-runc-test-1:[A-Za-z0-9+/]{43}=$", d["public_key"]), d["public_key"]
assert d["public_key"] == open(os.path.join(out, "key.pub")).read().strip()
assert d["keys"]["badsig"]["public_key"].startswith("flox-runc-test-1:")
assert d["keys"]["badsig"]["public_key"] != d["public_key"]
assert d["keys"]["otherkey"]["public_key"].startswith("flox-runc-untrusted-1:")
want = {"busybox": ["out"], "hello": ["out"], "greet": ["man", "out"], "conflict-a": ["out"],
        "conflict-b": ["out"], "devtool": ["out", "stubs"], "langtools": ["out"],
        "propagator": ["out"], "propuser": ["out"], "propdep": ["out"], "propdeep": ["out"]}
assert {k: sorted(v) for k, v in d["packages"].items()} == want, d["packages"]
for name, outs in d["packages"].items():
    for o, p in outs.items():
        assert sp.match(p), p
        assert p in d["closures"], p
        assert o == "out" and p.endswith("-" + d["meta"][name]["name"]) or p.endswith("-" + o), (o, p)
bb = d["packages"]["busybox"]["out"]
assert d["closures"][d["packages"]["hello"]["out"]] == [bb]
assert d["closures"][d["packages"]["langtools"]["out"]] == [bb]
assert d["closures"][bb] == []
dt = d["packages"]["devtool"]["out"]
assert d["closures"][dt] == sorted([bb, dt])          # self-reference (devtool.pc prefix)
assert d["closures"][d["packages"]["greet"]["man"]] == []
assert d["meta"]["greet"]["outputs_to_install"] == ["man", "out"]
for p, refs in d["closures"].items():
    for r in refs:
        assert r in d["closures"], (p, r)             # closed under references
    assert os.path.exists(os.path.join(out, "cache", p[11:43] + ".narinfo")), p
assert d["builder"] not in d["closures"]              # the CA builder is not in the caches
EOF

check "cache: nix-cache-info, every narinfo signed by flox-runc-test-1, NARs present" sh -c '
	c=$1/cache
	grep -qx "StoreDir: /nix/store" "$c/nix-cache-info" || exit 1
	for f in "$c"/*.narinfo; do
		grep -q "^Sig: flox-runc-test-1:" "$f" || { echo "unsigned $f"; exit 1; }
		u=$(sed -n "s/^URL: //p" "$f"); [ -s "$c/$u" ] || { echo "missing $u"; exit 1; }
		grep -q "^Compression: xz" "$f" || exit 1
	done
	! grep -q "^Sig:" "$1"/cache-unsigned/*.narinfo' - "$out"

check "hello is a #! script for the store busybox" sh -c '
	head -n1 "$1/build-store$2/bin/hello" | grep -qx "#!$3/bin/sh" &&
	grep -qx "echo \"Hello, world!\"" "$1/build-store$2/bin/hello" &&
	[ -x "$1/build-store$3/bin/busybox" ] && [ "$(readlink "$1/build-store$3/bin/sh")" = busybox ] &&
	[ "$(readlink "$1/build-store$3/bin/env")" = busybox ]' - "$out" "$HELLO" "$BUSYBOX"
check "conflict-a and conflict-b: same file, different contents" sh -c '
	[ -f "$1/build-store$2/bin/conflict" ] && [ -f "$1/build-store$3/bin/conflict" ] &&
	! cmp -s "$1/build-store$2/bin/conflict" "$1/build-store$3/bin/conflict"' - "$out" "$CA" "$CB"

# --- 2. serve ------------------------------------------------------------------
serve() { # serve NAME DIR -> sets port_NAME
	rm -f "$tmp/$1.port"
	"$here/serve-cache.sh" "$2" "$tmp/$1.port" --log "$tmp/$1.log" --control "$tmp/$1.ctl" --quiet &
	pids="$pids $!"
	i=0
	while [ ! -s "$tmp/$1.port" ]; do
		i=$((i + 1)); [ $i -lt 200 ] || { echo "Bail out! serve-cache.py for $1 did not start"; exit 1; }
		sleep 0.05
	done
	eval "port_$1=\$(cat \"\$tmp/\$1.port\")"
}
serve signed "$out/cache"
serve unsigned "$out/cache-unsigned"
serve badsig "$out/cache-badsig"
serve otherkey "$out/cache-otherkey"
URL=http://127.0.0.1:$port_signed
check "serve-cache: nix-cache-info over HTTP" "$PYTHON" -c '
import sys, urllib.request
b = urllib.request.urlopen(sys.argv[1] + "/nix-cache-info", timeout=5).read().decode()
assert "StoreDir: /nix/store" in b, b
try:
    urllib.request.urlopen(sys.argv[1] + "/00000000000000000000000000000000.narinfo", timeout=5)
    sys.exit("missing narinfo was not a 404")
except urllib.error.HTTPError as e:
    assert e.code == 404
' "$URL"

# --- 3. a node realises from the signed cache ------------------------------------
node=$tmp/node
realise() { # realise STOREDIR SUBSTITUTER KEY PATH... (a node's realisation)
	s=$1 u=$2 k=$3; shift 3
	pn nix-store --store "$s" --option substituters "$u" --option trusted-public-keys "$k" --realise "$@"
}
t=$(now)
check "realise hello into a fresh chroot store from $URL" \
	realise "$node" "$URL" "$key" "$HELLO" --add-root "$tmp/roots/hello"
echo "# realise hello (2 paths, 0.9 MiB xz): $(since "$t")s"
ns() { pn nix-store --store "$node" "$@"; }
valid() { pn nix-store --store "$1" --check-validity "$2" >/dev/null 2>&1; }
if [ -x "$node$BUSYBOX/bin/busybox" ] && ns --query --requisites "$HELLO" 2>&1 | sort >"$tmp/req" &&
	printf '%s\n%s\n' "$HELLO" "$BUSYBOX" | sort | cmp -s - "$tmp/req"; then
	ok "busybox came along (hello's closure is {hello, busybox})"
else notok "busybox came along"; sed 's/^/#   | /' "$tmp/req"; fi
check "the paths are registered valid in the node store" pn nix-store --store "$node" --check-validity "$HELLO" "$BUSYBOX"
if [ "$(chroot "$node" "$HELLO/bin/hello" 2>&1)" = "Hello, world!" ]; then
	ok "chroot NODE $HELLO/bin/hello prints Hello, world!"
else notok "chroot NODE hello"; chroot "$node" "$HELLO/bin/hello" 2>&1 | sed 's/^/#   | /'; fi
check "downloads were logged (narinfo and nar)" sh -c \
	'grep -q "GET /$2.narinfo 200" "$1" && grep -Eq "GET /nar/[a-z0-9]+\.nar\.xz 200" "$1"' - "$tmp/signed.log" "$(echo "$HELLO" | cut -c12-43)"
before=$(wc -l <"$tmp/signed.log")
check "realising again is local (no request)" realise "$node" "$URL" "$key" "$HELLO"
[ "$(wc -l <"$tmp/signed.log")" -eq "$before" ] && ok "no request for a valid path" || notok "no request for a valid path"

check "realise greet out+man, devtool out+stubs, conflict-a, conflict-b" \
	realise "$node" "$URL" "$key" "$GREET" "$GREET_MAN" "$DEVTOOL" "$DEVTOOL_STUBS" "$CA" "$CB"
check "greet prints \$GREETING or its default" sh -c '
	[ "$(chroot "$1" "$2/bin/greet")" = "Hello from greet" ] &&
	[ "$(GREETING=hey chroot "$1" "$2/bin/greet")" = hey ] &&
	[ -f "$1$3/share/man/man1/greet.1" ] && [ -f "$1$2/share/doc/greet/README" ]' - "$node" "$GREET" "$GREET_MAN"
check "devtool: header, pkg-config file with its store prefix, stubs output" sh -c '
	grep -q DEVTOOL_VERSION "$1$2/include/devtool.h" &&
	grep -qx "prefix=$2" "$1$2/lib/pkgconfig/devtool.pc" &&
	[ -x "$1$3/bin/devtool-stub" ]' - "$node" "$DEVTOOL" "$DEVTOOL_STUBS"
check "conflict-a/b run" sh -c '
	[ "$(chroot "$1" "$2/bin/conflict")" = conflict-a ] && [ "$(chroot "$1" "$3/bin/conflict")" = conflict-b ]' - "$node" "$CA" "$CB"

# --- 4. refusals -----------------------------------------------------------------
for v in unsigned badsig otherkey; do
	eval "u=http://127.0.0.1:\$port_$v"
	check_fails "nix-store --realise refuses cache-$v (trusting only $(echo "$key" | cut -d: -f1))" \
		"is not signed by any of the keys in 'trusted-public-keys'" \
		realise "$tmp/node-$v" "$u" "$key" "$HELLO"
	if valid "$tmp/node-$v" "$HELLO"; then notok "... but $HELLO is valid there"; else ok "... and left hello invalid in that store"; fi
	check_fails "nix copy --from cache-$v refuses: lacks a valid signature" "lacks a valid signature" \
		nix_ copy --from "$u" --to "local?root=$tmp/copy-$v" --option trusted-public-keys "$key" "$HELLO"
done
check "cache-badsig is accepted when its own key is trusted (the NARs are fine)" \
	realise "$tmp/node-badsig2" "http://127.0.0.1:$port_badsig" "$(cat "$out/badsig-key.pub")" "$HELLO"
check_fails "a path in no cache is not realised" "don't know how to build|build of .* failed" \
	realise "$tmp/node-fake" "$URL" "$key" "$("$PYTHON" "$here/make-lock.py" --packages "$out/packages.json" --fake nothere |
		"$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["packages"][0]["outputs"]["out"])')"
printf '{"status": 503, "only_paths_matching": "^/nar/"}\n' >"$tmp/signed.ctl"
# (Nix retries a failed download with backoff, download-attempts = 5 by default:
# about 5 s in all; one attempt here.)
check_fails "a 503 for the NARs fails the realisation" "HTTP error 503" \
	realise "$tmp/node-503" "$URL" "$key" "$HELLO" --option download-attempts 1
rm -f "$tmp/signed.ctl"

# --- 5. GC roots in a chroot store -----------------------------------------------
check "--add-root LINK: LINK -> /nix/store path, recorded in NODE/nix/var/nix/gcroots/auto" sh -c '
	[ "$(readlink "$1/roots/hello")" = "$2" ] &&
	for l in "$3"/nix/var/nix/gcroots/auto/*; do [ "$(readlink "$l")" = "$1/roots/hello" ] && exit 0; done; exit 1' \
	- "$tmp" "$HELLO" "$node"
ns --gc >"$tmp/out" 2>&1 || { notok "nix-store --gc"; show; }
if valid "$node" "$HELLO" && valid "$node" "$BUSYBOX"; then ok "gc keeps the rooted closure"; else notok "gc keeps the rooted closure"; fi
if ! valid "$node" "$GREET" && [ ! -e "$node$GREET" ]; then ok "gc removed unrooted paths (greet)"; else notok "gc removed unrooted paths (greet)"; fi
rm -f "$tmp/roots/hello"
ns --gc >"$tmp/out" 2>&1 || { notok "nix-store --gc"; show; }
if ! valid "$node" "$HELLO" && ! valid "$node" "$BUSYBOX" && [ ! -e "$node$HELLO" ]; then
	ok "without its root, gc deletes hello and busybox"
else notok "without its root, gc deletes hello and busybox"; fi

# --- 6. make-lock.py -------------------------------------------------------------
check "make-lock.py: catalog, store-path, flake, flake-nested; vars, hook, priority, mode" sh -c '
	"$PYTHON" "$1/make-lock.py" --packages "$2/packages.json" hello greet devtool conflict-a conflict-b cb2:conflict-b busybox \
		--shape conflict-a=store-path --shape conflict-b=flake --shape cb2=flake-nested \
		--priority conflict-b=6 --var GREETING=hi --hook "echo hooked" --mode dev -o "$3/lock.json"' - "$here" "$out" "$tmp"
check "the lock has the shapes FLOX.md and flox write" "$PYTHON" - "$out/packages.json" "$tmp/lock.json" <<'EOF'
import json, sys
pj = json.load(open(sys.argv[1])); lk = json.load(open(sys.argv[2]))
assert lk["lockfile-version"] == 1
m = lk["manifest"]
assert m["version"] == 1 and m["vars"] == {"GREETING": "hi"} and m["hook"]["on-activate"] == "echo hooked"
assert m["options"]["activate"]["mode"] == "dev" and m["options"]["systems"] == [pj["system"]]
assert m["install"]["hello"] == {"pkg-path": "hello"}
assert m["install"]["conflict-a"] == {"store-path": pj["packages"]["conflict-a"]["out"]}
assert m["install"]["conflict-b"]["priority"] == 6 and "flake" in m["install"]["conflict-b"]
p = {e["install_id"]: e for e in lk["packages"]}
assert list(p) == ["hello", "greet", "devtool", "conflict-a", "conflict-b", "cb2", "busybox"]
h = p["hello"]
for k in ("attr_path", "install_id", "pname", "version", "outputs_to_install", "outputs", "system", "group", "priority", "derivation"):
    assert k in h, k
assert h["outputs"] == pj["packages"]["hello"] and h["group"] == "toplevel" and h["priority"] == 5
assert p["greet"]["outputs"] == pj["packages"]["greet"] and p["greet"]["outputs_to_install"] == ["man", "out"]
assert p["devtool"]["outputs"]["stubs"] == pj["packages"]["devtool"]["stubs"]
assert p["conflict-a"] == {"install_id": "conflict-a", "store_path": pj["packages"]["conflict-a"]["out"], "system": pj["system"], "priority": 5}
f = p["conflict-b"]
assert f["outputs"] == pj["packages"]["conflict-b"] and f["system"] == pj["system"] and f["priority"] == 6
assert "locked-url" in f and "locked_installable" not in f
n = p["cb2"]
assert n["locked_installable"]["outputs"] == pj["packages"]["conflict-b"] and n["locked_installable"]["system"] == pj["system"]
EOF

echo "1..$n"
[ "$fails" -eq 0 ] || { echo "# $fails of $n checks failed"; exit 1; }
exit 0
