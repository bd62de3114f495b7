"""What the training command runs with: a scrubbed environment, and its interpreter's packages, recorded.

The command is repository code. It starts without the runner's credentials (GitHub tokens, the OIDC request
variables, cloud and signing secrets, our own `MLSEC_*` options) unless the caller passes one by name.
Its interpreter's version and installed packages are read by running that interpreter in isolated mode
with a fixed snippet of ours (`-I -c`), bounded in time and output.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.tools import process

_SECRET_NAME = re.compile(r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|PRIVATE_KEY|API_KEY|ACCESS_KEY)(_|$)", re.I)
DROPPED_PREFIXES = ("ACTIONS_", "MLSEC_", "GITHUB_TOKEN", "AWS_", "AZURE_", "GOOGLE_", "VAULT_", "SIGSTORE_")
"""Variables the training command never sees unless passed by name (`--pass-env`)."""
KEPT = frozenset({"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM",
                  "VIRTUAL_ENV", "CI", "GITHUB_ACTIONS", "GITHUB_SHA", "GITHUB_REF", "GITHUB_REPOSITORY",
                  "GITHUB_RUN_ID", "GITHUB_WORKSPACE", "RUNNER_OS", "RUNNER_ARCH", "RUNNER_TEMP",
                  "ImageOS", "ImageVersion", "PYTHONHASHSEED", "OMP_NUM_THREADS"})
"""Variables always kept (when set): what a training script legitimately reads."""
# Name and Version from each distribution's metadata header by line, as `d.metadata.get` finds them (the first of
# each, field names case-insensitive, the value less leading blanks), without the e-mail parser: it cost 0.2 s of
# CPU on 200 distributions (tests/unit/test_train_probe.py compares both).
_PROBE = ("import importlib.metadata as m, json, platform, sys\n"
          "pk = {}\n"
          "for d in m.distributions():\n"
          "    f = {}\n"
          "    for line in (d.read_text('METADATA') or d.read_text('PKG-INFO') or '').split('\\n'):\n"
          "        line = line.rstrip('\\r')\n"
          "        if not line: break\n"
          "        k, s, v = line.partition(':')\n"
          "        k = k.lower()\n"
          "        if s and k in ('name', 'version') and k not in f: f[k] = v.lstrip(' \\t')\n"
          "    n = f.get('name')\n"
          "    if n: pk[str(n).lower()] = str(f.get('version'))\n"
          "print(json.dumps({'python': platform.python_version(), 'implementation': platform.python_implementation(),"
          " 'executable': sys.executable, 'packages': pk}))\n")
_PROBE_TIMEOUT = 60.0
_PROBE_MAX_OUTPUT = 4 * 1024 * 1024


def training_env(pass_env: Sequence[str] = (), extra: Mapping[str, str] | None = None,
                 base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The command's environment: ours, less credentials and `MLSEC_*`, plus `pass_env` names, plus `extra`."""
    source = os.environ if base is None else base
    env = {}
    for name, value in source.items():
        if name in KEPT or (not name.startswith(DROPPED_PREFIXES) and not _SECRET_NAME.search(name)):
            env[name] = value
    for name in pass_env:
        if name in source:
            env[name] = source[name]
    ours = str(Path(sys.executable).parent)
    if "PATH" in env:  # the command runs with its own interpreter, not inside our tool venv
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p and p != ours)
    env.update(extra or {})
    return env


def dropped(env: Mapping[str, str], base: Mapping[str, str] | None = None) -> list[str]:
    """Names of the variables left out (recorded in the provenance, never their values)."""
    source = os.environ if base is None else base
    return sorted(k for k in source if k not in env)


@dataclass(frozen=True)
class Interpreter:
    """The training interpreter, as it reports itself."""

    python: str
    """Its version, e.g. 3.11.7."""
    implementation: str
    """CPython, PyPy..."""
    executable: str
    """Its `sys.executable`."""
    packages: tuple[tuple[str, str], ...]
    """(lower-case distribution name, version), sorted."""


def interpreter_of(command: Sequence[str], explicit: str | None) -> str | None:
    """The interpreter to describe: `--python`, else the command's own program when it is a Python."""
    if explicit:
        return explicit
    program = Path(command[0]).name if command else ""
    return command[0] if re.fullmatch(r"python(\d+(\.\d+)?)?", program) else None


def probe(python: str, cwd: Path, env: Mapping[str, str]) -> Interpreter | str:
    """Ask `python` for its version and packages; a problem comes back as the reason (text)."""
    try:
        done = process.run([python, "-I", "-c", _PROBE], cwd=cwd, env=env, timeout=_PROBE_TIMEOUT,
                           max_stdout=_PROBE_MAX_OUTPUT)
    except OSError as e:
        return f"cannot start {python}: {e.strerror or e}"
    if done.returncode != 0:
        return f"{python} exited {done.returncode} when asked for its packages"
    try:
        doc = json.loads(done.stdout)
        packages = tuple(sorted((str(k)[:200], str(v)[:100]) for k, v in doc["packages"].items()))
        return Interpreter(str(doc["python"])[:50], str(doc["implementation"])[:50], str(doc["executable"])[:4096],
                           packages)
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"{python} did not describe itself (not the expected JSON)"


def ours() -> str:
    """This interpreter's version, for the builder record."""
    return ".".join(map(str, sys.version_info[:3]))
