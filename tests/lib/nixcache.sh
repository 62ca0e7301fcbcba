# shellcheck shell=bash
#
# tests/lib/nixcache.sh - the Nix test fixtures (tests/nix/) for shell suites:
# test packages built once into a reusable directory, real binary caches
# served over HTTP on 127.0.0.1, lockfiles and a private Nix.
# Source after tests/lib/common.sh; nixcache_build works before tmpdir_setup,
# everything else needs $TEST_TMPDIR.
#
#   nixcache_require           skip_all (77) unless nix-store, nix, python3,
#                              flock and a static busybox are installed.
#   nixcache_build             build (or reuse) the fixtures: build-cache.sh
#                              into $FLOX_RUNC_NIX_FIXTURES, else
#                              $FLOX_RUNC_BUILDDIR/nix-fixtures, else
#                              /var/tmp/flox-runc-nix-fixtures (about 2 s the
#                              first time, 0.05 s after). Sets NIX_FX (the
#                              directory), NIX_FX_PKGS (packages.json),
#                              NIX_FX_KEY (the trusted public key text).
#   nixcache_serve LABEL [VARIANT [OPTION...]]
#                              serve NIX_FX/VARIANT's cache (signed | unsigned
#                              | badsig | otherkey; default signed) on
#                              127.0.0.1 with a request log and a control file
#                              (OPTIONs to serve-cache.py: --basic-auth U:P);
#                              stopped at cleanup. Files $TEST_TMPDIR/cache-LABEL.*
#   nixcache_url LABEL         http://127.0.0.1:PORT of that server
#   nixcache_fault LABEL JSON  its control file (serve-cache.py: status,
#                              delay_ms, truncate_after, only_paths_matching);
#                              '{}' for normal service
#   nixcache_log LABEL         path of its request log
#   nixcache_nar_gets LABEL    number of `GET /nar/` requests it served so far
#   nixcache_path PKG [OUTPUT] the store path of a test package (default out)
#   nixcache_closure PATH      the closure of PATH (itself included), one a line
#   nixcache_lock FILE ARG...  make-lock.py --packages NIX_FX_PKGS ARGS -o FILE
#   nixcache_nix DIR CMD...    run CMD with a private Nix (with-private-nix.sh)
#                              whose config/state/caches live under DIR

NIX_TESTS=${FLOX_RUNC_SRCDIR:?}/tests/nix
NIX_FX=""
NIX_FX_PKGS=""
NIX_FX_KEY=""

nixcache_require() {
	require_cmd nix-store nix nix-instantiate python3 flock sha256sum
	[[ -x "${BUSYBOX:-/bin/busybox}" ]] || skip_all "missing static busybox (apt-get install busybox-static)"
}

nixcache_build() {
	local dir=${FLOX_RUNC_NIX_FIXTURES:-}
	if [[ -z "$dir" ]]; then
		if [[ -n "${FLOX_RUNC_BUILDDIR:-}" ]]; then
			dir=$FLOX_RUNC_BUILDDIR/nix-fixtures
		else
			dir=/var/tmp/flox-runc-nix-fixtures
		fi
	fi
	FLOX_RUNC_NIX_QUIET=1 bash "$NIX_TESTS/build-cache.sh" "$dir" >&2 ||
		die "tests/nix/build-cache.sh $dir failed (see $dir/build.log)"
	NIX_FX=$(cd "$dir" && pwd -P)
	NIX_FX_PKGS=$NIX_FX/packages.json
	NIX_FX_KEY=$(jq -r .public_key "$NIX_FX_PKGS")
	[[ -n "$NIX_FX_KEY" && "$NIX_FX_KEY" != null ]] || die "no public_key in $NIX_FX_PKGS"
}

nixcache_serve() {
	local variant=${2:-signed} sub pid f=$TEST_TMPDIR/cache-$1
	[[ -n "$NIX_FX" ]] || die "nixcache_serve before nixcache_build"
	sub=$(jq -r --arg v "$variant" '.caches[$v] // empty' "$NIX_FX_PKGS")
	[[ -n "$sub" ]] || die "nixcache_serve: no cache variant '$variant'"
	rm -f "$f.port"
	: >"$f.log"
	printf '{}\n' >"$f.ctl"
	sh "$NIX_TESTS/serve-cache.sh" "$NIX_FX/$sub" "$f.port" --log "$f.log" \
		--control "$f.ctl" --quiet "${@:3}" &
	pid=$!
	cleanup_pid "$pid"
	printf '%s\n' "$pid" >"$f.pid"
	wait_for test -s "$f.port" || die "the cache server ($variant) did not start"
}

nixcache_url() { printf 'http://127.0.0.1:%s\n' "$(cat "$TEST_TMPDIR/cache-$1.port")"; }
nixcache_log() { printf '%s\n' "$TEST_TMPDIR/cache-$1.log"; }

nixcache_fault() {
	local f=$TEST_TMPDIR/cache-$1.ctl
	printf '%s\n' "$2" >"$f.new"
	mv "$f.new" "$f"
}

nixcache_nar_gets() {
	grep -c ' GET /nar/' "$TEST_TMPDIR/cache-$1.log" || true
}

nixcache_path() {
	jq -er --arg p "$1" --arg o "${2:-out}" '.packages[$p][$o]' "$NIX_FX_PKGS" ||
		die "nixcache_path: no package $1 output ${2:-out}"
}

nixcache_closure() {
	jq -r --arg p "$1" '.closures as $c
		| def walk_refs($x; $seen): if ($seen | index([$x])) then $seen
			else reduce ($c[$x] // [])[] as $r ($seen + [$x]; walk_refs($r; .)) end;
		walk_refs($p; []) | sort | .[]' "$NIX_FX_PKGS"
}

nixcache_lock() {
	local file=$1
	shift
	python3 "$NIX_TESTS/make-lock.py" --packages "$NIX_FX_PKGS" "$@" -o "$file" ||
		die "make-lock.py $* failed"
}

nixcache_nix() {
	local dir=$1
	shift
	sh "$NIX_TESTS/with-private-nix.sh" "$dir" "$@"
}

# nixcache_drop_unrooted STORE: deletes every path of the chroot store STORE
# that its GC roots (symlinks under nix/var/nix/gcroots) do not reach, even
# one a process on the machine has open: Nix's GC keeps those (its runtime
# roots), so another suite's container running the same busybox kept it in
# a benchmark's "cold" node (found by cold4: 3 of 4 paths fetched).
nixcache_drop_unrooted() {
	local s=$1 p keep
	local -a roots=() del=()
	# (a root to anything but a store path, such as the profiles directory
	# Nix links when it makes a store's state directories, roots nothing here)
	while IFS= read -r p; do
		p=$(readlink "$p")
		[[ $p != /nix/store/* ]] || roots+=("$p")
	done < <(find "$s/nix/var/nix/gcroots" -type l 2>/dev/null)
	keep=$( ((${#roots[@]} == 0)) || nix-store --store "$s" -qR "${roots[@]}" 2>/dev/null)
	for p in "$s"/nix/store/*; do
		[[ -d $p && ${p##*/} != .links ]] || continue
		grep -qxF "/nix/store/${p##*/}" <<<"$keep" || del+=("/nix/store/${p##*/}")
	done
	((${#del[@]} == 0)) || nix-store --store "$s" --delete --ignore-liveness "${del[@]}" >/dev/null 2>&1 ||
		die "nix-store --delete --ignore-liveness in $s failed"
}
