"""Robustness of a scikit-learn model: accuracy under Gaussian noise or ART's HopSkipJump evasion attack.

Loading a model means running it, so only one format is loaded: a skops file whose every type is on skops'
default trusted list (scikit-learn estimators, numpy and scipy containers; no code runs at load). Anything else
is refused (`evaluate/model-refused`), never unpickled. The check runs in a child interpreter of ours
(`python -I -m` this module) with the stage's time limit, so a slow attack or a crash in a library fails
closed as a tool failure instead of hanging or taking the stage down.

HopSkipJump minimises the perturbation it needs; the policy's `epsilon` is the budget: an example counts as
broken when the attack flipped its prediction with an L2 perturbation of at most `epsilon`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsec_actions.findings import ToolRun, ToolStatus

TOOL = "adversarial-robustness-toolbox"
_MAX_OUTPUT = 1024 * 1024


@dataclass(frozen=True)
class Budget:
    """The policy's `evaluate.robustness`."""

    attack: str = "noise"
    """noise or hopskipjump."""
    epsilon: float = 0.1
    """Noise scale, or the largest L2 perturbation that counts as an attack."""
    samples: int = 50
    """Rows of the data attacked."""
    max_iter: int = 10
    """HopSkipJump iterations."""
    seed: int = 0
    """Random seed (noise, the attack's random starts)."""


def load_trusted(path: str) -> Any:
    """The model, when it is a skops file of trusted types only; else ValueError saying why."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as e:  # not a skops archive at all (a pickle, garbage)
        raise ValueError(f"not a skops file ({type(e).__name__})") from None
    if untrusted:
        raise ValueError(f"names types outside skops' trusted list: {', '.join(sorted(untrusted)[:5])}")
    return sio.load(path, trusted=[])


def read_data(path: str, label: str) -> tuple[Any, Any]:
    import numpy as np

    from mlsec_actions.analyzers import metrics_predictions as mp

    table = mp.read(path)
    y = np.asarray(mp._labels(table.column(label, path)))
    features = [c for c in table.header if c != label]
    x = np.asarray([[float(v) for v in row] for row in (
        [r[table.header.index(c)] for c in features] for r in table.rows)], dtype=float)
    if not np.isfinite(x).all():
        raise ValueError("data holds a value that is not a finite number")
    return x, y


def attack(model: Any, x: Any, y: Any, budget: Budget) -> dict[str, Any]:
    """Clean and attacked accuracy on the first `samples` rows (the function the tests compare with ART)."""
    import numpy as np

    x, y = x[: budget.samples], y[: budget.samples]
    clean = model.predict(x)
    if budget.attack == "noise":
        rng = np.random.default_rng(budget.seed)
        attacked = model.predict(x + rng.normal(0.0, budget.epsilon, x.shape))
        held = attacked == y
    else:
        from art.attacks.evasion import HopSkipJump
        from art.estimators.classification import SklearnClassifier

        classifier = SklearnClassifier(model=model, clip_values=(float(x.min()), float(x.max())))
        np.random.seed(budget.seed)  # ART draws its random starts from numpy's global generator
        hsj = HopSkipJump(classifier, targeted=False, max_iter=budget.max_iter, max_eval=100, init_eval=10,
                          verbose=False)
        x_adv = hsj.generate(x)
        flipped = model.predict(x_adv) != y
        within = np.linalg.norm((x_adv - x).reshape(len(x), -1), axis=1) <= budget.epsilon
        held = (clean == y) & ~(flipped & within)
    return {"attack": budget.attack, "epsilon": budget.epsilon, "samples": len(x),
            "clean_accuracy": float(np.mean(clean == y)), "attacked_accuracy": float(np.mean(held))}


def main(argv: Sequence[str]) -> int:
    """Worker: `MODEL DATA LABEL BUDGET_JSON` -> one JSON line on stdout."""
    model_path, data_path, label, budget_json = argv
    try:
        model = load_trusted(model_path)
    except ValueError as e:
        print(json.dumps({"refused": str(e)}))
        return 0
    x, y = read_data(data_path, label)
    print(json.dumps(attack(model, x, y, Budget(**json.loads(budget_json)))))
    return 0


def run(model: Path, data: Path, label: str, budget: Budget, timeout: float) -> tuple[dict[str, Any] | None, ToolRun]:
    """Run the worker; (its result, or None) and the tool's record. A refused model is a result with `refused`."""
    from mlsec_actions.tools import process
    from mlsec_actions.tools.base import STRIPPED_ENV_PREFIXES

    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(STRIPPED_ENV_PREFIXES)}
    command = [sys.executable, "-I", "-m", __name__, str(model.resolve()), str(data.resolve()), label,
               json.dumps(budget.__dict__)]
    with tempfile.TemporaryDirectory(prefix="mlsec-robustness-") as work:
        try:
            done = process.run(command, cwd=Path(work), env=env, timeout=timeout, max_stdout=_MAX_OUTPUT)
        except OSError as e:
            return None, ToolRun(TOOL, ToolStatus.MISSING, message=f"cannot start the worker: {e.strerror or e}")
    if done.timed_out:
        return None, ToolRun(TOOL, ToolStatus.TIMEOUT, message=f"robustness check timed out after {timeout:g}s")
    tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    if done.returncode != 0:
        return None, ToolRun(TOOL, ToolStatus.FAILED, message=f"robustness check exited {done.returncode}: {tail[0]}")
    try:
        result = json.loads(done.stdout)
        assert isinstance(result, dict)
    except (ValueError, AssertionError):
        return None, ToolRun(TOOL, ToolStatus.FAILED, message="robustness check printed no result")
    return result, ToolRun(TOOL, ToolStatus.OK, version=_version())


def _version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version(TOOL)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
