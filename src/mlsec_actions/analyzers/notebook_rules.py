"""The notebook-scan rules of our own (`notebook/<name>`): risky shell and magics, secrets set in the
environment, credential files read from fixed paths, and notebook hygiene (committed outputs, hidden
state, home paths). Secrets use code-scan's rules (`secret/...`), Python risks the ML SAST rules
(`ml/...`) and personal data the `pii/...` rules of data-scan: shared, never copied."""

from __future__ import annotations

from dataclasses import dataclass

from mlsec_actions.analyzers.base import DOCS
from mlsec_actions.findings import Rule, Severity

NOTEBOOK_DOCS = DOCS + "notebook-scan.md"


@dataclass(frozen=True)
class NbRule:
    """One check and its SARIF rule."""

    rule: Rule
    """The SARIF rule."""
    severity: Severity
    """Severity of a finding."""


def _r(name: str, short: str, full: str, fix: str, severity: Severity, *tags: str) -> NbRule:
    rid = f"notebook/{name}"
    return NbRule(Rule(id=rid, name="Notebook" + "".join(w.title() for w in name.split("-")), short_description=short,
                       full_description=full, help_text=fix, help_uri=f"{NOTEBOOK_DOCS}#{rid.replace('/', '')}",
                       tags=("notebook", *tags)), severity)


MALFORMED = _r("malformed", "Notebook not read: malformed or unsupported",
               "The .ipynb file is not a JSON notebook of nbformat 4 (broken JSON, nested too deeply, not UTF-8, or "
               "an old format), so none of its cells or outputs were checked.",
               "Repair or convert it (`jupyter nbconvert --to notebook`), or remove it from the repository.",
               Severity.MEDIUM, "coverage")
TOO_LARGE = _r("too-large", "Notebook or output too large to scan in full",
               "A notebook larger than the size limit was not read, or an output's text was cut at the per-output "
               "limit: what lies past it was not checked for secrets or personal data.",
               "Clear the outputs (`jupyter nbconvert --clear-output`), or raise --max-notebook-mb / "
               "--max-output-kb if the size is expected.", Severity.MEDIUM, "coverage")
CURL_SHELL = _r("curl-pipe-shell", "Download piped into a shell",
                "A shell line (`!curl ... | sh`, a %%bash cell) runs whatever the server sends, with the notebook "
                "user's rights: a changed or hijacked URL runs code on the data scientist's machine or the runner.",
                "Download to a file, check its SHA-256 against a pinned value, then run it; or install from a "
                "package manager with pinned versions.", Severity.HIGH, "supply-chain", "external/cwe/cwe-494")
UNPINNED_PIP = _r("unpinned-install", "Package installed from a notebook without a pinned version",
                  "`%pip install`, `!pip install` or `conda install` without `==version` installs whatever is newest "
                  "when the cell runs: typosquats and hijacked releases come in this way, and results are not "
                  "reproducible.",
                  "Pin every package (`pkg==1.2.3`, ideally with `--require-hashes` from a requirements file), or "
                  "install from the project's lock file.", Severity.MEDIUM, "supply-chain", "external/cwe/cwe-1104")
TLS_OFF = _r("tls-disabled", "TLS verification turned off in a shell line or code",
             "`curl -k`, `wget --no-check-certificate`, `pip --trusted-host` or an unverified SSL context accept any "
             "certificate: data, models and packages fetched this way can be swapped in transit.",
             "Remove the flag; point the tool at the right CA bundle for private endpoints.", Severity.MEDIUM,
             "external/cwe/cwe-295")
ENV_SECRET = _r("env-secret", "Secret set in the environment from the notebook",
                "`%env API_KEY=...` or `os.environ['API_KEY'] = '...'` writes the credential into the notebook "
                "(and often its outputs) for everyone with read access.",
                "Revoke and rotate it; read it at run time from a secret store or an environment the notebook "
                "does not contain (`getpass`, a .env file that is git-ignored).", Severity.HIGH, "secret",
                "external/cwe/cwe-798")
CREDENTIAL_FILE = _r("credential-file", "Credentials read from a fixed path",
                     "Code reads a credential file from a hard-coded place (`~/.aws/credentials`, `~/.ssh/id_rsa`, "
                     "`.netrc`, `kaggle.json`): it ties the notebook to one user's secrets, and its outputs tend to "
                     "show them.",
                     "Use the SDK's own credential chain or a secret store; never print credential files.",
                     Severity.MEDIUM, "secret", "external/cwe/cwe-522")
OUTPUTS = _r("outputs-committed", "Notebook committed with outputs",
             "Outputs are data: printed frames, tracebacks, tokens echoed by a login cell. Committed, they are "
             "reviewed by no one and kept in the history for ever.",
             "Clear outputs before committing (`jupyter nbconvert --clear-output --inplace`, or nbstripout as a "
             "pre-commit hook).", Severity.LOW, "hygiene")
EXEC_ORDER = _r("execution-order", "Cells executed out of order (hidden state)",
                "The execution counts of the code cells do not increase from top to bottom: the outputs came from "
                "state that running the notebook from the top would not rebuild.",
                "Restart the kernel and run all cells before committing.", Severity.LOW, "hygiene")
HOME_PATH = _r("home-path", "User name or home folder leaked in metadata or outputs",
               "A path such as /home/<user>/ or C:\\Users\\<user>\\ in the kernel metadata or an output (tracebacks, "
               "warnings) tells readers the user name and folder layout of the machine that ran it.",
               "Clear outputs; strip local metadata (nbstripout does both).", Severity.LOW, "hygiene", "privacy")
WIDGET_STATE = _r("widget-state", "Widget state saved in the notebook",
                  "Saved ipywidgets state holds the values the widgets had (text fields, selections, sometimes "
                  "tokens typed into a login widget).",
                  "Do not save widget state (Jupyter: Widgets > Save notebook widget state off) or strip it.",
                  Severity.INFO, "hygiene")

RULES: tuple[Rule, ...] = tuple(r.rule for r in (MALFORMED, TOO_LARGE, CURL_SHELL, UNPINNED_PIP, TLS_OFF, ENV_SECRET,
                                                  CREDENTIAL_FILE, OUTPUTS, EXEC_ORDER, HOME_PATH, WIDGET_STATE))
"""Every notebook rule."""
