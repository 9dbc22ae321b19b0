"""Image references, parsed and normalised exactly as Docker does (distribution/reference).

`busybox` means `docker.io/library/busybox:latest`; a first component with a `.` or `:` or equal to
`localhost` is a registry host. Errors name the problem so a user can fix the reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}"

DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
PATH_COMPONENT_RE = re.compile(rf"^{_PATH_COMPONENT}$")
TAG_RE = re.compile(rf"^{_TAG}$")
DIGEST_RE = re.compile(rf"^{_DIGEST}$")
_ANCHORED_ID = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    """A fully qualified reference: `domain/path[:tag][@digest]`."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """`docker.io/library/busybox`: the repository with its registry."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The short form people type: `busybox`, `user/repo`, `host:5000/ns/repo`."""
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            if path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in path[len(OFFICIAL_REPO_PREFIX) :]:
                return path[len(OFFICIAL_REPO_PREFIX) :]
            return path
        return self.name

    @property
    def tag_or_latest(self) -> str:
        return self.tag or DEFAULT_TAG

    @property
    def registry_host(self) -> str:
        """Where to connect: Docker Hub's API lives on registry-1.docker.io."""
        return "registry-1.docker.io" if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def manifest_ref(self) -> str:
        """What to ask the registry for: the digest when known, else the tag."""
        return self.digest or self.tag_or_latest

    def with_tag(self, tag: str | None) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, digest)

    def familiar(self) -> str:
        """`busybox:latest`, `busybox@sha256:...`: the form used in repo_tags and output."""
        out = self.familiar_name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def __str__(self) -> str:
        out = self.name
        if self.tag or not self.digest:
            out += f":{self.tag_or_latest}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _split_domain(name: str) -> tuple[str, str]:
    """Docker's splitDockerDomain: decide whether the first component is a registry host."""
    first, sep, rest = name.partition("/")
    if not sep or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def validate_digest(digest: str) -> str:
    if not DIGEST_RE.match(digest):
        raise InvalidArgument(f"invalid reference format: invalid checksum digest format: {digest!r}")
    algorithm, _, hexpart = digest.partition(":")
    if algorithm == "sha256" and len(hexpart) != 64:
        raise InvalidArgument(
            f"invalid reference format: invalid checksum digest length: sha256 needs 64 hex digits, got {len(hexpart)}"
        )
    if algorithm == "sha512" and len(hexpart) != 128:
        raise InvalidArgument("invalid reference format: invalid checksum digest length for sha512")
    if algorithm not in ("sha256", "sha512"):
        raise InvalidArgument(f"invalid reference format: unsupported digest algorithm {algorithm!r}")
    if hexpart != hexpart.lower():
        raise InvalidArgument("invalid reference format: digest hex must be lowercase")
    return digest


def parse_reference(s: str) -> Reference:
    """Parse and normalise `s`; raise InvalidArgument naming what is wrong."""
    if not isinstance(s, str) or s == "":
        raise InvalidArgument("invalid reference format: repository name must have at least one component")
    if s != s.strip() or any(c.isspace() for c in s):
        raise InvalidArgument(f"invalid reference format: {s!r} contains whitespace")
    if _ANCHORED_ID.match(s):
        raise InvalidArgument(
            f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        )
    remainder, at, digest = s.partition("@")
    if at:
        validate_digest(digest)
    else:
        digest = ""
    # A tag is the part after the last ':' provided no '/' follows it (else it is a port).
    name, tag = remainder, ""
    colon = remainder.rfind(":")
    if colon > remainder.rfind("/"):
        name, tag = remainder[:colon], remainder[colon + 1 :]
        if not TAG_RE.match(tag):
            raise InvalidArgument(
                f"invalid reference format: invalid tag {tag!r} (letters, digits, '_', '.', '-'; "
                "not starting with '.' or '-'; at most 128 characters)"
            )
    if name == "":
        raise InvalidArgument("invalid reference format: repository name must have at least one component")
    domain, path = _split_domain(name)
    if not DOMAIN_RE.match(domain):
        raise InvalidArgument(f"invalid reference format: invalid registry host {domain!r}")
    if path == "" or path.endswith("/"):
        raise InvalidArgument("invalid reference format: repository name must have at least one component")
    for component in path.split("/"):
        if component == "":
            raise InvalidArgument(f"invalid reference format: empty path component in {name!r}")
        if not PATH_COMPONENT_RE.match(component):
            if PATH_COMPONENT_RE.match(component.lower()):
                raise InvalidArgument(
                    f"invalid reference format: repository name ({path}) must be lowercase"
                )
            raise InvalidArgument(
                f"invalid reference format: invalid repository name component {component!r} "
                "(lowercase letters, digits and the separators '.', '_', '__', '-' between them)"
            )
    if len(f"{domain}/{path}") > NAME_TOTAL_LENGTH_MAX:
        raise InvalidArgument(
            f"invalid reference format: repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    return Reference(domain=domain, path=path, tag=tag or None, digest=digest or None)


def is_digest(s: str) -> bool:
    return bool(DIGEST_RE.match(s))
