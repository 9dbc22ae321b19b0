"""Reference parsing follows Docker's normalisation and names the problem when it refuses."""

from __future__ import annotations

import pytest

from engine.errors import InvalidArgument
from engine.image.reference import parse_reference

D = "sha256:" + "a" * 64

VALID = [
    # input, canonical str, domain, path, tag, digest, familiar_name
    ("busybox", "docker.io/library/busybox:latest", "docker.io", "library/busybox", None, None, "busybox"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36", None, "busybox"),
    ("library/busybox", "docker.io/library/busybox:latest", "docker.io", "library/busybox", None, None, "busybox"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "docker.io", "library/busybox", None, None, "busybox"),
    ("index.docker.io/busybox", "docker.io/library/busybox:latest", "docker.io", "library/busybox", None, None, "busybox"),
    ("user/repo", "docker.io/user/repo:latest", "docker.io", "user/repo", None, None, "user/repo"),
    ("user/repo:v1_x-2.a", "docker.io/user/repo:v1_x-2.a", "docker.io", "user/repo", "v1_x-2.a", None, "user/repo"),
    ("a/b/c", "docker.io/a/b/c:latest", "docker.io", "a/b/c", None, None, "a/b/c"),
    ("host:5000/ns/repo:tag", "host:5000/ns/repo:tag", "host:5000", "ns/repo", "tag", None, "host:5000/ns/repo"),
    ("host:5000/repo", "host:5000/repo:latest", "host:5000", "repo", None, None, "host:5000/repo"),
    ("127.0.0.1:5000/library/busybox", "127.0.0.1:5000/library/busybox:latest", "127.0.0.1:5000", "library/busybox", None, None, "127.0.0.1:5000/library/busybox"),
    ("localhost/repo", "localhost/repo:latest", "localhost", "repo", None, None, "localhost/repo"),
    ("localhost:5000", "docker.io/library/localhost:5000", "docker.io", "library/localhost", "5000", None, "localhost"),
    ("example.com/a__b.c-d/e", "example.com/a__b.c-d/e:latest", "example.com", "a__b.c-d/e", None, None, "example.com/a__b.c-d/e"),
    ("Registry.Example.COM/repo", "Registry.Example.COM/repo:latest", "Registry.Example.COM", "repo", None, None, "Registry.Example.COM/repo"),
    ("[::1]:5000/repo", "[::1]:5000/repo:latest", "[::1]:5000", "repo", None, None, "[::1]:5000/repo"),
    (f"repo@{D}", f"docker.io/library/repo@{D}", "docker.io", "library/repo", None, D, "repo"),
    (f"repo:tag@{D}", f"docker.io/library/repo:tag@{D}", "docker.io", "library/repo", "tag", D, "repo"),
    (f"host:5000/ns/repo:tag@{D}", f"host:5000/ns/repo:tag@{D}", "host:5000", "ns/repo", "tag", D, "host:5000/ns/repo"),
    ("a" * 200 + "/b", "docker.io/" + "a" * 200 + "/b:latest", "docker.io", "a" * 200 + "/b", None, None, "a" * 200 + "/b"),
    ("repo:" + "t" * 128, "docker.io/library/repo:" + "t" * 128, "docker.io", "library/repo", "t" * 128, None, "repo"),
]


@pytest.mark.parametrize(("text", "canonical", "domain", "path", "tag", "digest", "familiar"), VALID)
def test_valid_references_normalise_like_docker(text, canonical, domain, path, tag, digest, familiar) -> None:
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == canonical
    assert ref.familiar_name == familiar
    assert ref.name == f"{domain}/{path}"
    assert ref.tag_or_latest == (tag or "latest")
    # Canonical output parses back to the same reference.
    assert str(parse_reference(str(ref))) == canonical


INVALID = [
    # input, words the message must contain
    ("", "at least one component"),
    ("Busybox", "must be lowercase"),
    ("user/Repo:tag", "must be lowercase"),
    ("docker.io/Library/busybox", "must be lowercase"),
    ("repo!", "invalid repository name component 'repo!'"),
    ("-repo", "invalid repository name component '-repo'"),
    ("repo_", "invalid repository name component 'repo_'"),
    ("a///b", "empty path component"),
    ("repo/", "at least one component"),
    (":tag", "at least one component"),
    ("repo:-bad", "invalid tag '-bad'"),
    ("repo:" + "t" * 129, "invalid tag"),
    ("repo:ta/g", "invalid registry host 'repo:ta'"),
    ("repo@sha256:" + "a" * 40, "digest length"),
    ("repo@sha256:abc", "digest format"),
    ("repo@sha256:" + "A" * 64, "lowercase"),
    ("repo@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("repo@sha256", "digest format"),
    ("repo@", "digest format"),
    ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
    ("a" * 250 + "/b" * 3, "must not be more than 255 characters"),
    ("bad_host:5000/repo", "invalid registry host 'bad_host:5000'"),
    ("host:port/repo", "invalid registry host 'host:port'"),
    ("repo name", "whitespace"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid_references_are_refused_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        parse_reference(text)
    assert message in str(excinfo.value)
    assert str(excinfo.value).startswith(("invalid reference format", "invalid repository name"))


def test_familiar_forms() -> None:
    assert parse_reference("busybox").familiar() == "busybox"
    assert parse_reference("busybox:1").familiar() == "busybox:1"
    assert parse_reference(f"127.0.0.1:5000/x@{D}").familiar() == f"127.0.0.1:5000/x@{D}"
    assert parse_reference("busybox").registry_host == "registry-1.docker.io"
    assert parse_reference("busybox").manifest_ref == "latest"
    assert parse_reference(f"busybox:1@{D}").manifest_ref == D
