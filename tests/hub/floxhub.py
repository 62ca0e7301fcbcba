#!/usr/bin/env python3
"""A test FloxHub: git smart HTTP over loopback, with auth and fault knobs.

Serves  /git/<owner>/floxmeta/...  from  ROOT/<owner>/floxmeta  (bare repos,
written by publish.py) by running the real `git http-backend` CGI.

    python3 floxhub.py --root DIR [--port 0] [--port-file F]
                       [--control FILE] [--log FILE] [--quiet]

Python 3 standard library only.  See README.md next to this file.
"""

import argparse
import base64
import binascii
import gzip
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib

OWNER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
# /git/<owner>/floxmeta[/rest]
PATH_RE = re.compile(r"^/git/([^/]+)/floxmeta(/.*)?$")

# Config handed to every `git http-backend` run (command-line scope, so it
# also works for repositories that were not created by publish.py).
BACKEND_CONFIG = [
    ("uploadpack.allowFilter", "true"),
    ("uploadpack.allowAnySHA1InWant", "true"),
    ("uploadpack.allowReachableSHA1InWant", "true"),
    ("uploadpack.allowTipSHA1InWant", "true"),
    ("http.uploadpack", "true"),
    ("http.receivepack", "false"),
    ("safe.directory", "*"),
]
# The "git_defaults" knob: git's default server configuration (no filter, no
# wants of objects that are not advertised tips), over what publish.py wrote
# into the repositories' own config.
DEFAULT_BACKEND_CONFIG = [(k, "false") for k, _ in BACKEND_CONFIG[:4]] + BACKEND_CONFIG[4:]
# The "hide_caps" knob: capabilities the front takes out of the advertisement
# (v0 words, words of v2's "fetch=" line), and the request lines it then
# refuses with HTTP 400 as a server without the feature would fail.
CAP_REQUEST_LINES = {"shallow": (b"deepen", b"shallow "), "filter": (b"filter ",),
                     "thin-pack": (b"thin-pack",)}

DEFAULT_CONTROL = {
    "delay_ms": 0,
    "status": 0,
    "truncate_after": -1,
    "drop_connection": False,
    "v0_only": False,
    "git_defaults": False,
    "ref_in_want": False,
    "hide_caps": [],
    "redirect": "",
    "redirect_strip": "",
    "stale_response": "",
    "echo_auth": False,
    "only_paths_matching": "",
    "remaining": -1,
    "hold_file": "",
}


def atomic_write(path, data):
    tmp = "%s.tmp.%d.%d" % (path, os.getpid(), threading.get_ident())
    with open(tmp, "w" if isinstance(data, str) else "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def b64url_decode(s):
    s = s + "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s.encode("ascii"))


def jwt_payload(token):
    """The payload of a JWT-shaped token (three base64url parts), or None."""
    parts = token.split(".")
    if len(parts) != 3 or not all(re.fullmatch(r"[A-Za-z0-9_-]+", p or "-") for p in parts):
        return None
    try:
        payload = json.loads(b64url_decode(parts[1]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def pkt_lines(data):
    """The payloads of the pkt-lines of a request body (stops at bad framing)."""
    pos = 0
    while pos + 4 <= len(data):
        try:
            n = int(data[pos:pos + 4], 16)
        except ValueError:
            return
        if n < 4:
            pos += 4
            continue
        yield data[pos + 4:pos + n]
        pos += n


def strip_caps(data, hidden):
    """An advertisement (v0 or v2) without the capabilities in hidden."""
    out, pos = bytearray(), 0
    while pos + 4 <= len(data):
        n = int(data[pos:pos + 4], 16)
        if n < 4:
            out += data[pos:pos + 4]
            pos += 4
            continue
        line = data[pos + 4:pos + n]
        pos += n
        nl = line.endswith(b"\n")
        text = line.rstrip(b"\n")
        if b"\0" in text:
            head, _, caps = text.partition(b"\0")
            text = head + b"\0" + b" ".join(w for w in caps.split(b" ") if w not in hidden)
        elif text.startswith(b"fetch="):
            words = [w for w in text[6:].split(b" ") if w not in hidden]
            text = b"fetch=" + b" ".join(words) if words else b"fetch"
        line = text + (b"\n" if nl else b"")
        out += b"%04x" % (len(line) + 4) + line
    return bytes(out + data[pos:])


class Hub:
    """State shared by all handler threads."""

    def __init__(self, root, control, log, quiet):
        self.root = os.path.abspath(root)
        self.control = control
        self.log_path = log
        self.quiet = quiet
        self.control_lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.git = os.environ.get("GIT", "git")

    # -- configuration files, re-read on every request ---------------------
    def hub_config(self):
        path = os.path.join(self.root, "hub.json")
        try:
            with open(path) as f:
                cfg = json.load(f)
        except FileNotFoundError:
            cfg = {}
        if not isinstance(cfg, dict):
            raise ValueError("hub.json is not an object")
        cfg.setdefault("private_owners", [])
        cfg.setdefault("tokens", {})
        return cfg

    def take_faults(self, target):
        """Faults for this request (dict) or None; consumes one `remaining`."""
        if not self.control:
            return None
        with self.control_lock:
            try:
                with open(self.control) as f:
                    text = f.read()
            except FileNotFoundError:
                return None
            if not text.strip():
                return None
            try:
                ctl = json.loads(text)
            except ValueError as e:
                self.note("control file %s unreadable: %s" % (self.control, e))
                return None
            if not isinstance(ctl, dict):
                return None
            faults = dict(DEFAULT_CONTROL)
            faults.update(ctl)
            remaining = int(faults.get("remaining", -1))
            if remaining == 0:
                return None
            pattern = faults.get("only_paths_matching") or ""
            if pattern and not re.search(pattern, target):
                return None
            if remaining > 0:
                ctl["remaining"] = remaining - 1
                atomic_write(self.control, json.dumps(ctl) + "\n")
            return faults

    def write_log(self, entry):
        if not self.log_path:
            return
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.log_lock:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)

    def note(self, msg):
        if not self.quiet:
            sys.stderr.write("floxhub: %s\n" % msg)
            sys.stderr.flush()


class DroppedConnection(Exception):
    pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as HTTP servers set it on kept-alive connections (nginx's
    # tcp_nodelay): else the answer's second small write waits for the
    # client's delayed ACK (40 ms) on a connection a client reuses.
    disable_nagle_algorithm = True
    server_version = "floxhub-test/1"
    sys_version = ""

    def version_string(self):
        return self.server_version

    hub = None  # set on the class by main()

    # -- plumbing -----------------------------------------------------------
    def log_message(self, fmt, *args):  # keep stderr quiet; we log JSON
        pass

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            data = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise DroppedConnection("eof in chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until empty line
                    while True:
                        t = self.rfile.readline(65537)
                        if not t or t in (b"\r\n", b"\n"):
                            break
                    break
                data += self.rfile.read(size)
                self.rfile.readline(3)  # CRLF after chunk
            body = bytes(data)
        else:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n > 0 else b""
        enc = (self.headers.get("Content-Encoding") or "").lower().strip()
        if enc:
            self.entry["content_encoding"] = enc
        if "chunked" in te:
            self.entry["request_chunked"] = True
        if enc in ("gzip", "x-gzip"):
            body = gzip.decompress(body)
        elif enc == "deflate":
            body = zlib.decompress(body)
        return body

    def _auth_user_token(self):
        h = self.headers.get("Authorization") or ""
        if not h.lower().startswith("basic "):
            return None, None
        try:
            raw = base64.b64decode(h[6:].strip(), validate=False).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return "", ""
        user, _, password = raw.partition(":")
        return user, password

    def _send_simple(self, status, text, extra=None):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()
        self.entry["status"] = status
        self.entry["bytes"] = len(body) if self.command != "HEAD" else 0

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.entry["status"] = 0
        self.entry["dropped"] = True

    # -- request entry points ----------------------------------------------
    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def do_HEAD(self):
        self._handle()

    def _handle(self):
        t0 = time.time()
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        query = split.query
        user, token = self._auth_user_token()
        self.entry = {
            "time": round(t0, 6),
            "method": self.command,
            "path": path,
            "query": query,
            "git_protocol": self.headers.get("Git-Protocol"),
            "user": user,
            "status": 0,
            "bytes": 0,
            "client": "%s:%d" % self.client_address[:2],
        }
        try:
            body = self._read_body() if self.command == "POST" else b""
            self.entry["request_bytes"] = len(body)
            self._route(path, query, body, user, token)
        except DroppedConnection:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError) as e:
            self.close_connection = True
            self.entry["error"] = "client went away: %s" % e
        except Exception as e:  # noqa: BLE001 - keep serving, report it
            self.hub.note("internal error on %s %s: %r" % (self.command, self.path, e))
            self.entry["error"] = repr(e)
            try:
                self._send_simple(500, "internal error: %s\n" % e)
            except OSError:
                pass
            self.close_connection = True
        finally:
            self.entry["ms"] = round((time.time() - t0) * 1000, 1)
            self.hub.write_log(self.entry)

    def _route(self, path, query, body, user, token):
        hub = self.hub
        if path in ("/", "/healthz"):
            self._send_simple(200, "floxhub test server\n")
            return
        m = PATH_RE.match(path)
        if not m:
            self._send_simple(404, "not found\n")
            return
        owner, rest = m.group(1), m.group(2) or "/"
        self.entry["owner"] = owner
        if not OWNER_RE.match(owner) or ".." in rest:
            self._send_simple(404, "not found\n")
            return

        # Faults (before auth: a failing hub fails for everyone).
        target = path + ("?" + query if query else "")
        faults = hub.take_faults(target)
        if faults:
            applied = {k: v for k, v in faults.items()
                       if k in DEFAULT_CONTROL and v != DEFAULT_CONTROL[k]}
            if applied:
                self.entry["fault"] = applied
            delay = float(faults.get("delay_ms") or 0)
            if delay > 0:
                time.sleep(delay / 1000.0)
            hold = faults.get("hold_file") or ""
            hold_end = time.monotonic() + 60
            while hold and os.path.exists(hold) and time.monotonic() < hold_end:
                time.sleep(0.02)
            if faults.get("drop_connection"):
                self._drop()
                return
            if faults.get("redirect"):
                strip = faults.get("redirect_strip") or ""
                rest_of = target[len(strip):] if strip and target.startswith(strip) else target
                self._send_simple(302, "moved\n", {"Location": faults["redirect"] + rest_of})
                return
            status = int(faults.get("status") or 0)
            if status:
                text = "injected fault: HTTP %d\n" % status
                if faults.get("echo_auth"):
                    # an error page quoting the request back
                    text += "Authorization: %s\ntoken %s\n" % (
                        self.headers.get("Authorization"), token)
                self._send_simple(status, text,
                                  {"Connection": "close"} if status >= 500 else None)
                if status >= 500:
                    self.close_connection = True
                elif faults.get("stale_response"):
                    # a desynchronised server: more bytes after the
                    # answer, on the kept connection, before the next request
                    time.sleep(0.05)
                    self.connection.sendall(faults["stale_response"].encode("latin-1"))
                    self.entry["stale_bytes"] = len(faults["stale_response"])
                return

        hidden = (faults or {}).get("hide_caps") or []
        for line in pkt_lines(body):
            for cap in hidden:
                if line.startswith(CAP_REQUEST_LINES.get(cap, ())) or (
                        line.startswith(b"want ") and cap.encode() in line.split(b" ")[2:]):
                    self._send_simple(400, "capability %s is not supported here\n" % cap)
                    return

        # Only the read side of git is served.
        service = urllib.parse.parse_qs(query).get("service", [""])[0]
        if rest.endswith("/git-receive-pack") or service == "git-receive-pack":
            self._send_simple(403, "this hub is read-only\n")
            return

        # Authorisation.
        cfg = hub.hub_config()
        if owner in cfg["private_owners"]:
            realm = {"WWW-Authenticate": 'Basic realm="floxhub"'}
            if token is None:
                self._send_simple(401, "authentication required\n", realm)
                return
            grant = cfg["tokens"].get(token)
            if not isinstance(grant, dict):
                self.entry["auth"] = "unknown token"
                self._send_simple(401, "invalid credentials\n", realm)
                return
            payload = jwt_payload(token)
            exp = grant.get("exp", payload.get("exp") if payload else None)
            if isinstance(exp, (int, float)) and exp < time.time():
                self.entry["auth"] = "expired token"
                self._send_simple(401, "token expired\n", realm)
                return
            owners = grant.get("owners", [])
            if owner not in owners and "*" not in owners:
                self.entry["auth"] = "forbidden"
                self._send_simple(403, "token not allowed for owner %s\n" % owner)
                return
            self.entry["auth"] = "ok"

        repo = os.path.join(hub.root, owner, "floxmeta")
        if not os.path.isdir(repo):
            self._send_simple(404, "no such owner: %s\n" % owner)
            return

        self.request_token = token  # for the echo_auth knob
        self._backend(owner, rest, query, body, user, faults)

    # -- the CGI -------------------------------------------------------------
    def _backend(self, owner, rest, query, body, user, faults):
        hub = self.hub
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": hub.root,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_PROJECT_ROOT": hub.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_SOFTWARE": self.server_version,
            "REQUEST_METHOD": self.command,
            "QUERY_STRING": query,
            "PATH_INFO": "/%s/floxmeta%s" % (owner, rest),
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_LENGTH": str(len(body)),
        }
        if self.headers.get("Content-Type"):
            env["CONTENT_TYPE"] = self.headers["Content-Type"]
        if user:
            env["REMOTE_USER"] = user
        gp = self.headers.get("Git-Protocol")
        if gp and not (faults and faults.get("v0_only")):
            env["GIT_PROTOCOL"] = gp
        config = DEFAULT_BACKEND_CONFIG if faults and faults.get("git_defaults") else BACKEND_CONFIG
        if faults and faults.get("ref_in_want"):
            config = config + [("uploadpack.allowRefInWant", "true")]
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for i, (k, v) in enumerate(config):
            env["GIT_CONFIG_KEY_%d" % i] = k
            env["GIT_CONFIG_VALUE_%d" % i] = v

        proc = subprocess.Popen([hub.git, "http-backend"], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, close_fds=True)
        err_chunks = []

        def feed():
            try:
                if body:
                    proc.stdin.write(body)
            except BrokenPipeError:
                pass
            finally:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass

        def drain():
            err_chunks.append(proc.stderr.read())

        threads = [threading.Thread(target=feed, daemon=True),
                   threading.Thread(target=drain, daemon=True)]
        for t in threads:
            t.start()
        try:
            self._relay(proc, faults)
        finally:
            if proc.poll() is None:
                # client went away or we truncated: stop the backend
                try:
                    proc.stdout.close()
                except OSError:
                    pass
            for t in threads:
                t.join(30)
            rc = proc.wait()
            err = b"".join(c for c in err_chunks if c).decode("utf-8", "replace").strip()
            if rc != 0:
                self.entry["backend_rc"] = rc
            if err:
                self.entry["backend_stderr"] = err[-2000:]
                hub.note("http-backend: %s" % err)

    def _relay(self, proc, faults):
        out = proc.stdout
        status, reason = 200, "OK"
        headers = []
        while True:
            line = out.readline()
            if not line:
                raise RuntimeError("git http-backend produced no response headers")
            line = line.rstrip(b"\r\n")
            if not line:
                break
            k, _, v = line.decode("latin-1").partition(":")
            k, v = k.strip(), v.strip()
            if k.lower() == "status":
                code, _, reason = v.partition(" ")
                status = int(code)
                reason = reason or None
            else:
                headers.append((k, v))
        has_length = any(k.lower() == "content-length" for k, _ in headers)
        truncate = int(faults.get("truncate_after", -1)) if faults else -1
        head_only = self.command == "HEAD"
        hidden = (faults or {}).get("hide_caps") or []
        echo = (faults or {}).get("echo_auth") and self.request_token
        if (hidden or echo) and self.command == "GET" and truncate < 0:
            data = strip_caps(out.read(), [c.encode() for c in hidden])
            if echo and data.startswith(b"000eversion 2\n") and data.endswith(b"0000"):
                line = b"x-echo=%s\n" % self.request_token.encode()
                data = data[:-4] + b"%04x" % (len(line) + 4) + line + b"0000"
            self.send_response(status, reason)
            for k, v in headers:
                if k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            self.entry.update(status=status, bytes=len(data))
            return

        if truncate >= 0:
            # Buffer everything, announce the true length, send only a prefix
            # and close: the client sees a premature end of the body.
            data = out.read()
            self.send_response(status, reason)
            for k, v in headers:
                if k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            part = data[:truncate]
            self.wfile.write(part)
            self.wfile.flush()
            self.entry.update(status=status, bytes=len(part), truncated=True,
                              full_bytes=len(data))
            self._drop()
            self.entry["status"] = status
            return

        self.send_response(status, reason)
        for k, v in headers:
            self.send_header(k, v)
        chunked = not has_length and not head_only
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.entry["status"] = status
        sent = 0
        while not head_only:
            chunk = out.read1(65536)
            if not chunk:
                break
            if chunked:
                self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            else:
                self.wfile.write(chunk)
            sent += len(chunk)
            self.entry["bytes"] = sent
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main(argv=None):
    ap = argparse.ArgumentParser(description="test FloxHub (git smart HTTP)")
    ap.add_argument("--root", required=True, help="hub directory (ROOT/<owner>/floxmeta)")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port-file", help="write the bound port here (atomically) once listening")
    ap.add_argument("--control", help="fault control JSON file, re-read on every request")
    ap.add_argument("--log", help="append one JSON line per request here")
    ap.add_argument("--quiet", action="store_true", help="no diagnostics on stderr")
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate chain")
    ap.add_argument("--tls-key", help="the private key of --tls-cert")
    args = ap.parse_args(argv)

    if not os.path.isdir(args.root):
        ap.error("--root %s is not a directory" % args.root)
    hub = Hub(args.root, args.control and os.path.abspath(args.control),
              args.log and os.path.abspath(args.log), args.quiet)
    Handler.hub = hub
    server = Server((args.host, args.port), Handler)
    port = server.server_address[1]
    scheme = "http"
    if args.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"

    stopping = threading.Event()

    def on_signal(signum, _frame):
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if args.port_file:
        atomic_write(args.port_file, "%d\n" % port)
    hub.note("listening on %s://%s:%d/git/<owner>/floxmeta (root %s, pid %d)"
             % (scheme, args.host, port, hub.root, os.getpid()))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    hub.note("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
