"""Image reference parsing and the loopback rule that decides plain HTTP."""

from __future__ import annotations

import pytest

from mlsec_actions.errors import UsageError
from mlsec_actions.oci.reference import is_loopback, parse

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "host", "repo", "tag", "digest"), [
    ("ghcr.io/owner/app:v1", "ghcr.io", "owner/app", "v1", ""),
    (f"127.0.0.1:5000/app@{DIGEST}", "127.0.0.1:5000", "app", "", DIGEST),
    (f"localhost/a/b/c:1.0@{DIGEST}", "localhost", "a/b/c", "1.0", DIGEST),
    ("[::1]:5000/app:x", "[::1]:5000", "app", "x", ""),
    ("registry.example.com/a.b_c--d/e", "registry.example.com", "a.b_c--d/e", "", ""),
])
def test_valid_references(text: str, host: str, repo: str, tag: str, digest: str) -> None:
    ref = parse(text)
    assert (ref.host, ref.repository, ref.tag, ref.digest) == (host, repo, tag, digest)
    assert str(ref) == text
    assert ref.at(DIGEST).tag == "" and str(ref.at(DIGEST)) == f"{host}/{repo}@{DIGEST}"


@pytest.mark.parametrize("text", [
    "app:v1",  # no registry host: no docker.io guess
    "owner/app",  # 'owner' is not a host
    "ghcr.io/Owner/app",  # upper-case repository
    "ghcr.io/app@sha256:abc",  # short digest
    f"ghcr.io/app@{DIGEST.upper()}",
    "ghcr.io/app@md5:" + "0" * 32,
    "ghcr.io/app:-bad",
    "ghcr.io/app:" + "t" * 129,
    "ghcr.io/app\n::error::x",
    "ghcr.io/../app",
    "ghcr.io/",
    "",
])
def test_invalid_references_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1:5000", True), ("127.1.2.3", True), ("localhost:80", True), ("[::1]:5000", True), ("::1", True),
    ("128.0.0.1", False), ("ghcr.io", False), ("127.0.0.1.nip.io", False), ("10.0.0.1:5000", False),
    ("localhost.evil.com", False), ("[::2]:5000", False),
])
def test_only_loopback_hosts_get_plain_http(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


HOST_HINT = "name the registry host (HOST[:PORT]/REPO), e.g. ghcr.io/owner/app or 127.0.0.1:5000/app"
REPO_HINT = "is not a valid repository name (lower-case letters, digits and . _ - separators)"


@pytest.mark.parametrize(("text", "problem"), [
    ("ghcr.io/app@sha256:abc", "the digest must be sha256: and 64 lower-case hex digits"),
    ("app:v1", HOST_HINT),
    ("bad_host.io/app", HOST_HINT),  # a slash and a dot, but not a host name
    ("-ghcr.io/app", HOST_HINT),
    ("ghcr.io/app:-bad", "'-bad' is not a valid tag"),
    ("ghcr.io/a/b:1/c", f"'a/b:1/c' {REPO_HINT}"),  # a ':' before the last '/' is not a tag
    ("ghcr.io/app:a:b", f"'app:a' {REPO_HINT}"),  # the tag is after the last ':'
    ("ghcr.io/" + "a" * 256, f"{'a' * 256!r} {REPO_HINT}"),
])
def test_a_refused_reference_says_why(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as e:
        parse(text)
    assert str(e.value) == f"image reference {text!r}: {problem}"


def test_a_repository_of_255_characters_is_accepted() -> None:
    assert parse("ghcr.io/" + "a" * 255).repository == "a" * 255


def test_a_long_or_hostile_reference_is_shown_bounded_on_one_line() -> None:
    text = "x" * 1000 + "\n::error::forged"
    with pytest.raises(UsageError) as e:
        parse(text)
    message = str(e.value)
    assert message == f"image reference {repr(text)[:299]}\u2026: {HOST_HINT}"  # 300 characters at most
    with pytest.raises(UsageError) as e:
        parse("ghcr.io/app\n::error::x")
    assert str(e.value).startswith(r"image reference 'ghcr.io/app\n:\:error:\:x'")
