"""OpenPubkey signed messages (OSM): a compact JWS by the PK Token's client key whose `kid` is the token's hash.

We sign the DSSE pre-authentication encoding of the statement, so the OSM and the bundle's DSSE signature
cover the same bytes. The bundle carries the OSM detached (`H..S`); reattach the payload,
`H.base64url(PAE).S`, to check it with the reference implementation's `VerifySignedMessage`.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from mlsec_actions.signing.interface import VerificationError
from mlsec_actions.signing.opk import jose as j
from mlsec_actions.signing.opk.pktoken import CIC_ALG, PKToken

TYP = "osm"


def sign_detached(key: ec.EllipticCurvePrivateKey, pkt: PKToken, message: bytes) -> str:
    header = j.b64url(j.go_json({"alg": CIC_ALG, "kid": pkt.hash(), "typ": TYP}))
    signature = j.es256_sign(key, f"{header}.{j.b64url(message)}".encode("ascii"))
    return f"{header}..{j.b64url(signature)}"


def verify_detached(osm: object, pkt: PKToken, message: bytes) -> None:
    """The reference `VerifySignedMessage` checks, in order, over `message` reattached."""
    parts = osm.split(".") if isinstance(osm, str) else []
    if len(parts) != 3 or parts[1] != "":
        raise VerificationError("openpubkey: OSM: not one detached compact JWS signature")
    header = j.segment_json(parts[0], "OSM header")
    if header.get("typ") != TYP:
        raise VerificationError(f"openpubkey: OSM: typ {header.get('typ')!r}, expected {TYP!r}")
    if header.get("alg") != CIC_ALG:
        raise VerificationError(f"openpubkey: OSM: alg {header.get('alg')!r} is not the CIC's {CIC_ALG}")
    if header.get("kid") != pkt.hash():
        raise VerificationError("openpubkey: OSM: kid is not this PK token's hash (a message of another token)")
    if not j.es256_valid(pkt.client_key(), j.unb64url(parts[2], "OSM signature"),
                         f"{parts[0]}.{j.b64url(message)}".encode("ascii")):
        raise VerificationError("openpubkey: OSM: the signature does not verify under the CIC key")
