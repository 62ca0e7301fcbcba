#!/usr/bin/env bash
# tests/deps.sh - installs what building and testing flox-runc needs on a
# Debian 12 machine (as root, with apt), and the CRI client's node modules
# (npm ci in tests/tools/cri).  Idempotent; skips apt and npm when everything
# is already there.  Used by tests/demo.sh, tests/check.sh and CI.  These two
# steps are the only ones that use the network (Debian's mirror, the npm
# registry); the suites never do, and under CI=true a suite that misses a
# tool fails (tests/lib/skip.sh) instead of skipping.
set -euo pipefail

packages=(
  # build
  meson ninja-build gcc pkg-config libc6-dev
  libyajl-dev libcurl4-openssl-dev libmount-dev libcap-ng-dev libsqlite3-dev check
  # the static closure hook (cmd/flox-runc-hook): musl-gcc, and the kernel's headers
  musl-tools linux-libc-dev
  # the sanitizer builds and libFuzzer (tests/check.sh, tests/fuzz)
  clang libclang-rt-14-dev
  # real runtimes and test tools
  runc crun busybox-static jq procps util-linux
  # GNU time: peak RSS in the benchmarks (tests/bench)
  time
  # the fetch child's sandbox (tests/integration/resolve.sh): a TLS hub, fork counting
  openssl strace
  # the bash that evaluates manifest vars and hooks in containers (node requirement)
  bash-static
  # the test FloxHub (git http-backend) and Nix (store, signed binary caches)
  python3 git nix-bin
  # independent git servers and network parts (tests/integration/hub-interop.sh, hub-net.sh)
  python3-dulwich tinyproxy
  # real engines (tests/lib/engines.sh): containerd (ctr, CRI), podman + conmon,
  # Node.js for the CRI client (tests/tools/cri)
  containerd podman conmon nodejs
  # the image side of tests/bench/vs-image.sh: a registry on 127.0.0.1, skopeo to push
  docker-registry skopeo
  # the installer suite reads docs/kubernetes/daemonset.yaml (tests/integration/install.sh)
  python3-yaml
  # the test hub's self-test asks it with plain HTTP too (tests/hub/selftest.sh)
  curl
  # checkpoint/restore (tests/integration/checkpoint.sh): CRIU, and what
  # building a newer one needs (below)
  criu make libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnftables-dev libnl-3-dev
  libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler protobuf-compiler uuid-dev python3-protobuf
)
# npm: Debian's package, unless the installed nodejs brings its own (a
# NodeSource nodejs conflicts with Debian's npm)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests/deps.sh: run as root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# CRIU: Debian 12's criu 3.17 cannot dump or restore anything on kernels from
# 6.13 on (`criu check`: "vdso: Unexpected rt vDSO area bounds", the new
# vvar_vclock mapping; CRIU issue 2532, fixed in CRIU 4.0).  When its check
# fails, build Debian 13's criu from its source package (the upstream tarball,
# checked by apt against the signed Sources index of the machine's own Debian
# mirror) into /usr/local/sbin, which comes before /usr/sbin in PATH.
if ! criu check >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tests/deps.sh: run as root to build criu (criu check fails on this kernel)" >&2
    exit 1
  fi
  mirror=$(apt-get indextargets --format '$(REPO_URI)' 'Origin: Debian' 'Codename: bookworm' \
    'Identifier: Packages' | head -1)
  [ -n "$mirror" ] || {
    echo "tests/deps.sh: no Debian bookworm source in apt's lists to fetch criu's source from" >&2
    exit 1
  }
  work=$(mktemp -d /var/tmp/flox-runc-criu.XXXXXX)
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/src"
  echo "deb-src $mirror trixie main" >"$work/sources.list"
  aptsrc=(-o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts=-
    -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o APT::Sandbox::User=root)
  apt-get "${aptsrc[@]}" update -qq
  (cd "$work/src" && apt-get "${aptsrc[@]}" source --download-only --tar-only -qq criu)
  tar -C "$work/src" -xf "$work/src"/criu_*.orig.tar.*
  make -C "$work/src"/criu-*/ -j"$(nproc)" criu >"$work/build.log" 2>&1 || {
    echo "tests/deps.sh: building criu failed: $work/build.log" >&2
    exit 1
  }
  install -m 0755 "$work/src"/criu-*/criu/criu /usr/local/sbin/criu
  rm -rf "$work"
  hash -r
  criu check >/dev/null || {
    echo "tests/deps.sh: the criu built from Debian 13's source fails criu check too" >&2
    exit 1
  }
fi

# The CRI client (tests/tools/cri): @grpc/grpc-js and @grpc/proto-loader at the
# versions package-lock.json pins, from the npm registry.  Again when the lock
# is newer than what npm last installed.
cri=$(cd "$(dirname "$0")" && pwd)/tools/cri
if [ ! -f "$cri/node_modules/.package-lock.json" ] ||
  [ "$cri/package-lock.json" -nt "$cri/node_modules/.package-lock.json" ]; then
  (cd "$cri" && npm ci --no-audit --no-fund --loglevel=error) || {
    echo "tests/deps.sh: npm ci in $cri failed: the CRI suites need the npm registry once (or an npm mirror: npm config set registry URL)" >&2
    exit 1
  }
fi
