"""Property-based (Hypothesis): any file names at all, as bytes, through model-scan and code-scan in a
GitHub-Actions-like environment: every log line stays free of injected commands, the summary of active
Markdown, and the stage still writes its SARIF (no crash on a name)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.adversarial import hostile_repo, observe, weak_inputs
from tests.adversarial.hostile_repo import HostileRepo

pytestmark = pytest.mark.integration

# Bytes a POSIX name may hold (anything but NUL and '/'), biased to what injects.
_DANGER = [b"\n", b"\r", b"::", b"##[", b"%0A", b"\xc2\x85", b"\xe2\x80\xa8", b"<img>", b"](", b"\xff", b" ", b"-"]
NAME = st.lists(st.one_of(st.sampled_from(_DANGER), st.binary(min_size=1, max_size=4)), min_size=1, max_size=8) \
    .map(b"".join).map(lambda b: b.replace(b"\x00", b"_").replace(b"/", b"_")[:200]) \
    .filter(lambda b: b not in (b".", b".."))


@pytest.fixture(scope="module")
def empty_repo() -> Iterator[HostileRepo]:
    """A HostileRepo whose root each example refills (only names change between examples)."""
    base = Path(tempfile.mkdtemp(prefix="mlsec-names-"))
    (base / "outside" / "canaries").mkdir(parents=True)
    (base / "repo").mkdir()
    (base / "outside" / "secret.bin").write_text("none")
    yield HostileRepo(root=base / "repo", outside=base / "outside", canaries=base / "outside" / "canaries",
                      outside_secret=base / "outside" / "secret.bin", outside_value="OUTSIDE-" + "n" * 30,
                      secrets=(), env_secret="ghs_" + "e" * 36, permissive_policy=base / "none",
                      bomb_policies=(), bomb_json=(), fifo=base / "none",
                      weak=weak_inputs.build(base / "unused", base / "unused-beside"))  # outside the scanned root
    subprocess.run(["rm", "-rf", "--", str(base)], check=False)


# Each example is two real stage runs: few examples, no shrinking (a failure prints its names as found).
@settings(max_examples=6, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAME, min_size=1, max_size=10, unique=True))
def test_any_file_names(empty_repo: HostileRepo, tmp_path: Path, names: list[bytes]) -> None:
    root = os.fsencode(empty_repo.root)
    subprocess.run(["rm", "-rf", "--", str(empty_repo.root)], check=True)
    empty_repo.root.mkdir()
    for i, name in enumerate(names):
        body = hostile_repo._pickle_global("os", "system") if i % 2 else b"\x80\x02cos\nsystem\n("
        with open(os.path.join(root, name + b".pkl"), "wb") as f:  # noqa: PTH123, PTH118 -- bytes names
            f.write(body)
    for stage, extra in (("model-scan", []), ("code-scan", ["--vuln-db", "skip"])):
        work = Path(tempfile.mkdtemp(dir=tmp_path))
        obs = observe.run(empty_repo, work, stage, str(empty_repo.root), "--sarif", str(work / "s.sarif"), *extra,
                          trace=False, timeout=300)
        problems = [*observe.injected_commands(obs), *observe.active_markdown(obs), *observe.canaries(empty_repo)]
        assert problems == [], "\n".join(problems) + "\n" + obs.describe()
        assert obs.returncode == 0, obs.describe()
        assert (work / "s.sarif").is_file()
