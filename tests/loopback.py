"""A real HTTP server on 127.0.0.1, in a thread, that tests teach an API to.

    server.route(r"/2/users/by/username/(\\w+)", lambda req, m: Reply(200, {...}))

A handler gets the request (method, path, query as a dict of single values,
headers) and the regex match, and returns a Reply. `Reply(drop=True)` sends the
headers and half the body, then closes the connection: a network drop mid-page.
Every request is logged in `server.requests`.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes as is
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


class Loopback:
    def __init__(self) -> None:
        self.routes: list[tuple[re.Pattern, Callable[[Request, re.Match], Reply]]] = []
        self.requests: list[Request] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                self.do_GET("POST")

            def do_GET(self, method="GET"):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(method, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                              {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length) if length else b"")
                server.requests.append(req)
                for pattern, handler in server.routes:
                    m = pattern.fullmatch(parts.path)
                    if m:
                        reply = handler(req, m)
                        break
                else:
                    reply = Reply(404, {"error": "NotFound", "message": f"no route for {parts.path}"})
                body = reply.body
                if isinstance(body, (dict, list)):
                    data, ctype = json.dumps(body).encode(), "application/json"
                elif isinstance(body, str):
                    data, ctype = body.encode(), "application/json"
                else:
                    data, ctype = body or b"", "application/octet-stream"
                self.send_response(reply.status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if reply.drop:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def route(self, pattern: str, handler: Callable[[Request, re.Match], Reply]) -> None:
        self.routes.append((re.compile(pattern), handler))

    def start(self) -> "Loopback":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Faults:
    """Replies to send before the real one, one per request: e.g.
    Faults(Reply(429, headers={"Retry-After": "0"}), Reply(500)) in front of a handler."""

    def __init__(self, handler: Callable[[Request, re.Match], Reply], *faults: Reply):
        self.handler = handler
        self.faults = list(faults)

    def __call__(self, req: Request, m: re.Match) -> Reply:
        if self.faults:
            return self.faults.pop(0)
        return self.handler(req, m)
