#!/bin/bash
# mkimage.sh: build a minimal, reproducible OCI image archive without network,
# from Debian's busybox-static.
#
#   mkimage.sh [--pause] [--arch ARCH] [--add SRC:DEST]... OUT.tar IMAGE-NAME
#
#   mkimage.sh /tmp/bb.tar docker.io/library/busybox-test:1
#   mkimage.sh /tmp/pause.tar registry.k8s.io/pause:3.6      # pause stand-in
#
# The image has one layer: /bin/busybox plus symlinks for its applets (sh,
# sleep, echo, cat, env, ls, id, ...), /etc/passwd, /etc/group, and empty
# /dev /proc /sys /tmp /root /run /var. Default command: `sh`. With --pause
# (implied for any name containing "/pause:"), the entrypoint sleeps forever
# and exits 0 on SIGTERM/SIGINT, like the real pause container. --add copies
# the file SRC (symlinks followed) to the absolute path DEST in the layer,
# mode kept (mkimage-installer.sh adds flox-runc and its libraries this way).
#
# OUT.tar is an OCI image layout in a tar ("oci-archive"). index.json names
# the image twice: io.containerd.image.name (used by `ctr image import`) and
# org.opencontainers.image.ref.name (used by `podman load`). Import with
#   ctr -a SOCK -n k8s.io image import OUT.tar
#   podman load -i OUT.tar
# The same inputs always give the same bytes (fixed mtimes, sorted entries,
# gzip -n), so the image id is stable.
#
# Needs: busybox-static (/bin/busybox), tar, gzip, sha256sum, jq.
set -euo pipefail

pause=0
empty=0
arch=""
adds=()
while [[ $# -gt 0 ]]; do
	case "$1" in
	--pause) pause=1; shift ;;
	--empty) empty=1; shift ;; # for mkimage-empty.sh: one empty layer, no busybox
	--arch) arch="$2"; shift 2 ;;
	--add) adds+=("$2"); shift 2 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	--) shift; break ;;
	-*) echo "mkimage.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
if [[ $# -ne 2 ]]; then
	echo "usage: mkimage.sh [--pause|--empty] [--arch ARCH] OUT.tar IMAGE-NAME" >&2
	exit 2
fi
out="$1"
name="$2"
[[ "$name" == */pause:* || "$name" == pause:* ]] && pause=1

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
if ((empty)); then
	# An empty tar: just the end-of-archive blocks (containerd does not
	# unpack an image without layers).
	mkdir -p "$work/oci/blobs/sha256" "$work/empty"
	layer_tar="$work/layer.tar"
	tar --create --file="$layer_tar" --directory="$work/empty" --files-from=/dev/null
else
	BUSYBOX="${BUSYBOX:-/bin/busybox}"
	if ! "$BUSYBOX" --list >/dev/null 2>&1; then
		echo "mkimage.sh: $BUSYBOX missing (apt-get install busybox-static)" >&2
		exit 1
	fi
	file_is_static=$(LC_ALL=C ldd "$BUSYBOX" 2>&1 || true)
	case "$file_is_static" in
	*"not a dynamic executable"* | *"statically linked"*) ;;
	*) echo "mkimage.sh: $BUSYBOX is not static (install busybox-static)" >&2; exit 1 ;;
	esac
	root="$work/rootfs"
	mkdir -p "$root"/{bin,etc,dev,proc,sys,tmp,root,run,var} "$work/oci/blobs/sha256"
	chmod 1777 "$root/tmp"
	chmod 0700 "$root/root"
	install -m 0755 "$BUSYBOX" "$root/bin/busybox"
	for applet in $("$BUSYBOX" --list); do
		[[ "$applet" == busybox ]] && continue
		ln -s busybox "$root/bin/$applet"
	done
	cat >"$root/etc/passwd" <<-'EOF'
	root:x:0:0:root:/root:/bin/sh
	nobody:x:65534:65534:nobody:/nonexistent:/bin/false
	EOF
	cat >"$root/etc/group" <<-'EOF'
	root:x:0:
	nogroup:x:65534:
	EOF
	: >"$root/etc/hosts"
	: >"$root/etc/resolv.conf"
	for add in "${adds[@]}"; do
		src=${add%%:*} dest=${add#*:}
		if [[ "$src" == "$add" || "$dest" != /* || ! -f "$src" ]]; then
			echo "mkimage.sh: --add $add: want SRC:DEST, an existing file and an absolute DEST" >&2
			exit 2
		fi
		mkdir -p "$root$(dirname "$dest")"
		cp -L --preserve=mode "$src" "$root$dest"
	done

	layer_tar="$work/layer.tar"
	tar --create --file="$layer_tar" --directory="$root" \
		--sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
		--format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		.
fi
diff_id="sha256:$(sha256sum "$layer_tar" | cut -d' ' -f1)"
gzip -n -9 <"$layer_tar" >"$work/layer.tar.gz"

put_blob() { # file -> prints digest hex; moves file into blobs
	local h
	h="$(sha256sum "$1" | cut -d' ' -f1)"
	mv "$1" "$work/oci/blobs/sha256/$h"
	printf '%s' "$h"
}
layer_size=$(stat -c %s "$work/layer.tar.gz")
layer_hex="$(put_blob "$work/layer.tar.gz")"

path_env="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
created_by="tests/tools/mkimage.sh (busybox-static)"
if ((empty)); then
	cfg_process=$(jq -nc --arg p "$path_env" '{Env:[$p], WorkingDir:"/"}')
	created_by="tests/tools/mkimage-empty.sh (empty layer)"
elif ((pause)); then
	cfg_process=$(jq -nc --arg p "$path_env" '{Env:[$p],
		Entrypoint:["/bin/sh","-c","trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"],
		WorkingDir:"/"}')
else
	cfg_process=$(jq -nc --arg p "$path_env" '{Env:[$p], Cmd:["sh"], WorkingDir:"/"}')
fi
jq -cj --arg arch "$arch" --arg diff "$diff_id" --argjson c "$cfg_process" --arg by "$created_by" \
	'{created:"1970-01-01T00:00:00Z", architecture:$arch, os:"linux", config:$c,
	  rootfs:{type:"layers", diff_ids:[$diff]},
	  history:[{created:"1970-01-01T00:00:00Z", created_by:$by}]}' \
	-n >"$work/config.json"
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
echo "mkimage.sh: wrote $out ($name, manifest sha256:$manifest_hex, config sha256:$config_hex)" >&2
