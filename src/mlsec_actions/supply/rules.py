"""fetch's own rules (ids `fetch/<rule>`); each has a section in docs/fetch.md with its id as the anchor."""

from __future__ import annotations

from mlsec_actions.findings import Rule

DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/fetch.md"

DIGEST_MISMATCH = Rule(
    id="fetch/digest-mismatch", name="FetchDigestMismatch",
    short_description="fetch: the downloaded bytes do not match the pinned SHA-256",
    full_description="The artifact downloaded has a different SHA-256 (or size) than the lock pins: it was "
                     "changed at the source, in transit, or the pin is wrong. The file was deleted.",
    help_text="Find out why the artifact changed. Pin the new digest (mlsec.lock) only after checking the new "
              "artifact's origin.",
    help_uri=f"{DOCS}#fetchdigest-mismatch", tags=("security", "supply-chain", "integrity"), precision="very-high")
SIZE_LIMIT = Rule(
    id="fetch/size-limit", name="FetchSizeLimit",
    short_description="fetch: the artifact is over the size or time limit; not kept",
    full_description="The download was stopped because it announced or delivered more bytes than --max-mb "
                     "allows, or took longer than --timeout. Nothing of it was kept.",
    help_text="Raise --max-mb or --timeout if the artifact really is that large; otherwise find out why the "
              "source serves more than expected.",
    help_uri=f"{DOCS}#fetchsize-limit", tags=("security", "supply-chain"), precision="high")
SIGNATURE_MISSING = Rule(
    id="fetch/signature-missing", name="FetchSignatureMissing",
    short_description="fetch: the lock requires signatures and the artifact has none",
    full_description="The lock sets require_signatures, and this artifact has no bundle URL.",
    help_text="Sign the artifact (mlsec sign) where it is produced and add its bundle URL to the lock entry.",
    help_uri=f"{DOCS}#fetchsignature-missing", tags=("security", "supply-chain", "signing"), precision="very-high")
SIGNATURE_INVALID = Rule(
    id="fetch/signature-invalid", name="FetchSignatureInvalid",
    short_description="fetch: the artifact's signature does not verify",
    full_description="The artifact's bundle does not verify against the expected key or identity, or does not "
                     "cover these bytes.",
    help_text="Do not use the artifact. Check who signed it and with which key; re-sign it from a trusted "
              "build if the signer is right.",
    help_uri=f"{DOCS}#fetchsignature-invalid", tags=("security", "supply-chain", "signing"), precision="very-high")
WITHHELD = Rule(
    id="fetch/withheld", name="FetchWithheld",
    short_description="fetch: artifacts were not placed because one of them failed a check",
    full_description="At least one artifact failed its digest, signature, antivirus or model check (or a tool "
                     "failed), so none of the lock's artifacts were moved into the destination folder.",
    help_text="Fix the failing artifact (see the other findings of this run) and run fetch again.",
    help_uri=f"{DOCS}#fetchwithheld", tags=("security", "supply-chain"), precision="very-high")
RULES = (DIGEST_MISMATCH, SIZE_LIMIT, SIGNATURE_MISSING, SIGNATURE_INVALID, WITHHELD)
