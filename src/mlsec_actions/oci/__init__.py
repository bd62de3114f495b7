"""A small OCI distribution client (urllib) and cosign's signature layout on top of it.

`reference` parses `HOST/REPO[:TAG][@sha256:HEX]`; `client` speaks the distribution API (manifests, blobs,
monolithic uploads) and checks every byte it reads against its digest; `cosign` builds and reads the
`sha256-<hex>.sig` / `.att` manifests and OCI 1.1 referrers. Every registry answer is hostile input.
"""
