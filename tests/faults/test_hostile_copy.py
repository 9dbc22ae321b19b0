"""`docker cp` and the archive endpoints against a container that wants out (CVE-2018-15664's class):
links inside it that name host paths, one swapped between a directory and a link to the host while
copies run, archives with `..`, absolute names, hard links out, device nodes. Paths resolve inside
the container's own root (its mount namespace, or its overlay under a chroot when stopped), so a
host path named by a link is a path of the container; nothing is read from or written to the host
outside the copy's own destination, and a device node put in does not open the host's disk."""

from __future__ import annotations

import io
import os
import secrets
import tarfile
from pathlib import Path

import pytest

from tests.faults.scoreboard import score, stderr_escapes
from tests.service_support import Service, service_fixture  # noqa: F401 - `service` fixture
from tests.test_lifecycle_support import Engine, engine_fixture  # noqa: F401 - `engine` fixture

pytestmark = pytest.mark.root


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return out.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", major: int = 0, minor: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    info.devmajor, info.devminor = major, minor
    return info


def _host_listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def _root_disk() -> tuple[int, int]:
    st = os.stat("/")
    return os.major(st.st_dev), os.minor(st.st_dev)


def test_copy_through_hostile_links(service: Service, tmp_path: Path) -> None:
    engine = service.engine
    host = tmp_path / "host"
    host.mkdir()
    marker = f"HOST-{secrets.token_hex(4)}"
    (host / "secret").write_text(marker)
    before = _host_listing(host)
    script = (f"ln -s {host} /hostlink && ln -s / /rootlink && mkdir -p /box && "
              f"while true; do rm -rf /swap; mkdir /swap; rm -rf /swap; ln -s {host} /swap; done")
    cid = engine.out("run", "-d", "--network", "none", "busybox", "sh", "-c", script).strip()
    try:
        # reading through links that name host paths: the container's paths, which do not exist
        for name, path in (("get-abs-link-to-host", "/hostlink/secret"), ("get-root-link", f"/rootlink{host}/secret")):
            reply = service.request("GET", f"/containers/{cid}/archive?path={path}")
            score("copy", name, reply.status == 404 and b"message" in reply.body,
                  detail=f"{reply.status} {reply.body[:120]!r}",
                  escapes=["host file read"] if marker.encode() in reply.body else [])
        # writing through them: lands in the container (or is refused), never on the host
        archive = _tar([(_member("planted"), b"x")])
        for name, path in (("put-into-link-to-host", "/hostlink"), ("put-into-root-link", f"/rootlink{host}")):
            reply = service.request("PUT", f"/containers/{cid}/archive?path={path}", body=archive)
            score("copy", name, reply.status in (200, 404), detail=f"{reply.status} {reply.body[:120]!r}",
                  escapes=["written on the host"] if _host_listing(host) != before else [])
        # the swap race: a directory one moment, a link to the host the next, while copies run
        source = tmp_path / "payload"
        source.write_text("payload")
        results = []
        for i in range(30):  # about one in 40 copies met the swap before the fix
            results.append(engine.cli("cp", str(source), f"{cid}:/swap/p{i}"))
            results.append(engine.cli("cp", f"{cid}:/swap/", str(tmp_path / f"out{i}")))
            reply = service.request("GET", f"/containers/{cid}/archive?path=/swap/secret")
            results.append(reply)
        leaked = any(marker.encode() in (r.body if hasattr(r, "body") else r.stdout) for r in results)
        copied_out = [p for p in tmp_path.glob("out*/**/*") if p.is_file() and marker in p.read_text(errors="replace")]
        escapes = [e for r in results if hasattr(r, "stderr") for e in stderr_escapes(r.stderr)]
        if _host_listing(host) != before:
            escapes.append(f"written on the host: {_host_listing(host)}")
        if leaked or copied_out:
            escapes.append(f"the swapped link handed out as the copy of a directory: {copied_out}")
        score("copy", "symlink-swap-race", True, detail=f"{len(results)} copies", escapes=escapes)
        # archives that try to leave the destination
        for name, members in (
            ("put-dotdot", [(_member("../../../../../../.." + str(host) + "/planted"), b"x")]),
            ("put-absolute", [(_member(str(host) + "/planted"), b"x")]),
            ("put-hardlink-absolute", [(_member("hl", tarfile.LNKTYPE, str(host / "secret")), b"")]),
            ("put-hardlink-dotdot", [(_member("hl", tarfile.LNKTYPE, "../../../../../../etc/shadow"), b"")]),
            ("put-through-own-symlink", [(_member("l", tarfile.SYMTYPE, str(host)), b""), (_member("l/planted"), b"x")]),
        ):
            reply = service.request("PUT", f"/containers/{cid}/archive?path=/box", body=_tar(members))
            one_line = reply.status == 200 or (b"message" in reply.body and b"\\n" not in reply.body)
            score("copy", name, reply.status in (200, 400, 500) and one_line and b"Traceback" not in reply.body,
                  detail=f"{reply.status} {reply.body[:160]!r}",
                  escapes=["written on the host"] if _host_listing(host) != before else [])
        # a device node of the host's disk put in: the container still cannot open it
        major, minor = _root_disk()
        reply = service.request("PUT", f"/containers/{cid}/archive?path=/box",
                                body=_tar([(_member("disk", tarfile.BLKTYPE, major=major, minor=minor), b""),
                                           (_member("mem", tarfile.CHRTYPE, major=1, minor=1), b"")]))
        probe = engine.cli("exec", cid, "sh", "-c", "head -c 1 /box/disk >/dev/null 2>&1 && echo DISK; "
                                                    "head -c 1 /box/mem >/dev/null 2>&1 && echo MEM; true")
        score("copy", "put-device-nodes", reply.status == 200 and probe.returncode == 0,
              detail=f"{reply.status} {probe.stdout!r} {probe.stderr!r}",
              escapes=[f"device opened: {probe.stdout.decode().split()}"] if probe.stdout.strip() else [])
    finally:
        engine.out("rm", "-f", cid)
    # a stopped container's copy resolves in its own overlay too
    stopped = engine.out("create", "--network", "none", "busybox", "true").strip()
    try:
        engine.cli("cp", "-", f"{stopped}:/", input=_tar([(_member("hostlink", tarfile.SYMTYPE, str(host)), b"")]),
                   check=True)
        put = engine.cli("cp", str(tmp_path / "payload"), f"{stopped}:/hostlink/planted")
        got = engine.cli("cp", f"{stopped}:/hostlink/secret", str(tmp_path / "got-stopped"))
        score("copy", "stopped-container-links", put.returncode != 0 and got.returncode != 0
              and not (tmp_path / "got-stopped").exists(),
              detail=f"{put.stderr!r} {got.stderr!r}",
              escapes=(stderr_escapes(put.stderr) + stderr_escapes(got.stderr)
                       + (["written on the host"] if _host_listing(host) != before else [])))
    finally:
        engine.out("rm", "-f", stopped)
