#!/bin/bash
# mkimage-empty.sh: build a `flox/empty`-style base image without network: an
# OCI image archive whose only layer is an empty tar (a few dozen bytes).
#
#   mkimage-empty.sh [--arch ARCH] OUT.tar [IMAGE-NAME]
#
#   mkimage-empty.sh /tmp/empty.tar                       # docker.io/flox/empty:1.0.0
#   mkimage-empty.sh /tmp/empty.tar registry.example/flox/empty:1.0.0
#
# Pods that run in a Flox environment (`flox.dev/environment`) need nothing
# from their image: flox-runc mounts /nix and runs the command from the
# environment. Flox's documentation uses the near-empty `flox/empty:1.0.0`
# image for them. This script makes an equivalent one from nothing, so a
# cluster without access to Docker Hub (air-gapped) can still pull or
# pre-load the image:
#
#   # pre-load it on every node (containerd: the CRI namespace is k8s.io)
#   mkimage-empty.sh flox-empty.tar docker.io/flox/empty:1.0.0
#   ctr -n k8s.io image import flox-empty.tar
#   # or push it to the cluster's own registry (skopeo, from Debian)
#   skopeo copy oci-archive:flox-empty.tar docker://registry.example/flox/empty:1.0.0
#   # podman / CRI-O (containers/storage)
#   podman load -i flox-empty.tar
#
# and pods then say `image: docker.io/flox/empty:1.0.0` with
# `imagePullPolicy: IfNotPresent` (or Never).
#
# The image: one layer that is an empty tar archive (containerd does not
# unpack an image without layers), no files at all, no Cmd or Entrypoint (the
# pod gives the command), Env PATH only, WorkingDir /. A container's rootfs is
# an empty directory; the runtime creates the mount points it needs.
#
# OUT.tar is an OCI image layout in a tar ("oci-archive"). index.json names
# the image twice: io.containerd.image.name (used by `ctr image import`) and
# org.opencontainers.image.ref.name (used by `podman load`). The same inputs
# always give the same bytes, so the image id is stable.
#
# Needs: tar, gzip, sha256sum, jq.  The assembly is tests/tools/mkimage.sh --empty.
set -euo pipefail

arch=""
while [[ $# -gt 0 ]]; do
	case "$1" in
	--arch) arch="$2"; shift 2 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	--) shift; break ;;
	-*) echo "mkimage-empty.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
if [[ $# -lt 1 || $# -gt 2 ]]; then
	echo "usage: mkimage-empty.sh [--arch ARCH] OUT.tar [IMAGE-NAME]" >&2
	exit 2
fi
out="$1"
name="${2:-docker.io/flox/empty:1.0.0}"
if [[ -z "$arch" ]]; then
	case "$(uname -m)" in
	x86_64) arch=amd64 ;;
	aarch64) arch=arm64 ;;
	armv7l) arch=arm ;;
	*) arch="$(uname -m)" ;;
	esac
fi

exec bash "$(dirname "$0")/mkimage.sh" --empty --arch "$arch" "$out" "$name"
