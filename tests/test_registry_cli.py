"""`dockui login/logout` and authenticated pulls through the CLI, against the real registries."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.image.auth import Credentials
from tests.fixtures.imagebuild import build_image, client_for_test, file, tar_from_entries, upload_image


def dockui(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_CONFIG": str(root.parent / "no-docker-config")}
    return subprocess.run([sys.executable, "-m", "tui.launcher", "--root", str(root), *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=120)


def test_login_basic_over_tls_then_logout(registry_tls, tmp_path: Path) -> None:
    root = tmp_path / "root"
    bad = dockui(root, "login", "-u", registry_tls.username, "--password-stdin", registry_tls.host, stdin="wrong\n")
    assert bad.returncode == 1 and "incorrect username or password" in bad.stderr
    assert not (root / "config.json").exists()

    ok = dockui(root, "login", "-u", registry_tls.username, "--password-stdin", f"https://{registry_tls.host}/",
                stdin=registry_tls.password + "\n")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "Login Succeeded\n"
    auths = json.loads((root / "config.json").read_text())["auths"]
    assert base64.b64decode(auths[registry_tls.host]["auth"]).decode() == f"{registry_tls.username}:{registry_tls.password}"
    assert (root / "config.json").stat().st_mode & 0o777 == 0o600

    warned = dockui(root, "login", "-u", registry_tls.username, "-p", registry_tls.password, registry_tls.host)
    assert warned.returncode == 0 and "--password-stdin" in warned.stderr

    assert dockui(root, "logout", registry_tls.host).stdout == f"Removing login credentials for {registry_tls.host}\n"
    assert dockui(root, "logout", registry_tls.host).stdout == f"Not logged in to {registry_tls.host}\n"
    assert registry_tls.host not in json.loads((root / "config.json").read_text())["auths"]


def test_login_usage_errors(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = dockui(root, "login", "--password-stdin", "127.0.0.1:1", stdin="pw\n")
    assert result.returncode == 1 and "Must provide --username with --password-stdin" in result.stderr


@pytest.mark.root
def test_pull_with_stored_credentials_from_token_registry(registry_token, tmp_path: Path) -> None:
    image = build_image([tar_from_entries([file("private", "secret")])])
    pusher = client_for_test(registry_token.host, tmp_path / "c",
                             credentials=Credentials(registry_token.username, registry_token.password))
    upload_image(pusher, "private/thing", image, tag="v1")
    root = tmp_path / "root"
    login = dockui(root, "login", "-u", registry_token.username, "--password-stdin", registry_token.host,
                   stdin=registry_token.password)
    assert login.returncode == 0, login.stderr
    before = len(registry_token.token_server.requests)
    pulled = dockui(root, "pull", "-q", f"{registry_token.host}/private/thing:v1")
    assert pulled.returncode == 0, pulled.stderr
    assert registry_token.token_server.requests[before:] == [
        (registry_token.username, ("repository:private/thing:pull",))]
    images = dockui(root, "images", "--format", "json")
    assert images.returncode == 0 and "private/thing" in images.stdout


@pytest.mark.root
def test_pull_errors_exit_1_with_one_line(registry, tmp_path: Path) -> None:
    root = tmp_path / "root"
    missing = dockui(root, "pull", f"{registry.host}/nope/nothing:v1")
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: ") and "manifest unknown" in missing.stderr
    bad = dockui(root, "pull", "Busybox")
    assert bad.returncode == 1 and "must be lowercase" in bad.stderr
    platform = dockui(root, "pull", "--platform", "linux/amd64/v1/x", f"{registry.host}/nope/nothing:v1")
    assert platform.returncode == 1 and "invalid platform" in platform.stderr


def test_progress_printer_draws_bars_in_place_on_a_terminal() -> None:
    import io

    from engine.cli.registry_cmds import ProgressPrinter
    from engine.image.pull import PullEvent

    out = io.StringIO()
    printer = ProgressPrinter(out, tty=True)
    printer(PullEvent(None, "latest: Pulling from library/busybox"))
    printer(PullEvent("aaaaaaaaaaaa", "Pulling fs layer"))
    printer(PullEvent("bbbbbbbbbbbb", "Pulling fs layer"))
    printer(PullEvent("aaaaaaaaaaaa", "Downloading", 500_000, 1_000_000))
    text = out.getvalue()
    assert text.startswith("latest: Pulling from library/busybox\naaaaaaaaaaaa: Pulling fs layer\n"
                           "bbbbbbbbbbbb: Pulling fs layer\n")
    redraw = text.split("bbbbbbbbbbbb: Pulling fs layer\n", 1)[1]
    # Up two lines, clear, the bar half full, back down.
    assert redraw.startswith("\x1b[2A\r\x1b[2K" + "aaaaaaaaaaaa: Downloading [" + "=" * 24 + ">")
    assert "500kB/1MB" in redraw and redraw.endswith("\r\x1b[2B")

    plain = io.StringIO()
    printer = ProgressPrinter(plain, tty=False)
    printer(PullEvent("aaaaaaaaaaaa", "Downloading", 1, 2))
    printer(PullEvent("aaaaaaaaaaaa", "Download complete"))
    printer(PullEvent("aaaaaaaaaaaa", "Download complete"))
    assert plain.getvalue() == "aaaaaaaaaaaa: Download complete\n"
