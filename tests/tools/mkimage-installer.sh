#!/bin/bash
# mkimage-installer.sh: build the image of flox-runc's node installer (the
# DaemonSet docs/kubernetes/daemonset.yaml) without network, with the
# project's own image tooling (tests/tools/mkimage.sh).
#
#   mkimage-installer.sh [--arch ARCH] OUT.tar [IMAGE-NAME [FLOX-RUNC]]
#
#   mkimage-installer.sh /tmp/installer.tar                 # flox-runc/installer:dev, build/cmd/flox-runc/flox-runc
#   mkimage-installer.sh /tmp/installer.tar registry.example/flox-runc-installer:0.1.0
#
# The image: busybox-static (sh, chroot, nsenter, sleep: what the installer
# and the DaemonSet's pause container use), flox-runc at
# /usr/local/bin/flox-runc (and flox-runc-hook, the static closure hook,
# beside it when it was built) and the shared libraries `ldd` lists for it (the C
# library and its loader: flox-runc loads libcurl and the others only when
# it needs them, and `install` needs none of them).  Its install container
# runs `flox-runc install --host-root /host`, which copies that same binary
# to the node.  Push it to your registry (skopeo copy oci-archive:OUT.tar
# docker://REGISTRY/NAME:TAG) or import it on each node
# (ctr -n k8s.io image import OUT.tar), and name it in daemonset.yaml.
#
# Needs: what mkimage.sh needs, and ldd.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
arch_args=()
while [[ $# -gt 0 ]]; do
	case "$1" in
	--arch) arch_args=(--arch "$2"); shift 2 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	--) shift; break ;;
	-*) echo "mkimage-installer.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
if [[ $# -lt 1 || $# -gt 3 ]]; then
	echo "usage: mkimage-installer.sh [--arch ARCH] OUT.tar [IMAGE-NAME [FLOX-RUNC]]" >&2
	exit 2
fi
out=$1
name=${2:-docker.io/flox-runc/installer:dev}
bin=${3:-$here/../../build/cmd/flox-runc/flox-runc}
[[ -x "$bin" ]] || { echo "mkimage-installer.sh: $bin is not an executable (build flox-runc first)" >&2; exit 1; }

adds=(--add "$bin:/usr/local/bin/flox-runc")
# the static closure hook beside it (cmd/flox-runc-hook), which install
# copies beside the node's flox-runc
hook=$(dirname "$bin")/flox-runc-hook
[[ ! -e "$hook" ]] || adds+=(--add "$hook:/usr/local/bin/flox-runc-hook")
# the libraries and the loader, at the paths the binary asks for
while read -r lib; do
	adds+=(--add "$lib:$lib")
done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)

exec bash "$here/mkimage.sh" "${arch_args[@]}" "${adds[@]}" "$out" "$name"
