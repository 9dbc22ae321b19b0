"""Image manifests and indexes (OCI image spec, Docker schema 2) and platform selection.

Parsing is strict: a schema 1 manifest or an unknown media type is refused with a message that says
what was found, and a manifest pulled by digest must hash to that digest.
"""

from __future__ import annotations

import hashlib
import json
import platform as _platform
import re
from dataclasses import dataclass, field

from engine.errors import IntegrityError, InvalidArgument, RegistryError

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_ND_TAR = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_ND_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

IMAGE_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
ACCEPT = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
CONFIG_TYPES = (DOCKER_CONFIG, OCI_CONFIG)
LAYER_TYPES = (
    DOCKER_LAYER_GZIP, DOCKER_LAYER_FOREIGN_GZIP, OCI_LAYER_TAR, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
    OCI_LAYER_ND_TAR, OCI_LAYER_ND_GZIP, OCI_LAYER_ND_ZSTD,
)

# uname -m -> GOARCH (+ variant), as containerd normalises them.
_MACHINE_TO_GO = {
    "x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "armv5tel": ("arm", "v5"), "i386": ("386", ""),
    "i686": ("386", ""), "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", ""),
    "mips64": ("mips64", ""),
}
# containerd's words for a platform specifier (platforms.Parse): GOOS and GOARCH values and their aliases.
KNOWN_OS = {"aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux", "nacl",
            "netbsd", "openbsd", "plan9", "solaris", "windows", "zos"}
_OS_ALIASES = {"macos": "darwin"}
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386", "armhf": "arm",
                 "armel": "arm"}
KNOWN_ARCH = {"386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "ppc64", "ppc64le", "loong64", "mips",
              "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc", "riscv", "riscv64", "s390", "s390x",
              "sparc", "sparc64", "wasm"}
_COMPONENT = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def normalised(self) -> Platform:
        arch = _ARCH_ALIASES.get(self.architecture.lower(), self.architecture.lower())
        variant = self.variant.lower()
        if arch == "arm64" and variant in ("", "8"):
            variant = "v8"
        elif arch == "arm" and variant == "":
            variant = "v7"
        elif arch == "arm" and variant in ("5", "6", "7", "8"):
            variant = "v" + variant
        elif arch == "amd64" and variant == "v1":
            variant = ""
        return Platform(self.os.lower(), arch, variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def host_platform() -> Platform:
    arch, variant = _MACHINE_TO_GO.get(_platform.machine(), (_platform.machine(), ""))
    return Platform("linux", arch, variant)


def parse_platform(text: str) -> Platform:
    """`linux/arm64/v8`, `linux/amd64`, `linux` or `arm64`, read as containerd's platforms.Parse reads
    them and refused in its words: an OS alone means that OS on the host's architecture, a known
    architecture alone means linux on it. Matching normalises further (`Platform.normalised`)."""
    parts = text.split("/")
    for part in parts:
        if not _COMPONENT.fullmatch(part):
            raise InvalidArgument(f'"{part}": is an invalid component of "{text}": platform specifier component '
                                  'must match "^[A-Za-z0-9_-]+$": invalid argument')
    if len(parts) > 3:
        raise InvalidArgument(f'invalid platform "{text}": cannot parse platform specifier: invalid argument')
    first = parts[0].lower()
    os_name = _OS_ALIASES.get(first, first)
    if len(parts) > 1:
        return Platform(os_name, parts[1].lower(), parts[2].lower() if len(parts) == 3 else "")
    if os_name in KNOWN_OS:
        host = host_platform()
        return Platform(os_name, host.architecture, host.variant)
    if _ARCH_ALIASES.get(first, first) in KNOWN_ARCH:
        return Platform("linux", first)
    raise InvalidArgument(f'"{text}": unknown operating system or architecture: invalid argument')


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_json(cls, data: object, where: str) -> Descriptor:
        if not isinstance(data, dict):
            raise IntegrityError(f"malformed {where}: descriptor is not an object")
        digest, size, media_type = data.get("digest"), data.get("size"), data.get("mediaType", "")
        if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
            raise IntegrityError(f"malformed {where}: unsupported or missing digest {digest!r}")
        try:
            int(digest[7:], 16)
        except ValueError as exc:
            raise IntegrityError(f"malformed {where}: digest {digest!r} is not hex") from exc
        if not isinstance(size, int) or size < 0:
            raise IntegrityError(f"malformed {where}: bad size {size!r}")
        plat = data.get("platform")
        platform = None
        if isinstance(plat, dict):
            platform = Platform(str(plat.get("os", "")), str(plat.get("architecture", "")),
                                str(plat.get("variant", "") or ""))
        return cls(str(media_type), digest, size, platform, dict(data.get("annotations") or {}))


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    digest: str
    raw: bytes = field(repr=False, compare=False)


@dataclass(frozen=True)
class ManifestIndex:
    media_type: str
    manifests: tuple[Descriptor, ...]
    digest: str
    raw: bytes = field(repr=False, compare=False)


def manifest_digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def verify_digest(body: bytes, expected: str) -> None:
    """A manifest fetched by digest must hash to it (else a registry could swap content)."""
    actual = manifest_digest(body)
    if actual != expected:
        raise IntegrityError(f"manifest digest mismatch: asked for {expected}, the registry sent {actual}")


def _media_type_of(body_json: dict, content_type: str) -> str:
    declared = body_json.get("mediaType")
    if isinstance(declared, str) and declared:
        if content_type in ACCEPT and declared != content_type:
            raise IntegrityError(f"manifest mediaType {declared} does not match Content-Type {content_type}")
        return declared
    if content_type and content_type not in ("application/json", "text/plain", "application/octet-stream"):
        return content_type
    if body_json.get("schemaVersion") == 1 or "fsLayers" in body_json:
        return DOCKER_SCHEMA1
    if "manifests" in body_json:
        return OCI_INDEX
    if "config" in body_json and "layers" in body_json:
        return OCI_MANIFEST
    return content_type or "unknown"


def parse_manifest(body: bytes, content_type: str = "") -> ImageManifest | ManifestIndex:
    """Parse a manifest or index; refuse schema 1, unknown types and malformed documents."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise IntegrityError(f"malformed manifest: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise IntegrityError("malformed manifest: not a JSON object")
    media_type = _media_type_of(data, content_type)
    digest = manifest_digest(body)
    if media_type in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED) or data.get("schemaVersion") == 1:
        raise RegistryError(
            f"unsupported manifest format {media_type} (Docker Image manifest version 2, schema 1): "
            "schema 1 images are deprecated and not supported; rebuild or re-push the image with a current tool"
        )
    if data.get("schemaVersion") != 2:
        raise IntegrityError(f"malformed manifest: schemaVersion {data.get('schemaVersion')!r}, expected 2")
    if media_type in INDEXES:
        entries = data.get("manifests")
        if not isinstance(entries, list):
            raise IntegrityError("malformed index: 'manifests' is not a list")
        return ManifestIndex(media_type, tuple(Descriptor.from_json(e, "index") for e in entries), digest, body)
    if media_type in IMAGE_MANIFESTS:
        layers = data.get("layers")
        if not isinstance(layers, list):
            raise IntegrityError("malformed manifest: 'layers' is not a list")
        config = Descriptor.from_json(data.get("config"), "manifest config")
        if config.media_type not in CONFIG_TYPES:
            raise RegistryError(
                f"unsupported config media type {config.media_type!r}: this is not a container image "
                "(an OCI artifact?)")
        parsed = tuple(Descriptor.from_json(layer, "manifest layer") for layer in layers)
        for layer in parsed:
            if layer.media_type not in LAYER_TYPES:
                raise RegistryError(f"unsupported layer media type {layer.media_type!r}")
        return ImageManifest(media_type, config, parsed, digest, body)
    raise RegistryError(f"unsupported manifest media type {media_type!r}")


def _arm_rank(variant: str) -> int:
    return int(variant[1:]) if variant.startswith("v") and variant[1:].isdigit() else 0


def select_platform(index: ManifestIndex, wanted: Platform) -> Descriptor:
    """Pick the manifest for `wanted`: an exact match, else (arm) the best lower variant, as containerd."""
    want = wanted.normalised()
    candidates = []
    for entry in index.manifests:
        if entry.platform is None or entry.media_type not in IMAGE_MANIFESTS + INDEXES and entry.media_type:
            continue
        have = entry.platform.normalised()
        if have.os != want.os or have.architecture != want.architecture:
            continue
        if have.variant == want.variant or (not wanted.variant and not entry.platform.variant):
            candidates.append((100, entry))
        elif want.architecture == "arm" and _arm_rank(have.variant) <= _arm_rank(want.variant):
            candidates.append((_arm_rank(have.variant), entry))
        elif not wanted.variant and want.architecture != "arm":
            candidates.append((1, entry))
    if not candidates:
        available = ", ".join(str(e.platform) for e in index.manifests if e.platform) or "none"
        raise NotFoundPlatform(f"no matching manifest for {want} in the manifest list entries "
                               f"(available: {available})")
    candidates.sort(key=lambda c: -c[0])
    return candidates[0][1]


class NotFoundPlatform(RegistryError):
    """The index has no manifest for the requested platform."""


def config_platform(config: dict) -> Platform:
    return Platform(str(config.get("os", "")), str(config.get("architecture", "")), str(config.get("variant", "")))
