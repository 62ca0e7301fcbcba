#!/usr/bin/python3
"""A FloxHub served by dulwich's smart-HTTP server (an implementation of git's
protocol independent of git's own, protocol v0 only), for interoperability
tests: dulwich's WSGI application over a DictBackend that maps
/git/<owner>/floxmeta to ROOT/<owner>/floxmeta (bare repos written by
publish.py; the map is rebuilt on every request, so owners published after
the start are served).

    /usr/bin/python3 dulwich_hub.py --root DIR [--port 0] --port-file F [--log FILE]

Needs Debian's python3-dulwich (so /usr/bin/python3, not another python on
PATH).  One JSON line per request in --log (method, path, query, status), the
shape floxhub.py logs.  SIGTERM: exit 0.
"""

import argparse
import json
import os
import signal
import sys
import threading
import wsgiref.simple_server

from dulwich.repo import Repo
from dulwich.server import DictBackend
from dulwich.web import HTTPGitApplication, WSGIRequestHandlerLogger


class HubBackend(DictBackend):
    """DictBackend over ROOT/<owner>/floxmeta, re-read on every lookup."""

    def __init__(self, root):
        super().__init__({})
        self.root = root

    def open_repository(self, path):
        self.repos = {}
        for owner in sorted(os.listdir(self.root)):
            repo = os.path.join(self.root, owner, "floxmeta")
            if os.path.isdir(repo):
                self.repos["/git/%s/floxmeta" % owner] = Repo(repo)
        return super().open_repository(path)


class Handler(WSGIRequestHandlerLogger):
    log_path = None

    def log_request(self, code="-", size="-"):
        if not self.log_path:
            return
        path, _, query = self.path.partition("?")
        entry = {"method": self.command, "path": path, "query": query,
                 "git_protocol": self.headers.get("Git-Protocol"),
                 "status": int(code) if str(code).isdigit() else 0}
        with open(self.log_path, "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")

    def log_message(self, fmt, *args):
        pass


class Server(wsgiref.simple_server.WSGIServer):
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description="FloxHub over dulwich's smart HTTP server")
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    args = ap.parse_args()

    Handler.log_path = args.log and os.path.abspath(args.log)
    app = HTTPGitApplication(HubBackend(os.path.abspath(args.root)))
    server = wsgiref.simple_server.make_server("127.0.0.1", args.port, app,
                                               server_class=Server, handler_class=Handler)

    def on_signal(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(tmp, args.port_file)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
