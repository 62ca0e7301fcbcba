#!/usr/bin/env python3
"""Write a Flox manifest.lock (lockfile-version 1) for test packages.

    python3 make-lock.py --packages OUTDIR/packages.json [options] PKG... [-o FILE]

PKG names a package of packages.json (busybox, hello, greet, conflict-a,
conflict-b, devtool, langtools).  Each becomes one entry of "packages" per --system,
in one of the lockfile's package shapes (FLOX.md, "Lockfile"):

  catalog       attr_path, install_id, pname, version, outputs, outputs_to_install,
                system, group, priority, ... (what `flox install hello` locks)
  store-path    {install_id, store_path, system, priority}
  flake         what Flox writes for a flake installable: the locked installable
                FLATTENED into the entry with kebab-case keys (locked-url,
                locked-flake-attr-path, outputs, output-names, system, priority ...)
  flake-nested  {install_id, locked_installable: {locked_url, ..., outputs, system}, priority}

Options (NAME is the package's install id; most may repeat):
  --shape NAME=SHAPE           (default catalog; --shape '*=store-path' for all)
  --priority NAME=N            (default 5)
  --group NAME=GROUP           (catalog; default toplevel)
  --outputs-to-install NAME=o1,o2
  --install-id PKG=ID          install under another id (also --as ID:PKG as a PKG)
  --store-path-output NAME=OUT which output a store-path entry names (default out)
  --fake NAME                  a catalog entry whose store paths are in no cache
  --system SYS                 systems to write entries for (default packages.json's)
  --manifest-systems S1,S2     options.systems (default: the --system values)
  --var KEY=VALUE              manifest [vars]
  --hook SCRIPT | --hook-file FILE      hook.on-activate
  --profile KIND=SCRIPT        profile.common / bash / zsh / fish
  --mode run|dev               options.activate.mode
  --option DOTTED.KEY=JSON     any other manifest option (value parsed as JSON,
                               or taken as a string when it is not JSON)
  --manifest-version N         manifest "version" (default 1; stubs are linked
                               only when it is not 1)
  -o FILE                      write here (atomically) instead of stdout

Python 3 standard library only.
"""

import argparse
import hashlib
import json
import os
import sys

SHAPES = ("catalog", "store-path", "flake", "flake-nested")
NIX32 = "0123456789abcdfghijklmnpqrsvwxyz"
FAKE_REV = hashlib.sha1(b"flox-runc test catalog").hexdigest()
FLAKE_REV = hashlib.sha1(b"flox-runc test flake").hexdigest()
FLAKE_URL = "git+https://flox-runc.invalid/test-flake?ref=refs/heads/main&rev=" + FLAKE_REV


def die(msg):
    print("make-lock: " + msg, file=sys.stderr)
    sys.exit(2)


def kv(items, what, conv=str):
    out = {}
    for it in items or []:
        if "=" not in it:
            die("%s wants NAME=VALUE, got %r" % (what, it))
        k, v = it.split("=", 1)
        try:
            out[k] = conv(v)
        except ValueError:
            die("%s: bad value %r" % (what, v))
    return out


def fake_path(name, out):
    h = hashlib.sha256(("flox-runc fake " + name + " " + out).encode()).digest()
    base = "".join(NIX32[b % 32] for b in h[:32])
    suffix = "" if out == "out" else "-" + out
    return "/nix/store/%s-%s-0.0%s" % (base, name, suffix)


def set_dotted(d, dotted, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
        if not isinstance(d, dict):
            die("--option %s: %s is not a table" % (dotted, k))
    d[keys[-1]] = value


def main():
    ap = argparse.ArgumentParser(description="Write a Flox manifest.lock for test packages.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("pkgs", nargs="*", metavar="PKG")
    ap.add_argument("--packages", required=True, help="packages.json from build-cache.sh")
    ap.add_argument("--shape", action="append")
    ap.add_argument("--priority", action="append")
    ap.add_argument("--group", action="append")
    ap.add_argument("--outputs-to-install", action="append")
    ap.add_argument("--install-id", action="append")
    ap.add_argument("--store-path-output", action="append")
    ap.add_argument("--fake", action="append", default=[])
    ap.add_argument("--system", action="append")
    ap.add_argument("--manifest-systems")
    ap.add_argument("--var", action="append")
    ap.add_argument("--hook")
    ap.add_argument("--hook-file")
    ap.add_argument("--profile", action="append")
    ap.add_argument("--mode", choices=("run", "dev"))
    ap.add_argument("--option", action="append")
    ap.add_argument("--manifest-version", type=int, default=1)
    ap.add_argument("-o", "--output")
    a = ap.parse_args()

    try:
        with open(a.packages) as f:
            pj = json.load(f)
    except (OSError, ValueError) as e:
        die("cannot read %s: %s (run tests/nix/build-cache.sh first)" % (a.packages, e))

    shapes = kv(a.shape, "--shape")
    for k, v in shapes.items():
        if v not in SHAPES:
            die("--shape %s=%s: shape is one of %s" % (k, v, ", ".join(SHAPES)))
    prios = kv(a.priority, "--priority", int)
    groups = kv(a.group, "--group")
    oti = kv(a.outputs_to_install, "--outputs-to-install", lambda v: [o for o in v.split(",") if o])
    ids = kv(a.install_id, "--install-id")
    spout = kv(a.store_path_output, "--store-path-output")
    systems = a.system or [pj["system"]]
    mvars = kv(a.var, "--var")
    profile = kv(a.profile, "--profile")
    for k in profile:
        if k not in ("common", "bash", "zsh", "fish"):
            die("--profile %s: one of common, bash, zsh, fish" % k)

    def pick(m, iid, pkg, default):
        return m.get(iid, m.get(pkg, m.get("*", default)))

    # (install_id, package name, outputs, meta)
    entries = []
    for spec in a.pkgs:
        pkg = spec
        iid = None
        if ":" in spec:  # ID:PKG
            iid, pkg = spec.split(":", 1)
        if pkg not in pj["packages"]:
            die("no package %r in %s (have: %s)" % (pkg, a.packages, ", ".join(sorted(pj["packages"]))))
        iid = iid or ids.get(pkg, pkg)
        entries.append((iid, pkg, dict(pj["packages"][pkg]), dict(pj["meta"][pkg])))
    for name in a.fake:
        outs = {"out": fake_path(name, "out")}
        meta = {"attr_path": name, "name": name + "-0.0", "pname": name, "version": "0.0",
                "derivation": fake_path(name, "drv").replace("-0.0-drv", "-0.0.drv"),
                "output_names": ["out"], "outputs_to_install": ["out"],
                "description": "not in any cache (flox-runc test)"}
        entries.append((ids.get(name, name), name, outs, meta))
    seen = set()
    for iid, _, _, _ in entries:
        if iid in seen:
            die("install id %r twice: use ID:PKG or --install-id to rename one" % iid)
        seen.add(iid)

    install, packages = {}, []
    for iid, pkg, outs, meta in entries:
        shape = pick(shapes, iid, pkg, "catalog")
        prio = pick(prios, iid, pkg, 5)
        to_install = pick(oti, iid, pkg, meta["outputs_to_install"])
        for o in to_install:
            if o not in outs:
                die("%s has no output %r (has %s)" % (pkg, o, ", ".join(sorted(outs))))
        desc = {}
        if shape == "catalog":
            desc["pkg-path"] = meta["attr_path"]
            if iid in groups or pkg in groups:
                desc["pkg-group"] = pick(groups, iid, pkg, "toplevel")
        elif shape == "store-path":
            desc["store-path"] = outs[pick(spout, iid, pkg, "out")]
        else:
            desc["flake"] = FLAKE_URL.split("?")[0] + "#" + meta["attr_path"]
        if prio != 5:
            desc["priority"] = prio
        if iid in oti or pkg in oti:
            desc["outputs"] = to_install
        install[iid] = desc

        for system in systems:
            if shape == "catalog":
                packages.append({
                    "attr_path": meta["attr_path"],
                    "broken": False,
                    "derivation": meta["derivation"],
                    "description": meta["description"],
                    "install_id": iid,
                    "license": "GPL-2.0-only" if pkg == "busybox" else "MIT",
                    "locked_url": "https://github.com/flox/nixpkgs?rev=" + FAKE_REV,
                    "name": meta["name"],
                    "pname": meta["pname"],
                    "rev": FAKE_REV,
                    "rev_count": 700000,
                    "rev_date": "2025-01-01T00:00:00Z",
                    "scrape_date": "2025-01-02T00:00:00Z",
                    "stabilities": ["stable", "unstable"],
                    "unfree": False,
                    "version": meta["version"],
                    "outputs_to_install": to_install,
                    "outputs": outs,
                    "system": system,
                    "group": pick(groups, iid, pkg, "toplevel"),
                    "priority": prio,
                })
            elif shape == "store-path":
                packages.append({
                    "install_id": iid,
                    "store_path": desc["store-path"],
                    "system": system,
                    "priority": prio,
                })
            else:
                li = {
                    "locked-url": FLAKE_URL,
                    "flake-description": "flox-runc test flake",
                    "locked-flake-attr-path": "packages.%s.%s" % (system, meta["attr_path"]),
                    "derivation": meta["derivation"],
                    "outputs": outs,
                    "output-names": meta["output_names"],
                    "outputs-to-install": to_install,
                    "package-system": system,
                    "system": system,
                    "name": meta["name"],
                    "pname": meta["pname"],
                    "version": meta["version"],
                    "description": meta["description"],
                    "licenses": ["MIT"],
                    "broken": False,
                    "unfree": False,
                }
                if shape == "flake":
                    packages.append(dict({"install_id": iid}, **li, priority=prio))
                else:
                    nested = {k.replace("-", "_"): v for k, v in li.items()}
                    packages.append({"install_id": iid, "locked_installable": nested, "priority": prio})

    manifest = {"version": a.manifest_version, "install": install}
    if mvars:
        manifest["vars"] = mvars
    hook = a.hook
    if a.hook_file:
        with open(a.hook_file) as f:
            hook = f.read()
    if hook is not None:
        manifest["hook"] = {"on-activate": hook}
    if profile:
        manifest["profile"] = profile
    options = {"systems": a.manifest_systems.split(",") if a.manifest_systems else list(systems)}
    if a.mode:
        options["activate"] = {"mode": a.mode}
    for it in a.option or []:
        if "=" not in it:
            die("--option wants DOTTED.KEY=JSON, got %r" % it)
        k, v = it.split("=", 1)
        try:
            val = json.loads(v)
        except ValueError:
            val = v
        set_dotted(options, k, val)
    manifest["options"] = options

    lock = {"lockfile-version": 1, "manifest": manifest, "packages": packages}
    text = json.dumps(lock, indent=2) + "\n"
    if a.output:
        tmp = "%s.tmp.%d" % (a.output, os.getpid())
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, a.output)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
