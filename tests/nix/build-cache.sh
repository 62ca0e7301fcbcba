#!/usr/bin/env bash
# tests/nix/build-cache.sh OUTDIR
#
# Builds the flox-runc test packages (tests/nix/packages.nix) with Debian's
# nix-bin and busybox-static, with no network and without touching the
# machine's /nix, and publishes them as real binary caches:
#
#   OUTDIR/cache            signed by OUTDIR/key.sec (name flox-runc-test-1)
#   OUTDIR/cache-unsigned   the same paths, no Sig lines
#   OUTDIR/cache-badsig     the same paths signed by an impostor key that has
#                           the trusted key's NAME (badsig-key.*): only the
#                           signature itself is wrong
#   OUTDIR/cache-otherkey   the same paths signed by flox-runc-untrusted-1
#                           (otherkey-key.*): a key nobody trusts
#   OUTDIR/packages.json    store paths, outputs, closures, keys (README.md)
#   OUTDIR/build-store      the private chroot store the packages were built in
#
# Idempotent: when OUTDIR already holds a complete build made from the same
# inputs (this script, packages.nix, the busybox binary, the Nix version,
# the system), it does nothing.  Concurrent runs on one OUTDIR are serialised
# with flock.  Installs nothing: a missing tool is named with its package.
#
# Environment: BUSYBOX (default /bin/busybox, must be static),
#              FLOX_RUNC_NIX_QUIET=1 (no progress lines).
set -euo pipefail

prog=build-cache.sh
die() { echo "$prog: $*" >&2; exit 1; }
say() { [ -n "${FLOX_RUNC_NIX_QUIET:-}" ] || echo "$prog: $*" >&2; }

[ $# -eq 1 ] || { echo "usage: $prog OUTDIR" >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nixfile=$here/packages.nix
busybox=${BUSYBOX:-/bin/busybox}

# --- what we need (install with tests/deps.sh or apt-get) ----------------------
for t in nix-store nix-instantiate nix; do
	command -v "$t" >/dev/null 2>&1 || die "'$t' not found: install Debian package nix-bin (apt-get install nix-bin)"
done
command -v flock >/dev/null 2>&1 || die "'flock' not found: install Debian package util-linux"
command -v sha256sum >/dev/null 2>&1 || die "'sha256sum' not found: install Debian package coreutils"
if [ -z "${PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=$(command -v python3 || true); fi
fi
[ -n "$PYTHON" ] || die "'python3' not found: install Debian package python3"
[ -x "$busybox" ] || die "$busybox not found: install Debian package busybox-static"
"$PYTHON" - "$busybox" <<'EOF' || die "$busybox is not a static binary: install Debian package busybox-static (not busybox)"
import struct, sys
with open(sys.argv[1], "rb") as f:
    h = f.read(64)
    if h[:4] != b"\x7fELF":
        sys.exit(1)
    e = "<" if h[5] == 1 else ">"
    if h[4] == 2:
        phoff, = struct.unpack(e + "Q", h[32:40]); phentsize, phnum = struct.unpack(e + "HH", h[54:58])
    else:
        phoff, = struct.unpack(e + "I", h[28:32]); phentsize, phnum = struct.unpack(e + "HH", h[42:46])
    f.seek(phoff)
    d = f.read(phentsize * phnum)
# PT_INTERP (3) means dynamically linked: useless inside the build sandbox.
sys.exit(any(struct.unpack(e + "I", d[i * phentsize:i * phentsize + 4])[0] == 3 for i in range(phnum)))
EOF
[ -f "$nixfile" ] || die "$nixfile missing"

mkdir -p "$1"
out=$(cd "$1" && pwd -P)
case $out in
*[!A-Za-z0-9._/+-]*) die "OUTDIR '$out' has characters that cannot go into a store URL; pick a plainer path" ;;
esac

# --- a Nix that sees nothing of the machine's configuration or /nix ------------
nh=$out/nix-home
unset NIX_REMOTE NIX_PATH NIX_SSHOPTS NIX_BUILD_HOOK NIX_USER_PROFILE_DIR NIX_PROFILES 2>/dev/null || true
export HOME=$nh/home NIX_CONF_DIR=$nh/etc NIX_STATE_DIR=$nh/state NIX_LOG_DIR=$nh/log \
	NIX_DATA_DIR=$nh/data XDG_CACHE_HOME=$nh/cache XDG_CONFIG_HOME=$nh/config \
	XDG_DATA_HOME=$nh/data XDG_STATE_HOME=$nh/xstate TMPDIR=$nh/tmp NIX_USER_CONF_FILES=$nh/etc/nix.conf
export LC_ALL=C
store=$out/build-store
sx() { nix --extra-experimental-features nix-command "$@"; }

exec 9>"$out/.lock"
flock -w 600 9 || die "timed out waiting for another build in $out"

system=$(uname -m)-linux
case $system in arm64-linux) system=aarch64-linux ;; esac
fingerprint=$( {
	echo "flox-runc test fixtures v1"
	echo "system $system"
	nix-store --version
	sha256sum <"$here/build-cache.sh"
	sha256sum <"$nixfile"
	sha256sum <"$busybox"
} | sha256sum | cut -d' ' -f1)

if [ -f "$out/.complete" ] && [ "$(cat "$out/.complete")" = "$fingerprint" ] && [ -s "$out/packages.json" ]; then
	say "$out is up to date ($fingerprint)"
	exit 0
fi

t0=$(date +%s.%N)
say "building test packages into $out"
rm -f "$out/.complete"
rm -rf "$out/build-store" "$out/cache" "$out/cache-unsigned" "$out/cache-badsig" "$out/cache-otherkey" \
	"$out/nix-home" "$out/src" "$out/packages.json" "$out/build.log" \
	"$out"/key.sec "$out"/key.pub "$out"/badsig-key.* "$out"/otherkey-key.*
mkdir -p "$HOME" "$NIX_CONF_DIR" "$NIX_STATE_DIR" "$NIX_LOG_DIR" "$XDG_CACHE_HOME" "$XDG_CONFIG_HOME" \
	"$XDG_DATA_HOME" "$XDG_STATE_HOME" "$TMPDIR"
# A chroot store (real store under $store/nix/store, paths still /nix/store/...)
# always builds in Nix's Linux sandbox, whatever `sandbox` says.  No build users
# (the sandbox maps the builder to uid 1000 in a user namespace), no shell or
# other host paths in the sandbox, no substituters, nothing from the network.
cat >"$NIX_CONF_DIR/nix.conf" <<'EOF'
build-users-group =
sandbox = true
sandbox-paths =
substituters =
trusted-public-keys =
require-sigs = true
experimental-features = nix-command
allow-import-from-derivation = false
connect-timeout = 1
max-jobs = 4
EOF

log=$out/build.log
: >"$log"
run() { # run CMD... : output to build.log; on failure show its tail
	if ! "$@" >>"$log.step" 2>&1; then
		cat "$log.step" >>"$log"
		echo "$prog: failed: $*" >&2
		tail -n 25 "$log.step" | sed 's/^/  | /' >&2
		rm -f "$log.step"
		exit 1
	fi
	cat "$log.step" >>"$log"
	rm -f "$log.step"
}

# 1. the static busybox as a content-addressed store path (the builder)
mkdir -p "$out/src/busybox-static/bin"
cp "$busybox" "$out/src/busybox-static/bin/busybox"
chmod 0555 "$out/src/busybox-static/bin/busybox"
bbstatic=$(nix-store --store "$store" --add "$out/src/busybox-static" 2>>"$log") || die "nix-store --add failed (see $log)"
bbversion=$("$busybox" 2>&1 | sed -n '1s/^BusyBox v\([0-9][0-9.]*\).*/\1/p')
[ -n "$bbversion" ] || bbversion=0

# 2. evaluate (writes the .drv files) and record names, outputs, derivations
eval_expr="let p = import $nixfile { bbStatic = \"$bbstatic\"; bbVersion = \"$bbversion\"; system = \"$system\"; }; in
  builtins.mapAttrs (n: d: {
    name = d.name;
    drvPath = d.drvPath;
    outputNames = d.outputs;
    outputs = builtins.listToAttrs (map (o: { name = o; value = d.\${o}.outPath; }) d.outputs);
  }) p"
nix-instantiate --store "$store" --eval --json --strict --read-write-mode -E "$eval_expr" \
	>"$nh/eval.json" 2>>"$log" || { tail -n 20 "$log" >&2; die "evaluating packages.nix failed"; }
mapfile -t drvs < <("$PYTHON" -c 'import json,sys; [print(v["drvPath"]) for v in json.load(open(sys.argv[1])).values()]' "$nh/eval.json")

# 3. build every output of every derivation (in the sandbox, offline)
run nix-store --store "$store" --realise "${drvs[@]}"
mapfile -t outs < <("$PYTHON" -c 'import json,sys; [print(p) for v in json.load(open(sys.argv[1])).values() for p in v["outputs"].values()]' "$nh/eval.json")
for p in "${outs[@]}"; do
	[ -e "$store$p" ] || die "$p was not built (see $log)"
done
sx path-info --store "$store" --json --recursive "${outs[@]}" >"$nh/path-info.json" 2>>"$log" ||
	die "nix path-info failed (see $log)"
mapfile -t closure < <("$PYTHON" -c 'import json,sys; [print(e["path"]) for e in json.load(open(sys.argv[1]))]' "$nh/path-info.json")

# 4. keys
run nix-store --store "$store" --generate-binary-cache-key flox-runc-test-1 "$out/key.sec" "$out/key.pub"
run nix-store --store "$store" --generate-binary-cache-key flox-runc-test-1 "$out/badsig-key.sec" "$out/badsig-key.pub"
run nix-store --store "$store" --generate-binary-cache-key flox-runc-untrusted-1 "$out/otherkey-key.sec" "$out/otherkey-key.pub"
chmod 0600 "$out"/*.sec

# 5. the signed cache, as Nix writes it (`nix copy` signs while it uploads)
run sx copy --store "$store" --to "file://$out/cache?secret-key=$out/key.sec&compression=xz" "${outs[@]}"
printf 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n' >"$out/cache/nix-cache-info"

# 6. the negative caches: same NARs (hard links), other signatures
for v in unsigned badsig otherkey; do
	c=$out/cache-$v
	mkdir -p "$c"
	cp -al "$out/cache/nar" "$c/nar"
	cp "$out/cache/nix-cache-info" "$c/"
	for f in "$out"/cache/*.narinfo; do
		grep -v '^Sig:' "$f" >"$c/${f##*/}"
	done
	if [ "$v" != unsigned ]; then
		run sx store sign --store "file://$c" --key-file "$out/$v-key.sec" "${closure[@]}"
	fi
done

# 7. check what was written before declaring it complete
n=0
for f in "$out"/cache/*.narinfo; do
	n=$((n + 1))
	grep -q '^Sig: flox-runc-test-1:' "$f" || die "$f is not signed"
	grep -q '^Sig:' "$out/cache-unsigned/${f##*/}" && die "cache-unsigned/${f##*/} is signed"
	cmp -s <(grep '^Sig:' "$f") <(grep '^Sig:' "$out/cache-badsig/${f##*/}") && die "cache-badsig has the real signature"
	grep -q '^Sig: flox-runc-untrusted-1:' "$out/cache-otherkey/${f##*/}" || die "cache-otherkey/${f##*/} is not signed"
done
[ "$n" -eq "${#closure[@]}" ] || die "cache has $n narinfos, closure has ${#closure[@]} paths"

# 8. packages.json
"$PYTHON" - "$out" "$system" "$bbstatic" "$fingerprint" <<'EOF' || die "writing packages.json failed"
import json, os, sys

out, system, bbstatic, fingerprint = sys.argv[1:5]
ev = json.load(open(os.path.join(out, "nix-home", "eval.json")))
pinfo = json.load(open(os.path.join(out, "nix-home", "path-info.json")))

def key(name):
    with open(os.path.join(out, name)) as f:
        return f.read().strip()

descriptions = {
    "busybox": "Static busybox (Debian busybox-static) with applet links in bin/",
    "hello": "Prints Hello, world! (a busybox sh script: references busybox)",
    "greet": "Prints $GREETING; outputs out (bin, share/doc) and man",
    "conflict-a": "bin/conflict printing conflict-a",
    "conflict-b": "bin/conflict printing conflict-b",
    "devtool": "include/devtool.h, lib/pkgconfig/devtool.pc, bin/devtool; a stubs output",
    "propagator": "bin/propagator; propagates propuser (user env) and propdep (build input)",
    "propuser": "bin/propuser, bin/propagator; propagates propdeep (user env)",
    "propdep": "bin/propdep, include/propdep.h",
    "propdeep": "bin/propdeep",
    "langtools": "bin/java, bin/python3 (-> python3.11), bin/pip3, bin/cmake, share/jupyter, "
                 "rustc-std-workspace-std, lib/locale/locale-archive, etc/ssl/certs/ca-bundle.crt, "
                 "etc/profile.d/ plugin scripts",
}
packages, meta = {}, {}
for attr in sorted(ev):
    d = ev[attr]
    packages[attr] = dict(sorted(d["outputs"].items()))
    name = d["name"]
    version = name[len(attr) + 1:] if name.startswith(attr + "-") else ""
    names = d["outputNames"]
    meta[attr] = {
        "attr_path": attr,
        "name": name,
        "pname": attr,
        "version": version,
        "derivation": d["drvPath"],
        "output_names": names,
        # nixpkgs' default: out, plus man when there is one
        "outputs_to_install": sorted(set(["out"] + (["man"] if "man" in names else []))),
        "description": descriptions.get(attr, ""),
    }
closures = {e["path"]: sorted(e.get("references", [])) for e in pinfo}
path_info = {e["path"]: {"nar_hash": e["narHash"], "nar_size": e["narSize"]} for e in pinfo}
doc = {
    "system": system,
    "public_key": key("key.pub"),
    "key_name": key("key.pub").split(":", 1)[0],
    "keys": {
        "trusted": {"public_key": key("key.pub"), "secret_file": "key.sec", "public_file": "key.pub"},
        "badsig": {"public_key": key("badsig-key.pub"), "secret_file": "badsig-key.sec", "public_file": "badsig-key.pub"},
        "otherkey": {"public_key": key("otherkey-key.pub"), "secret_file": "otherkey-key.sec", "public_file": "otherkey-key.pub"},
    },
    "outdir": out,
    "caches": {"signed": "cache", "unsigned": "cache-unsigned", "badsig": "cache-badsig", "otherkey": "cache-otherkey"},
    "packages": packages,
    "meta": meta,
    "closures": dict(sorted(closures.items())),
    "path_info": dict(sorted(path_info.items())),
    "builder": bbstatic,
    "inputs": fingerprint,
}
tmp = os.path.join(out, "packages.json.tmp")
with open(tmp, "w") as f:
    json.dump(doc, f, indent=2, sort_keys=False)
    f.write("\n")
os.replace(tmp, os.path.join(out, "packages.json"))
EOF

echo "$fingerprint" >"$out/.complete.tmp" && mv "$out/.complete.tmp" "$out/.complete"
t1=$(date +%s.%N)
say "done in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')s: ${#outs[@]} outputs, ${#closure[@]} cache paths, key $(cat "$out/key.pub")"
