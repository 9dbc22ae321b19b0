"""A hostile build context through `POST /build` (the API user, a member of group `dockui`, owns
the context's bytes): symlinks that point at host files, `..` and absolute names, hard links through
symlinks, device nodes, a Dockerfile that is a link to a host file or to /dev/zero, a Dockerfile of
deeply nested `${a:-${b:-...}}`, an ARG expansion bomb. Each one is refused in one line (or reads
only the context), the service keeps answering, and nothing of the host reaches the image or the
reply; the unpacked context is removed whatever happens."""

from __future__ import annotations

import io
import os
import secrets
import tarfile
from pathlib import Path

import pytest

from tests.faults.scoreboard import score
from tests.service_support import Service, service_fixture  # noqa: F401 - `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root


def _tar(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(entry[1]))
    return out.getvalue()


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _build(service: Service, context: bytes, tag: str, timeout: float = 60,
           dockerfile: str = "Dockerfile") -> tuple[int, str]:
    reply = service.request("POST", f"/build?t={tag}&rm=1&dockerfile={dockerfile}", body=context,
                            headers={"Content-Type": "application/x-tar"}, timeout=timeout)
    return reply.status, reply.body.decode(errors="replace")


def _image_file(service: Service, tag: str, path: str) -> str:
    """What `path` holds in the built image (read with a container, then removed)."""
    name = f"probe-{secrets.token_hex(3)}"
    result = service.engine.cli("run", "--name", name, "--network", "none", tag, "cat", path)
    service.engine.cli("rm", "-f", name)
    return result.stdout.decode(errors="replace")


def _contexts_left(engine: Engine) -> list[str]:
    tmp = engine.config.tmp_dir
    return [n for n in os.listdir(tmp) if n.startswith("build-context-")] if tmp.is_dir() else []


def _alive(service: Service) -> bool:
    return service.process.poll() is None and service.request("GET", "/_ping", timeout=10).status == 200


def test_hostile_build_contexts(service: Service, tmp_path: Path) -> None:
    engine = service.engine
    secret = tmp_path / "host-secret"
    marker = f"HOST-SECRET-{secrets.token_hex(4)}"
    secret.write_text(f"{marker}\n")
    (tmp_path / "hostdir").mkdir()
    (tmp_path / "hostdir" / "inner").write_text(f"{marker}\n")

    def case(name: str, context: bytes, *, built_path: str | None = None, timeout: float = 60,
             dockerfile: str = "Dockerfile") -> None:
        tag = f"hostile-{name}"
        status, body = _build(service, context, tag, timeout=timeout, dockerfile=dockerfile)
        content = _image_file(service, tag, built_path) if built_path and '"aux"' in body else ""
        leaked = marker.lower() in body.lower() or marker in content  # (a parse error upper-cases it)
        refused = status >= 400 or '"error"' in body
        lines = body.strip().splitlines()
        one_line = status >= 400 or (bool(lines) and len(lines[-1]) < 4096 and '"error"' in lines[-1])
        engine.cli("rmi", "-f", tag)
        alive = _alive(service)
        score("build", name, refused and one_line and alive and "Traceback" not in body,
              detail=f"{status} {body[-300:]!r} alive={alive}",
              leaks=[f"build contexts: {_contexts_left(engine)}"] if _contexts_left(engine) else [],
              escapes=[f"host file in the {'image' if marker in content else 'reply'}"] if leaked else [])

    dockerfile = b"FROM busybox\nCOPY link/host-secret /got\n"
    case("copy-through-dir-symlink", _tar([("Dockerfile", dockerfile), _link("link", str(tmp_path))]),
         built_path="/got")
    case("copy-file-symlink-out", _tar([("Dockerfile", b"FROM busybox\nCOPY s /got\n"), _link("s", str(secret))]),
         built_path="/got")
    case("copy-dir-symlink-out", _tar([("Dockerfile", b"FROM busybox\nCOPY d /got/\n"),
                                       _link("d", str(tmp_path / "hostdir"))]), built_path="/got/inner")
    case("copy-glob-through-symlink", _tar([("Dockerfile", b"FROM busybox\nCOPY link/host-s* /got\n"),
                                            _link("link", str(tmp_path))]), built_path="/got")
    case("dockerfile-symlink-to-host", _tar([_link("Dockerfile", str(secret))]))
    case("dockerfile-symlink-to-dev-zero", _tar([_link("Dockerfile", "/dev/zero")]), timeout=30)
    case("dockerfile-through-dir-symlink", _tar([_link("d", str(tmp_path))]), dockerfile="d/host-secret")
    case("member-dotdot", _tar([("Dockerfile", b"FROM busybox\n"), ("../escaped", b"x")]))
    case("member-absolute", _tar([("Dockerfile", b"FROM busybox\n"), ("/tmp/escaped-abs", b"x")]))
    case("write-through-symlink", _tar([("Dockerfile", b"FROM busybox\n"), _link("l", str(tmp_path)),
                                        ("l/written", b"x")]))
    case("hardlink-through-symlink", _tar([("Dockerfile", b"FROM busybox\nCOPY h /got\n"),
                                           _link("l", str(tmp_path)), _link("h", "l/host-secret", tarfile.LNKTYPE)]),
         built_path="/got")
    # COPY --from an image whose own files are links to host paths: resolved inside that image
    # (a relative link climbing above the root is refused when its RUN is committed)
    for name, link, source in (("copy-from-abs-symlink", f"ln -s {tmp_path} /abs", "/abs/host-secret"),
                               ("copy-from-nested-symlink", f"mkdir /d && ln -s {tmp_path} /d/in", "/d/in/host-secret"),
                               ("copy-from-rel-symlink", f"ln -s ../../../../../../..{tmp_path} /rel", "/rel/host-secret")):
        stage = f"FROM busybox AS evil\nRUN {link}\nFROM busybox\nCOPY --from=evil {source} /got\n"
        case(name, _tar([("Dockerfile", stage.encode())]), built_path="/got")
    # ADD of a local tar (extracted by the engine's layer extractor) that tries to leave the layer
    for name, members in (("add-tar-dotdot", [("../../../../../../.." + str(tmp_path) + "/planted", b"x")]),
                          ("add-tar-through-symlink", [_link("l", str(tmp_path)), ("l/planted", b"x")]),
                          ("add-tar-hardlink-out", [_link("h", str(secret), tarfile.LNKTYPE)])):
        case(name, _tar([("Dockerfile", b"FROM busybox\nADD evil.tar /x/\n"), ("evil.tar", _tar(members))]),
             built_path="/x/h")
        if name != "add-tar-hardlink-out":
            assert not (tmp_path / "planted").exists(), name
    nested = "${a:-" * 20000 + "x" + "}" * 20000
    case("nested-substitution", _tar([("Dockerfile", f"FROM busybox\nENV v={nested}\n".encode())]))
    bomb = "FROM busybox\nARG a0=xxxxxxxxxxxxxxxx\n" + "".join(
        f"ARG a{i}=${{a{i - 1}}}${{a{i - 1}}}${{a{i - 1}}}${{a{i - 1}}}\n" for i in range(1, 24))
    case("arg-expansion-bomb", _tar([("Dockerfile", bomb.encode())]), timeout=60)
    assert not (tmp_path / "written").exists() and not Path("/tmp/escaped-abs").exists()
    assert not (engine.config.tmp_dir.parent / "escaped").exists()


def test_build_client_hangs_up(service: Service) -> None:
    """A client that goes away while a RUN prints nothing: the build is cancelled within a poll (not
    when the RUN next writes or ends), its RUN container removed and its context with it."""
    import socket

    from tests.test_lifecycle_support import wait_until

    engine = service.engine
    context = _tar([("Dockerfile", b"FROM busybox\nRUN echo started && sleep 600\n")])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(service.socket_path))
    sock.settimeout(60)
    sock.sendall(b"POST /build?t=hangup&rm=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
                 + f"Content-Length: {len(context)}\r\n\r\n".encode() + context)
    seen = b""
    while b'"started\\n"' not in seen:  # the RUN's own output: its container runs
        chunk = sock.recv(65536)
        if not chunk:
            break
        seen += chunk
    running = engine.out("ps", "-q") != ""
    sock.close()
    gone = wait_until(lambda: engine.out("ps", "-aq") == "" and not _contexts_left(engine), timeout=10)
    score("build", "client-hangs-up-silent-run", running and bool(gone) and _alive(service),
          detail=f"running={running} {seen[-200:]!r}",
          leaks=[] if gone else [f"containers {engine.out('ps', '-aq')!r}, contexts {_contexts_left(engine)}"])
