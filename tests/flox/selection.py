#!/usr/bin/env python3
"""Flox parity of the selection (issue 8 part 7): for every real lockfile,
what `flox-runc resolve --lockfile` says an environment links, per system
and mode, against what Flox's own rules give, computed here independently:

  outputs and priorities  buildenv/builder.pl:488-653 (packagesToPkgs) and
                          773-791 (run, then dev, on one counter)
  systems                 cli/flox-rust-sdk/src/providers/buildenv.rs:1426-1486
                          and cli/flox-manifest/src/lockfile/mod.rs:203-235
  lockfile-version        cli/flox-manifest/src/lockfile/mod.rs:69 (Version<1>)
  mode default            options.activate.mode, else run (the pod default)

(flox/flox 6536dac28).  One deliberate choice is shared with flox-runc and
said here: builder.pl numbers one package's outputs outside
outputs_to_install in Perl's hash order, which is unspecified; both take
the lockfile's order.

    selection.py FLOX_RUNC LOCKS_DIR      prints TAP
"""

import glob
import json
import os
import subprocess
import sys

SYSTEMS = ["x86_64-linux", "aarch64-linux", "riscv64-linux"]
MODES = ["run", "dev"]


class Refused(Exception):
    def __init__(self, kind, names=()):
        super().__init__(kind)
        self.kind = kind
        self.names = list(names)


def pkg_system(p):
    return p.get("system") or (p.get("locked_installable") or {}).get("system")


def check_systems(lock, system):
    manifest = lock["manifest"]
    opts = manifest.get("options") or {}
    systems = opts.get("systems")
    if systems is not None:
        if system not in systems:
            raise Refused("systems", systems)
        return
    install = manifest.get("install") or {}
    unconstrained = {
        iid
        for iid, d in install.items()
        if isinstance(d, dict) and "pkg-path" in d and d.get("systems") is None
    }
    locked = sorted({pkg_system(p) for p in lock["packages"] if p.get("install_id") in unconstrained})
    if locked and system not in locked:
        raise Refused("implicit", locked)


def packages_to_pkgs(lock, system, counter):
    """builder.pl packagesToPkgs for the packages of system: [(path, prio)]."""
    manifest = lock["manifest"]
    install = manifest.get("install") or {}
    out = []
    for p in lock["packages"]:
        if pkg_system(p) != system:
            continue
        prio = p.get("priority", 5)
        if "store_path" in p:
            out.append((p["store_path"], prio))
            continue
        outputs = p.get("outputs") or (p.get("locked_installable") or {}).get("outputs")
        oti = p.get("outputs_to_install")
        if oti is None:
            oti = p.get("outputs-to-install")
        if "version" in manifest:
            if manifest["version"] != 1:
                raise Refused("unbuildable")
            # one entry of outputs_to_install at prio, then each other
            # output alone (builder.pl:592-627)
            main, others = [], []
            for name, path in outputs.items():
                if name == "stubs":
                    continue
                if oti is not None and name in oti:
                    main.append((path, prio))
                else:
                    others.append((path, 1000 * prio + counter[0]))
                    counter[0] += 1
            out += main + others
        elif "schema-version" in manifest:
            if p["install_id"] not in install:
                raise Refused("unbuildable")
            want = install[p["install_id"]].get("outputs")
            if want == "all":
                names = list(outputs)
            elif isinstance(want, list):
                names = want
            elif want is None:
                names = oti or []
            else:
                raise Refused("unbuildable")
            for name in names:
                if name not in outputs:
                    raise Refused("unbuildable")
                out.append((outputs[name], prio))
        else:
            raise Refused("unbuildable")
    return out


def expect(lock, system):
    """{'run': [...], 'dev': [...]} of (path, priority), or raises Refused."""
    lv = lock.get("lockfile-version")
    if not (isinstance(lv, int) and not isinstance(lv, bool) and lv == 1):
        raise Refused("lockfile-version")
    check_systems(lock, system)
    counter = [0]
    run = packages_to_pkgs(lock, system, counter)
    dev = packages_to_pkgs(lock, system, counter)
    return {"run": first_write(run), "dev": first_write(dev)}


def first_write(entries):
    """addPkg links a path once: the first entry wins (builder.pl:317-318,822-826)."""
    seen, out = set(), []
    for path, prio in entries:
        if path not in seen:
            seen.add(path)
            out.append((path, prio))
    return out


def default_mode(lock):
    mode = (((lock.get("manifest") or {}).get("options") or {}).get("activate") or {}).get("mode")
    return mode or "run"


def resolve(flox_runc, path, system, mode):
    argv = [flox_runc, "resolve", "--lockfile", path, "--system", system, "--json"]
    if mode:
        argv += ["--mode", mode]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def compare(flox_runc, path, lock, problems):
    checked = 0
    for system in SYSTEMS:
        try:
            want = expect(lock, system)
            refused = None
        except Refused as e:
            want, refused = None, e
        for mode in MODES + [None]:
            rc, out, err = resolve(flox_runc, path, system, mode)
            where = "%s %s" % (system, mode or "(default mode)")
            checked += 1
            if refused is not None:
                if rc == 0:
                    problems.append("%s: Flox refuses (%s), flox-runc accepted" % (where, refused.kind))
                    continue
                line = err.strip()
                if "\n" in line:
                    problems.append("%s: the refusal is not one line: %r" % (where, line))
                need = {
                    "systems": ["options.systems"] + refused.names[:6],
                    "implicit": ["not locked for this node's system " + system, "re-lock"]
                    + refused.names[:6],
                    "lockfile-version": ["re-lock the environment with a current Flox"],
                    "unbuildable": [],
                }[refused.kind]
                for n in need:
                    if n not in line:
                        problems.append("%s: the refusal does not say %r: %s" % (where, n, line))
                continue
            if rc != 0:
                problems.append("%s: flox-runc refused: %s" % (where, err.strip()))
                continue
            got = json.loads(out)
            eff = mode or default_mode(lock)
            if got["mode"] != eff:
                problems.append("%s: mode %s, Flox's rule gives %s" % (where, got["mode"], eff))
            links = sorted((l["store_path"], l["priority"]) for l in got["links"])
            exp = sorted(want[eff])
            if links != exp:
                extra = sorted(set(links) - set(exp))
                missing = sorted(set(exp) - set(links))
                problems.append("%s: links differ; flox-runc only: %s; Flox only: %s"
                                % (where, extra[:5], missing[:5]))
            if sorted(got["realise"]) != sorted({p for p, _ in exp}):
                problems.append("%s: realises other paths than it links" % where)
    return checked


def main():
    flox_runc, locks = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(os.path.join(locks, "*.lock")))
    if not files:
        print("Bail out! no lockfiles in %s" % locks)
        return 99
    print("1..%d" % (len(files) + 1))
    failed = 0
    total = 0
    for i, path in enumerate(files, 1):
        with open(path, "rb") as f:
            lock = json.loads(f.read())
        problems = []
        total += compare(flox_runc, path, lock, problems)
        name = os.path.basename(path)
        if problems:
            failed += 1
            print("not ok %d - %s" % (i, name))
            for p in problems[:20]:
                print("# " + p)
        else:
            print("ok %d - %s" % (i, name))
    # The model itself must be able to tell a difference: a lockfile whose
    # expectations are shifted is not accepted.
    probe = files[0]
    with open(probe, "rb") as f:
        lock = json.loads(f.read())
    try:
        want = expect(lock, SYSTEMS[0])
        rc, out, _ = resolve(flox_runc, probe, SYSTEMS[0], "run")
        got = sorted((l["store_path"], l["priority"] + 1) for l in json.loads(out)["links"])
        ok = rc == 0 and got != sorted(want["run"])
    except Refused:
        ok = True
    print("%s %d - a shifted priority is a difference" % ("ok" if ok else "not ok", len(files) + 1))
    print("# %d selections compared" % total)
    return 1 if failed or not ok else 0


if __name__ == "__main__":
    sys.exit(main())
