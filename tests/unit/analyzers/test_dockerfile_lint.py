"""The build stage's Dockerfile checks: each fires on its case, on the right line, and not on the near misses
(a check that always or never fires fails here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsec_actions.analyzers import dockerfile_lint as lint
from mlsec_actions.analyzers.dockerfile import parse

REPO = Path(__file__).resolve().parents[3]


def _hits(text: str) -> list[tuple[str, int]]:
    return [(f.rule.id, f.location.start_line or 0) for f in lint.lint("Dockerfile", parse(text.encode()))]


def _rules(text: str) -> set[str]:
    return {r for r, _ in _hits(text)}


OK_USER = "USER 65532\n"


@pytest.mark.parametrize("base", ["python", "python:latest", "registry.example:5000/team/app",
                                  "registry.example:5000/team/app:latest", "${BASE}"])
def test_latest_or_untagged_base_is_flagged(base: str) -> None:
    text = f"ARG BASE=alpine\nFROM {base}\n{OK_USER}"
    assert _hits(text) == [("dockerfile/latest-base", 2)]


@pytest.mark.parametrize("base", ["python:3.12-slim", "scratch", "python@sha256:" + "a" * 64,
                                  "registry.example:5000/team/app:1.0", "$UNSET", "--platform=linux/amd64 alpine:3.20"])
def test_pinned_scratch_or_unknown_base_is_not(base: str) -> None:
    assert "dockerfile/latest-base" not in _rules(f"FROM {base}\n{OK_USER}")


def test_an_earlier_stage_is_not_an_image() -> None:
    text = f"FROM golang:1.22 AS build\nRUN go build\nFROM build\n{OK_USER}"
    assert _rules(text) == set()
    assert _hits("FROM golang:1.22 AS build\nFROM other\nUSER 1\n") == [("dockerfile/latest-base", 2)]


def test_no_user_in_the_final_stage() -> None:
    assert _hits("FROM a:1\nUSER 1\nFROM b:1\nRUN x\n") == [("dockerfile/no-user", 3)]
    assert _rules("FROM a:1\nFROM b:1\nUSER app\n") == set()


@pytest.mark.parametrize("user", ["root", "0", "0:0", "root:root"])
def test_last_user_root(user: str) -> None:
    assert _hits(f"FROM a:1\nUSER app\nUSER {user}\n") == [("dockerfile/root-user", 3)]


def test_root_then_back_to_a_user_is_fine() -> None:
    assert _rules("FROM a:1\nUSER root\nRUN x\nUSER 10001\n") == set()
    assert _rules("FROM a:1\nUSER rooted\n") == set()


@pytest.mark.parametrize("src", ["https://example.com/x.tgz", "http://example.com/x", "ftp://example.com/x",
                                 "git@github.com:o/r.git", "https://github.com/o/r.git#v1"])
def test_add_of_a_url(src: str) -> None:
    assert _hits(f"FROM a:1\nADD {src} /opt/\n{OK_USER}") == [("dockerfile/add-url", 2)]


def test_add_with_checksum_or_local_file_is_not() -> None:
    text = f"FROM a:1\nADD --checksum=sha256:{'a' * 64} https://example.com/x /opt/\nADD app.tgz /opt/\n" \
           f'ADD ["https.txt", "/opt/"]\n{OK_USER}'
    assert _rules(text) == set()
    assert _hits(f'FROM a:1\nADD ["https://example.com/x", "/opt/"]\n{OK_USER}') == [("dockerfile/add-url", 2)]


@pytest.mark.parametrize("line", ["ENV DB_PASSWORD=hunter2", "ENV GITHUB_TOKEN hunter2-and-more",
                                  "ARG NPM_TOKEN", "ARG AWS_SECRET_ACCESS_KEY=", 'ENV A=1 API_KEY="x y"',
                                  "ENV INNOCENT=ghp_" + "a" * 36, "ARG auth"])
def test_secret_in_arg_or_env(line: str) -> None:
    assert _hits(f"FROM a:1\n{line}\n{OK_USER}") == [("dockerfile/secret-arg-env", 2)]


@pytest.mark.parametrize("line", ["ENV API_KEY_FILE=/run/secrets/key", "ENV TOKEN_URL=https://x", "ENV PATH=/bin",
                                  "ENV GITHUB_TOKEN=$GITHUB_TOKEN", "ENV PASSWORD_DIR /run", "ARG VERSION=1",
                                  "ENV AUTHOR_NAME=me"])
def test_not_a_secret(line: str) -> None:
    assert "dockerfile/secret-arg-env" not in _rules(f"FROM a:1\n{line}\n{OK_USER}")


def test_a_secret_value_never_reaches_the_message() -> None:
    token = "ghp_" + "b" * 36
    found = lint.lint("Dockerfile", parse(f"FROM a:1\nENV X={token}\nENV PASSWORD=hunter2\nUSER 1\n".encode()))
    assert len(found) == 2 and all(token not in f.message and "hunter2" not in f.message for f in found)


@pytest.mark.parametrize("run", ["curl -fsSL https://x/i.sh | sh", "wget -qO- https://x | bash",
                                 "curl https://x | sudo bash -s --", "curl -s https://x | /bin/sh",
                                 'sh -c "$(curl -fsSL https://x)"', "bash <(curl -s https://x)",
                                 "curl https://x | python3 -", "curl https://x | FOO=1 sh",
                                 '["sh", "-c", "curl https://x | sh"]'])
def test_download_piped_into_a_shell(run: str) -> None:
    assert _hits(f"FROM a:1\nRUN {run}\n{OK_USER}") == [("dockerfile/curl-pipe-shell", 2)]


def test_download_to_a_file_then_verified_is_not() -> None:
    text = ("FROM a:1\nRUN curl -fsSLo i.sh https://x && echo 'abc  i.sh' | sha256sum -c && sh i.sh\n"
            "RUN echo curl | tee x\nRUN cat x | sh\n" + OK_USER)
    assert _rules(text) == set()


def test_heredoc_and_continuation_bodies_are_checked() -> None:
    assert _hits(f"FROM a:1\nRUN <<EOF\nset -e\ncurl https://x | sh\nEOF\n{OK_USER}") == \
        [("dockerfile/curl-pipe-shell", 2)]
    assert _hits(f"FROM a:1\nRUN curl https://x \\\n  # fetch\n  | bash\n{OK_USER}") == \
        [("dockerfile/curl-pipe-shell", 2)]


def test_limits_hit_are_findings() -> None:
    assert ("dockerfile/not-linted", 2) in _hits("FROM a:1\nRUN <<EOF\ncurl x | sh\n")


def test_every_rule_has_a_check_and_the_bad_example_trips_them() -> None:
    text = (REPO / "examples" / "service" / "bad" / "Dockerfile").read_bytes()
    found = {f.rule.id for f in lint.lint("bad/Dockerfile", parse(text))}
    assert found == {"dockerfile/latest-base", "dockerfile/no-user", "dockerfile/add-url",
                     "dockerfile/secret-arg-env", "dockerfile/curl-pipe-shell"}
    good = (REPO / "examples" / "service" / "Containerfile").read_bytes()
    assert lint.lint("Containerfile", parse(good)) == []
    assert len({r.rule.id for r in lint.RULES}) == len(lint.RULES) == 7
