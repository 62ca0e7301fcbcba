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
# Needs: tar, gzip, sha256sum, jq.
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

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/oci/blobs/sha256" "$work/empty"

# An empty tar: just the end-of-archive blocks.
tar --create --file="$work/layer.tar" --directory="$work/empty" --files-from=/dev/null
diff_id="sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"

put_blob() { # file -> prints digest hex; moves file into blobs
	local h
	h="$(sha256sum "$1" | cut -d' ' -f1)"
	mv "$1" "$work/oci/blobs/sha256/$h"
	printf '%s' "$h"
}
layer_size=$(stat -c %s "$work/layer.tar.gz")
layer_hex="$(put_blob "$work/layer.tar.gz")"

jq -cj -n --arg arch "$arch" --arg diff "$diff_id" \
	'{created:"1970-01-01T00:00:00Z", architecture:$arch, os:"linux",
	  config:{Env:["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], WorkingDir:"/"},
	  rootfs:{type:"layers", diff_ids:[$diff]},
	  history:[{created:"1970-01-01T00:00:00Z", created_by:"tests/tools/mkimage-empty.sh (empty layer)"}]}' \
	>"$work/config.json"
config_size=$(stat -c %s "$work/config.json")
config_hex="$(put_blob "$work/config.json")"

jq -cj -n --arg ch "sha256:$config_hex" --argjson cs "$config_size" \
	--arg lh "sha256:$layer_hex" --argjson ls "$layer_size" \
	'{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
	  config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$ch, size:$cs},
	  layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar+gzip", digest:$lh, size:$ls}]}' \
	>"$work/manifest.json"
manifest_size=$(stat -c %s "$work/manifest.json")
manifest_hex="$(put_blob "$work/manifest.json")"

jq -cj -n --arg mh "sha256:$manifest_hex" --argjson ms "$manifest_size" --arg name "$name" --arg arch "$arch" \
	'{schemaVersion:2, mediaType:"application/vnd.oci.image.index.v1+json",
	  manifests:[{mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$mh, size:$ms,
	    platform:{architecture:$arch, os:"linux"},
	    annotations:{"io.containerd.image.name":$name, "org.opencontainers.image.ref.name":$name}}]}' \
	>"$work/oci/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"

mkdir -p "$(dirname "$out")"
tar --create --file="$out.tmp" --directory="$work/oci" \
	--sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=ustar \
	oci-layout index.json blobs
mv "$out.tmp" "$out"
echo "mkimage-empty.sh: wrote $out ($name, layer $layer_size bytes, manifest sha256:$manifest_hex)" >&2
