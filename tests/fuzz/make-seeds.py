#!/usr/bin/env python3
"""tests/fuzz/make-seeds.py - writes the seeds of the pack, delta, git and
pktline targets from a real git: a floxmeta-like repository (branch hello,
metadata.json, two generations whose manifest.lock differ a little, so git
stores deltas), its packfile, and the answers of `git http-backend` (run as
a CGI program, like tests/unit/test_git.c and the test hub do) to the
requests lib/git.c makes, in fuzz_git.c's input format.  Deterministic
(fixed dates and names): run it again after changing the format and commit
what changes.  Usage: python3 tests/fuzz/make-seeds.py"""
import os
import struct
import subprocess
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
SEP = b"\n--8<--\n"
ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
           GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
           GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com",
           GIT_AUTHOR_DATE="1700000000 +0000", GIT_COMMITTER_DATE="1700000000 +0000")


def sh(cmd, cwd, data=None, env=ENV):
    return subprocess.run(cmd, cwd=cwd, input=data, env=env, check=True,
                          stdout=subprocess.PIPE).stdout


def pkt(s):
    if isinstance(s, str):
        s = s.encode()
    return b"%04x" % (len(s) + 4) + s


def cgi(root, method, path_info, query="", body=b"", v2=True, config=()):
    env = dict(ENV, GIT_PROJECT_ROOT=root, GIT_HTTP_EXPORT_ALL="1", REQUEST_METHOD=method,
               PATH_INFO=path_info, QUERY_STRING=query, CONTENT_LENGTH=str(len(body)))
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for i, (k, v) in enumerate(config):
        env["GIT_CONFIG_KEY_%d" % i], env["GIT_CONFIG_VALUE_%d" % i] = k, v
    if body:
        env["CONTENT_TYPE"] = "application/x-git-upload-pack-request"
    if v2:
        env["GIT_PROTOCOL"] = "version=2"
    out = sh(["git", "http-backend"], root, body, env)
    head, _, rest = out.partition(b"\r\n\r\n")
    assert b"Status:" not in head, head
    return rest


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def pack_objects(pack):
    """(offset, type, base offset or None, inflated data) of each object."""
    count = struct.unpack(">I", pack[8:12])[0]
    pos, out = 12, []
    for _ in range(count):
        start = pos
        c = pack[pos]; pos += 1
        typ, shift = (c >> 4) & 7, 4
        while c & 0x80:
            c = pack[pos]; pos += 1
            shift += 7
        base = None
        if typ == 6:
            c = pack[pos]; pos += 1
            ofs = c & 0x7f
            while c & 0x80:
                c = pack[pos]; pos += 1
                ofs = ((ofs + 1) << 7) | (c & 0x7f)
            base = start - ofs
        elif typ == 7:
            pos += 20
        d = zlib.decompressobj()
        data = d.decompress(pack[pos:])
        pos = len(pack) - len(d.unused_data)
        out.append((start, typ, base, data))
    return out


def main():
    with tempfile.TemporaryDirectory() as tmp:
        w = os.path.join(tmp, "w")
        root = os.path.join(tmp, "srv")
        os.makedirs(os.path.join(root, "acme"))
        sh(["git", "init", "-q", "--bare", "acme/floxmeta"], root)
        sh(["git", "init", "-q", w], tmp)
        for gen in (1, 2):
            os.makedirs(os.path.join(w, "%d/env" % gen))
            with open(os.path.join(w, "%d/env/manifest.lock" % gen), "w") as f:
                f.write('{"lockfile-version": 1, "manifest": {"version": 1}, "packages": []}\n'
                        + "".join("%d\n" % i for i in range(1, 300 + gen)))
            with open(os.path.join(w, "metadata.json"), "w") as f:
                f.write('{"version":2,"history":[{"current_generation":%d}]}\n' % gen)
            sh(["git", "add", "-A"], w)
            sh(["git", "commit", "-q", "-m", "generation %d" % gen], w)
        sh(["git", "push", "-q", os.path.join(root, "acme/floxmeta"), "HEAD:refs/heads/hello"], w)
        tip = sh(["git", "rev-parse", "HEAD"], w).strip().decode()

        pack = sh(["git", "pack-objects", "--stdout", "--revs", "--delta-base-offset", "-q"], w, b"HEAD\n")
        write("pack", "floxmeta-two-generations", b"\0" + pack)
        write("pack", "floxmeta-two-generations-no-trailer", b"\1" + pack[:-20])
        objs = pack_objects(pack)
        by_ofs = {o[0]: o for o in objs}
        n = 0
        for off, typ, base, data in objs:
            if typ == 6 and by_ofs[base][1] != 6 and len(by_ofs[base][3]) < 65536 and n < 4:
                b = by_ofs[base][3]
                write("delta", "git-delta-%d" % n, bytes([n & 1]) + struct.pack("<H", len(b)) + b + data)
                n += 1
        assert n > 0, "git stored no delta"

        # protocol v2: discovery, ls-refs, one fetch that brings everything
        adv = cgi(root, "GET", "/acme/floxmeta/info/refs", "service=git-upload-pack")
        ls = cgi(root, "POST", "/acme/floxmeta/git-upload-pack",
                 body=pkt("command=ls-refs\n") + b"0001" + pkt("ref-prefix refs/heads/hello\n") + b"0000")
        fetch = cgi(root, "POST", "/acme/floxmeta/git-upload-pack",
                    body=pkt("command=fetch\n") + b"0001" + pkt("want %s\n" % tip)
                    + pkt("deepen 1\n") + pkt("done\n") + b"0000")
        write("git", "v2-http-backend", SEP.join([b"2aR" + adv, b"2rR" + ls, b"2rR" + fetch]))
        write("git", "v2-pack", SEP.join([b"2aR" + adv, b"2rR" + ls, b"2rP" + pack[:-20]]))
        # protocol v2 with ref-in-want: discovery, one fetch by want-ref
        riw = (("uploadpack.allowRefInWant", "true"),)
        adv_riw = cgi(root, "GET", "/acme/floxmeta/info/refs", "service=git-upload-pack", config=riw)
        fetch_riw = cgi(root, "POST", "/acme/floxmeta/git-upload-pack", config=riw,
                        body=pkt("command=fetch\n") + b"0001" + pkt("deepen 1\n")
                        + pkt("want-ref refs/heads/hello\n") + pkt("done\n") + b"0000")
        assert b"wanted-refs" in fetch_riw, fetch_riw[:200]
        write("git", "v2-ref-in-want", SEP.join([b"2aR" + adv_riw, b"2rR" + fetch_riw]))
        # protocol v0: the ref advertisement, then a fetch with side-band-64k
        adv0 = cgi(root, "GET", "/acme/floxmeta/info/refs", "service=git-upload-pack", v2=False)
        fetch0 = cgi(root, "POST", "/acme/floxmeta/git-upload-pack", v2=False,
                     body=pkt("want %s side-band-64k ofs-delta shallow\n" % tip)
                     + pkt("deepen 1\n") + b"0000" + pkt("done\n"))
        write("git", "v0-http-backend", SEP.join([b"2aR" + adv0, b"2rR" + fetch0]))
        write("git", "v0-pack", SEP.join([b"2aR" + adv0, b"2rQ" + pack[:-20]]))
        write("git", "unauthorized", b"1nRaccess denied")

        for name, body in (("v2-advertisement", adv), ("ls-refs", ls), ("fetch-v2", fetch),
                           ("v0-advertisement", adv0)):
            write("pktline", name, body)
        write("pktline", "sideband", pkt(b"\2counting\n") + pkt(b"\1PACK") + pkt(b"\3broken\n") + b"0000")
        write("pktline", "err", pkt("ERR upload-pack: not our ref\n") + b"0000")


if __name__ == "__main__":
    main()
