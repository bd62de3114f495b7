"""Trust-policy matching: anchored globs, where wildcards may stand, key types, and which entry verified.

The OpenPubkey cases use tests/oidc_issuer.py, a STAND-IN for GitHub's OIDC token service on loopback; the
keyless cases use the real GitHub Actions bundle in tests/fixtures/sigstore/ (offline trust root).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mlsec_actions.cli import main
from mlsec_actions.errors import InputError, UsageError
from mlsec_actions.signing import key, patterns, trust
from mlsec_actions.signing import openpubkey as opk
from mlsec_actions.signing.interface import VerificationError
from mlsec_actions.signing.statements import file_statement
from mlsec_actions.stages.verify import trusted_verifiers
from tests import oidc_issuer

STATEMENT = file_statement("artifact", hashlib.sha256(b"artifact").hexdigest())
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sigstore"
GH_ISSUER = "https://token.actions.githubusercontent.com"
GH_IDENTITY = "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("https://github.com/acme/m/.github/workflows/release.yml@refs/heads/main",
     "https://github.com/acme/m/.github/workflows/release.yml@refs/heads/main", True),
    # Anchored: a pattern that is only a part of the value never matches.
    ("https://github.com/acme/m/.github/workflows/release.yml@refs/heads/main",
     "https://github.com/acme/m/.github/workflows/release.yml@refs/heads/main-evil", False),
    ("https://github.com/acme/m/*", "https://evil.example/?https://github.com/acme/m/x", False),
    ("https://github.com/acme/m/*", "https://github.com/acme/m/x", True),
    ("https://github.com/acme/m/*", "https://github.com/acme/m/x/y", False),  # * stops at /
    ("https://github.com/acme/m/**", "https://github.com/acme/m/x/y", True),
    ("https://github.com/acme/m/**", "https://github.com/acme/m-evil/x", False),
    ("https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*",
     "https://github.com/acme/models/.github/workflows/release.yml@refs/tags/v1.2", True),
    ("https://github.com/acme/*/.github/workflows/release.yml@refs/tags/v*",
     "https://github.com/acme/models/.github/workflows/release.yml@refs/heads/v1", False),
    ("https://github.com/acme/*/x", "https://github.com/acme//x", True),  # * may match nothing
    ("https://github.com/acme/a*b*c", "https://github.com/acme/aXbYbZc", True),
    ("https://github.com/acme/a*b*c", "https://github.com/acme/aXbYbZcd", False),
    # Everything but * and ** is literal: no regex, no fnmatch class.
    ("https://github.com/acme/m.yml*", "https://github.com/acme/mXyml", False),
    ("https://github.com/acme/[ab]*", "https://github.com/acme/a", False),
    ("https://github.com/acme/[ab]*", "https://github.com/acme/[ab]x", True),
    ("https://github.com/acme/?*", "https://github.com/acme/x", False),
    ("refs/tags/v*", "refs/tags/v1.0", True),
    ("refs/tags/v*", "refs/tags/v1/evil", False),
    ("acme/*", "acme/models", True),
    ("acme/*", "acme-evil/models", False),
    ("", "", True),
    ("x", "", False),
])
def test_patterns_match_whole_values_only(pattern: str, value: str, expected: bool) -> None:
    assert patterns.glob(pattern).matches(value) is expected


def test_matching_is_linear_in_a_hostile_pattern() -> None:
    # A backtracking matcher takes exponential time here; the set-of-states walk does not.
    hostile = "https://github.com/acme/" + "*a" * 200 + "b"
    assert not patterns.glob(hostile).matches("https://github.com/acme/" + "a" * 1000)


@pytest.mark.parametrize(("text", "field", "problem"), [
    ("*", "identity", "a wildcard-only identity would trust every signer of the issuer"),
    ("**", "identity", "a wildcard-only identity would trust every signer of the issuer"),
    ("https://github.com/*/m/x", "identity", "a wildcard may follow only a literal https://HOST/OWNER/"),
    ("https://github.com/acme*", "identity", "a wildcard may follow only a literal https://HOST/OWNER/"),
    ("https://*.github.com/acme/x", "identity", "a wildcard may follow only a literal https://HOST/OWNER/"),
    ("https://github.com/**", "identity", "a wildcard may follow only a literal https://HOST/OWNER/"),
    ("repo:acme/*", "identity", "a wildcard may follow only a literal https://HOST/OWNER/"),
    ("https://github.com/acme/***", "identity", "'***' is ambiguous"),
    ("*", "repository", "a wildcard-only repository matches every value"),
    ("*/models", "repository", "a wildcard may follow only a literal OWNER/"),
    ("acme*", "repository", "a wildcard may follow only a literal OWNER/"),
    ("**", "ref", "a wildcard-only ref matches every value"),
    ("https://token.actions.githubusercontent.com/*", "issuer", "the issuer is compared exactly"),
    ("push*", "event", "the event is compared exactly"),
    ("https://github.com/acme/" + "x" * patterns.MAX_LENGTH, "identity", "longer than"),
])
def test_dangerous_patterns_are_refused(text: str, field: str, problem: str) -> None:
    with pytest.raises(ValueError, match=r"^" + problem.replace("*", r"\*").replace("/", "/")):
        patterns.parse(text, field)


@pytest.mark.parametrize(("text", "field"), [
    ("https://github.com/acme/*", "identity"), ("https://github.com/acme/**", "identity"),
    ("acme/*", "repository"), ("refs/tags/*", "ref"), ("repo:acme/m:ref:refs/heads/main", "identity"),
])
def test_patterns_that_name_the_owner_are_allowed(text: str, field: str) -> None:
    assert patterns.parse(text, field).text == text


def _write_pub(path: Path, public: object) -> Path:
    assert isinstance(public, rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey)
    path.write_bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


@pytest.mark.parametrize(("text", "problem"), [
    ("signers:\n  - identity: '*'\n    issuer: https://i\n",
     "line 2: signers[0]: identity: a wildcard-only identity would trust every signer of the issuer"),
    ("signers:\n  - identity: https://github.com/acme/x\n    issuer: 'https://*'\n",
     "line 3: signers[0]: issuer: the issuer is compared exactly: wildcards are not allowed"),
    ("signers:\n  - identity: https://github.com/acme/x\n    issuer: https://i\n    repository: '*/x'\n",
     "line 4: signers[0]: repository: a wildcard may follow only a literal OWNER/"),
    ("signers:\n  - identity: https://github.com/acme/x\n    issuer: https://i\n    ref: '*'\n",
     "line 4: signers[0]: ref: a wildcard-only ref matches every value"),
    ("signers:\n  - public-key: rsa.pub\n", "line 2: signers[0]: public-key: {dir}/rsa.pub: not an ECDSA P-256 key"),
    ("signers:\n  - public-key: ok.pub\n  - public-key: ed.pub\n",
     "line 3: signers[1]: public-key: {dir}/ed.pub: not an ECDSA P-256 key"),
    ("signers:\n  - public-key: p384.pub\n", "line 2: signers[0]: public-key: {dir}/p384.pub: not an ECDSA P-256 key"),
    ("signers:\n  - public-key: junk.pub\n", "line 2: signers[0]: public-key: {dir}/junk.pub: not a PEM public key"),
    ("signers:\n  - public-key: gone.pub\n", "line 2: signers[0]: public-key: {dir}/gone.pub: cannot read"),
    # JSON is YAML: a JSON policy is read the same way, with its lines.
    ('{"signers": [\n  {"identity": "**",\n   "issuer": "https://i"}]}\n',
     "line 2: signers[0]: identity: a wildcard-only identity"),
])
def test_a_refused_pattern_or_key_type_is_one_line_naming_file_line_and_key(
        tmp_path: Path, text: str, problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    _write_pub(tmp_path / "rsa.pub", rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())
    _write_pub(tmp_path / "ed.pub", ed25519.Ed25519PrivateKey.generate().public_key())
    _write_pub(tmp_path / "p384.pub", ec.generate_private_key(ec.SECP384R1()).public_key())
    _write_pub(tmp_path / "ok.pub", ec.generate_private_key(ec.SECP256R1()).public_key())
    (tmp_path / "junk.pub").write_text("not a key\n")
    path = tmp_path / "trust.yml"
    path.write_text(text)
    problem = problem.format(dir=tmp_path)
    with pytest.raises(InputError) as e:
        trust.load_trust_policy(path)
    assert str(e.value).startswith(f"{path}: trust policy {problem}")
    (tmp_path / "a").write_bytes(b"x")
    assert main(["verify", "--trust-policy", str(path), str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and problem in err[0]


def test_a_json_policy_verifies_and_json_output_names_the_entry_that_matched(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for n in ("old", "new", "stranger"):
        key.generate(tmp_path / f"{n}.pem", tmp_path / f"{n}.pub")
    (tmp_path / "by-new.bin").write_bytes(b"new weights")
    (tmp_path / "by-stranger.bin").write_bytes(b"stranger weights")
    assert main(["sign", "--backend", "key", "--key", str(tmp_path / "new.pem"), str(tmp_path / "by-new.bin")]) == 0
    assert main(["sign", "--backend", "key", "--key", str(tmp_path / "stranger.pem"),
                 str(tmp_path / "by-stranger.bin")]) == 0
    policy = tmp_path / "trust.json"
    policy.write_text(json.dumps({"signers": [{"public-key": "old.pub", "name": "release 2025"},
                                              {"public-key": "new.pub", "name": "release 2026"}]}))
    capsys.readouterr()
    # The trusted signer's bundle passes and names its entry; the untrusted key's bundle beside it fails.
    assert main(["verify", "--trust-policy", str(policy), "--json", "-", str(tmp_path / "by-new.bin"),
                 str(tmp_path / "by-stranger.bin")]) == 1
    out = capsys.readouterr()
    good, bad = json.loads(out.out)["checks"]
    assert good["ok"] and good["trusted"] == f"{policy} signers[1] (release 2026)"
    assert f"(trusted as {policy} signers[1] (release 2026))" in out.err
    assert not bad["ok"] and bad["trusted"] == "" and bad["message"].startswith("none of the 2 trusted signers")
    # From the command line, the entry is the option that named the key.
    assert main(["verify", "--public-key", str(tmp_path / "old.pub"), "--public-key", str(tmp_path / "new.pub"),
                 "--json", "-", str(tmp_path / "by-new.bin")]) == 0
    assert json.loads(capsys.readouterr().out)["checks"][0]["trusted"] == f"--public-key {tmp_path / 'new.pub'}"


@pytest.fixture
def issuer(monkeypatch: pytest.MonkeyPatch) -> Iterator[oidc_issuer.Issuer]:
    with oidc_issuer.running_issuer() as running:
        for k, v in running.env().items():
            monkeypatch.setenv(k, v)
        yield running


def test_openpubkey_identity_globs_are_anchored(issuer: oidc_issuer.Issuer, tmp_path: Path) -> None:
    bundle = opk.OpenPubkeySigner().sign_statement(STATEMENT)
    path = tmp_path / "trust.yml"
    owner = oidc_issuer.REPO.split("/")[0]

    def verdict(identity: str, extra: str = "") -> str:
        path.write_text(f"signers:\n  - identity: '{identity}'\n    issuer: {issuer.url}\n{extra}"
                        f"  - public-key: k.pub\n")
        [verifier] = [v for v in trusted_verifiers(trust_policy=path) if v.accepts(bundle)]
        try:
            return verifier.verify_dsse_trusted(bundle).trusted
        except VerificationError as e:
            return f"refused: {e}"

    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    entry = f"{path} signers[0]"
    assert verdict(f"https://github.com/{owner}/*/.github/workflows/release.yml@refs/heads/*") == entry
    assert verdict(f"https://github.com/{owner}/**") == entry
    # Each of these is a part of the token's identity: only an unanchored match would accept it.
    for part in (oidc_issuer.IDENTITY[:-1], oidc_issuer.WORKFLOW_REF,
                 f"https://github.com/{owner}/*", oidc_issuer.IDENTITY.removesuffix("main") + "mai*n2"):
        assert verdict(part).startswith("refused: openpubkey: identity"), part
    assert verdict(oidc_issuer.IDENTITY, f"    repository: {owner}/*\n    ref: refs/heads/*\n") == entry
    assert "token repository" in verdict(oidc_issuer.IDENTITY, f"    repository: {oidc_issuer.REPO[:-1]}\n")
    assert "token ref" in verdict(oidc_issuer.IDENTITY, "    ref: refs/heads/mai\n")
    assert "token ref" in verdict(oidc_issuer.IDENTITY, "    ref: refs/*\n")  # * does not cross /


def test_cli_identities_repeat_share_one_issuer_and_are_checked(issuer: oidc_issuer.Issuer, tmp_path: Path) -> None:
    bundle = opk.OpenPubkeySigner().sign_statement(STATEMENT)
    nightly = oidc_issuer.IDENTITY.replace("release.yml", "nightly.yml")
    [verifier] = trusted_verifiers(identity=[nightly, oidc_issuer.IDENTITY], issuer=[issuer.url])
    assert verifier.verify_dsse_trusted(bundle).trusted == f"--identity {oidc_issuer.IDENTITY}"
    [paired] = trusted_verifiers(identity=[oidc_issuer.IDENTITY, nightly], issuer=["https://other", issuer.url])
    with pytest.raises(VerificationError, match=r"\[1\] openpubkey: issuer.*\[2\] openpubkey: identity"):
        paired.verify_dsse(bundle)
    with pytest.raises(UsageError, match="2 --identity and 3 --issuer"):
        trusted_verifiers(identity=["https://a/b/c", "https://a/b/d"], issuer=["https://i"] * 3)
    with pytest.raises(UsageError, match=r"^--identity '\*\*': a wildcard-only identity"):
        trusted_verifiers(identity=["**"], issuer=["https://i"])
    with pytest.raises(UsageError, match=r"^--repository '\*': a wildcard-only repository"):
        trusted_verifiers(identity=[nightly], issuer=["https://i"], repository="*")
    assert main(["verify", "--identity", "*", "--issuer", "https://i", str(tmp_path)]) == 2


@pytest.fixture
def gh_bundle(tmp_path: Path) -> Path:
    art = tmp_path / "bundle_v3_github.whl"
    shutil.copyfile(FIXTURES / "bundle_v3_github.whl", art)
    shutil.copyfile(FIXTURES / "bundle_v3_github.whl.sigstore", tmp_path / "bundle_v3_github.whl.sigstore.json")
    return art


@pytest.mark.parametrize(("identity", "extra", "ok"), [
    ("https://github.com/trailofbits/*/.github/workflows/release.yml@refs/tags/v*", [], True),
    ("https://github.com/trailofbits/**", ["--repository", "trailofbits/*", "--ref", "refs/tags/v0.*"], True),
    ("https://github.com/trailofbits/*", [], False),  # one segment: * does not cross /
    ("https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1", [], False),
    ("https://github.com/trailofbits/**", ["--repository", "trailofbits/rfc8785"], False),
    ("https://github.com/trailofbits/**", ["--ref", "refs/tags/v0.1"], False),
    ("https://github.com/trailofbits/**", ["--ref", "refs/*"], False),
])
def test_keyless_identity_globs_are_anchored(gh_bundle: Path, identity: str, extra: list[str], ok: bool,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", "--identity", identity, "--issuer", GH_ISSUER, *extra, "--offline", "--json", "-",
                 str(gh_bundle)])
    [check] = json.loads(capsys.readouterr().out)["checks"]
    assert (code, check["ok"]) == ((0, True) if ok else (1, False)), check["message"]
    if ok:  # the signer is the certificate's identity, not the pattern
        assert check["signer"] == f"{GH_IDENTITY} ({GH_ISSUER})" and check["trusted"] == f"--identity {identity}"
    else:
        assert "keyless verification failed" in check["message"]
