"""dast and runtime-probe started inside the hostile repository (the worst case), under strace: they read nothing
from the tree, run none of it, and what the service and an imported report say (workflow commands, Markdown,
links) reaches no log or summary raw. The target is the vulnerable app on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.adversarial import observe
from tests.adversarial.hostile_repo import HostileRepo
from tests.vulnerable_app import Running, probe_targets, vulnerable

pytestmark = pytest.mark.integration
__all__ = ["vulnerable"]  # session fixture used by name

_HOSTILE_BURP = """<?xml version="1.0"?>
<issues burpVersion="2024.1">
  <issue><name>::error title=x::injected ![x](https://example.invalid/p.png) &lt;img src=x&gt;</name>
    <host ip="127.0.0.1">http://127.0.0.1:8080</host><path>/a%0a::warning::b</path>
    <location>/a</location><severity>High</severity><confidence>Certain</confidence></issue>
</issues>
"""


def _held(h: HostileRepo, obs: observe.Observed) -> None:
    problems = observe.all_problems(h, obs)
    assert problems == [], "\n".join(problems) + "\n\n" + obs.describe()


def test_runtime_probe_in_the_hostile_tree(hostile: HostileRepo, work: Path, vulnerable: Running) -> None:
    obs = observe.run(hostile, work, "runtime-probe", "--sarif", str(work / "runtime-probe.sarif"),
                      "--oversize-bytes", "100000", *probe_targets(vulnerable.url))
    _held(hostile, obs)
    assert obs.returncode == 0, obs.describe()
    run = json.loads(obs.files[work / "runtime-probe.sarif"])["runs"][0]
    assert run["results"]


def test_dast_import_of_a_hostile_report_in_the_hostile_tree(hostile: HostileRepo, work: Path,
                                                             vulnerable: Running, tmp_path: Path) -> None:
    report = tmp_path / "burp.xml"
    report.write_text(_HOSTILE_BURP)
    obs = observe.run(hostile, work, "dast", "--sarif", str(work / "dast.sarif"), "--target", vulnerable.url + "/",
                      "--no-wapiti", "--burp-report", str(report))
    _held(hostile, obs)
    assert obs.returncode == 0, obs.describe()
    rules = {r["ruleId"] for r in json.loads(obs.files[work / "dast.sarif"])["runs"][0]["results"]}
    assert "dast/directory-listing" in rules and any(r.startswith("burp/") for r in rules)
