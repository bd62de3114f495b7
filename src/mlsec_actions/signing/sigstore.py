"""`sigstore` backend: keyless signing with sigstore-python and the ambient GitHub Actions OIDC token.

Signing needs `permissions: id-token: write` and Sigstore's servers (Fulcio, Rekor), so it only runs
on GitHub (or with an explicit `SIGSTORE_ID_TOKEN`). Verification works offline against the trust
root sigstore-python ships (`--offline`), checking the certificate identity and issuer, plus the
GitHub repository / workflow ref extensions when asked. `--trust-config FILE` (sigstore-python's
ClientTrustConfig, the file `sigstore --trust-config` reads) names another instance instead: its
Fulcio, Rekor and OIDC URLs for signing, its trusted root for verifying.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsec_actions.errors import InputError
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing import patterns
from mlsec_actions.signing.interface import Bundle, SignedPayload, Signer, SigningError, VerificationError, Verifier

ENV_TOKEN = "SIGSTORE_ID_TOKEN"  # noqa: S105 - a variable name, not a token
"""An explicit OIDC token, used instead of ambient detection (as sigstore's own CLI does)."""


def ambient_token() -> str:
    """The OIDC token to sign with; a clear error when there is none."""
    from sigstore.oidc import IdentityError, detect_credential

    explicit = os.environ.get(ENV_TOKEN)
    if explicit:
        return explicit
    try:
        token = detect_credential()
    except IdentityError as e:
        raise SigningError(f"sigstore backend: ambient OIDC credential detection failed: {e}") from None
    if not token:
        raise SigningError(
            "sigstore backend: no ambient OIDC credential found; on GitHub Actions give the job "
            "`permissions: id-token: write` (ACTIONS_ID_TOKEN_REQUEST_URL is unset), or set "
            f"{ENV_TOKEN}; for offline signing use --backend key")
    return token


def load_trust_config(path: Path, *, signing: bool) -> Any:
    """sigstore-python's ClientTrustConfig from `path`, with the parts this run needs built (its trusted root;
    its signing config's Fulcio and Rekor when `signing`), so that a bad file stops here, naming itself."""
    from sigstore.errors import Error
    from sigstore.models import ClientTrustConfig
    from sigstore.verify import Verifier as SigstoreInner

    from mlsec_actions import inputs
    from mlsec_actions.json_strict import DuplicateKey, no_duplicate_keys

    data = inputs.read_regular(path, "the trust config")  # a regular file of bounded size only
    if inputs.json_depth_over(data, inputs.MAX_JSON_DEPTH):
        raise InputError(path, f"the trust config is nested deeper than {inputs.MAX_JSON_DEPTH} levels")
    try:  # a key given twice: which copy a reader takes differs, so which keys are trusted would too
        json.loads(data, object_pairs_hook=no_duplicate_keys)
    except DuplicateKey as e:
        raise InputError(path, f"the trust config has a {e}") from None
    except ValueError as e:
        raise InputError(path, f"the trust config is not valid JSON ({e})") from None
    try:
        config = ClientTrustConfig.from_json(data.decode("utf-8"))
        SigstoreInner(trusted_root=config.trusted_root)  # needs a CA and a log
        if signing:
            config.signing_config.get_fulcio()
            config.signing_config.get_tlogs()
    except (Error, ValueError, TypeError, KeyError) as e:  # pydantic's ValidationError is a ValueError
        raise InputError(path, f"not a usable Sigstore client trust config: {_first_problem(e)}") from None
    return config


def _first_problem(e: Exception) -> str:
    """One line: a pydantic error's first field and message (its text is a multi-line report), else the text."""
    errors = getattr(e, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "(top level)"
        return f"{where}: {first.get('msg', '?')}"[:200]
    text = str(e).strip() or str(e.__cause__ or "").strip()  # FulcioClientError often says nothing itself
    return text.splitlines()[0][:200] if text else type(e).__name__


class SigstoreSigner(Signer):
    name = "sigstore"

    def __init__(self, *, staging: bool = False, trust_config: Path | None = None) -> None:
        from sigstore.models import ClientTrustConfig
        from sigstore.oidc import IdentityError, IdentityToken
        from sigstore.sign import SigningContext

        config = load_trust_config(trust_config, signing=True) if trust_config is not None else None
        try:
            token = IdentityToken(ambient_token())
        except IdentityError as e:
            raise SigningError(f"sigstore backend: the OIDC token is not usable: {e}") from None
        if config is None:
            config = ClientTrustConfig.staging() if staging else ClientTrustConfig.production()
        self._ctx = SigningContext.from_trust_config(config)
        self._token = token
        self._signer: Any = None

    def _inner(self) -> Any:
        if self._signer is None:  # one certificate and ephemeral key for the whole run
            with _server_errors("no signing certificate from the CA (Fulcio)"), \
                    self._ctx.signer(self._token, cache=True) as signer:
                self._signer = signer
        return self._signer

    def _sign(self, statement: bytes) -> Bundle:
        # Never `sign_artifact`: Rekor v2 logs DSSE envelopes as hashedrekord entries over the PAE, so a
        # bare-digest signature of a file holding PAE bytes would verify as that envelope.
        from sigstore.dsse import Statement
        from sigstore.errors import Error

        try:
            envelope_statement = Statement(statement)
        except Error as e:
            raise SigningError(f"sigstore backend: not an in-toto statement: {e}") from None
        signer = self._inner()
        with _server_errors("the transparency log (Rekor) did not log the signature"):
            bundle = signer.sign_dsse(envelope_statement)
        return dict(json.loads(bundle.to_json()))


@contextmanager
def _server_errors(what: str) -> Iterator[None]:
    """A refusal or a failed check of Fulcio's or Rekor's answer (a certificate without a trusted SCT, an
    expired token, an HTTP error) as one `SigningError` line instead of a traceback."""
    import requests
    from sigstore._internal.fulcio.client import ExpiredCertificate, FulcioClientError
    from sigstore._internal.rekor import RekorClientError
    from sigstore.errors import Error
    from sigstore.oidc import ExpiredIdentity

    try:
        yield
    except (Error, FulcioClientError, RekorClientError, ExpiredIdentity, ExpiredCertificate,
            requests.RequestException, ValueError) as e:
        raise SigningError(f"sigstore backend: {what}: {_first_problem(e)}") from None


@dataclass(frozen=True)
class Expected:
    """The identity a keyless bundle must carry."""

    identity: str
    """Certificate SAN, e.g. `https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/heads/main`."""
    issuer: str
    """OIDC issuer, e.g. `https://token.actions.githubusercontent.com`."""
    repository: str | None = None
    """GitHub `OWNER/REPO` the workflow ran in, when it must also match."""
    workflow_ref: str | None = None
    """Git ref the workflow ran on (`refs/heads/main`), when it must also match."""


def _tlog_kinds(bundle: Bundle) -> list[tuple[str, str]]:
    entries = bundle["verificationMaterial"].get("tlogEntries") or []
    out = []
    for e in entries:
        kv = e.get("kindVersion") if isinstance(e, dict) else None
        out.append((str(kv.get("kind")), str(kv.get("version"))) if isinstance(kv, dict) else ("?", "?"))
    return out


class _GlobPolicy:
    """A sigstore-python verification policy for identities given as anchored globs (`patterns`): the issuer
    exactly (sigstore's own check), then the certificate's SANs (the same three kinds `policy.Identity`
    reads) and the GitHub workflow repository and ref extensions, each matched as a whole."""

    def __init__(self, expected: Expected) -> None:
        self.expected = expected

    def verify(self, cert: Any) -> None:
        from cryptography import x509
        from sigstore.errors import VerificationError as SigstoreFailure
        from sigstore.verify import policy

        exp = self.expected
        policy.OIDCIssuer(exp.issuer).verify(cert)
        names = _san_identities(cert)
        if not any(patterns.glob(exp.identity).matches(n) for n in names):
            raise SigstoreFailure(f"Certificate's SANs {names} do not match {exp.identity}")
        for dotted, want in ((_REPOSITORY_OID, exp.repository), (_REF_OID, exp.workflow_ref)):
            if want is None:
                continue
            oid = x509.ObjectIdentifier(dotted)
            try:
                raw = cert.extensions.get_extension_for_oid(oid).value.value
            except x509.ExtensionNotFound:
                raise SigstoreFailure(f"Certificate has no {oid.dotted_string} extension") from None
            value = raw.decode("utf-8", "replace")
            if not patterns.glob(want).matches(value):
                raise SigstoreFailure(f"Certificate's {oid.dotted_string} is {value!r}, expected {want!r}")


def _san_identities(cert: Any) -> list[str]:
    """The certificate's identities, sorted: its SANs of the three kinds sigstore-python's `policy.Identity` reads."""
    from cryptography import x509

    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(san.get_values_for_type(x509.RFC822Name)) | set(san.get_values_for_type(
        x509.UniformResourceIdentifier)) | {o.value.decode("utf-8", "replace") for o in
                                              san.get_values_for_type(x509.OtherName)
                                              if o.type_id.dotted_string == _OTHERNAME_OID}
    return sorted(names)


_OTHERNAME_OID = "1.3.6.1.4.1.57264.1.7"
"""Fulcio's SAN otherName type (a username identity), as sigstore-python's `policy.Identity` reads it."""
_REPOSITORY_OID, _REF_OID = "1.3.6.1.4.1.57264.1.5", "1.3.6.1.4.1.57264.1.6"
"""Fulcio's GitHub workflow repository and ref extensions (v1: raw UTF-8 bytes)."""


class SigstoreVerifier(Verifier):
    name = "sigstore"

    def __init__(self, expected: Expected, *, staging: bool = False, offline: bool = True,
                 trust_config: Path | None = None) -> None:
        self.expected = expected
        self._staging = staging
        self._offline = offline
        self._trust_config = trust_config
        self._verifier: Any = None

    def accepts(self, bundle: Bundle) -> bool:
        material = bundle.get("verificationMaterial")
        return isinstance(material, dict) and ("certificate" in material or "x509CertificateChain" in material)

    def _policy(self) -> Any:
        from sigstore.verify import policy

        exp = self.expected
        globbed = not all(patterns.glob(v).exact for v in (exp.identity, exp.repository, exp.workflow_ref) if v)
        if globbed:  # sigstore-python compares exactly; our anchored globs need our own check of the same fields
            return _GlobPolicy(exp)
        checks: list[Any] = [policy.Identity(identity=exp.identity, issuer=exp.issuer)]
        if exp.repository:
            checks.append(policy.GitHubWorkflowRepository(exp.repository))
        if exp.workflow_ref:
            checks.append(policy.GitHubWorkflowRef(exp.workflow_ref))
        return policy.AllOf(checks)

    def _parts(self, bundle: Bundle) -> tuple[Any, Any]:
        from sigstore.errors import Error
        from sigstore.models import Bundle as SigstoreBundle
        from sigstore.verify import Verifier as SigstoreInner

        if self._verifier is None and self._trust_config is not None:
            config = load_trust_config(self._trust_config, signing=False)
            self._verifier = SigstoreInner(trusted_root=config.trusted_root)
        elif self._verifier is None:
            make = SigstoreInner.staging if self._staging else SigstoreInner.production
            self._verifier = make(offline=self._offline)
        try:
            return self._verifier, SigstoreBundle.from_json(json.dumps(bundle))
        except (Error, ValueError, TypeError, KeyError) as e:  # a malformed certificate is a bare ValueError
            raise VerificationError(f"not a valid Sigstore bundle: {str(e)[:200]}") from None

    def _who(self, parsed: Any) -> str:
        exp = self.expected
        if patterns.glob(exp.identity).exact:
            return f"{exp.identity} ({exp.issuer})"
        names = _san_identities(parsed.signing_certificate)  # a pattern matched: name what it matched
        matched = [n for n in names if patterns.glob(exp.identity).matches(n)]
        return f"{(matched or names or ['?'])[0]} ({exp.issuer})"

    def verify_message(self, bundle: Bundle, sha256: bytes) -> str:
        """A keyless file signature (`sigstore sign`, GitHub's release bundles), typed by its Rekor v1 entry."""
        from sigstore.errors import VerificationError as SigstoreFailure
        from sigstore.hashes import Hashed
        from sigstore_models.common.v1 import HashAlgorithm

        kinds = _tlog_kinds(bundle)
        if kinds != [("hashedrekord", "0.0.1")]:
            # Rekor v2 records DSSE envelopes as hashedrekord/0.0.2 too: such an entry does not say which it is.
            raise VerificationError(f"keyless messageSignature bundle must have one Rekor v1 hashedrekord/0.0.1 "
                                    f"entry, not {['/'.join(k) for k in kinds]}")
        bl.message_parts(bundle, sha256)  # algorithm and digest present and naming this file
        verifier, parsed = self._parts(bundle)
        try:
            verifier.verify_artifact(Hashed(algorithm=HashAlgorithm.SHA2_256, digest=sha256), parsed, self._policy())
        except (SigstoreFailure, ValueError, TypeError) as e:
            raise VerificationError(f"keyless verification failed: {e}") from None
        return self._who(parsed)

    def verify_dsse(self, bundle: Bundle) -> SignedPayload:
        from sigstore.errors import VerificationError as SigstoreFailure

        verifier, parsed = self._parts(bundle)
        try:
            payload_type, payload = verifier.verify_dsse(parsed, self._policy())
        except (SigstoreFailure, ValueError, TypeError) as e:
            raise VerificationError(f"keyless verification failed: {e}") from None
        return SignedPayload(str(payload_type), bytes(payload), self._who(parsed))
