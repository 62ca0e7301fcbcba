#!/usr/bin/env python3
"""tests/bench/lib/mkoci.py [--layered] STORE PATHS_FILE OUTDIR: an OCI layout
(OUTDIR, tag latest) holding exactly the store paths listed in PATHS_FILE,
taken from the chroot store STORE (STORE/nix/store/...): the same software as
the Flox environment, as a container image.
  default     one gzip layer with every path;
  --layered   one gzip layer per store path, in PATHS_FILE's order (as
              nix2container builds them): images sharing paths share those
              layers' blobs, and their snapshots when the shared paths come
              first.
Layers are reproducible (fixed owners, mtimes, gzip header), so the same path
gives the same blob in every image.  Prints the layers' total size (bytes)."""
import gzip, hashlib, io, json, os, platform, sys, tarfile

args = sys.argv[1:]
layered = bool(args) and args[0] == "--layered"
if layered:
    args = args[1:]
if len(args) != 3:
    sys.exit("usage: mkoci.py [--layered] STORE PATHS_FILE OUTDIR")
store, paths_file, out = args
paths = [p.strip() for p in open(paths_file) if p.strip()]
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)


def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def norm(ti):
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    ti.mtime = 1
    return ti


def layer(ps):
    """a gzip layer of the store paths ps: (digest, size, diff_id)"""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d in ("nix", "nix/store"):
            ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = 1
            t.addfile(ti)
        for p in ps:
            t.add(store + p, arcname=p.lstrip("/"), recursive=True, filter=norm)
    tar = raw.getvalue()
    digest, size = put(gzip.compress(tar, compresslevel=6, mtime=0))
    return digest, size, "sha256:" + hashlib.sha256(tar).hexdigest()


layers = [layer([p]) for p in paths] if layered else [layer(sorted(paths))]
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
cfg, csize = put(json.dumps({"architecture": arch, "os": "linux",
                             "config": {"Env": ["PATH=/usr/bin:/bin"]},
                             "rootfs": {"type": "layers", "diff_ids": [l[2] for l in layers]}}).encode())
man, msize = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": csize},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l[0], "size": l[1]}
               for l in layers]}).encode())
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": man, "size": msize, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
print(sum(l[1] for l in layers))
