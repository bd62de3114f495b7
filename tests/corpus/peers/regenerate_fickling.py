"""Maintainer tool: capture fickling's bypass-test pickles as bytes, without unpickling anything.

fickling's tests build their pickles in code (`Pickled([...opcodes...])`) and pass them to
`check_safety`. This runs those test methods from an upstream checkout with `check_safety` wrapped: the
wrapper records `pickled.dumps()` and the upstream verdict, then calls the real `check_safety` so the
test's own assertions still run. fickling's `Pickled` is a parser/assembler; nothing is loaded.

Run: `.venv/bin/python tests/corpus/peers/regenerate_fickling.py UPSTREAM_CHECKOUT COMMIT`
(a checkout of github.com/trailofbits/fickling at COMMIT). Writes `fickling/*.pkl` and the fickling rows
of `manifest.json` next to this file.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import json
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Labelled malicious upstream, but nothing a CPython load would run.
NOT_EXECUTABLE = {
    "test_check_safety_catches_resource_exhaustion": "no import: a list appended to itself through the memo; "
    "CPython builds it in linear time and memory (references, not copies)",
    "test_memo_expansion_detection": "no import: a list appended to itself through the memo; CPython builds it "
    "in linear time and memory (references, not copies)",
    "test_dup_expansion_detection": "no import: DUP of one list; CPython pushes references in linear time and memory",
}
_GZIP_ABOVE = 256 * 1024
MODULES = ("test.test_bypasses", "test.test_scanner_deactivation_analysis", "test.test_analysis",
           "test.test_expansion_attack_analysis")


def main(argv: list[str]) -> int:
    checkout, commit = Path(argv[0]).resolve(), argv[1]
    sys.path.insert(0, str(checkout))
    analysis = importlib.import_module("fickling.analysis")
    real = analysis.check_safety
    fickle = importlib.import_module("fickling.fickle")
    parse = fickle.Pickled.load

    def load(data: object, *args: object, **kwargs: object) -> object:
        pickled = parse(data, *args, **kwargs)
        raw = data if isinstance(data, bytes) else None
        if raw is not None:
            pickled._mlsec_raw = raw  # the bytes as given: a malformed frame does not survive dumps()
        return pickled

    fickle.Pickled.load = staticmethod(load)
    captured: list[dict[str, object]] = []
    current: list[str] = [""]

    def recording(pickled: object, *args: object, **kwargs: object) -> object:
        result = real(pickled, *args, **kwargs)
        data = getattr(pickled, "_mlsec_raw", None) or pickled.dumps()  # type: ignore[attr-defined]
        captured.append({"test": current[0], "data": data,
                         "upstream": "malicious" if result.severity > analysis.Severity.LIKELY_SAFE else "benign",
                         "severity": result.severity.name})
        return result

    out = HERE / "fickling"
    out.mkdir(exist_ok=True)
    for name in MODULES:
        module = importlib.import_module(name)
        module.check_safety = recording  # type: ignore[attr-defined]
        for case in unittest.defaultTestLoader.loadTestsFromModule(module):
            for test in case:  # type: ignore[attr-defined]
                current[0] = f"{name.replace('.', '/')}.py::{test.id().rsplit('.', 2)[-2]}.{test._testMethodName}"
                unittest.TextTestRunner(stream=open("/dev/null", "w"), verbosity=0).run(test)  # noqa: SIM115, PTH123
    rows = []
    seen: set[str] = set()
    for row in captured:
        data = row.pop("data")
        assert isinstance(data, bytes)
        digest = hashlib.sha256(data).hexdigest()[:16]
        if digest in seen:
            continue
        seen.add(digest)
        test = str(row["test"])
        method = test.rsplit("::", 1)[1].rsplit(".", 1)[1]
        path = out / f"{method}-{digest}.pkl"
        if len(data) > _GZIP_ABOVE:  # large benign frames: stored compressed, scanned through the gzip reader
            path = path.with_suffix(".pkl.gz")
            path.write_bytes(gzip.compress(data, mtime=0))
        else:
            path.write_bytes(data)
        extra = {"executes": False, "reason": NOT_EXECUTABLE[method]} if method in NOT_EXECUTABLE else {}
        rows.append({**extra, "file": path.relative_to(HERE).as_posix(), "peer": "fickling",
                     "source": {"repo": "trailofbits/fickling", "commit": commit, "path": test.split("::")[0],
                                "test": test.split("::")[1]},
                     "label": row["upstream"], "upstream_severity": row["severity"]})
    manifest = HERE / "manifest.json"
    existing = json.loads(manifest.read_text()) if manifest.exists() else []
    kept = [r for r in existing if r.get("peer") != "fickling"]
    manifest.write_text(json.dumps(kept + rows, indent=1) + "\n")
    print(f"{len(rows)} fickling samples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
