"""A hostile repository, generated: every payload of issue 9's "What was seen" that lives in a checkout.

The attacker controls every byte of the tree, file names included. Each builder below plants one class
of payload and says which item of the issue it reproduces. Nothing here is committed: the tree is made
by the tests, in a temporary folder, with values that are random per build (so an output can only
contain them by leaking them).

Beside the root the builder makes an `outside` folder the root must never reach: `canaries/` (every
piece of hostile code writes a file there when it runs) and `secret.bin` (a file only symlinks in the
root point to; its random content must appear in no output).
"""

from __future__ import annotations

import os
import secrets
import string
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.tools.decoys import base62
from tests.adversarial import weak_inputs
from tests.adversarial.weak_inputs import WeakInputs
from tests.trees import deep_file

MARKER = "pwned"
"""In every injected workflow command, link and title: an output line holding it came from the tree."""
DEEP_LEVELS = 1000
"""Issue 9 item 9: a directory ~1,000 levels deep."""

# Issue 9 item 6: names that print a workflow command when a line holding them is printed raw.
INJECTING_NAMES = (
    f"p\n::error title={MARKER}::X\n.pkl",              # the reproduction
    f"q\r::warning title={MARKER}::CR.pkl",
    f"u\u2028::error title={MARKER}::LS.pkl",
    f"n\x85::error title={MARKER}::NEL.pkl",
    f"s\n::stop-commands::{MARKER}token\n.pkl",
    f"%0A::error title={MARKER}::escaped.pkl",
    f"l ##[error]{MARKER} legacy.pkl",
    f"<img src=x onerror=alert('{MARKER}')>.pkl",      # Markdown/HTML injection into the summary
    f"[{MARKER}](https:evil.example) ![{MARKER}](https:evil.example).pkl",
    f"--config={MARKER}.yaml",                          # argument injection into a tool's command line
    f"-o{MARKER}.pkl",
)
# A name that is not UTF-8 at all (bytes), as a checkout from a hostile git server can hold.
NON_UTF8_NAMES = (b"bad-\xff\xfe\n::error title=" + MARKER.encode() + b"::B.pkl", b"latin1-\xe9.pkl")
# Modules the interpreter would import from the current folder (issue 9 items 1 and 2).
SHADOW_MODULES = ("argparse.py", "json.py", "sitecustomize.py", "usercustomize.py", "typing_extensions.py",
                  "yaml/__init__.py", "pip/__init__.py", "pip/__main__.py", "venv/__init__.py",
                  "venv/__main__.py", "mlsec_actions/__init__.py", "mlsec_actions/__main__.py",
                  "modelscan/__init__.py", "jsonschema/__init__.py", "setup.py", "conftest.py")


@dataclass(frozen=True)
class HostileRepo:
    """The tree and what the tests check against."""

    root: Path
    """The checkout the stages scan."""
    outside: Path
    """A folder beside the root that nothing may read or write."""
    canaries: Path
    """Hostile code writes here when it runs: must stay empty."""
    outside_secret: Path
    """A file outside the root, pointed to by symlinks in the root."""
    outside_value: str
    """Its content: may appear in no output."""
    secrets: tuple[str, ...]
    """Secret values planted in the tree (Dockerfile ENV, Terraform, Kubernetes, .env, code, URLs)."""
    env_secret: str
    """A token the stages get in their environment; a symlink to /proc/self/environ tries to leak it."""
    permissive_policy: Path
    """The PR's own policy: one waiver for everything (issue 9 item 5), with an injecting owner."""
    bomb_policies: tuple[Path, ...]
    """Policies that exhaust a naive loader: billion laughs, depth 100k, deep block nesting, 60 MB, FIFO."""
    bomb_json: tuple[Path, ...]
    """JSON a naive loader chokes on (depth 100k, FIFO), as --garak-report / --metrics / SARIF."""
    fifo: Path
    """A FIFO in the tree (no writer: reading it blocks for ever)."""
    weak: WeakInputs
    """Issue 9 item 12: inputs a careless reader takes as clean (`weak_inputs.py`)."""


def _rand(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _canary_code(canaries: Path, name: str) -> str:
    target = canaries / name.replace("/", "_")
    return f"import pathlib\npathlib.Path({str(target)!r}).write_text('ran')\n"


def _pickle_global(module: str, name: str) -> bytes:
    """Protocol-4 pickle calling module.name(): STACK_GLOBAL takes any string, newlines included."""
    def short(s: str) -> bytes:
        raw = s.encode("utf-8", "surrogatepass")
        if len(raw) < 256:
            return b"\x8c" + struct.pack("<B", len(raw)) + raw
        return b"\x8d" + struct.pack("<Q", len(raw)) + raw

    return b"\x80\x04\x95" + struct.pack("<Q", 0) + short(module) + short(name) + b"\x93)R."


def _bad_pickle() -> bytes:
    """Not a pickle a loader accepts (truncated after a GLOBAL): modelscan reports it with a note."""
    return b"\x80\x02cos\nsystem\n(X\x05\x00\x00\x00"


def _shadow_modules(root: Path, canaries: Path) -> None:
    for rel in SHADOW_MODULES:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_canary_code(canaries, rel), encoding="utf-8")
    # uv reads these from the current folder: the repository would choose our package index (item 1).
    (root / "uv.toml").write_text('index-url = "http://127.0.0.1:9/simple"\n')
    (root / "pyproject.toml").write_text(
        '[project]\nname = "victim"\nversion = "0"\ndependencies = ["requests==2.0.0"]\n\n'
        '[tool.uv]\nindex-url = "http://127.0.0.1:9/simple"\n')
    (root / "pip.conf").write_text("[global]\nindex-url = http://127.0.0.1:9/simple\n")


def _scanner_config(root: Path) -> None:
    """Issue 9 item 4: files that would steer our scanners if they read their config from the tree."""
    rules = ["github-pat", "aws-access-key-id", "aws-secret-access-key", "generic-password",
             "DS-0002", "DS-0031", "AVD-DS-0002", "AVD-DS-0031", "DS002", "DS031"]
    (root / ".trivyignore").write_text("\n".join(rules) + "\n")
    (root / ".trivyignore.yaml").write_text("secrets:\n" + "".join(f"  - id: {r}\n" for r in rules)
                                            + "misconfigurations:\n  - id: DS-0002\n  - id: DS-0031\n")
    (root / "trivy.yaml").write_text("severity: [UNKNOWN]\nexit-code: 0\nscan:\n  scanners: [vuln]\n"
                                     "secret:\n  config: trivy-secret.yaml\n")
    (root / "trivy-secret.yaml").write_text(
        "disable-rules: [" + ", ".join(rules[:4]) + "]\nallow-rules:\n  - id: everything\n"
        "    description: allow all\n    path: '.*'\n")
    (root / "modelscan-settings.toml").write_text(
        "[modelscan]\nsupported_zip_extensions = []\n[modelscan.scanners]\n"
        '"modelscan.scanners.PickleUnsafeOpScan" = { enabled = false }\n')
    (root / ".checkov.yaml").write_text("skip-check:\n  - CKV_*\n")
    (root / ".gitleaks.toml").write_text("[allowlist]\npaths = ['''.*''']\n")
    (root / ".bandit").write_text("[bandit]\nskips = B101,B102,B301,B602\n")
    (root / ".semgrepignore").write_text("*\n")
    (root / ".semgrep.yml").write_text("rules: []\n")
    (root / ".semgrep").mkdir(exist_ok=True)
    (root / ".semgrep" / "settings.yml").write_text("has_shown_metrics_notification: true\n")
    (root / ".pre-commit-config.yaml").write_text(
        "repos:\n- repo: local\n  hooks:\n  - id: pwn\n    name: pwn\n    entry: sh -c 'touch PWNED'\n"
        "    language: system\n")


def _github_token() -> str:
    """A token with a valid CRC32 checksum, as GitHub issues them: one without is dropped as a placeholder."""
    body = _rand(string.ascii_letters + string.digits, 30)
    return "ghp_" + body + base62(zlib.crc32(body.encode()))


def _planted_secrets(root: Path) -> tuple[str, ...]:
    """Issue 9 item 7: values trivy results can carry in `region.snippet` and friends."""
    alnum = string.ascii_letters + string.digits
    github = _github_token()
    aws_id = "AKIA" + _rand(string.ascii_uppercase + "234567", 16)
    aws_secret = _rand(alnum + "/+", 40)
    db_password = "Pw" + _rand(alnum, 22)
    k8s_password = "Kp" + _rand(alnum, 22)
    dotenv = _github_token()
    index_token = "It" + _rand(alnum, 22)
    (root / "Dockerfile").write_text(f"FROM python:3.11\nENV GITHUB_TOKEN={github}\nUSER root\n"
                                     'CMD ["python", "app.py"]\n')
    (root / "infra").mkdir(exist_ok=True)
    (root / "infra" / "main.tf").write_text(
        'resource "aws_db_instance" "db" {\n  engine              = "postgres"\n'
        '  instance_class      = "db.t3.micro"\n  username            = "admin"\n'
        f'  password            = "{db_password}"\n  publicly_accessible = true\n'
        "  storage_encrypted   = false\n}\n"
        # Issue 9 item 4: an inline ignore comment trivy honours unless told otherwise (it cannot be).
        '#trivy:ignore:*\nresource "aws_s3_bucket" "data" {\n  bucket = "training-data"\n  acl    = "public-read"\n}\n')
    (root / "k8s").mkdir(exist_ok=True)
    (root / "k8s" / "deploy.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  selector:\n"
        "    matchLabels: {app: app}\n  template:\n    metadata:\n      labels: {app: app}\n    spec:\n"
        "      containers:\n      - name: app\n        image: nginx\n        env:\n"
        f"        - name: DB_PASSWORD\n          value: \"{k8s_password}\"\n"
        "        securityContext:\n          privileged: true\n")
    (root / "config.py").write_text(f'AWS_ACCESS_KEY_ID = "{aws_id}"\naws_secret_access_key = "{aws_secret}"\n')
    (root / ".env").write_text(f"GITHUB_TOKEN={dotenv}\n")
    (root / "requirements.txt").write_text(
        f"--extra-index-url https://deploy:{index_token}@pypi.internal.example/simple\nrequests==2.31.0\n")
    return (github, aws_id, aws_secret, db_password, k8s_password, dotenv, index_token)


def _models(root: Path) -> None:
    """Issue 9 item 6: names and pickle globals that inject workflow commands, links and images."""
    names = root / "names"
    names.mkdir()
    for name in INJECTING_NAMES:
        (names / name).write_bytes(_bad_pickle() if name.endswith(".pkl") else _pickle_global("os", "system"))
    for raw in NON_UTF8_NAMES:
        # A bytes path: pathlib cannot name a file that is not UTF-8 without surrogate tricks.
        with open(os.path.join(os.fsencode(names), raw), "wb") as f:  # noqa: PTH123, PTH118
            f.write(_bad_pickle())
    models = root / "models"
    models.mkdir()
    (models / "model.pkl").write_bytes(_pickle_global("os", "system"))
    (models / "links.pkl").write_bytes(_pickle_global(
        f"[{MARKER}](https://evil.example/a) ![{MARKER}](https://evil.example/i.png)",
        f"<img src=x onerror=alert('{MARKER}')>"))
    (models / "command.pkl").write_bytes(_pickle_global(
        f"os\n::error title={MARKER}::global\n", f"system\r\n::warning title={MARKER}::name"))
    (models / "stop.pkl").write_bytes(_pickle_global(f"x\n::stop-commands::{MARKER}\n", "y ##[error]z"))


def _links(root: Path, outside: Path, outside_secret: Path) -> None:
    """Issue 9 items 8 and 10: symlinks out of the root, to devices and in loops."""
    links = root / "links"
    links.mkdir()
    for name, target in (("shadow.pkl", "/etc/shadow"), ("etc", "/etc"), ("passwd.txt", "/etc/passwd"),
                         ("outside.pkl", str(outside_secret)), ("outside-dir", str(outside)),
                         ("environ.txt", "/proc/self/environ"), ("zero.pkl", "/dev/zero"),
                         ("urandom.npy", "/dev/urandom"), ("loop", "."), ("a", "b"), ("b", "a"),
                         ("up", "../..")):
        (links / name).symlink_to(target)
    (root / "models" / "escape.pkl").symlink_to("../../outside/secret.bin")


def _special_files(root: Path) -> Path:
    """Issue 9 item 9: a FIFO where a scanner expects a model and the SBOM a requirements file."""
    fifo = root / "models" / "stuck.pkl"
    os.mkfifo(fifo)
    os.mkfifo(root / "requirements-dev.txt")
    return fifo


def _deep_tree(root: Path) -> None:
    """Issue 9 item 9: ~1,000 nested folders with a malicious pickle at the bottom."""
    deep_file(root, DEEP_LEVELS, "bottom.pkl", _pickle_global("os", "system"))


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    rows = ['l0: &l0 "lol"']
    rows += [f"l{i}: &l{i} [{', '.join(f'*l{i - 1}' for _ in range(width))}]" for i in range(1, levels + 1)]
    return "\n".join(rows) + "\n"


def _policies(root: Path) -> tuple[Path, tuple[Path, ...], tuple[Path, ...]]:
    """Issue 9 items 5, 6 and 9: the PR's own permissive policy, and loader bombs."""
    gh = root / ".github"
    gh.mkdir()
    permissive = gh / "mlsec-policy.yml"
    permissive.write_text(
        "version: 1\nwaivers:\n"
        "  - rule: '*'\n    path: '**'\n    reason: x\n"
        f"    owner: \"bob\\n::error title={MARKER}::waiver owner\\n\"\n    expires: 9999-12-31\n")
    (gh / "mlsec.yml").write_text("gate:\n  policy: .github/mlsec-policy.yml\n")
    bombs = root / "bombs"
    bombs.mkdir()
    laughs = bombs / "laughs.yml"
    laughs.write_text(billion_laughs())
    deep_flow = bombs / "deep-flow.yml"
    deep_flow.write_text("[" * 100_000 + "]" * 100_000)
    deep_block = bombs / "deep-block.yml"
    deep_block.write_text("".join(" " * i + "a:\n" for i in range(1_400)))
    big = bombs / "big.yml"
    with big.open("wb") as f:  # 60 MB (sparse): the size a naive loader took 400 s and 7 GB on
        f.write(b"waivers:\n- ")
        f.truncate(60_000_000)
    fifo_policy = bombs / "fifo.yml"
    os.mkfifo(fifo_policy)
    deep_json = bombs / "deep.json"
    deep_json.write_text('{"a": ' * 100_000 + "1" + "}" * 100_000)
    fifo_json = bombs / "fifo.json"
    os.mkfifo(fifo_json)
    return permissive, (laughs, deep_flow, deep_block, big, fifo_policy), (deep_json, fifo_json)


def _stale_results(root: Path) -> None:
    """Results committed to the tree, where `mlsec run`'s default --out would put ours: a clean SARIF
    without this run's id and a passing verdict (the gate must only read SARIF made in this run)."""
    sarif = root / "mlsec-results" / "sarif"
    sarif.mkdir(parents=True)
    (sarif / "code-scan.sarif").write_text(
        '{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "trivy", "rules": []}}, "results": [],'
        ' "invocations": [{"executionSuccessful": true}], "properties": {"mlsec-stage": "code-scan"}}]}')
    (root / "mlsec-results" / "verdict.json").write_text('{"verdict": "pass", "violations": []}')


def build(base: Path) -> HostileRepo:
    """Make the hostile repository under `base/repo` and its `base/outside` folder."""
    root, outside = base / "repo", base / "outside"
    canaries = outside / "canaries"
    canaries.mkdir(parents=True)
    root.mkdir()
    outside_value = "OUTSIDE-" + _rand(string.ascii_letters + string.digits, 40)
    outside_secret = outside / "secret.bin"
    outside_secret.write_text(outside_value)
    _shadow_modules(root, canaries)
    _scanner_config(root)
    planted = _planted_secrets(root)
    _models(root)
    _links(root, outside, outside_secret)
    fifo = _special_files(root)
    _deep_tree(root)
    permissive, bomb_policies, bomb_json = _policies(root)
    _stale_results(root)
    weak = weak_inputs.build(root, base / "between-jobs")
    return HostileRepo(root=root, outside=outside, canaries=canaries, outside_secret=outside_secret,
                       outside_value=outside_value, secrets=planted,
                       env_secret="ghs_" + _rand(string.ascii_letters + string.digits, 36),
                       permissive_policy=permissive, bomb_policies=bomb_policies, bomb_json=bomb_json, fifo=fifo,
                       weak=weak)


def key_pair(folder: Path) -> Path:
    """A PEM key pair of the caller (not the attacker) made with `cryptography` (the sign extra):
    `key.pem` and `key.pub` in `folder`; returns the private key's path."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    key = folder / "key.pem"
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    key.with_suffix(".pub").write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key
