"""The registry client against real registries: Bearer (distribution's token mode), Basic over TLS,
scheme choice, CA handling, uploads (monolithic, chunked, mount, skip) and credential files."""

from __future__ import annotations

import base64
import io
import json
import os
import time
from pathlib import Path

import pytest

from engine.config import EngineConfig
from engine.errors import NotFound, RegistryError
from engine.image.auth import Credentials, get_credentials, remove_credentials, save_credentials
from engine.image.manifest import ACCEPT, parse_manifest
from engine.image.registry import RegistryClient, is_insecure, parse_challenge
from tests.fixtures.imagebuild import build_image, file, sha256, tar_from_entries, upload_image


def _client(server, tmp_path: Path, **kw) -> RegistryClient:
    config = EngineConfig(root=tmp_path / "root", certs_dir=tmp_path / "certs.d")
    return RegistryClient(config, server.host, use_stored_credentials=False, **kw)


def _tiny_image(name: str):
    return build_image([tar_from_entries([file(f"{name}.txt", name)])], cmd=["true"])


def test_bearer_anonymous_pull_caches_token_per_scope(registry_token, tmp_path: Path) -> None:
    token_server = registry_token.token_server
    pusher = _client(registry_token, tmp_path, credentials=Credentials(registry_token.username, registry_token.password))
    image = _tiny_image("anon")
    digest = upload_image(pusher, "test/anon", image, tag="v1")
    assert any(account == registry_token.username for account, _ in token_server.requests)

    before = len(token_server.requests)
    client = _client(registry_token, tmp_path)
    for _ in range(3):
        body, _, _ = client.get_manifest("test/anon", "v1", ACCEPT)
    assert parse_manifest(body).digest == digest
    client.fetch_blob_bytes("test/anon", sha256(image.config))
    anonymous = token_server.requests[before:]
    # One token for the one scope, reused by 4 requests; anonymous (no account).
    assert anonymous == [(None, ("repository:test/anon:pull",))]
    assert client.token_requests == 1

    client.get_manifest("test/anon", "v1", ACCEPT)
    with pytest.raises(NotFound):
        client.get_manifest("test/other", "v1", ACCEPT)
    assert token_server.requests[-1] == (None, ("repository:test/other:pull",))
    assert client.token_requests == 2


def test_bearer_anonymous_push_is_denied(registry_token, tmp_path: Path) -> None:
    client = _client(registry_token, tmp_path)
    with pytest.raises(RegistryError, match="unauthorized|denied"):
        upload_image(client, "test/denied", _tiny_image("denied"))


def test_bearer_wrong_password_is_a_clear_error(registry_token, tmp_path: Path) -> None:
    client = _client(registry_token, tmp_path, credentials=Credentials(registry_token.username, "wrong"))
    with pytest.raises(RegistryError, match="incorrect username or password"):
        client.get_manifest("test/anon", "v1", ACCEPT)


def test_basic_auth_over_tls_with_ca_from_certs_d(registry_tls, tmp_path: Path) -> None:
    creds = Credentials(registry_tls.username, registry_tls.password)
    # Without the CA, and not treated as insecure, the certificate is refused with a hint.
    strict = _client(registry_tls, tmp_path, credentials=creds, allow_insecure=False)
    with pytest.raises(RegistryError, match="certificate signed by unknown authority"):
        strict.ping()

    registry_tls.install_ca(tmp_path / "certs.d")
    client = _client(registry_tls, tmp_path, credentials=creds, allow_insecure=False)
    image = _tiny_image("tls")
    digest = upload_image(client, "test/tls", image, tag="v1")
    assert client.base_url.startswith("https://") and client.tls_verified
    body, content_type, header_digest = client.get_manifest("test/tls", digest, ACCEPT)
    assert header_digest == digest and content_type == image.media_type

    anonymous = _client(registry_tls, tmp_path, allow_insecure=False)
    with pytest.raises(RegistryError, match="unauthorized"):
        anonymous.get_manifest("test/tls", "v1", ACCEPT)
    wrong = _client(registry_tls, tmp_path, credentials=Credentials(registry_tls.username, "nope"),
                    allow_insecure=False)
    with pytest.raises(RegistryError, match="unauthorized"):
        wrong.get_manifest("test/tls", "v1", ACCEPT)


def test_loopback_tls_without_ca_is_insecure_but_usable(registry_tls, tmp_path: Path) -> None:
    creds = Credentials(registry_tls.username, registry_tls.password)
    client = _client(registry_tls, tmp_path, credentials=creds)  # 127.0.0.1: insecure by default, as Docker
    client.ping()
    assert client.base_url.startswith("https://") and not client.tls_verified


def test_plain_http_only_for_insecure_hosts(registry, tmp_path: Path) -> None:
    client = _client(registry, tmp_path)
    client.ping()
    assert client.base_url == f"http://{registry.host}"
    strict = _client(registry, tmp_path, allow_insecure=False)
    with pytest.raises(RegistryError, match="cannot reach registry"):
        strict.ping()
    config = EngineConfig(root=tmp_path, insecure_registries=["myregistry:5000", "10.1.0.0/16"])
    assert is_insecure(config, "myregistry:5000") and is_insecure(config, "10.1.2.3:443")
    assert is_insecure(config, "localhost:5000") and is_insecure(config, "[::1]:5000")
    assert not is_insecure(config, "registry.example.com") and not is_insecure(config, "10.2.0.1:5000")


def test_chunked_upload_mount_and_skip(registry, tmp_path: Path) -> None:
    client = _client(registry, tmp_path)
    data = os.urandom(300_000)
    digest = sha256(data)
    result = client.upload_blob("test/chunked", digest, len(data), lambda: io.BytesIO(data), chunk_size=64 * 1024)
    assert result.outcome == "uploaded"
    assert client.fetch_blob_bytes("test/chunked", digest, size=len(data)) == data
    assert client.upload_blob("test/chunked", digest, len(data), lambda: io.BytesIO(data)).outcome == "exists"
    mounted = client.upload_blob("test/mounted", digest, len(data), lambda: io.BytesIO(data),
                                 mount_from="test/chunked")
    assert mounted.outcome == "mounted"
    assert client.blob_size("test/mounted", digest) == len(data)


def test_challenge_parsing() -> None:
    scheme, params = parse_challenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "reg", "scope": "repository:a/b:pull"}
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


def test_credentials_file_round_trip_and_docker_config(tmp_path: Path, monkeypatch) -> None:
    config = EngineConfig(root=tmp_path / "root")
    docker_dir = tmp_path / "docker"
    docker_dir.mkdir()
    auth = base64.b64encode(b"dockeruser:dockerpw").decode()
    (docker_dir / "config.json").write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": auth},
                                                                  "other:5000": {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_dir))
    assert get_credentials(config, "docker.io") == Credentials("dockeruser", "dockerpw")
    assert get_credentials(config, "other:5000") == Credentials("dockeruser", "dockerpw")
    assert get_credentials(config, "nothere:5000") is None

    path = save_credentials(config, "other:5000", Credentials("me", "p:w"))
    assert path == tmp_path / "root" / "config.json"
    assert path.stat().st_mode & 0o777 == 0o600
    stored = json.loads(path.read_text())["auths"]["other:5000"]["auth"]
    assert base64.b64decode(stored) == b"me:p:w"
    assert get_credentials(config, "other:5000") == Credentials("me", "p:w")  # dockui's file wins
    assert remove_credentials(config, "other:5000") is True
    assert remove_credentials(config, "other:5000") is False
    assert get_credentials(config, "other:5000") == Credentials("dockeruser", "dockerpw")


def test_bearer_token_lives_until_expiry_then_is_renewed(registry_token, tmp_path: Path) -> None:
    client = _client(registry_token, tmp_path)
    scope = "repository:test/expiry:pull"
    for _ in range(2):
        with pytest.raises(NotFound):
            client.get_manifest("test/expiry", "v1", ACCEPT)
    assert client.token_requests == 1
    lifetime = client._tokens[scope].expires_at - time.monotonic()
    assert registry_token.token_server.expires_in - 10 < lifetime <= registry_token.token_server.expires_in
    client._tokens[scope].expires_at = time.monotonic() - 1  # as if expires_in had passed
    with pytest.raises(NotFound):
        client.get_manifest("test/expiry", "v1", ACCEPT)
    assert client.token_requests == 2
