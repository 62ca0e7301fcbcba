#!/usr/bin/env python3
"""Serve a Nix binary cache directory over HTTP on loopback (a real substituter).

    python3 serve-cache.py --dir DIR [--port 0] [--host 127.0.0.1]
                           [--port-file F] [--control FILE] [--log FILE] [--quiet]
                           [--basic-auth USER:PASSWORD]

GET and HEAD of files under DIR (nix-cache-info, *.narinfo, nar/...); anything
else is 404 (Nix treats a missing .narinfo as "not in this cache").  The port
is written to --port-file ("PORT\\n", atomically) once the socket listens, so
its existence means ready.  --log gets one line per request:
"<unix time> <method> <path> <status> <bytes>" (flushed at once), so tests
can count downloads.  --control names a JSON file, re-read on every request,
with fault knobs (all optional):

    {"status": 0,               # answer matching requests with this HTTP status
     "delay_ms": 0,             # sleep before answering matching requests
     "truncate_after": -1,      # send only this many body bytes, then close
     "only_paths_matching": ""} # regex (re.search on the path): where the knobs apply

--basic-auth: every request must carry these HTTP basic credentials, else
401 with a WWW-Authenticate challenge (an authenticated cache, as private
caches are: Nix reads the credentials from its netrc-file).

SIGTERM / SIGINT: exit 0.  Python 3 standard library only.
"""

import argparse
import base64
import http.server
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse

DEFAULT_CONTROL = {"status": 0, "delay_ms": 0, "truncate_after": -1, "only_paths_matching": ""}


def atomic_write(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as HTTP servers set it on kept-alive connections (nginx's
    # tcp_nodelay, Go's net/http): else the body, written after the headers,
    # waits for the client's delayed ACK (40 ms) on a connection Nix reuses
    # (nix-cache-info, then a narinfo on the same connection).
    disable_nagle_algorithm = True
    server_version = "flox-runc-test-cache/1"

    def log_message(self, fmt, *args):  # silence the default stderr log
        pass

    def _record(self, status, nbytes):
        srv = self.server
        if srv.log_file is None:
            return
        line = "%.3f %s %s %d %d\n" % (time.time(), self.command, self.path, status, nbytes)
        with srv.log_lock:
            srv.log_file.write(line)
            srv.log_file.flush()

    def _control(self):
        ctl = dict(DEFAULT_CONTROL)
        if self.server.control:
            try:
                with open(self.server.control) as f:
                    data = json.load(f)
                if isinstance(data, dict):
                    ctl.update(data)
            except (OSError, ValueError):
                pass
        pat = ctl.get("only_paths_matching") or ""
        if pat:
            try:
                if not re.search(pat, self.path):
                    return dict(DEFAULT_CONTROL)
            except re.error:
                pass
        return ctl

    def _send_error(self, status, head):
        body = (b"%d\n" % status)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self._record(status, 0 if head else len(body))

    def _authorised(self):
        want = self.server.basic_auth
        if want is None:
            return True
        return self.headers.get("Authorization", "") == "Basic " + want

    def _serve(self, head):
        if not self._authorised():
            body = b"401\n"
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test cache"')
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            self._record(401, 0 if head else len(body))
            return
        ctl = self._control()
        if ctl.get("delay_ms"):
            time.sleep(float(ctl["delay_ms"]) / 1000.0)
        if ctl.get("status"):
            self._send_error(int(ctl["status"]), head)
            return
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") or p.startswith(".") for p in parts):
            self._send_error(404, head)
            return
        fs = os.path.join(self.server.root, *parts) if parts else self.server.root
        if not os.path.isfile(fs):
            self._send_error(404, head)
            return
        try:
            with open(fs, "rb") as f:
                data = f.read()
        except OSError:
            self._send_error(404, head)
            return
        if path.endswith(".narinfo") or path.endswith("nix-cache-info"):
            ctype = "text/x-nix-narinfo" if path.endswith(".narinfo") else "text/plain"
        else:
            ctype = "application/x-nix-nar"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        trunc = int(ctl.get("truncate_after", -1))
        if 0 <= trunc < len(data):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if head:
            self._record(200, 0)
            return
        body = data if trunc < 0 else data[:trunc]
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self._record(200, len(body))

    def do_GET(self):
        self._serve(False)

    def do_HEAD(self):
        self._serve(True)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Nix opens up to http-connections (25) connections at once for the
    # narinfos; socketserver's default backlog of 5 made the kernel drop
    # the rest of the SYNs, which cost every realisation a 1 s SYN
    # retransmission (TcpExtListenOverflows).  Real caches do not do that.
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="the binary cache directory")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--port-file", help="write the bound port here (atomically) once listening")
    ap.add_argument("--control", help="JSON file with fault knobs, re-read per request")
    ap.add_argument("--log", help="append one line per request here")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--basic-auth", metavar="USER:PASSWORD",
                    help="require these HTTP basic credentials (401 otherwise)")
    args = ap.parse_args()

    root = os.path.realpath(args.dir)
    if not os.path.isfile(os.path.join(root, "nix-cache-info")):
        print("serve-cache: %s has no nix-cache-info: not a binary cache" % args.dir, file=sys.stderr)
        return 2
    srv = Server((args.host, args.port), Handler)
    srv.root = root
    srv.control = args.control
    srv.log_file = open(args.log, "a") if args.log else None
    srv.log_lock = threading.Lock()
    srv.basic_auth = (base64.b64encode(args.basic_auth.encode()).decode()
                      if args.basic_auth else None)
    port = srv.server_address[1]

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.port_file:
        atomic_write(args.port_file, "%d\n" % port)
    if not args.quiet:
        print("serve-cache: serving %s on http://%s:%d" % (root, args.host, port), file=sys.stderr)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
