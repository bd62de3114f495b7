"""The audit's org/topic query (src/mlsec_actions/audit_query.py, docs/audit.md#query) against a loopback stand-in
for GitHub's REST API (tests/github_api.py: GitHub itself cannot be reached from the tests; the stand-in serves the
documented response shapes). Everything it answers is treated as hostile: bad names are refused one by one, an
answer that cannot be read whole is exit 2 with one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsec_actions import audit, audit_query, cli
from mlsec_actions.errors import UsageError
from tests import github_api
from tests.github_api import TOKEN, ApiServer, repo


@pytest.fixture
def api() -> Iterator[ApiServer]:
    yield from github_api.serve()


def _resolve(api: ApiServer, orgs: str = "", topics: str = "", token: str = TOKEN) -> audit_query.Found:
    query = audit_query.parse_query(orgs, topics)
    assert query is not None
    return audit_query.resolve(query, api.base, token)


HOSTILE = ["acme/..", "acme/$(id)", "::error::x/y", "acme/" + "x" * 101, "acme/x@main", "acme/a b", "acme",
           "acme/x\n::warning::y", 42, None]


def test_an_org_is_listed_page_by_page_and_hostile_names_are_refused_one_by_one(api: ApiServer) -> None:
    many = [repo(f"acme/r{i:03}") for i in range(230)]
    odd = [repo("acme/old", archived=True), repo("acme/copy", fork=True), repo("acme/off", disabled=True),
           repo("acme/weird", archived="yes"), repo("evil/intruder"), repo("acme/Dup"), repo("acme/dup"),
           *[{**repo("acme/placeholder"), "full_name": n} for n in HOSTILE], "not an object"]
    api.repos["acme"] = [*odd[:5], *many, *odd[5:]]
    found = _resolve(api, "acme")
    assert [t.repository for t in found.targets] == ["acme/Dup", *(f"acme/r{i:03}" for i in range(230))]
    assert [r["query"].rsplit("page=", 1)[1] for r in api.requests] == ["1", "2", "3"]
    assert {r["authorization"] for r in api.requests} == {f"Bearer {TOKEN}"}
    assert {r["accept"] for r in api.requests} == {"application/vnd.github+json"}
    assert "type=all" in api.requests[0]["query"] and "per_page=100" in api.requests[0]["query"]
    notes = "\n".join(found.notes)
    for line in ("acme/old: skipped (archived)", "acme/copy: skipped (a fork)", "acme/off: skipped (disabled)",
                 "acme/weird: refused, 'archived' is not true or false",
                 "evil/intruder: refused, the query asked for the repositories of acme",
                 "acme/dup: refused, it shares the results name acme--dup with acme/Dup",
                 "an answer's entry that is not a repository object: refused"):
        assert line in notes
    assert len(found.notes) == 7 + len(HOSTILE)
    assert notes.count("refused, not owner/name by GitHub's rules") == len(HOSTILE)
    assert "::error::" not in notes and "::warning::" not in notes and "$(id)" in notes  # named, defused
    assert all("\n" not in n for n in found.notes)


def test_a_topic_is_searched_within_the_org_or_everywhere(api: ApiServer) -> None:
    api.repos["acme"] = [repo("acme/a", topics=("ml",)), repo("acme/b"), repo("acme/c", topics=("ml", "x")),
                         repo("acme/f", topics=("ml",), fork=True)]
    api.repos["other"] = [repo("other/d", topics=("ml",)), repo("other/e", topics=("llm",))]
    assert [t.repository for t in _resolve(api, "acme", "ml").targets] == ["acme/a", "acme/c"]
    assert api.requests[-1]["path"] == "/search/repositories"
    assert "q=org%3Aacme+topic%3Aml" in api.requests[-1]["query"]
    assert [t.repository for t in _resolve(api, "", "ml llm").targets] == ["acme/a", "acme/c", "other/d", "other/e"]
    both = _resolve(api, "acme, other", "ml")  # one search per (org, topic) pair, the union kept once
    assert [t.repository for t in both.targets] == ["acme/a", "acme/c", "other/d"] and len(api.requests) == 5


def test_a_search_answer_without_the_topic_or_of_another_org_is_refused(api: ApiServer) -> None:
    items = [repo("acme/a", topics=("ml",)), repo("acme/b", topics=("web",)), repo("evil/c", topics=("ml",))]
    api.answer["/search/repositories"] = (200, {}, json.dumps(
        {"total_count": 3, "incomplete_results": False, "items": items}).encode())
    found = _resolve(api, "acme", "ml")
    assert [t.repository for t in found.targets] == ["acme/a"]
    assert found.notes == ("acme/b: refused, the search answered it but it does not carry the topic ml",
                           "evil/c: refused, the query asked for the repositories of acme")


RATE = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1800000000"}


@pytest.mark.parametrize(("path", "answer", "problem"), [
    ("/orgs/acme/repos", (500, {}, b"oops"), "answered HTTP 500"),
    ("/orgs/acme/repos", (502, {}, b""), "answered HTTP 502"),
    ("/orgs/acme/repos", (403, RATE, b'{"message": "API rate limit exceeded"}'),
     "HTTP 403, the API's rate limit (resets at 08:00 UTC)"),
    ("/orgs/acme/repos", (429, {"Retry-After": "60"}, b"{}"), "HTTP 429, the API's rate limit (retry after 60 s)"),
    ("/orgs/acme/repos", (403, {}, b'{"message": "Resource not accessible"}'), "answered HTTP 403"),
    ("/orgs/acme/repos", (200, {}, b"<html>login</html>"), "a body that is not JSON"),
    ("/orgs/acme/repos", (200, {}, b"\xff\xfe"), "a body that is not JSON"),
    ("/orgs/acme/repos", (200, {}, b"[" * 100_000), "a body that is not JSON"),
    ("/orgs/acme/repos", (200, {}, b'{"items": []}'), "JSON that is not a list of repositories"),
    ("/orgs/acme/repos", (200, {}, json.dumps([repo(f"acme/r{i}") for i in range(101)]).encode()),
     "page 1 holds 101 entries"),
    ("/orgs/acme/repos", (301, {"Location": "https://evil.example/steal"}, b""),
     "a redirect to evil.example: refused"),
    ("/search/repositories", (200, {}, b'{"total_count": 1, "items": []}'), "not a search result"),
    ("/search/repositories", (200, {}, b'{"total_count": 1, "incomplete_results": true, "items": []}'),
     "the search results are incomplete"),
    ("/search/repositories", (200, {}, b'{"total_count": 1001, "incomplete_results": false, "items": []}'),
     "1001 repositories match, and GitHub's search returns at most 1000"),
    ("/search/repositories", (422, {}, b'{"message": "Validation Failed"}'), "HTTP 422 (the query was refused)"),
])
def test_an_answer_that_cannot_be_read_whole_is_one_line_and_exit_2(
        api: ApiServer, path: str, answer: tuple[int, dict[str, str], bytes], problem: str) -> None:
    api.repos["acme"] = [repo("acme/a", topics=("ml",))]
    api.answer[path] = answer
    with pytest.raises(UsageError) as err:
        _resolve(api, "acme", "ml" if path.startswith("/search") else "")
    message = err.value.diagnostics()
    assert problem in message and "\n" not in message and TOKEN not in message, message


def test_an_unknown_org_a_refused_token_and_too_many_pages(api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match=r"HTTP 404 \(no such organisation, or not visible to this token\)"):
        _resolve(api, "nobody")
    api.repos["acme"] = [repo(f"acme/r{i}") for i in range(300)]
    with pytest.raises(UsageError, match=r"HTTP 401 \(the token was refused\)"):
        _resolve(api, "acme", token="wrong")
    monkeypatch.setattr(audit_query, "MAX_PAGES", 2)
    with pytest.raises(UsageError, match=r"more than 200 repositories \(2 pages\)"):
        _resolve(api, "acme")


def test_no_token_asks_without_authorization(api: ApiServer) -> None:
    api.token = ""
    api.repos["acme"] = [repo("acme/a")]
    assert [t.repository for t in _resolve(api, "acme", token="").targets] == ["acme/a"]
    assert api.requests[0]["authorization"] == ""


def test_the_api_base_comes_from_github_api_url() -> None:
    assert audit_query.api_base({}) == "https://api.github.com"
    assert audit_query.api_base({"GITHUB_API_URL": "https://ghe.example/api/v3/"}) == "https://ghe.example/api/v3"
    assert audit_query.api_base({"GITHUB_API_URL": "http://127.0.0.1:8080/api"}) == "http://127.0.0.1:8080/api"
    for bad, problem in (("http://ghe.example/api/v3", "only to a loopback host"),
                         ("https://u:p@ghe.example/api", "a user or password"),
                         ("https://ghe.example/api?x=1", "a query"), ("ftp://ghe.example", "not an absolute")):
        with pytest.raises(UsageError, match=problem):
            audit_query.api_base({"GITHUB_API_URL": bad})


@pytest.mark.parametrize(("orgs", "topics", "problem"), [
    ("acme/x", "", "--org: 'acme/x' is not an organisation name"), ("-acme", "", "--org"),
    ("$(id)", "", "--org"), ("", "ML", "--topic: 'ML' is not a GitHub topic"), ("", "a" * 51, "--topic"),
    ("", "x:y", "--topic"), (" ".join(f"o{i}" for i in range(21)), "", "at most 20 organisations"),
])
def test_a_bad_org_or_topic_is_refused(orgs: str, topics: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem.replace("(", r"\(").replace("$", r"\$")):
        audit_query.parse_query(orgs, topics)
    assert audit_query.parse_query(" ,\n", "") is None


def test_plan_adds_the_query_after_the_list_and_outputs_what_merge_expects(
        api: ApiServer, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api.repos["acme"] = [repo("acme/zeta"), repo("acme/models"), repo("acme/Service"), repo("acme/old", archived=True),
                         {**repo("acme/x"), "full_name": "acme/$(id)"}]
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    monkeypatch.setenv("GITHUB_API_URL", api.base)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    code = cli.main(["audit-plan", "--repositories", "acme/absent acme/models acme/service@v2", "--org", "acme"])
    assert code == 0
    printed = capsys.readouterr()
    matrix = json.loads(printed.out.splitlines()[0])
    assert [(e["repository"], e["ref"]) for e in matrix["include"]] == [
        ("acme/absent", ""), ("acme/models", ""), ("acme/service", "v2"), ("acme/Service", ""), ("acme/zeta", "")]
    assert "the query added 2 repositories; 2 left out" in printed.err and "acme/old: skipped (archived)" in printed.err
    assert TOKEN not in printed.err + printed.out
    outputs = out.read_text(encoding="utf-8")
    assert "count=5\n" in outputs
    assert "repositories=acme/absent acme/models acme/service@v2 acme/Service acme/zeta\n" in outputs
    planned = outputs.split("repositories=", 1)[1].split("\n", 1)[0]
    assert audit.parse_targets(planned) == [audit.Target(e["repository"], e["ref"]) for e in matrix["include"]]
    # A query answer a listed repository's results name already holds is left out, not a crash.
    api.repos["acme"] = [repo("acme/MODELS")]
    assert cli.main(["audit-plan", "--repositories", "acme/models", "--org", "acme"]) == 0
    assert "acme/MODELS: refused, it shares the results name acme--models with acme/models" in capsys.readouterr().err


def test_plan_chunks_a_long_answer_and_fails_closed_with_one_line(
        api: ApiServer, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api.repos["acme"] = [repo(f"acme/r{i:03}") for i in range(300)]
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("GITHUB_API_URL", api.base)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    assert cli.main(["audit-plan", "--org", "acme"]) == 2
    assert "300 repositories in one matrix: GitHub starts at most 256" in capsys.readouterr().err
    parts = []
    for index in (1, 2):
        assert cli.main(["audit-plan", "--org", "acme", "--chunks", "2", "--chunk", str(index)]) == 0
        parts.append([e["repository"] for e in json.loads(capsys.readouterr().out.splitlines()[0])["include"]])
    assert [len(p) for p in parts] == [150, 150] and parts[0] + parts[1] == [f"acme/r{i:03}" for i in range(300)]
    api.answer["/orgs/acme/repos"] = (503, {}, b"")
    assert cli.main(["audit-plan", "--org", "acme"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the repositories of acme: 127.0.0.1:" in err and "HTTP 503" in err
    api.repos["empty"] = []
    assert cli.main(["audit-plan", "--org", "empty"]) == 2
    assert "no repository or model in it" in capsys.readouterr().err


def test_a_search_is_not_read_past_its_own_total(api: ApiServer) -> None:
    page = [repo(f"acme/r{i:03}", topics=("ml",)) for i in range(100)]
    api.answer["/search/repositories"] = (200, {}, json.dumps(
        {"total_count": 150, "incomplete_results": False, "items": page}).encode())  # always a full page
    found = _resolve(api, "acme", "ml")
    assert len(api.requests) == 2 and len(found.targets) == 100  # the same page twice: kept once
