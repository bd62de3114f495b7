"""The training interpreter's package list (training/environment.py's probe) reads each distribution's Name and
Version header by line instead of through the e-mail parser: the same list as importlib.metadata's own
`metadata.get('Name')` / `version`, for this interpreter and for hand-made hostile metadata (a name given
twice, lower-case field names, CRLF lines, no version, a `Name:` line in the body of a header without one, a
non-ASCII name)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mlsec_actions.training import environment

REFERENCE = """\
import importlib.metadata as m, json, sys
sys.path.insert(0, sys.argv[1])
pk = {}
for d in m.distributions():
    n = d.metadata.get('Name')
    if n: pk[str(n).lower()] = str(d.version)
print(json.dumps(pk))
"""


def _packages(code: str, site: Path) -> dict[str, str]:
    # The probe itself runs with -I; here the hand-made folder goes first on sys.path, as a site folder would.
    wrapped = f"import sys; sys.path.insert(0, sys.argv[1])\n{code}" if code is environment._PROBE else code
    done = subprocess.run([sys.executable, "-c", wrapped, str(site)], capture_output=True, check=True, timeout=120)
    doc = json.loads(done.stdout)
    return dict(doc.get("packages", doc))


def test_the_probe_lists_what_importlib_metadata_lists(tmp_path: Path) -> None:
    site = tmp_path / "site"
    metadata = {
        "twice-1.0.dist-info": b"Metadata-Version: 2.1\nName: First-Name\nName: second\nVersion: 1.0\n\nbody\n",
        "crlf-2.0.dist-info": b"Metadata-Version: 2.1\r\nName: CRLF.Pkg\r\nVersion: 2.0 \r\n\r\nName: body\r\n",
        "nover-0.dist-info": b"Metadata-Version: 2.1\nName: NoVersion\n\n",
        "lower-3.dist-info": b"metadata-version: 2.1\nname:\tLower\nVERSION:  3 \n",
        "noname-0.dist-info": b"Metadata-Version: 2.1\nVersion: 9\n\nName: from-the-body\nVersion: 8\n",
        "bytes-1.dist-info": b"Name: caf\xc3\xa9-pkg\nVersion: 1\n\n",
    }
    for folder, text in metadata.items():
        (site / folder).mkdir(parents=True)
        (site / folder / "METADATA").write_bytes(text)
    egg = site / "old.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_bytes(b"Metadata-Version: 1.0\nName: Old-Egg\nVersion: 0.1\n")
    ours, reference = _packages(environment._PROBE, site), _packages(REFERENCE, site)
    assert ours == reference
    assert {"first-name", "crlf.pkg", "noversion", "lower", "old-egg"} <= set(ours) and "from-the-body" not in ours
    assert len(ours) > 20  # this interpreter's own packages are listed too
