"""OpenPubkey PK Tokens in the reference format (github.com/openpubkey/openpubkey), for GitHub Actions.

`jose` holds the JOSE primitives (strict base64url, Go's JSON encoding, JWK thumbprints, ES256 with raw
signatures), `gq` the GQ256 signature that replaces the issuer's RS256 signature, `pktoken` the token
itself (build, parse, serialise, verify in the reference verifier's order) and `osm` the signed
messages made with the token's key. The facts come from `../shared/specs/openpubkey/README.md`.
"""
