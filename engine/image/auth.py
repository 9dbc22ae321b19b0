"""Registry credentials in Docker's `config.json` format (`{"auths": {"host": {"auth": b64(user:pw)}}}`).

dockui writes its own file (<root>/config.json, or `config.auth_config`) so a login never rewrites a
user's Docker config, but it reads `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`) too, so
an existing `docker login` keeps working. Credential helpers (`credHelpers`, `credsStore`) are honoured
by running `docker-credential-<name> get` as Docker does.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from engine.config import EngineConfig
from engine.errors import InvalidArgument
from engine.util.fsutil import atomic_write_json, file_lock, read_json

DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
DOCKER_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def auth_key(host: str) -> str:
    """The key Docker uses in `auths` for a registry host."""
    return DOCKER_HUB_AUTH_KEY if host in DOCKER_HUB_HOSTS else host


def dockui_auth_file(config: EngineConfig) -> Path:
    return Path(config.auth_config) if config.auth_config else config.root / "config.json"


def docker_auth_file() -> Path | None:
    directory = os.environ.get("DOCKER_CONFIG")
    if directory:
        return Path(directory) / "config.json"
    home = os.environ.get("HOME")
    return Path(home) / ".docker" / "config.json" if home else None


def _normalise_key(key: str) -> str:
    """`https://host:5000/v2/` -> `host:5000`, as Docker's ConvertToHostname does."""
    stripped = key.removeprefix("https://").removeprefix("http://")
    host = stripped.split("/", 1)[0]
    return "docker.io" if host in DOCKER_HUB_HOSTS else host


def _from_entry(entry: dict) -> Credentials | None:
    if entry.get("auth"):
        try:
            user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        if sep:
            return Credentials(user, password)
    if entry.get("username") and entry.get("password") is not None:
        return Credentials(entry["username"], entry["password"])
    return None


def _from_helper(helper: str, key: str) -> Credentials | None:
    program = shutil.which(f"docker-credential-{helper}")
    if not program:
        return None
    try:
        result = subprocess.run([program, "get"], input=key.encode(), capture_output=True, timeout=30)
        data = json.loads(result.stdout) if result.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    if not data or not data.get("Username"):
        return None
    return Credentials(data["Username"], data.get("Secret", ""))


def _lookup(path: Path | None, host: str) -> Credentials | None:
    if path is None:
        return None
    try:
        data = read_json(path, default=None)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    wanted = _normalise_key(auth_key(host))
    helper = (data.get("credHelpers") or {}).get(host) or (data.get("credHelpers") or {}).get(auth_key(host))
    if helper:
        found = _from_helper(helper, auth_key(host))
        if found:
            return found
    for key, entry in (data.get("auths") or {}).items():
        if _normalise_key(key) == wanted and isinstance(entry, dict):
            found = _from_entry(entry)
            if found:
                return found
    if data.get("credsStore"):
        return _from_helper(data["credsStore"], auth_key(host))
    return None


def get_credentials(config: EngineConfig, host: str) -> Credentials | None:
    """Credentials for `host` (a reference's domain), dockui's file first, then Docker's."""
    return _lookup(dockui_auth_file(config), host) or _lookup(docker_auth_file(), host)


def save_credentials(config: EngineConfig, host: str, credentials: Credentials) -> Path:
    """Store credentials for `host` (file mode 0600, atomic, under a lock). Returns the file written."""
    if ":" in credentials.username:
        raise InvalidArgument("username must not contain ':'")
    path = dockui_auth_file(config)
    with file_lock(path.with_name(path.name + ".lock")):
        data = read_json(path, default={}) or {}
        auths = data.setdefault("auths", {})
        token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
        auths[auth_key(host)] = {"auth": token}
        atomic_write_json(path, data, mode=0o600)
    return path


def remove_credentials(config: EngineConfig, host: str) -> bool:
    """Forget `host` in dockui's file. False when there was nothing stored."""
    path = dockui_auth_file(config)
    with file_lock(path.with_name(path.name + ".lock")):
        data = read_json(path, default={}) or {}
        auths = data.get("auths") or {}
        keys = [k for k in auths if _normalise_key(k) == _normalise_key(auth_key(host))]
        for key in keys:
            del auths[key]
        if keys:
            atomic_write_json(path, data, mode=0o600)
    return bool(keys)
