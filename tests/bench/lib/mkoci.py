#!/usr/bin/env python3
"""tests/bench/lib/mkoci.py STORE PATHS_FILE OUTDIR: an OCI layout (OUTDIR,
tag latest) of one gzip layer holding exactly the store paths listed in
PATHS_FILE, taken from the chroot store STORE (STORE/nix/store/...): the
same software as the Flox environment, as a container image."""
import gzip, hashlib, io, json, os, platform, sys, tarfile

store, paths_file, out = sys.argv[1:4]
paths = [p.strip() for p in open(paths_file) if p.strip()]
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)


def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
    for d in ("nix", "nix/store"):
        ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755
        t.addfile(ti)
    for p in sorted(paths):
        t.add(store + p, arcname=p.lstrip("/"), recursive=True,
              filter=lambda ti: (setattr(ti, "uid", 0), setattr(ti, "gid", 0),
                                 setattr(ti, "uname", ""), setattr(ti, "gname", ""),
                                 setattr(ti, "mtime", 1), ti)[-1])
tar = raw.getvalue()
diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
layer, lsize = put(gzip.compress(tar, compresslevel=6, mtime=0))
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
cfg, csize = put(json.dumps({"architecture": arch, "os": "linux",
                             "config": {"Env": ["PATH=/usr/bin:/bin"]},
                             "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode())
man, msize = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": csize},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": lsize}]}).encode())
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": man, "size": msize, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
print(lsize)
