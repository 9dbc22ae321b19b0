"""Transient failures between dockui and a real registry: a small fault-injecting HTTP proxy sits in
front of the session's `docker-registry` and answers 503 and 429 (Retry-After) once, cuts a blob
download half-way with a TCP reset, and redirects a blob to another host name. The pull must succeed,
resume the cut blob with `Range`, honour Retry-After, and never send credentials to the other host."""

from __future__ import annotations

import base64
import http.client
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.image.auth import Credentials, save_credentials
from engine.image.pull import pull_image
from tests.fixtures.imagebuild import build_image, client_for_test, file, tar_from_entries, upload_image

pytestmark = pytest.mark.root
USER, PASSWORD = "faulty", "proxy-pw"


@dataclass
class FaultProxy:
    upstream: str  # "127.0.0.1:PORT" of the real registry
    faults: dict[str, list[str]] = field(default_factory=dict)  # path substring -> faults to apply, in order
    log: list[dict] = field(default_factory=list)
    port: int = 0

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                proxy.handle(self)

            do_HEAD = do_GET  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next_fault(self, path: str) -> str | None:
        for key, faults in self.faults.items():
            if key in path and faults:
                return faults.pop(0)
        return None

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        redirected = "redirected=1" in h.path
        self.log.append({"method": h.command, "path": h.path, "host": h.headers.get("Host"),
                         "auth": h.headers.get("Authorization"), "range": h.headers.get("Range"),
                         "at": time.monotonic()})
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if not redirected and h.headers.get("Authorization") != expected:
            self._reply(h, 401, b'{"errors":[{"code":"UNAUTHORIZED","message":"login"}]}',
                        {"WWW-Authenticate": 'Basic realm="fault-proxy"'})
            return
        fault = None if redirected else self._next_fault(h.path)
        if fault == "503":
            self._reply(h, 503, b"busy")
            return
        if fault == "429":
            self._reply(h, 429, b"slow down", {"Retry-After": "1"})
            return
        if fault == "redirect":
            location = f"http://localhost:{self.port}{h.path}{'&' if '?' in h.path else '?'}redirected=1"
            self._reply(h, 307, b"", {"Location": location})
            return
        upstream = http.client.HTTPConnection(self.upstream, timeout=30)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("authorization", "host")}
        path = h.path.replace("&redirected=1", "").replace("?redirected=1", "")
        upstream.request(h.command, path, headers=headers)
        response = upstream.getresponse()
        body = response.read()
        upstream.close()
        h.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("connection", "transfer-encoding"):
                h.send_header(key, value)
        h.end_headers()
        if fault == "reset" and h.command == "GET":
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            time.sleep(0.3)  # let the client take in what was sent: an RST discards unread data
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()  # RST: "connection reset by peer" half-way through the body
            h.close_connection = True
            return
        if h.command == "GET":
            h.wfile.write(body)

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        h.send_response(status)
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)


def test_pull_survives_5xx_429_resets_and_redirects(registry, tmp_path: Path) -> None:
    big = tar_from_entries([file("big.bin", os.urandom(2_000_000))])
    image = build_image([big, tar_from_entries([file("small", "x")])], compression="none")
    upload_image(client_for_test(registry.host, tmp_path / "c"), "test/faults", image)
    big_digest, small_digest = (layer[0].diff_id for layer in image.layers)  # uncompressed: blob == diff_id

    proxy = FaultProxy(registry.host)
    proxy.faults = {
        "/v2/test/faults/manifests/": ["503", "429"],
        big_digest: ["reset", "reset"],
        small_digest: ["redirect"],
    }
    proxy.start()
    try:
        config = EngineConfig(root=tmp_path / "root")
        host = f"127.0.0.1:{proxy.port}"
        save_credentials(config, host, Credentials(USER, PASSWORD))
        record = pull_image(config, f"{host}/test/faults:latest")
    finally:
        proxy.stop()
    assert record.id == image.image_id

    manifest_gets = [e for e in proxy.log if "/manifests/" in e["path"]]
    assert len(manifest_gets) == 3  # 503, 429, then the real answer
    assert manifest_gets[2]["at"] - manifest_gets[1]["at"] >= 0.9  # Retry-After: 1 honoured
    big_gets = [e for e in proxy.log if big_digest in e["path"] and e["auth"]]
    assert big_gets[0]["range"] is None
    resumed = [int(e["range"].removeprefix("bytes=").rstrip("-")) for e in big_gets[1:]]
    assert len(resumed) == 2 and 0 < resumed[0] < resumed[1]  # each retry continues where it stopped
    redirected = [e for e in proxy.log if "redirected=1" in e["path"]]
    assert len(redirected) == 1 and redirected[0]["host"] == f"localhost:{proxy.port}"
    assert redirected[0]["auth"] is None  # credentials never follow a redirect to another host
    assert all(e["auth"] for e in proxy.log if "redirected=1" not in e["path"] and e["path"] != "/v2/")
