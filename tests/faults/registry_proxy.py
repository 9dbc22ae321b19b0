"""A fault-injecting proxy in front of the session's real `docker-registry` (tests/fixtures/registry.py).

It answers the distribution API itself only to inject faults; everything else is forwarded. It
speaks Bearer token auth of its own (a `/token` endpoint on the same port hands out TOKEN), so a
test can see which requests carried the token, and in particular that a redirect to another host
name (`localhost` instead of `127.0.0.1`) never does.

Faults, queued per path substring and consumed one per matching request, in order:
  "500"        the registry fails (500 Internal Server Error)
  "429"        too many requests, `Retry-After: 1`
  "truncate"   the body is cut at half and the connection closed (Content-Length promised all of it)
  "corrupt"    one byte of the body flipped (the digest no longer matches)
  "stall:S"    half of the body, then nothing for S seconds (or until `release` is set), then close
  "redirect"   307 to the same path on host `localhost` (a blob store elsewhere)
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "fault-proxy-token-" + "x" * 16


@dataclass
class Hit:
    method: str
    path: str
    host: str
    auth: str | None
    range: str | None
    at: float
    fault: str | None


@dataclass
class FaultProxy:
    upstream: str  # "127.0.0.1:PORT"
    faults: dict[str, list[str]] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    port: int = 0
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                proxy.handle(self)

            do_HEAD = do_GET  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # clients that hang up are the point
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _next_fault(self, path: str) -> str | None:
        for key, queue in self.faults.items():
            if key in path and queue:
                return queue.pop(0)
        return None

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        redirected = "redirected=1" in h.path
        fault = None if redirected or h.path.startswith("/token") or h.path == "/v2/" else self._next_fault(h.path)
        self.hits.append(Hit(h.command, h.path, h.headers.get("Host", ""), h.headers.get("Authorization"),
                             h.headers.get("Range"), time.monotonic(), fault))
        if h.path.startswith("/token"):
            self._reply(h, 200, b'{"token": "%s", "expires_in": 300}' % TOKEN.encode(), {"Content-Type": "application/json"})
            return
        if not redirected and h.headers.get("Authorization") != f"Bearer {TOKEN}":
            challenge = f'Bearer realm="http://{self.host}/token",service="fault-proxy"'
            self._reply(h, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token"}]}', {"WWW-Authenticate": challenge})
            return
        if fault == "500":
            self._reply(h, 500, b"boom")
            return
        if fault == "429":
            self._reply(h, 429, b"slow down", {"Retry-After": "1"})
            return
        if fault == "redirect":
            sep = "&" if "?" in h.path else "?"
            self._reply(h, 307, b"", {"Location": f"http://localhost:{self.port}{h.path}{sep}redirected=1"})
            return
        status, headers, body = self._upstream(h)
        h.send_response(status)
        for key, value in headers:
            if key.lower() not in ("connection", "transfer-encoding"):
                h.send_header(key, value)
        h.end_headers()
        if h.command != "GET":
            return
        if fault == "corrupt" and body:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        if fault == "truncate" or (fault or "").startswith("stall:"):
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            if fault.startswith("stall:"):
                self.release.wait(float(fault.split(":", 1)[1]))
            h.close_connection = True
            return
        h.wfile.write(body)

    def _upstream(self, h: BaseHTTPRequestHandler) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("authorization", "host")}
        path = h.path.replace("&redirected=1", "").replace("?redirected=1", "")
        conn.request(h.command, path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return response.status, response.getheaders(), body

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        h.send_response(status)
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)
