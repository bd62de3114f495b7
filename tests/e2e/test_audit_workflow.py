"""The org-wide audit workflow (.github/workflows/audit.yml) under act over three repositories: a clean one (passes),
the bundled example (its deliberate mistakes fail its gate) and one the checkout cannot fetch (no results: the
audit fails closed and names it). The last is listed; the first two come from the `org` query, answered by a
loopback stand-in of GitHub's REST API (tests/github_api.py, the documented shapes; GitHub cannot be reached here)
that also lists an archived repository and a hostile name, both left out with a notice. And two model URIs served
by a loopback HTTP server, a clean pickle (passes) and a malicious one (tests/pickle_corpus.py: fetch withholds it,
its row is red), the legs' ClamAV reading a sigtool-made database (clamav-db; freshclam's mirrors are not reachable
here). The checkout stand-in serves the first two repositories from local git repositories (E2E_CHECKOUT_REPOS);
GitHub's own checkout of other repositories cannot exist offline."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import github_api
from tests.e2e.act_harness import ActRun, git_init, run_workflow
from tests.e2e.conftest import EXAMPLE
from tests.pickle_corpus import CMD, call
from tests.supply_servers import HttpServer, clamav_db, http_server

__all__ = ["clamav_db", "http_server"]  # the session fixtures this module uses

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(name="e2e-act-b")]

FIXTURE = Path(__file__).parent / "fixtures" / "audit-clean"
CALLER = """\
name: audit-caller
on: push
permissions: {{}}
jobs:
  audit:
    uses: mlsec-actions/mlsec-actions/.github/workflows/audit.yml@e2e-self
    permissions:
      contents: read
    with:
      repositories: acme/absent
      org: acme
      models: |
        {clean}
        {evil}
      clamav-db: {db}
      max-parallel: 2
"""


@pytest.fixture(scope="module")
def api() -> Iterator[github_api.ApiServer]:
    yield from github_api.serve()


@pytest.fixture(scope="module")
def audit_run(tmp_path_factory: pytest.TempPathFactory, http_server: HttpServer, clamav_db: Path,
              api: github_api.ApiServer) -> ActRun:
    api.repos["acme"] = [github_api.repo("acme/example"), github_api.repo("acme/old", archived=True),
                         {**github_api.repo("acme/x"), "full_name": "acme/$(id)"}, github_api.repo("acme/clean")]
    work = tmp_path_factory.mktemp("e2e-audit")
    models = {}
    for name, data in (("clean", pickle.dumps({"w": [1.0, 2.0]}, protocol=4)), ("evil", call("os", "system", CMD))):
        (http_server.root / "e2e-audit").mkdir(exist_ok=True)
        (http_server.root / "e2e-audit" / f"{name}.pkl").write_bytes(data)
        models[name] = f"{http_server.base}/e2e-audit/{name}.pkl#sha256={hashlib.sha256(data).hexdigest()}"
    repos = work / "repos"
    for name, source in (("clean", FIXTURE), ("example", EXAMPLE)):
        shutil.copytree(source, repos / "acme" / name)
        git_init(repos / "acme" / name)
    caller = work / "caller"
    (caller / ".github" / "workflows").mkdir(parents=True)
    (caller / ".github" / "workflows" / "audit.yml").write_text(CALLER.format(db=clamav_db, **models),
                                                                encoding="utf-8")
    (caller / "README.md").write_text("the organisation's audit repository\n", encoding="utf-8")
    git_init(caller)
    return run_workflow(caller, caller / ".github" / "workflows" / "audit.yml", work / "act",
                        env={"E2E_CHECKOUT_REPOS": str(repos), "MLSEC_VULN_DB": "skip", "GITHUB_API_URL": api.base},
                        secrets={"GITHUB_TOKEN": github_api.TOKEN}, timeout=1500)


def test_the_audit_has_a_row_per_repository_and_fails_closed(audit_run: ActRun) -> None:
    run = audit_run
    assert run.returncode != 0, run.log[-4000:]  # the example and the absent repository fail the audit
    assert run.job_result("plan") == "succeeded", run.log[-4000:]
    assert run.job_result("merge") == "failed", run.log[-4000:]
    merged = run.artifact("mlsec-audit")
    verdict = json.loads((merged / "audit-verdict.json").read_text(encoding="utf-8"))
    assert verdict["verdict"] == "fail"
    rows = {r["repository"]: r for r in verdict["repositories"]}
    assert list(rows) == ["acme/absent", "acme/clean", "acme/example"]  # the list, then the query's answer by name
    assert rows["acme/clean"]["verdict"] == "pass" and rows["acme/clean"]["violations"] == 0
    assert rows["acme/example"]["verdict"] == "fail" and rows["acme/example"]["violations"] > 0
    assert sum(rows["acme/example"]["counts"].values()) > 0
    assert rows["acme/absent"]["verdict"] == "missing" and "no results" in rows["acme/absent"]["problem"]
    models = {m["model"].rsplit("/", 1)[1]: m for m in verdict["models"]}
    assert {n: m["verdict"] for n, m in models.items()} == {"clean.pkl": "pass", "evil.pkl": "fail"}
    assert models["evil.pkl"]["counts"]["critical"] + models["evil.pkl"]["counts"]["high"] > 0
    summary = (merged / "audit-summary.md").read_text(encoding="utf-8")
    assert "❌ **FAIL** (3 of 5 repositories and models)" in summary and "| `acme/clean` | pass |" in summary
    assert "evil.pkl | fail |" in summary
    page = (merged / "audit-report.html").read_text(encoding="utf-8")
    assert page.count("<tr class=") == 5 and "Content-Security-Policy" in page


def test_the_org_query_asked_the_api_with_the_jobs_token(audit_run: ActRun, api: github_api.ApiServer) -> None:
    assert [r["path"] for r in api.requests] == ["/orgs/acme/repos"], api.requests
    assert api.requests[0]["authorization"] == f"Bearer {github_api.TOKEN}"
    assert "acme/old: skipped (archived)" in audit_run.log
    assert "refused, not owner/name by GitHub's rules" in audit_run.log
    assert "the query added 2 repositories; 2 left out" in audit_run.log


def test_each_repository_was_scanned_alone_and_kept_apart(audit_run: ActRun) -> None:
    run = audit_run
    checkouts = [json.loads(line) for line in (run.record_dir / "checkout.jsonl").read_text("utf-8").splitlines()]
    assert sorted(c["repository"] for c in checkouts) == ["acme/clean", "acme/example"]
    assert {c["persist_credentials"] for c in checkouts} == {"false"} and {c["path"] for c in checkouts} == {"target"}
    for slot, verdict in (("acme--clean", "pass"), ("acme--example", "fail")):
        kept = run.artifact(f"mlsec-audit-{slot}")
        assert json.loads((kept / "verdict.json").read_text(encoding="utf-8"))["verdict"] == verdict
        assert (kept / "report.html").is_file() and (kept / "sarif" / "code-scan.sarif").is_file()
    assert not run.artifact("mlsec-audit-acme--absent").exists()
    for name, verdict in (("clean", "pass"), ("evil", "fail")):
        [kept] = (run.record_dir / "artifacts").glob(f"mlsec-audit-model--{name}.pkl--*")
        assert json.loads((kept / "verdict.json").read_text(encoding="utf-8"))["verdict"] == verdict
        assert {p.name for p in (kept / "sarif").iterdir()} == {"fetch.sarif", "model-scan.sarif"}
