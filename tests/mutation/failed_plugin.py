"""A pytest plugin for the mutant harness's child runs: records the node id of every test that fails.

`test_mutants.py` runs the mutated copy first; the tests that failed there are the only ones the clean copy
must then pass for the mutant to count as killed (a test that also fails without the mutant kills nothing),
which costs one short run instead of the whole test set on the clean copy.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

OUT_ENV = "MLSEC_MUTATION_FAILED_FILE"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = os.environ.get(OUT_ENV)
    if path and report.failed:
        with Path(path).open("a", encoding="utf-8") as out:
            out.write(report.nodeid + "\n")
