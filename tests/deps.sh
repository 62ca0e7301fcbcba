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
  libyajl-dev libcurl4-openssl-dev libmount-dev libcap-ng-dev check
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
