"""The other half of the OpenPubkey interop check, run only on GitHub (.github/workflows/interop.yml).

    python tests/interop/opk_check.py extract BUNDLE OUTDIR   hint.json and pae.bin of an mlsec bundle
    python tests/interop/opk_check.py theirs OUTDIR           mlsec checks the reference client's token and OSM
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing import openpubkey
from mlsec_actions.signing.opk import jose, osm, pktoken

GITHUB = "https://token.actions.githubusercontent.com"


def extract(bundle_file: Path, out: Path) -> None:
    bundle = bl.read_bundle(bundle_file)
    hint = bl.hint_of(bundle) or ""
    doc = jose.json_object(jose.unb64url(hint[len(openpubkey.HINT_PREFIX):], "hint"), "hint")
    payload_type, payload, _ = bl.dsse_parts(bundle)
    (out / "hint.json").write_text(json.dumps(doc))
    (out / "pae.bin").write_bytes(bl.pae(payload_type, payload))


def theirs(out: Path) -> None:
    pkt = pktoken.parse_compact((out / "pkt.compact").read_text().strip())
    checked = pktoken.verify(pkt, GITHUB, openpubkey.fetch_jwks(GITHUB))
    header, payload, signature = (out / "osm.jws").read_text().strip().split(".")
    message = jose.unb64url(payload, "OSM payload")
    if message != (out / "message.txt").read_bytes():
        raise SystemExit("the reference OSM does not carry the message")
    osm.verify_detached(f"{header}..{signature}", pkt, message)
    print(f"opk_check: mlsec accepts the reference client's PK Token and OSM (sub {checked.claims.get('sub')})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["extract"] and len(sys.argv) == 4:
        extract(Path(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1:2] == ["theirs"] and len(sys.argv) == 3:
        theirs(Path(sys.argv[2]))
    else:
        raise SystemExit(__doc__)
