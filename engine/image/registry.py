"""A client for the OCI distribution API (Docker Registry HTTP API v2), built on `requests`.

One pooled `requests.Session` per registry host. The client pings `/v2/` once to learn the scheme
(HTTPS by default; plain HTTP only for insecure registries: loopback and `--insecure-registry`) and the
auth challenge (Bearer with a token cached per scope until it expires, or Basic). Every request is
retried with backoff on connection errors, 5xx and 429 (honouring `Retry-After`), except the first
contact (the `/v2/` ping: a registry that is not there fails at once, as Docker's); blob downloads
resume with `Range` and verify the sha256 while streaming. Redirects are followed by hand so the
`Authorization` header never leaves the registry's host.

A registry that stops sending is not waited on for ever: every read has the config's
`registry_stall_timeout` (30 s unless set) as its timeout, so a stall aborts that attempt, which is
retried (a blob resumes where it stopped) like any transient error; after MAX_ATTEMPTS the pull
gives up with one line. The worst case is bounded: MAX_ATTEMPTS x (stall + backoff) per request.

`requests` is imported lazily: importing this module costs nothing until a client is built.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlencode, urljoin, urlsplit

from engine.config import EngineConfig
from engine.diagnostics import get_logger
from engine.errors import DockuiError, IntegrityError, NotFound, RegistryError
from engine.image.auth import Credentials, get_credentials

if TYPE_CHECKING:
    import requests

log = get_logger(__name__)

USER_AGENT = "dockui/0.1 (+https://github.com/dockui)"
MAX_ATTEMPTS = 5
BACKOFF_BASE = 0.25
MAX_RETRY_AFTER = 30.0
MAX_REDIRECTS = 10
MAX_MANIFEST_SIZE = 4 << 20  # what containerd and the registry accept
CHUNK = 1 << 20
DOWNLOAD_CHUNK = 256 << 10  # small enough that an interrupted read keeps most of what arrived
MIN_TOKEN_LIFETIME = 60  # the token spec: assume 60 s when expires_in is missing or shorter


class Cancelled(DockuiError):
    """The caller asked to stop (e.g. the TUI's cancel button)."""


def is_loopback(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def split_host(host: str) -> tuple[str, int | None]:
    """`127.0.0.1:5000` -> ("127.0.0.1", 5000); `[::1]:5000` -> ("::1", 5000)."""
    parts = urlsplit(f"//{host}")
    return parts.hostname or host, parts.port


def is_insecure(config: EngineConfig, host: str) -> bool:
    """Plain HTTP / unverified TLS is allowed for loopback (Docker's default) and configured hosts."""
    hostname, _ = split_host(host)
    if is_loopback(hostname):
        return True
    for entry in config.insecure_registries:
        entry = entry.removeprefix("http://").removeprefix("https://").rstrip("/")
        if entry in (host, hostname):
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(hostname) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="x",service="y",scope="a b"` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    for k, v in re.findall(r'(\w+)=([^",\s]+)', rest):
        params.setdefault(k.lower(), v)
    return scheme.lower(), params


def registry_error_message(response: requests.Response) -> str:
    """`code: message` from the registry's error body, else the HTTP status."""
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        errors = []
    if errors:
        return "; ".join(
            f"{str(e.get('code', '')).lower().replace('_', ' ')}: {e.get('message', '')}".strip(": ")
            for e in errors
        )
    return f"{response.status_code} {response.reason}"


@dataclass
class _Token:
    value: str
    expires_at: float


@dataclass
class BlobUpload:
    """What happened to one blob during a push."""

    digest: str
    outcome: str  # "exists" | "mounted" | "uploaded"


@dataclass
class RegistryClient:
    """Talk to one registry host. Thread-safe for parallel blob downloads."""

    config: EngineConfig
    host: str
    credentials: Credentials | None = None
    allow_insecure: bool | None = None  # None: decide from the config (loopback + insecure list)
    use_stored_credentials: bool = True
    base_url: str = ""
    tls_verified: bool = False
    token_requests: int = 0
    _session: Any = None
    _challenge: tuple[str, dict[str, str]] | None = None
    _pinged: bool = False
    _tokens: dict[str, _Token] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.allow_insecure is None:
            self.allow_insecure = is_insecure(self.config, self.host)
        if self.credentials is None and self.use_stored_credentials:
            self.credentials = get_credentials(self.config, self.host)

    # -- connection set-up -------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        """System CAs plus certs.d/<host>/*.crt (Docker's layout), and a client cert if present."""
        context = ssl.create_default_context()
        directory = Path(self.config.certs_dir) / self.host
        if directory.is_dir():
            for ca in sorted(directory.glob("*.crt")):
                context.load_verify_locations(cafile=str(ca))
            cert, key = directory / "client.cert", directory / "client.key"
            if cert.is_file() and key.is_file():
                context.load_cert_chain(str(cert), str(key))
        return context

    def _new_session(self, verify: bool) -> requests.Session:
        import requests
        from requests.adapters import HTTPAdapter

        context = self._ssl_context() if verify else None
        if not verify:
            import warnings

            from urllib3.exceptions import InsecureRequestWarning

            # We log one warning per registry ourselves; urllib3 would warn on every request.
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)

        class Adapter(HTTPAdapter):
            def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
                if context is not None:
                    kwargs["ssl_context"] = context
                super().init_poolmanager(*args, **kwargs)

        session = requests.Session()
        session.trust_env = False  # no proxies or .netrc credentials from the environment
        session.verify = verify
        session.headers["User-Agent"] = USER_AGENT
        adapter = Adapter(pool_connections=4, pool_maxsize=8, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def ping(self) -> None:
        """GET /v2/: learn the scheme and the auth challenge. Idempotent."""
        with self._lock:
            if self._pinged:
                return
            self._ping_locked()
            self._pinged = True

    def _ping_locked(self) -> None:
        import requests

        attempts: list[tuple[str, bool]] = [("https", True)]
        if self.allow_insecure:
            attempts += [("https", False), ("http", False)]
        last_error: Exception | None = None
        for scheme, verify in list(attempts):
            if (scheme, verify) not in attempts:
                continue
            session = self._new_session(verify)
            url = f"{scheme}://{self.host}/v2/"
            try:
                response = self._send_with_retries(session, "GET", url, {}, timeout=(10, self.stall_timeout),
                                                   max_attempts=1)
            except requests.exceptions.Timeout as exc:
                last_error = exc
                session.close()
                break
            except requests.exceptions.SSLError as exc:
                last_error = exc
                session.close()
                if "CERTIFICATE_VERIFY_FAILED" not in str(exc) and ("https", False) in attempts:
                    attempts.remove(("https", False))  # not a TLS server at all: try plain HTTP
                continue
            except requests.exceptions.ConnectionError as exc:
                last_error = exc
                session.close()
                if scheme == "https" and self.allow_insecure:
                    continue
                break
            self._session, self.base_url, self.tls_verified = session, f"{scheme}://{self.host}", verify
            if scheme == "https" and not verify:
                log.warning("TLS certificate of %s not verified (insecure registry)", self.host)
            if response.status_code == 401:
                self._challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            elif response.status_code >= 400 and response.status_code != 404:
                raise RegistryError(f"registry {self.host} answered /v2/ with {response.status_code} {response.reason}")
            response.close()
            return
        hint = ""
        if last_error is not None and "CERTIFICATE_VERIFY_FAILED" in str(last_error):
            hint = (f" (certificate signed by unknown authority: put its CA in "
                    f"{Path(self.config.certs_dir) / self.host / 'ca.crt'} or use --insecure-registry)")
        if isinstance(last_error, requests.exceptions.Timeout):
            hint = f" (no answer within {self.stall_timeout:g} s)"
        raise RegistryError(f"cannot reach registry {self.host}: {_short(last_error)}{hint}")

    @property
    def stall_timeout(self) -> float:
        """Seconds a read may wait for a byte before the attempt is abandoned (see the module)."""
        return float(self.config.registry_stall_timeout)

    # -- auth ---------------------------------------------------------------------------------
    def _bearer_token(self, scope: str, force: bool = False) -> str:
        import requests

        assert self._challenge is not None
        with self._lock:
            cached = self._tokens.get(scope)
            if cached and not force and cached.expires_at > time.monotonic():
                return cached.value
            params = self._challenge[1]
            realm = params.get("realm")
            if not realm:
                raise RegistryError(f"registry {self.host} sent a Bearer challenge without a realm")
            query: list[tuple[str, str]] = []
            if params.get("service"):
                query.append(("service", params["service"]))
            for one in scope.split(" "):
                if one:
                    query.append(("scope", one))
            auth = None
            if self.credentials:
                query.append(("account", self.credentials.username))
                auth = requests.auth.HTTPBasicAuth(self.credentials.username, self.credentials.password)
            url = realm + ("&" if "?" in realm else "?") + urlencode(query)
            self.token_requests += 1
            try:
                response = self._send_with_retries(self._session, "GET", url, {}, auth=auth,
                                                   timeout=(10, self.stall_timeout))
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                raise RegistryError(f"token server {realm} did not answer ({MAX_ATTEMPTS} attempts): "
                                    f"{_short(exc)}") from None
            if response.status_code == 401:
                raise RegistryError(f"unauthorized: incorrect username or password for {self.host}")
            if response.status_code != 200:
                raise RegistryError(f"token request to {realm} failed: {registry_error_message(response)}")
            try:
                body = response.json()
            except ValueError as exc:
                raise RegistryError(f"token server {realm} returned no JSON") from exc
            token = body.get("token") or body.get("access_token")
            if not token:
                raise RegistryError(f"token server {realm} returned no token")
            lifetime = max(int(body.get("expires_in") or MIN_TOKEN_LIFETIME), MIN_TOKEN_LIFETIME)
            # Renew a little early so a token never expires in flight.
            self._tokens[scope] = _Token(token, time.monotonic() + lifetime - 5)
            return token

    def _auth_header(self, scope: str, force: bool = False) -> dict[str, str]:
        if self._challenge is None:
            return {}
        scheme = self._challenge[0]
        if scheme == "bearer":
            return {"Authorization": f"Bearer {self._bearer_token(scope, force)}"}
        if scheme == "basic" and self.credentials:
            raw = f"{self.credentials.username}:{self.credentials.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    # -- requests -----------------------------------------------------------------------------
    def _send_with_retries(self, session: requests.Session, method: str, url: str, headers: dict[str, str],
                           max_attempts: int = MAX_ATTEMPTS, **kwargs: Any) -> requests.Response:
        """One request with retries for connection errors, 5xx and 429; redirects followed by hand.

        The first contact with a registry (the `/v2/` ping) is made with `max_attempts=1`, as
        Docker's: a host that refuses or does not answer fails the pull at once, in one line,
        instead of after the back-off meant for a registry that failed half-way through."""
        import requests

        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._follow_redirects(session, method, url, headers, **kwargs)
            except requests.exceptions.SSLError:
                raise
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                if attempt >= max_attempts or not _replayable(kwargs.get("data")):
                    raise
                delay = BACKOFF_BASE * 2 ** (attempt - 1)
                log.info("%s %s failed (%s); retrying in %.2fs", method, url, _short(exc), delay)
                time.sleep(delay)
                continue
            status = response.status_code
            if (status == 429 or status >= 500) and attempt < max_attempts and _replayable(kwargs.get("data")):
                delay = _retry_after(response.headers.get("Retry-After")) if status == 429 else None
                delay = delay if delay is not None else BACKOFF_BASE * 2 ** (attempt - 1)
                log.info("%s %s answered %s; retrying in %.2fs", method, url, status, delay)
                response.close()
                time.sleep(delay)
                continue
            return response

    def _follow_redirects(self, session: requests.Session, method: str, url: str, headers: dict[str, str],
                          **kwargs: Any) -> requests.Response:
        origin = urlsplit(url).netloc
        headers = dict(headers)
        for _ in range(MAX_REDIRECTS):
            response = session.request(method, url, headers=headers, allow_redirects=False, **kwargs)
            if response.status_code not in (301, 302, 303, 307, 308) or "Location" not in response.headers:
                return response
            location = urljoin(url, response.headers["Location"])
            response.close()
            if urlsplit(location).netloc != origin:
                # Blob storage elsewhere (S3, CDN) gets a pre-signed URL, never our credentials.
                headers.pop("Authorization", None)
                kwargs.pop("auth", None)
            if response.status_code == 303:
                method = "GET"
            url = location
        raise RegistryError(f"too many redirects from {self.host}")

    def request(self, method: str, path_or_url: str, scope: str, headers: dict[str, str] | None = None,
                **kwargs: Any) -> requests.Response:
        """An authorised request to the registry; on a 401 the token is renewed once."""
        import requests

        self.ping()
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        kwargs.setdefault("timeout", (10, self.stall_timeout))
        try:
            return self._request(method, url, scope, dict(headers or {}), **kwargs)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            what = urlsplit(url).path
            if isinstance(exc, requests.exceptions.Timeout):
                raise RegistryError(f"registry {self.host} sent nothing for {self.stall_timeout:g} s "
                                    f"({MAX_ATTEMPTS} attempts) for {method} {what}: giving up") from None
            raise RegistryError(f"registry {self.host} failed {method} {what} ({MAX_ATTEMPTS} attempts): "
                                f"{_short(exc)}") from None

    def _request(self, method: str, url: str, scope: str, headers: dict[str, str], **kwargs: Any) -> requests.Response:
        response = self._send_with_retries(self._session, method, url, {**headers, **self._auth_header(scope)},
                                           **kwargs)
        if response.status_code == 401 and self._challenge is not None and _replayable(kwargs.get("data")):
            challenge = response.headers.get("WWW-Authenticate")
            if challenge:
                scheme, params = parse_challenge(challenge)
                if scheme == "bearer" and self._challenge[0] == "bearer":
                    self._challenge = (scheme, {**self._challenge[1], **{k: v for k, v in params.items()
                                                                          if k in ("realm", "service")}})
            response.close()
            response = self._send_with_retries(self._session, method, url,
                                               {**headers, **self._auth_header(scope, force=True)}, **kwargs)
        elif response.status_code == 401 and self._challenge is None:
            # A registry that allowed /v2/ anonymously but protects this repository.
            challenge = response.headers.get("WWW-Authenticate")
            if challenge:
                self._challenge = parse_challenge(challenge)
                response.close()
                response = self._send_with_retries(self._session, method, url,
                                                   {**headers, **self._auth_header(scope)}, **kwargs)
        return response

    def check_login(self) -> None:
        """Prove the credentials work, as `docker login` does (token request or Basic GET /v2/)."""
        self.ping()
        if self._challenge is None:
            return
        if self._challenge[0] == "bearer":
            self._bearer_token("", force=True)
            return
        response = self.request("GET", "/v2/", scope="")
        if response.status_code != 200:
            response.close()
            raise RegistryError(f"login to {self.host} failed: unauthorized: incorrect username or password")
        response.close()

    def _raise_for(self, response: requests.Response, what: str) -> None:
        status = response.status_code
        message = registry_error_message(response)
        response.close()
        if status == 401:
            raise RegistryError(f"{what}: unauthorized: authentication required ({message})")
        if status == 403:
            raise RegistryError(f"{what}: denied: requested access to the resource is denied ({message})")
        if status == 404:
            raise NotFound(f"{what}: not found: {message}")
        raise RegistryError(f"{what}: {message}")

    # -- manifests ----------------------------------------------------------------------------
    def get_manifest(self, repository: str, reference: str, accept: Iterable[str]) -> tuple[bytes, str, str | None]:
        """(body, Content-Type, Docker-Content-Digest) for a tag or digest; a body cut or stalled
        half-way is fetched again (it is small), MAX_ATTEMPTS times at most."""
        import requests
        import urllib3

        for attempt in range(1, MAX_ATTEMPTS + 1):
            response = self.request("GET", f"/v2/{repository}/manifests/{reference}", scope=pull_scope(repository),
                                    headers={"Accept": ", ".join(accept)}, stream=True)
            if response.status_code != 200:
                if response.status_code == 404:
                    message = registry_error_message(response)
                    response.close()
                    raise NotFound(f"manifest for {self.host}/{repository}:{reference} not found: {message}")
                self._raise_for(response, f"fetching manifest {self.host}/{repository}:{reference}")
            try:
                body = response.raw.read(MAX_MANIFEST_SIZE + 1, decode_content=True)
                break
            except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError) as exc:
                what = f"sent nothing for {self.stall_timeout:g} s" if _is_stall(exc) else f"failed ({_short(exc)})"
                if attempt == MAX_ATTEMPTS:
                    raise RegistryError(f"registry {self.host} {what} while sending manifest "
                                        f"{repository}:{reference}, {MAX_ATTEMPTS} times: giving up") from None
                log.warning("registry %s %s while sending manifest %s:%s; asking again (attempt %d of %d)",
                            self.host, what, repository, reference, attempt + 1, MAX_ATTEMPTS)
                time.sleep(BACKOFF_BASE * 2 ** (attempt - 1))
            finally:
                response.close()
        if len(body) > MAX_MANIFEST_SIZE:
            raise IntegrityError(f"manifest {repository}:{reference} is {len(body)} bytes: larger than the "
                                 f"{MAX_MANIFEST_SIZE} a manifest may be")
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return body, content_type, response.headers.get("Docker-Content-Digest")

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        response = self.request("PUT", f"/v2/{repository}/manifests/{reference}", scope=push_scope(repository),
                                headers={"Content-Type": media_type}, data=body)
        if response.status_code not in (200, 201):
            self._raise_for(response, f"pushing manifest {self.host}/{repository}:{reference}")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        returned = response.headers.get("Docker-Content-Digest")
        response.close()
        if returned and returned != digest:
            raise IntegrityError(f"registry stored manifest as {returned}, expected {digest}")
        return digest

    # -- blobs: download ----------------------------------------------------------------------
    def fetch_blob_bytes(self, repository: str, digest: str, size: int | None = None,
                         max_size: int = 64 << 20) -> bytes:
        """A small blob (image config) in memory, verified."""
        import io

        buffer = io.BytesIO()
        self.download_blob(repository, digest, buffer, size=size, max_size=max_size)
        return buffer.getvalue()

    def download_blob(self, repository: str, digest: str, out: BinaryIO, size: int | None = None,
                      progress: Callable[[int], None] | None = None,
                      cancel: threading.Event | None = None, max_size: int | None = None,
                      on_retry: Callable[[str], None] | None = None) -> int:
        """Stream a blob into `out` (seekable), verifying size and sha256; resume with Range on errors.

        `on_retry` hears why an attempt was abandoned (a stall), for the pull's progress."""
        import requests
        import urllib3

        if not digest.startswith("sha256:"):
            raise IntegrityError(f"unsupported digest algorithm in {digest!r}")
        hasher = hashlib.sha256()
        received = 0
        failures = 0
        limit = size if size is not None else max_size
        path = f"/v2/{repository}/blobs/{digest}"
        while True:
            headers = {"Range": f"bytes={received}-"} if received else {}
            try:
                response = self.request("GET", path, scope=pull_scope(repository), headers=headers, stream=True)
                if response.status_code == 416 and size is not None and received == size:
                    response.close()
                    break
                if received and response.status_code == 200:
                    # The server ignored Range: start again from the first byte.
                    out.seek(0)
                    out.truncate()
                    hasher, received = hashlib.sha256(), 0
                elif response.status_code not in (200, 206):
                    self._raise_for(response, f"fetching blob {digest[:19]}")
                try:
                    for chunk in _arrived(response.raw):
                        if cancel is not None and cancel.is_set():
                            raise Cancelled("pull cancelled")
                        out.write(chunk)
                        hasher.update(chunk)
                        received += len(chunk)
                        if limit is not None and received > limit:
                            raise IntegrityError(
                                f"blob {digest} is larger than the {limit} bytes its descriptor declares")
                        if progress is not None:
                            progress(received)
                finally:
                    response.close()
                break
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.Timeout, urllib3.exceptions.ProtocolError,
                    urllib3.exceptions.ReadTimeoutError) as exc:
                failures += 1
                stalled = _is_stall(exc)
                if failures >= MAX_ATTEMPTS:
                    if stalled:
                        raise RegistryError(
                            f"registry {self.host} sent nothing for {self.stall_timeout:g} s, {MAX_ATTEMPTS} times, "
                            f"while downloading blob {digest[:19]} ({received} of {size or '?'} bytes): giving up"
                        ) from None
                    if size is not None and received < size:
                        raise IntegrityError(
                            f"blob {digest} truncated: got {received} of {size} bytes ({_short(exc)})") from exc
                    raise RegistryError(f"downloading blob {digest}: {_short(exc)}") from exc
                delay = BACKOFF_BASE * 2 ** (failures - 1)
                if stalled:
                    why = (f"Retrying: the registry sent nothing for {self.stall_timeout:g} s "
                           f"(attempt {failures + 1} of {MAX_ATTEMPTS}, from byte {received})")
                    if on_retry is not None:
                        on_retry(why)
                    else:
                        log.warning("blob %s: %s", digest[7:19], why)
                else:
                    log.info("blob %s interrupted at %d bytes (%s); resuming in %.2fs", digest[:19], received,
                             _short(exc), delay)
                time.sleep(delay)
        if size is not None and received != size:
            raise IntegrityError(f"blob {digest} truncated: got {received} of {size} bytes")
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            raise IntegrityError(f"blob digest mismatch: expected {digest}, got {actual}")
        return received

    # -- blobs: upload ------------------------------------------------------------------------
    def blob_size(self, repository: str, digest: str) -> int | None:
        """HEAD the blob: its size when the repository has it, else None."""
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", scope=push_scope(repository))
        response.close()
        if response.status_code == 200:
            return int(response.headers.get("Content-Length", "0"))
        if response.status_code == 404:
            return None
        self._raise_for(response, f"checking blob {digest[:19]}")
        return None

    def _start_upload(self, repository: str, digest: str, mount_from: str | None) -> tuple[str | None, bool]:
        """POST an upload; (location, mounted). Cross-repo mount when `mount_from` is given."""
        scope = push_scope(repository)
        path = f"/v2/{repository}/blobs/uploads/"
        if mount_from and mount_from != repository:
            scope += f" repository:{mount_from}:pull"
            path += "?" + urlencode({"mount": digest, "from": mount_from})
        response = self.request("POST", path, scope=scope, data=b"")
        if response.status_code == 201:
            response.close()
            return None, True
        if response.status_code != 202 or "Location" not in response.headers:
            self._raise_for(response, f"starting upload of {digest[:19]} to {self.host}/{repository}")
        location = urljoin(self.base_url + path, response.headers["Location"])
        response.close()
        return location, False

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount (no data sent). False when the registry declined."""
        location, mounted = self._start_upload(repository, digest, from_repository)
        if location is not None:
            # The registry opened an ordinary upload instead: cancel it.
            response = self.request("DELETE", location, scope=push_scope(repository))
            response.close()
        return mounted

    def upload_blob(self, repository: str, digest: str, size: int, open_data: Callable[[], BinaryIO],
                    chunk_size: int | None = None, mount_from: str | None = None,
                    progress: Callable[[int], None] | None = None, check_exists: bool = True) -> BlobUpload:
        """Make sure `repository` has the blob: skip if present, mount if possible, else upload.

        Monolithic (one PUT) by default; chunked PATCHes of `chunk_size` bytes when asked. The whole
        upload is restarted (a few times) when it fails half-way, since upload sessions are not resumable
        on every registry.
        """
        if check_exists and self.blob_size(repository, digest) is not None:
            return BlobUpload(digest, "exists")
        failures = 0
        while True:
            try:
                return self._upload_once(repository, digest, size, open_data, chunk_size, mount_from, progress)
            except RegistryError:
                failures += 1
                if failures >= 3:
                    raise
                time.sleep(BACKOFF_BASE * failures)

    def _upload_once(self, repository: str, digest: str, size: int, open_data: Callable[[], BinaryIO],
                     chunk_size: int | None, mount_from: str | None,
                     progress: Callable[[int], None] | None) -> BlobUpload:
        import requests

        location, mounted = self._start_upload(repository, digest, mount_from)
        if mounted:
            return BlobUpload(digest, "mounted")
        assert location is not None
        scope = push_scope(repository)
        try:
            with open_data() as data:
                if chunk_size:
                    offset = 0
                    while offset < size:
                        chunk = data.read(min(chunk_size, size - offset))
                        if not chunk:
                            raise IntegrityError(f"blob {digest} source ended at {offset} of {size} bytes")
                        response = self.request(
                            "PATCH", location, scope=scope, data=chunk,
                            headers={"Content-Type": "application/octet-stream",
                                     "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                                     "Content-Length": str(len(chunk))})
                        if response.status_code != 202:
                            self._raise_for(response, f"uploading chunk of {digest[:19]}")
                        location = urljoin(location, response.headers.get("Location", location))
                        response.close()
                        offset += len(chunk)
                        if progress:
                            progress(offset)
                    body: Any = b""
                else:
                    body = _ProgressReader(data, progress, size) if progress else data
                separator = "&" if "?" in location else "?"
                response = self.request(
                    "PUT", f"{location}{separator}{urlencode({'digest': digest})}", scope=scope, data=body,
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Length": str(0 if chunk_size else size)})
        except requests.exceptions.RequestException as exc:
            raise RegistryError(f"uploading blob {digest[:19]}: {_short(exc)}") from exc
        if response.status_code != 201:
            self._raise_for(response, f"uploading blob {digest[:19]} to {self.host}/{repository}")
        returned = response.headers.get("Docker-Content-Digest")
        response.close()
        if returned and returned != digest:
            raise IntegrityError(f"registry stored blob as {returned}, expected {digest}")
        return BlobUpload(digest, "uploaded")

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


class _ProgressReader:
    """A file wrapper that reports how much `requests` has read (for push progress)."""

    def __init__(self, raw: BinaryIO, progress: Callable[[int], None], size: int) -> None:
        self._raw, self._progress, self._done, self._size = raw, progress, 0, size

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._done += len(data)
        self._progress(self._done)
        return data

    def __len__(self) -> int:  # requests sends a Content-Length body, not chunked encoding
        return self._size - self._done


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _replayable(data: Any) -> bool:
    """A request can be sent again only if its body can: bytes or nothing, not a consumed stream."""
    return data is None or isinstance(data, bytes | str)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return min(max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0), MAX_RETRY_AFTER)
        except (TypeError, ValueError):
            return None


def _arrived(raw: Any) -> Iterator[bytes]:
    """The body as it arrives (read1: whatever the socket has, up to DOWNLOAD_CHUNK), so that a
    stall keeps every byte received before it and the retry's Range starts after them."""
    while True:
        chunk = raw.read1(DOWNLOAD_CHUNK, decode_content=False)
        if not chunk:
            return
        yield chunk


def _is_stall(exc: BaseException) -> bool:
    """A read that timed out (however requests and urllib3 wrapped it)."""
    import socket

    import urllib3

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, urllib3.exceptions.ReadTimeoutError | socket.timeout | TimeoutError):
            return True
        if type(current).__name__ in ("ReadTimeout", "Timeout", "ConnectTimeout"):
            return True
        args = getattr(current, "args", ())
        nested = next((a for a in args if isinstance(a, BaseException)), None)
        current = current.__cause__ or current.__context__ or nested
    return "timed out" in str(exc)


def _short(exc: BaseException | None) -> str:
    text = str(exc) if exc else "unknown error"
    match = re.search(r"\[SSL: [A-Z_]+\][^')]*|Connection refused|Connection reset by peer|timed out", text)
    return match.group(0) if match else text[:300]


_CLIENTS: dict[tuple[str, str, str], RegistryClient] = {}
_CLIENTS_LOCK = threading.Lock()


def client_for(config: EngineConfig, host: str) -> RegistryClient:
    """A shared client per (root, host): one pooled session and one token cache per registry."""
    key = (str(config.root), host, ",".join(config.insecure_registries))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = RegistryClient(config, host)
        return client


def forget_clients() -> None:
    """Drop cached clients (after login/logout the credentials change)."""
    with _CLIENTS_LOCK:
        for client in _CLIENTS.values():
            client.close()
        _CLIENTS.clear()
