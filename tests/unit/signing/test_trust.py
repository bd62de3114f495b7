"""Trust policies: several keys and identities, any one of which may have signed (`mlsec verify --trust-policy`).

The OpenPubkey cases use tests/oidc_issuer.py, a STAND-IN for GitHub's OIDC token service on loopback.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from mlsec_actions.cli import main
from mlsec_actions.errors import InputError, UsageError
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing import key, trust
from mlsec_actions.signing import openpubkey as opk
from mlsec_actions.signing.interface import VerificationError, Verifier
from mlsec_actions.signing.statements import file_statement
from mlsec_actions.stages.verify import trusted_verifiers
from tests import oidc_issuer

STATEMENT = file_statement("artifact", hashlib.sha256(b"artifact").hexdigest())


def _keys(tmp_path: Path, *names: str) -> dict[str, tuple[Path, Path]]:
    out = {}
    for n in names:
        key.generate(tmp_path / f"{n}.pem", tmp_path / f"{n}.pub")
        out[n] = (tmp_path / f"{n}.pem", tmp_path / f"{n}.pub")
    return out


def _signed_file(tmp_path: Path, name: str, private: Path) -> Path:
    artifact = tmp_path / name
    artifact.write_bytes(b"weights of " + name.encode())
    assert main(["sign", "--backend", "key", "--key", str(private), str(artifact)]) == 0
    return artifact


def test_any_trusted_key_verifies_and_an_untrusted_one_names_every_refusal(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    keys = _keys(tmp_path, "old", "new", "other")
    by_old, by_new, by_other = (_signed_file(tmp_path, f"m-{n}.bin", keys[n][0]) for n in ("old", "new", "other"))
    trusted = ["--public-key", str(keys["old"][1]), "--public-key", str(keys["new"][1])]
    assert main(["verify", *trusted, str(by_old), str(by_new)]) == 0
    capsys.readouterr()
    assert main(["verify", *trusted, "--json", "-", str(by_other)]) == 1
    report = json.loads(capsys.readouterr().out)
    message = report["checks"][0]["message"]
    assert message.startswith("none of the 2 trusted signers of this kind verifies it: [1] signed by a different key")
    assert "[2] signed by a different key" in message
    # One trusted key: its own message, unwrapped.
    assert main(["verify", "--public-key", str(keys["old"][1]), str(by_new)]) == 1
    assert "verify: FAIL" in capsys.readouterr().err


def test_trust_policy_file_keys_are_relative_to_it(tmp_path: Path) -> None:
    keys = _keys(tmp_path, "a", "b")
    artifact = _signed_file(tmp_path, "model.bin", keys["b"][0])
    policy_dir = tmp_path / "policy"
    policy_dir.mkdir()
    (policy_dir / "keys").mkdir()
    (policy_dir / "keys" / "b.pub").write_bytes(keys["b"][1].read_bytes())
    (policy_dir / "trust.yml").write_text("signers:\n  - public-key: keys/b.pub\n    name: release key\n")
    assert main(["verify", "--trust-policy", str(policy_dir / "trust.yml"), str(artifact)]) == 0
    # The same file, trusting only key a: refused.
    (policy_dir / "keys" / "b.pub").write_bytes(keys["a"][1].read_bytes())
    assert main(["verify", "--trust-policy", str(policy_dir / "trust.yml"), str(artifact)]) == 1


@pytest.mark.parametrize(("text", "problem"), [
    ("signers: []\n", "line 1: signers: a non-empty list is required"),
    ("signers:\n  - public-key: k.pub\nextra: 1\n", "line 3: unknown key 'extra'"),
    ("signer:\n  - public-key: k.pub\n", "line 1: unknown key 'signer'"),
    ("- public-key: k.pub\n", "line 1: a mapping with one key, 'signers', is required"),
    ("signers:\n  - name: x\n", "line 2: signers[0]: 'public-key' or 'identity' is required"),
    ("signers:\n  - public-key: k.pub\n  - identity: https://x\n    issur: https://i\n",
     "line 4: signers[1]: unknown key 'issur'"),
    ("signers:\n  - identity: https://x\n", "line 2: issuer: a non-empty string is required"),
    ("signers:\n  - identity: https://x\n    issuer: ''\n", "line 2: issuer: a non-empty string is required"),
    ("signers:\n  - public-key: [a, b]\n", "line 2: public-key: a non-empty string is required"),
    ("signers:\n  - public-key: k.pub\n    event: push\n", "line 3: signers[0]: unknown key 'event'"),
    ("signers:\n  - 7\n", "line 2: signers[0]: a mapping is required"),
    ("signers:\n  - public-key: k.pub\n    name: 3\n", "line 2: name: a non-empty string is required"),
    ("~: 1\n7: 2\n", "line 2: unknown key '7'"),  # keys of types that do not sort together
    ("signers:\n  - public-key: k.pub\n    ~: 1\n    7: 2\n", "line 4: signers[0]: unknown key '7'"),
])
def test_a_bad_trust_policy_is_one_line_naming_file_line_and_key(tmp_path: Path, text: str, problem: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "trust.yml"
    path.write_text(text)
    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")  # entries before the broken one name a real key
    with pytest.raises(InputError) as e:
        trust.load_trust_policy(path)
    assert str(e.value) == f"{path}: trust policy {problem}"
    (tmp_path / "a").write_bytes(b"x")
    assert main(["verify", "--trust-policy", str(path), str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and problem in err[0]


def test_too_many_signers_and_no_signer_at_all_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "trust.yml"
    path.write_text("signers:\n" + "".join(f"  - public-key: k{i}.pub\n" for i in range(trust.MAX_SIGNERS + 1)))
    with pytest.raises(InputError, match=f"more than {trust.MAX_SIGNERS}"):
        trust.load_trust_policy(path)
    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")  # every key file is read when the policy is
    path.write_text("signers:\n" + "".join("  - public-key: k.pub\n" for i in range(trust.MAX_SIGNERS)))
    assert len(trust.load_trust_policy(path).keys) == trust.MAX_SIGNERS
    with pytest.raises(UsageError, match="say whom to trust"):
        trusted_verifiers()
    with pytest.raises(UsageError, match="--identity and --issuer go together"):
        trusted_verifiers(identity="https://x")
    with pytest.raises(ValueError, match="at least one signer"):
        trust.AnyOf([])


@pytest.fixture
def issuer(monkeypatch: pytest.MonkeyPatch) -> Iterator[oidc_issuer.Issuer]:
    with oidc_issuer.running_issuer() as running:
        for k, v in running.env().items():
            monkeypatch.setenv(k, v)
        yield running


def test_any_trusted_identity_verifies_an_openpubkey_bundle(issuer: oidc_issuer.Issuer, tmp_path: Path) -> None:
    bundle = opk.OpenPubkeySigner().sign_statement(STATEMENT)
    nightly = "https://github.com/octo-org/octo-repo/.github/workflows/nightly.yml@refs/heads/main"
    path = tmp_path / "trust.yml"
    path.write_text(f"signers:\n  - identity: {nightly}\n    issuer: {issuer.url}\n"
                    f"  - identity: {oidc_issuer.IDENTITY}\n    issuer: {issuer.url}\n"
                    f"    repository: {oidc_issuer.REPO}\n    event: push\n")
    [verifier] = trusted_verifiers(trust_policy=path)
    assert isinstance(verifier, trust.AnyOf)
    assert verifier.verify_dsse(bundle).payload == STATEMENT
    # The release identity, but a different event: neither entry verifies, and both say why.
    path.write_text(path.read_text().replace("event: push", "event: release"))
    [strict] = trusted_verifiers(trust_policy=path)
    with pytest.raises(VerificationError) as e:
        strict.verify_dsse(bundle)
    assert "[1] openpubkey: identity" in str(e.value) and "[2]" in str(e.value) and "release" in str(e.value)
    # A key-only policy does not even accept an OpenPubkey bundle.
    keys = _keys(tmp_path, "k1", "k2")
    [keys_only] = trusted_verifiers(public_keys=[keys["k1"][1], keys["k2"][1]])
    assert not keys_only.accepts(bundle) and keys_only.accepts(bl.read_bundle(
        _bundle_of(_signed_file(tmp_path, "x.bin", keys["k2"][0]))))


def _bundle_of(artifact: Path) -> Path:
    return artifact.parent / (artifact.name + ".sigstore.json")


def test_fetch_and_publish_build_identity_verifiers_without_crashing(issuer: oidc_issuer.Issuer) -> None:
    """fetch and publish used to pass verify a namespace without `event`: --identity crashed them."""
    from mlsec_actions.stages import fetch

    args = SimpleNamespace(public_key=None, identity=oidc_issuer.IDENTITY, issuer=issuer.url, trust_policy=None)
    verifiers = cast(list[Verifier], fetch._verifiers(args))
    assert [v.name for v in verifiers] == ["sigstore", "openpubkey"]
    bundle = opk.OpenPubkeySigner().sign_statement(STATEMENT)
    assert verifiers[1].verify_dsse(bundle).payload == STATEMENT


class _Fixed(Verifier):
    """A verifier that answers as told, to test AnyOf's choice of signer and its messages alone."""

    def __init__(self, answer: str, kind: str = "key") -> None:
        self.answer, self.kind = answer, kind
        self.calls: list[tuple[object, ...]] = []

    def accepts(self, bundle: Any) -> bool:
        return bool(bundle["kind"] == self.kind)

    def verify_message(self, bundle: Any, sha256: bytes) -> str:
        self.calls.append((bundle, sha256))
        if self.answer.startswith("refuse"):
            raise VerificationError(self.answer)
        return self.answer

    def verify_dsse(self, bundle: Any) -> Any:
        raise VerificationError(self.answer)


def test_any_of_asks_only_the_signers_of_the_bundles_kind_and_says_why_each_refused() -> None:
    bundle = {"kind": "key"}
    refusing, other_kind, signer = _Fixed("refuse: a different key"), _Fixed("x", "opk"), _Fixed("release key")
    assert trust.AnyOf([refusing, other_kind, signer]).verify_message(bundle, b"d" * 32) == "release key"
    assert refusing.calls == signer.calls == [(bundle, b"d" * 32)] and other_kind.calls == []
    with pytest.raises(VerificationError) as e:  # the only candidate of this kind: its own message
        trust.AnyOf([refusing, other_kind]).verify_message(bundle, b"d" * 32)
    assert str(e.value) == "refuse: a different key"
    with pytest.raises(VerificationError) as e:
        trust.AnyOf([refusing, _Fixed("refuse: identity does not match")]).verify_dsse(bundle)
    assert str(e.value) == ("none of the 2 trusted signers of this kind verifies it: [1] refuse: a different key; "
                            "[2] refuse: identity does not match")
    with pytest.raises(ValueError, match=r"^a trust policy needs at least one signer$"):
        trust.AnyOf([])


@pytest.mark.parametrize(("text", "problem"), [
    ("# who signs\nsigners: []\n", "line 2: signers: a non-empty list is required"),
    ("signers:\n  - public-key: k.pub\nzz: 1\n", "line 3: unknown key 'zz'"),  # sorts after 'signers'
    ("signers:\n  - public-key:\n", "line 2: public-key: a non-empty string is required"),
    ("signers:\n  - identity:\n    issuer: https://i\n", "line 2: identity: a non-empty string is required"),
    ("signers:\n  - identity: ''\n    issuer: https://i\n", "line 2: identity: a non-empty string is required"),
    ("signers:\n  - identity: https://x\n    issuer: https://i\n    repository: 1\n",
     "line 2: repository: a non-empty string is required"),
])
def test_more_trust_policy_refusals_name_the_line_and_key(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "trust.yml"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        trust.load_trust_policy(path)
    assert str(e.value) == f"{path}: trust policy {problem}"


def test_a_trust_policy_is_bounded_and_its_identity_constraints_are_all_read(tmp_path: Path) -> None:
    path = tmp_path / "trust.yml"
    path.write_text("signers:\n  - identity: https://x\n    issuer: https://i\n    repository: acme/models\n"
                    "    ref: refs/heads/main\n    event: push\n")
    assert trust.load_trust_policy(path).identities == (
        trust.Identity("https://x", "https://i", "acme/models", "refs/heads/main", "push"),)
    path.write_text("signers:\n  - public-key: k.pub\n" + "#" * (256 * 1024))
    with pytest.raises(InputError) as e:
        trust.load_trust_policy(path)
    assert str(e.value) == f"{path}: trust policy is {path.stat().st_size} bytes; the limit is {256 * 1024}"
    path.write_text("signers:\n" + "".join(f"  - public-key: k{i}.pub\n" for i in range(trust.MAX_SIGNERS + 1)))
    with pytest.raises(InputError) as e:
        trust.load_trust_policy(path)
    assert str(e.value) == f"{path}: trust policy: {trust.MAX_SIGNERS + 1} signers, more than {trust.MAX_SIGNERS}"
