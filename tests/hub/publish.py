#!/usr/bin/env python3
"""Publish Flox environments into a test FloxHub directory, as FloxHub stores them.

    publish.py publish --root DIR OWNER/NAME --lock FILE [--toml FILE]
                       [--metadata-version 1|2] [--kind KIND] [--targets a,b]
                       [--summary TEXT] [--timestamp UNIX] [--author A] [--hostname H]
    publish.py switch  --root DIR OWNER/NAME N [--timestamp UNIX]
    publish.py show    --root DIR OWNER/NAME
    publish.py private --root DIR OWNER [--public]
    publish.py token   --root DIR TOKEN --owners a,b [--exp UNIX] [--remove]
    publish.py jwt     --exp UNIX [--sub X] [--handle H] [--iat UNIX]

Layout (FLOX.md "FloxHub storage"): one bare repo per owner DIR/<owner>/floxmeta,
one branch per environment named exactly <name>, its tree holds metadata.json
and N/env/manifest.toml + N/env/manifest.lock for every generation N.

publish/switch print one JSON object on stdout:
    {"owner":..,"name":..,"branch":..,"commit":..,"generation":N,"live":"N",
     "total_generations":N,"metadata_version":2,"repo":..}

Python 3 standard library + git plumbing only; safe to run while floxhub.py
serves the same DIR (refs move atomically, hub.json is replaced atomically).
"""

import argparse
import base64
import fcntl
import json
import os
import re
import subprocess
import sys
import time

NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
V2_KINDS = ("import", "initialize", "migrate_v1", "install", "edit", "uninstall",
            "upgrade", "include_upgrade", "other")
TARGET_KINDS = ("install", "uninstall", "upgrade", "include_upgrade")

IDENT = {
    "GIT_AUTHOR_NAME": "FloxHub test",
    "GIT_AUTHOR_EMAIL": "floxhub-test@localhost",
    "GIT_COMMITTER_NAME": "FloxHub test",
    "GIT_COMMITTER_EMAIL": "floxhub-test@localhost",
}


def die(msg):
    sys.stderr.write("publish.py: %s\n" % msg)
    sys.exit(1)


def atomic_write(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Lock:
    """An exclusive flock on DIR/.publish.lock (serialises writers)."""

    def __init__(self, root):
        os.makedirs(root, exist_ok=True)
        self.path = os.path.join(root, ".publish.lock")

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


class Repo:
    def __init__(self, path, timestamp):
        self.path = path
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        self.env.update(IDENT)
        self.env.update({
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_DIR": path,
            "GIT_AUTHOR_DATE": "@%d +0000" % timestamp,
            "GIT_COMMITTER_DATE": "@%d +0000" % timestamp,
            "LC_ALL": "C",
        })

    def git(self, *args, data=None, check=True):
        p = subprocess.run(["git"] + list(args), input=data, env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if check and p.returncode != 0:
            die("git %s: %s" % (" ".join(args), p.stderr.decode(errors="replace").strip()))
        return p

    def out(self, *args, data=None):
        return self.git(*args, data=data).stdout.decode().strip()

    def ensure(self):
        if os.path.isfile(os.path.join(self.path, "HEAD")):
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        env = dict(self.env)
        del env["GIT_DIR"]
        p = subprocess.run(["git", "init", "--quiet", "--bare", self.path], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode != 0:
            die("git init %s: %s" % (self.path, p.stderr.decode(errors="replace")))
        for k, v in (("uploadpack.allowFilter", "true"),
                     ("uploadpack.allowAnySHA1InWant", "true"),
                     ("uploadpack.allowReachableSHA1InWant", "true"),
                     ("uploadpack.allowTipSHA1InWant", "true"),
                     ("http.receivepack", "false"),
                     ("core.logAllRefUpdates", "true")):
            self.git("config", k, v)

    def branch_commit(self, branch):
        p = self.git("rev-parse", "--verify", "--quiet", "refs/heads/%s^{commit}" % branch,
                     check=False)
        return p.stdout.decode().strip() if p.returncode == 0 else None

    def blob(self, data):
        if isinstance(data, str):
            data = data.encode()
        return self.out("hash-object", "-w", "--stdin", data=data)

    def mktree(self, entries):
        """entries: list of (mode, type, sha, name)."""
        text = "".join("%s %s %s\t%s\n" % e for e in sorted(entries, key=lambda e: e[3]))
        return self.out("mktree", data=text.encode())

    def top_entries(self, commit):
        if not commit:
            return []
        raw = self.git("ls-tree", "-z", commit).stdout.decode()
        res = []
        for item in raw.split("\0"):
            if not item:
                continue
            meta, name = item.split("\t", 1)
            mode, typ, sha = meta.split()
            res.append((mode, typ, sha, name))
        return res

    def show(self, spec):
        return self.git("show", spec).stdout.decode()

    def commit(self, tree, parent, message):
        args = ["commit-tree", tree, "-m", message]
        if parent:
            args += ["-p", parent]
        return self.out(*args)

    def update(self, branch, new, old):
        self.git("update-ref", "-m", "publish.py", "refs/heads/%s" % branch, new,
                 old or "0" * 40)


# -- manifest.toml from the lock's "manifest" ------------------------------

def toml_key(k):
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    if isinstance(v, str):
        if "\n" in v and "'''" not in v:
            return "'''\n" + v + "'''"
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join("%s = %s" % (toml_key(k), toml_value(x))
                                for k, x in v.items()) + " }"
    if v is None:
        return '""'
    raise ValueError("cannot express %r in TOML" % (v,))


def to_toml(manifest):
    lines, tables = [], []
    for k, v in manifest.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif v is not None:
            lines.append("%s = %s" % (toml_key(k), toml_value(v)))

    def emit_table(prefix, d):
        flat, sub = [], []
        for k, v in d.items():
            if v is None:
                continue
            if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()) \
                    and prefix.split(".")[0] not in ("install",):
                sub.append((k, v))
            else:
                flat.append((k, v))
        out = ["", "[%s]" % prefix]
        for k, v in flat:
            if isinstance(v, dict):
                for kk, vv in v.items():
                    if vv is not None:
                        out.append("%s.%s = %s" % (toml_key(k), toml_key(kk), toml_value(vv)))
            else:
                out.append("%s = %s" % (toml_key(k), toml_value(v)))
        for k, v in sub:
            out += emit_table(prefix + "." + toml_key(k), v)
        return out

    for k, v in tables:
        lines += emit_table(toml_key(k), v)
    return "\n".join(lines).lstrip("\n") + "\n"


# -- metadata ------------------------------------------------------------------

def empty_metadata(version):
    if version == 1:
        return {"currentGen": None, "generations": {}, "version": 1}
    return {"version": 2, "history": [], "total_generations": 0}


def summary_of(entry):
    kind = entry["kind"]
    t = entry.get("targets") or []

    def fmt(verb, obj):
        return "%s %s%s %s" % (verb, obj, "" if len(t) < 2 else "s",
                               ", ".join("'%s'" % x for x in t))
    return {
        "import": lambda: "imported environment",
        "initialize": lambda: "initialized new environment",
        "migrate_v1": lambda: "%s [metadata migrated]" % entry.get("description", ""),
        "install": lambda: fmt("installed", "package"),
        "edit": lambda: "manually edited the manifest",
        "uninstall": lambda: fmt("uninstalled", "package"),
        "upgrade": lambda: fmt("upgraded", "package") if t else "upgraded all packages",
        "include_upgrade": lambda: (fmt("upgraded", "included environment") if t
                                    else "upgraded all included environments"),
        "switch_generation": lambda: "changed current generation %s -> %s" % (
            entry.get("previous_generation"), entry["current_generation"]),
        "other": lambda: entry.get("summary", ""),
    }.get(kind, lambda: "performed unknown %s operation" % kind)()


def live_generation(meta):
    if meta.get("version") == 2:
        return meta["history"][-1]["current_generation"] if meta["history"] else None
    return meta.get("currentGen")


def total_generations(meta):
    if meta.get("version") == 2:
        return int(meta["total_generations"])
    return len(meta.get("generations") or {})


def split_env(ref):
    owner, sep, name = ref.partition("/")
    if not sep or not NAME_RE.match(owner) or not NAME_RE.match(name):
        die("expected OWNER/NAME, got %r" % ref)
    return owner, name


def repo_path(root, owner):
    return os.path.join(os.path.abspath(root), owner, "floxmeta")


def read_metadata(repo, commit):
    if not commit:
        return None
    p = repo.git("show", "%s:metadata.json" % commit, check=False)
    if p.returncode != 0:
        die("branch has no metadata.json")
    return json.loads(p.stdout)


def write_commit(repo, branch, parent, meta, message, extra_entries=()):
    entries = [e for e in repo.top_entries(parent) if e[3] != "metadata.json"]
    names = {e[3] for e in extra_entries}
    entries = [e for e in entries if e[3] not in names] + list(extra_entries)
    entries.append(("100644", "blob", repo.blob(json.dumps(meta, separators=(",", ":"))),
                    "metadata.json"))
    tree = repo.mktree(entries)
    commit = repo.commit(tree, parent, message)
    repo.update(branch, commit, parent)
    return commit


def result(owner, name, repo, commit, meta, generation):
    return {
        "owner": owner, "name": name, "branch": name, "commit": commit,
        "generation": generation, "live": live_generation(meta),
        "total_generations": total_generations(meta),
        "metadata_version": meta.get("version"), "repo": repo.path,
    }


def cmd_publish(a):
    owner, name = split_env(a.env)
    try:
        with open(a.lock, "rb") as f:
            lock_bytes = f.read()
    except OSError as e:
        die("--lock: %s" % e)
    try:
        lock = json.loads(lock_bytes)
    except ValueError:
        lock = None
        sys.stderr.write("publish.py: warning: %s is not JSON (published as is)\n" % a.lock)
    if a.toml:
        with open(a.toml, "rb") as f:
            toml_bytes = f.read()
    else:
        manifest = (lock or {}).get("manifest") if isinstance(lock, dict) else None
        toml_bytes = to_toml(manifest or {"version": 1}).encode()

    ts = int(a.timestamp if a.timestamp is not None else time.time())
    with Lock(a.root):
        repo = Repo(repo_path(a.root, owner), ts)
        repo.ensure()
        parent = repo.branch_commit(name)
        meta = read_metadata(repo, parent)
        if meta is None:
            version = a.metadata_version or 2
            meta = empty_metadata(version)
            # Like `Generations::init`: a first commit with empty metadata.
            parent = write_commit(repo, name, None, meta,
                                  "Initialize generations branch for environment '%s'" % name)
        version = meta.get("version", 1)
        if a.metadata_version and a.metadata_version != version:
            die("%s/%s already uses metadata version %s" % (owner, name, version))

        n = total_generations(meta) + 1
        gen = str(n)
        if version == 2:
            kind = a.kind or ("initialize" if n == 1 else "edit")
            entry = {"kind": kind}
            if kind in TARGET_KINDS:
                if a.targets is not None:
                    targets = [t for t in a.targets.split(",") if t]
                else:
                    inst = ((lock or {}).get("manifest") or {}).get("install") or {}
                    targets = sorted(inst) if kind == "install" else []
                entry["targets"] = targets
            elif kind == "other":
                entry["summary"] = a.summary or "published by publish.py"
            elif kind == "migrate_v1":
                entry["description"] = a.summary or "migrated"
            entry.update({"author": a.author, "hostname": a.hostname, "timestamp": ts,
                          "current_generation": gen})
            prev = live_generation(meta)
            if prev is not None:
                entry["previous_generation"] = prev
            meta["history"].append(entry)
            meta["total_generations"] = n
            summary = summary_of(entry)
        else:
            summary = a.summary or ("%s generation %s" % ("created", gen))
            meta["generations"][gen] = {"created": ts, "lastActive": ts,
                                        "description": summary}
            meta["currentGen"] = gen

        env_tree = repo.mktree([
            ("100644", "blob", repo.blob(lock_bytes), "manifest.lock"),
            ("100644", "blob", repo.blob(toml_bytes), "manifest.toml"),
        ])
        gen_tree = repo.mktree([("040000", "tree", env_tree, "env")])
        commit = write_commit(repo, name, parent, meta,
                              "Create generation %s\n\n%s" % (gen, summary),
                              [("040000", "tree", gen_tree, gen)])
    print(json.dumps(result(owner, name, repo, commit, meta, n)))


def cmd_switch(a):
    owner, name = split_env(a.env)
    ts = int(a.timestamp if a.timestamp is not None else time.time())
    with Lock(a.root):
        repo = Repo(repo_path(a.root, owner), ts)
        if not os.path.isdir(repo.path):
            die("no repo for owner %s" % owner)
        parent = repo.branch_commit(name)
        meta = read_metadata(repo, parent)
        if meta is None:
            die("no environment %s/%s" % (owner, name))
        n = int(a.generation)
        gen = str(n)
        if not 1 <= n <= total_generations(meta):
            die("generation %s not found" % gen)
        prev = live_generation(meta)
        if prev == gen and not a.force:
            die("generation %s is already live" % gen)
        if meta.get("version") == 2:
            entry = {"kind": "switch_generation", "author": a.author, "hostname": a.hostname,
                     "timestamp": ts, "current_generation": gen, "previous_generation": prev}
            meta["history"].append(entry)
            summary = summary_of(entry)
        else:
            meta["generations"][gen]["lastActive"] = ts
            meta["currentGen"] = gen
            summary = "changed current generation %s -> %s" % (prev, gen)
        commit = write_commit(repo, name, parent, meta, summary)
    print(json.dumps(result(owner, name, repo, commit, meta, n)))


def cmd_show(a):
    owner, name = split_env(a.env)
    repo = Repo(repo_path(a.root, owner), 0)
    commit = repo.branch_commit(name) if os.path.isdir(repo.path) else None
    if not commit:
        die("no environment %s/%s" % (owner, name))
    meta = read_metadata(repo, commit)
    r = result(owner, name, repo, commit, meta, total_generations(meta))
    r["metadata"] = meta
    print(json.dumps(r))


def hub_json_edit(root, fn):
    with Lock(root):
        path = os.path.join(root, "hub.json")
        try:
            with open(path) as f:
                cfg = json.load(f)
        except FileNotFoundError:
            cfg = {}
        cfg.setdefault("private_owners", [])
        cfg.setdefault("tokens", {})
        fn(cfg)
        atomic_write(path, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        return cfg


def cmd_private(a):
    if not NAME_RE.match(a.owner):
        die("bad owner %r" % a.owner)

    def edit(cfg):
        owners = [o for o in cfg["private_owners"] if o != a.owner]
        if not a.public:
            owners.append(a.owner)
        cfg["private_owners"] = sorted(owners)
    hub_json_edit(a.root, edit)


def cmd_token(a):
    def edit(cfg):
        if a.remove:
            cfg["tokens"].pop(a.token, None)
            return
        grant = {"owners": [o for o in (a.owners or "").split(",") if o]}
        if a.exp is not None:
            grant["exp"] = a.exp
        cfg["tokens"][a.token] = grant
    hub_json_edit(a.root, edit)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def cmd_jwt(a):
    header = {"alg": "RS256", "typ": "JWT", "kid": "floxhub-test"}
    payload = {
        "iss": "https://auth.flox.dev/",
        "sub": a.sub,
        "aud": "https://hub.flox.dev/api",
        "iat": a.iat if a.iat is not None else min(int(time.time()), a.exp - 1),
        "exp": a.exp,
        "https://flox.dev/handle": a.handle,
    }
    sig = b"unsigned test token: floxhub test server does not verify signatures"
    print("%s.%s.%s" % (b64url(json.dumps(header, separators=(",", ":")).encode()),
                        b64url(json.dumps(payload, separators=(",", ":")).encode()),
                        b64url(sig)))


def main(argv=None):
    ap = argparse.ArgumentParser(description="publish environments into a test FloxHub")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--root", required=True, help="hub directory")
        p.add_argument("--author", default="test")
        p.add_argument("--hostname", default="test")
        p.add_argument("--timestamp", type=int, help="unix time for metadata and commits")

    p = sub.add_parser("publish", help="add generation N+1 and make it live")
    common(p)
    p.add_argument("env", metavar="OWNER/NAME")
    p.add_argument("--lock", required=True, help="manifest.lock to publish (verbatim)")
    p.add_argument("--toml", help="manifest.toml (default: rendered from the lock's manifest)")
    p.add_argument("--metadata-version", type=int, choices=(1, 2),
                   help="for a new environment (default 2)")
    p.add_argument("--kind", choices=V2_KINDS,
                   help="v2 history kind (default: initialize for gen 1, else edit)")
    p.add_argument("--targets", help="comma list for install/uninstall/upgrade kinds")
    p.add_argument("--summary", help="summary (kind other) / description (v1)")
    p.set_defaults(fn=cmd_publish)

    p = sub.add_parser("switch", help="make an existing generation live")
    common(p)
    p.add_argument("env", metavar="OWNER/NAME")
    p.add_argument("generation", type=int, metavar="N")
    p.add_argument("--force", action="store_true", help="allow switching to the live one")
    p.set_defaults(fn=cmd_switch)

    p = sub.add_parser("show", help="print branch commit and metadata as JSON")
    p.add_argument("--root", required=True)
    p.add_argument("env", metavar="OWNER/NAME")
    p.set_defaults(fn=cmd_show)

    p = sub.add_parser("private", help="mark OWNER private in hub.json")
    p.add_argument("--root", required=True)
    p.add_argument("owner")
    p.add_argument("--public", action="store_true", help="make OWNER public again")
    p.set_defaults(fn=cmd_private)

    p = sub.add_parser("token", help="grant TOKEN access to owners in hub.json")
    p.add_argument("--root", required=True)
    p.add_argument("token")
    p.add_argument("--owners", default="", help="comma list; '*' = every owner")
    p.add_argument("--exp", type=int, help="server-side expiry (unix time)")
    p.add_argument("--remove", action="store_true")
    p.set_defaults(fn=cmd_token)

    p = sub.add_parser("jwt", help="print an unsigned, well-formed JWT")
    p.add_argument("--exp", type=int, required=True)
    p.add_argument("--sub", default="github|floxhub-test")
    p.add_argument("--handle", default="test")
    p.add_argument("--iat", type=int)
    p.set_defaults(fn=cmd_jwt)

    a = ap.parse_args(argv)
    a.fn(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
