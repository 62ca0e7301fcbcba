#!/usr/bin/env bash
# tests/bench/lib/mkenv.sh OUTDIR MIB NPATHS FIXTURES
#
# A realistic test environment for the benchmarks, built offline with the
# machine's Nix into a private chroot store (OUTDIR/store): NPATHS-1 packages
# of about MIB MiB together, made of Debian's own files (/usr/share, /usr/lib:
# thousands of files, deep share/ trees, every package with bin/ and lib/),
# plus the test fixtures' static busybox (FIXTURES, tests/nix/build-cache.sh)
# to run.  Published to two signed binary caches, with xz and with zstd NARs
# (the compressions real caches use; Nix 2.8 writes and substitutes both):
#   OUTDIR/cache-xz OUTDIR/cache-zstd  OUTDIR/key.sec OUTDIR/key.pub
#                 (key name flox-runc-bench-1)
#   OUTDIR/paths  the store paths, busybox first, then the packages in name
#                 order (the closure: no path references another)
#   OUTDIR/gen2   "OLD NEW": a second version of one package (bench-pkg-001,
#                 one file changed: a new store path of the same name), in both
#                 caches and the store, for a new generation changing one package
# Callers version OUTDIR's name: change it when this script's output changes.
# Idempotent (OUTDIR/.complete).  Installs nothing.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: mkenv.sh OUTDIR MIB NPATHS FIXTURES" >&2; exit 2; }
out=$1 mib=$2 npaths=$3 fix=$4
[ -e "$out/.complete" ] && exit 0
rm -rf "$out"
mkdir -p "$out/nix-home/conf" "$out/src"
export HOME=$out/nix-home NIX_CONF_DIR=$out/nix-home/conf XDG_CACHE_HOME=$out/nix-home/cache
printf 'build-users-group =\nsubstituters =\nexperimental-features = nix-command\n' >"$NIX_CONF_DIR/nix.conf"
store=$out/store

# the packages' trees: Debian files dealt round-robin, under deep share/ paths
python3 - "$out/src" "$mib" "$((npaths - 1))" <<'PY'
import os, shutil, sys
dst, mib, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
budget = mib << 20
files = []
for root in ("/usr/share", "/usr/lib"):
    for d, _, fs in os.walk(root):
        for f in sorted(fs):
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) < (4 << 20):
                files.append(p)
files.sort()
pk = [os.path.join(dst, "bench-pkg-%03d" % i) for i in range(n)]
for i, p in enumerate(pk):
    os.makedirs(p + "/bin"); os.makedirs(p + "/lib")
    with open(p + "/bin/pkg%03d" % i, "w") as f:
        f.write("#!/bin/sh\necho pkg%03d\n" % i)
    os.chmod(p + "/bin/pkg%03d" % i, 0o755)
used, k = 0, 0
for src in files:
    if used >= budget:
        break
    p = pk[k % n]; k += 1
    rel = os.path.relpath(src, "/usr")
    t = os.path.join(p, ("lib/" + os.path.basename(src)) if src.endswith(".so") else os.path.join("share", rel))
    if os.path.exists(t):
        continue
    os.makedirs(os.path.dirname(t), exist_ok=True)
    try:
        shutil.copyfile(src, t)
    except OSError:
        continue
    used += os.path.getsize(t)
PY
paths=()
for d in "$out/src"/*; do
	paths+=("$(nix-store --store "$store" --add "$d")")
done
# generation 2 of one package: the same name, one file changed
g=$out/src/bench-pkg-001
[ -d "$g" ] || g=$out/src/bench-pkg-000
old=$(nix-store --store "$store" --add "$g")
echo "echo generation 2" >>"$g/bin/pkg${g##*-}"
new=$(nix-store --store "$store" --add "$g")
nix-store --store "$out/store" --generate-binary-cache-key flox-runc-bench-1 "$out/key.sec" "$out/key.pub"
bb=$(jq -r '.packages.busybox.out' "$fix/packages.json")
for c in xz zstd; do
	to="file://$out/cache-$c?secret-key=$out/key.sec&compression=$c&parallel-compression=true"
	nix copy --store "$fix/build-store" --to "$to" "$bb"
	nix copy --store "$store" --to "$to" "${paths[@]}" "$new"
done
# busybox's content beside the others, for the image's layer
nix copy --store "$fix/build-store" --to "$store" --no-check-sigs "$bb"
printf '%s\n' "$bb" "${paths[@]}" >"$out/paths"
echo "$old $new" >"$out/gen2"
rm -rf "$out/src"
touch "$out/.complete"
