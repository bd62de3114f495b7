"""The in-house ML SAST rules (`ml/<name>`): unsafe model loading, remote code, unsafe parsing, shells,
TLS, archives, unpinned hub downloads and exposed demo apps in Python code. One SARIF rule each; the
help link is its section of docs/code-scan.md."""

from __future__ import annotations

from dataclasses import dataclass

from mlsec_actions.analyzers.secrets_rules import CODE_SCAN_DOCS
from mlsec_actions.findings import Rule, Severity


@dataclass(frozen=True)
class MlRule:
    """One check and its SARIF rule."""

    rule: Rule
    """The SARIF rule."""
    severity: Severity
    """Severity of a finding."""


def _r(name: str, short: str, full: str, fix: str, severity: Severity, *tags: str) -> MlRule:
    rid = f"ml/{name}"
    return MlRule(Rule(id=rid, name="Ml" + "".join(w.title() for w in name.split("-")), short_description=short,
                       full_description=full, help_text=fix, help_uri=f"{CODE_SCAN_DOCS}#{rid.replace('/', '')}",
                       tags=("sast", "python", "ml", *tags)), severity)


PICKLE_LOAD = _r("pickle-load", "Pickle-based deserialization of a file or bytes",
                 "pickle, cPickle, dill, cloudpickle, joblib and pandas.read_pickle run code chosen by whoever wrote "
                 "the data: loading a model or dataset this way executes it.",
                 "Load weights with safetensors (or torch.load(..., weights_only=True)); never unpickle data you did "
                 "not produce in the same trust boundary.", Severity.HIGH, "deserialization", "external/cwe/cwe-502")
TORCH_LOAD = _r("torch-load", "torch.load without weights_only=True",
                "torch.load unpickles the checkpoint unless weights_only=True: a malicious .pt file runs code.",
                "Pass weights_only=True, or store weights as safetensors.", Severity.HIGH, "deserialization",
                "external/cwe/cwe-502")
NUMPY_PICKLE = _r("numpy-allow-pickle", "numpy.load with allow_pickle=True",
                  "allow_pickle=True lets a .npy/.npz file carry pickled objects, which run code when loaded.",
                  "Drop allow_pickle=True; store object data in a format that cannot execute.", Severity.HIGH,
                  "deserialization", "external/cwe/cwe-502")
REMOTE_CODE = _r("trust-remote-code", "trust_remote_code=True",
                 "trust_remote_code=True downloads and runs Python from the model repository.",
                 "Use a model class that ships with the library, or vendor and review the code and pin the revision.",
                 Severity.HIGH, "supply-chain", "external/cwe/cwe-94")
YAML_LOAD = _r("yaml-unsafe-load", "yaml.load without a safe loader",
               "yaml.load with the default, full or unsafe loader builds arbitrary Python objects from the document.",
               "Use yaml.safe_load, or yaml.load(data, Loader=yaml.SafeLoader).", Severity.HIGH, "deserialization",
               "external/cwe/cwe-502")
EVAL = _r("eval-untrusted", "eval/exec of request data or model output",
          "Evaluating text that comes from an HTTP request or from a model's output lets the user (or a prompt "
          "injection) run code on the server.",
          "Never eval model or user text; parse it (json.loads, ast.literal_eval) and validate it.",
          Severity.CRITICAL, "injection", "external/cwe/cwe-95")
SHELL = _r("subprocess-shell", "Shell command built from data",
           "A command run through the shell (shell=True, os.system, os.popen) that is built from variables or "
           "request data can be extended by whoever controls them.",
           "Pass an argument list without shell=True; never build a command line from input.", Severity.HIGH,
           "injection", "external/cwe/cwe-78")
NO_VERIFY = _r("requests-no-verify", "TLS certificate verification turned off",
               "verify=False accepts any certificate: models, data or tokens fetched this way can be swapped.",
               "Remove verify=False; point verify at a CA bundle for private endpoints.", Severity.MEDIUM,
               "external/cwe/cwe-295")
TAR_EXTRACT = _r("tarfile-extractall", "tarfile extraction without a filter",
                 "tarfile's extract/extractall without filter= writes members with ../ paths, absolute paths and "
                 "links wherever they point (zip-slip).",
                 "Pass filter='data' (Python 3.12+, backported to 3.8+ security releases).", Severity.HIGH,
                 "external/cwe/cwe-22")
HF_REVISION = _r("hf-unpinned-revision", "Hugging Face download without a pinned revision",
                 "from_pretrained, hf_hub_download and snapshot_download of a hub repository without revision= "
                 "(or with a branch name) load whatever the repository holds at run time.",
                 "Pass revision='<40-character commit sha>'.", Severity.MEDIUM, "supply-chain",
                 "external/cwe/cwe-494")
LANGCHAIN = _r("langchain-dangerous-deserialization", "allow_dangerous_deserialization=True",
               "LangChain loaders (FAISS.load_local, ...) unpickle the index when this is set.",
               "Only load indexes you built; drop the flag.", Severity.HIGH, "deserialization", "external/cwe/cwe-502")
PUBLIC_APP = _r("app-public-no-auth", "Demo app exposed without authentication",
                "A Gradio app launched on 0.0.0.0 or with share=True, without auth=, serves the model to anyone "
                "who can reach it.",
                "Pass auth=, or bind to 127.0.0.1 behind an authenticating proxy.", Severity.MEDIUM,
                "external/cwe/cwe-306")
HTTP_DOWNLOAD = _r("http-model-download", "Download over plain HTTP",
                   "A model or data file fetched over http:// can be replaced in transit.",
                   "Use https:// and pin a digest of what is downloaded.", Severity.MEDIUM, "supply-chain",
                   "external/cwe/cwe-494")

RULES: tuple[Rule, ...] = tuple(r.rule for r in (PICKLE_LOAD, TORCH_LOAD, NUMPY_PICKLE, REMOTE_CODE, YAML_LOAD, EVAL,
                                                  SHELL, NO_VERIFY, TAR_EXTRACT, HF_REVISION, LANGCHAIN, PUBLIC_APP,
                                                  HTTP_DOWNLOAD))
"""Every ML SAST rule."""
