"""The build and image-scan option checks that guard the network: plain HTTP only to a loopback registry, and
references, tags and build arguments of safe shape (each refusal is exit 2 before anything runs)."""

from __future__ import annotations

import argparse

import pytest

from mlsec_actions.stages.build import build_arg, is_dockerfile, local_tag, pinned, push_target
from mlsec_actions.stages.image_scan import registry_target


@pytest.mark.parametrize(("value", "expected"), [
    ("http://127.0.0.1:5000/app:1", ("127.0.0.1:5000/app:1", True)),
    ("http://127.45.6.7/team/app", ("127.45.6.7/team/app", True)),
    ("http://localhost:5000/app:v2", ("localhost:5000/app:v2", True)),
    ("http://[::1]:5000/app:1", ("[::1]:5000/app:1", True)),
    ("ghcr.io/owner/app:1.2", ("ghcr.io/owner/app:1.2", False)),
    ("docker://registry.example.com:443/a/b", ("registry.example.com:443/a/b", False)),
    ("https://registry.example.com/a", ("registry.example.com/a", False)),
])
def test_accepted_push_targets(value: str, expected: tuple[str, bool]) -> None:
    assert push_target(value) == expected


@pytest.mark.parametrize("value", ["http://10.0.0.1/app", "http://128.0.0.1/app", "http://127.0.0.1.evil.io/app",
                                   "http://localhost.evil.io/app", "http://[::2]/app", "http://0.0.0.0:5000/app",
                                   "app:1", "ghcr.io", "ghcr.io/a b", "ghcr.io/a\n:1", "-x/a", "ghcr.io/UPPER"])
def test_refused_push_targets(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        push_target(value)


def test_registry_targets_follow_the_same_rule() -> None:
    assert registry_target("http://127.0.0.1:5000/app@sha256:" + "a" * 64)[1] is True
    with pytest.raises(argparse.ArgumentTypeError, match="loopback"):
        registry_target("http://192.168.0.2:5000/app:1")
    with pytest.raises(argparse.ArgumentTypeError):
        registry_target("ghcr.io/app@sha256:short")


def test_tags_build_args_and_names() -> None:
    assert local_tag("service:1") == "localhost/service:1" and local_tag("team/svc") == "team/svc"
    for bad in ("Service", "svc:", "../x", "a b"):
        with pytest.raises(argparse.ArgumentTypeError):
            local_tag(bad)
    assert build_arg("VERSION=1.2") == "VERSION=1.2"
    for bad in ("=x", "1A=x", "NOEQUALS", "A=line\nbreak"):
        with pytest.raises(argparse.ArgumentTypeError):
            build_arg(bad)
    assert pinned("127.0.0.1:5000/team/app:v1", "sha256:ab") == "127.0.0.1:5000/team/app@sha256:ab"
    assert pinned("ghcr.io/o/app", "sha256:ab") == "ghcr.io/o/app@sha256:ab"
    assert [is_dockerfile(n) for n in ("Dockerfile", "containerfile", "Dockerfile.dev", "api.Dockerfile",
                                       "Dockerfiles", "docker-compose.yml")] == [True, True, True, True, False, False]
