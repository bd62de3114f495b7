"""The in-house ML SAST rules: each unsafe form reported at its line, each safe form not, aliases
resolved, taint followed one assignment deep, and scanned code never imported."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsec_actions.analyzers import ml_sast
from mlsec_actions.analyzers.ml_sast_rules import RULES
from mlsec_actions.findings import CoverageGap, GapKind

UNSAFE = [
    ("ml/pickle-load", "import pickle\npickle.load(open(p, 'rb'))"),
    ("ml/pickle-load", "import cloudpickle as cp\ncp.loads(blob)"),
    ("ml/pickle-load", "from dill import load\nload(f)"),
    ("ml/pickle-load", "import joblib\nmodel = joblib.load('m.joblib')"),
    ("ml/pickle-load", "import pandas as pd\npd.read_pickle('d.pkl')"),
    ("ml/torch-load", "import torch\ntorch.load('m.pt')"),
    ("ml/torch-load", "import torch\ntorch.load('m.pt', weights_only=False)"),
    ("ml/numpy-allow-pickle", "import numpy as np\nnp.load('a.npy', allow_pickle=True)"),
    ("ml/trust-remote-code", "from transformers import AutoModel\n"
                             "AutoModel.from_pretrained('./m', trust_remote_code=True)"),
    ("ml/yaml-unsafe-load", "import yaml\nyaml.load(request.data)"),
    ("ml/yaml-unsafe-load", "import yaml\nyaml.load(s, Loader=yaml.Loader)"),
    ("ml/yaml-unsafe-load", "import yaml\nyaml.unsafe_load(s)"),
    ("ml/eval-untrusted", "from flask import request\ndef h():\n    eval(request.args['q'])"),
    ("ml/eval-untrusted", "def h(llm):\n    out = llm.invoke('x')\n    code = out.content\n    exec(code)"),
    ("ml/subprocess-shell", "import subprocess\nsubprocess.run(f'convert {name}', shell=True)"),
    ("ml/subprocess-shell", "import os\nos.system('unzip ' + path)"),
    ("ml/requests-no-verify", "import requests\nrequests.get(u, verify=False)"),
    ("ml/requests-no-verify", "import requests\nrequests.Session().post(u, verify=False)"),
    ("ml/tarfile-extractall", "import tarfile\ntarfile.open(p).extractall('out')"),
    ("ml/hf-unpinned-revision", "from transformers import AutoModel\nAutoModel.from_pretrained('org/model')"),
    ("ml/hf-unpinned-revision", "from huggingface_hub import hf_hub_download\nhf_hub_download('org/m', 'w.bin', "
                                "revision='main')"),
    ("ml/langchain-dangerous-deserialization", "FAISS.load_local('idx', emb, allow_dangerous_deserialization=True)"),
    ("ml/app-public-no-auth", "import gradio as gr\ndemo.launch(server_name='0.0.0.0')"),
    ("ml/app-public-no-auth", "demo.launch(share=True)"),
    ("ml/http-model-download", "import urllib.request\n"
                               "urllib.request.urlretrieve('http://models.example.org/m.bin', 'm')"),
    ("ml/http-model-download", "import torch\ntorch.hub.load_state_dict_from_url('http://x.org/w.pth')"),
]

SAFE = [
    "import yaml\nyaml.safe_load(s)",
    "import yaml\nyaml.load(s, Loader=yaml.SafeLoader)",
    "from yaml import load, CSafeLoader\nload(s, CSafeLoader)",
    "import torch\ntorch.load('m.pt', weights_only=True)",
    "import numpy as np\nnp.load('a.npy')",
    "from transformers import AutoModel\nAutoModel.from_pretrained('org/model', revision='" + "a1" * 20 + "')",
    "from transformers import AutoModel\nAutoModel.from_pretrained('./local/model')",
    "import tarfile\ntarfile.open(p).extractall('out', filter='data')",
    "import zipfile\nzipfile.ZipFile(p).extractall('out')",
    "import subprocess\nsubprocess.run(['ls', path])",
    "import subprocess\nsubprocess.run('ls -l', shell=True)",
    "import requests\nrequests.get(u, verify=True)",
    "def h():\n    eval('1 + 1')",
    "import json\ndef h(llm):\n    out = llm.invoke('x')\n    json.loads(out.content)",
    "demo.launch(server_name='0.0.0.0', auth=('u', p))",
    "demo.launch()",
    "import urllib.request\nurllib.request.urlretrieve('https://x.org/m.bin', 'm')",
    "import urllib.request\nurllib.request.urlretrieve('http://localhost:8000/m.bin', 'm')",
    "AutoModel.from_pretrained('./m', trust_remote_code=False)",
]


@pytest.mark.parametrize(("rule", "code"), UNSAFE)
def test_unsafe_form_is_reported_at_its_line(rule: str, code: str) -> None:
    found = ml_sast.scan_source("app.py", code + "\n", [])
    assert [(f.rule.id, f.location.start_line) for f in found] == [(rule, code.count("\n") + 1)]


@pytest.mark.parametrize("code", SAFE)
def test_safe_form_is_not_reported(code: str) -> None:
    assert ml_sast.scan_source("app.py", code + "\n", []) == []


def test_every_rule_is_exercised_and_documented() -> None:
    assert {r for r, _ in UNSAFE} == {r.id for r in RULES}
    assert all(r.help_uri and r.help_uri.endswith("#" + r.id.replace("/", "")) for r in RULES)


def test_taint_is_per_function() -> None:
    code = "def a():\n    x = request.args['q']\ndef b(x):\n    eval(x)\n"
    assert ml_sast.scan_source("app.py", code, []) == []


def test_unparsable_file_is_a_gap_and_nothing_is_imported(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def (:\n")
    marker = tmp_path / "imported"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\nimport pickle\npickle.loads(b'')\n")
    findings, run = ml_sast.scan(tmp_path)
    assert [(f.rule.id, f.location.path) for f in findings] == [("ml/pickle-load", "evil.py")]
    assert run.gaps == (CoverageGap(GapKind.FORMAT_UNKNOWN, run.gaps[0].detail, path="bad.py"),)
    assert not marker.exists()


def test_deeply_nested_code_is_a_gap_not_a_crash() -> None:
    gaps: list[CoverageGap] = []
    assert ml_sast.scan_source("deep.py", "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n", gaps) == []
    assert gaps and gaps[0].kind is GapKind.FORMAT_UNKNOWN


NESTED_IMPORTS = [
    "def f():\n    import pickle as p\n",
    "async def f():\n    import pickle as p\n",
    "class C:\n    import pickle as p\n",
    "if x:\n    pass\nelse:\n    import pickle as p\n",
    "try:\n    pass\nexcept ImportError:\n    import pickle as p\n",
    "try:\n    pass\nexcept* ImportError:\n    import pickle as p\n",
    "try:\n    pass\nexcept ImportError:\n    pass\nelse:\n    import pickle as p\n",
    "try:\n    pass\nfinally:\n    import pickle as p\n",
    "with x:\n    import pickle as p\n",
    "for i in x:\n    pass\nelse:\n    import pickle as p\n",
    "while x:\n    import pickle as p\n",
    "match x:\n    case 1:\n        import pickle as p\n",
    "if x:\n    for i in y:\n        with z:\n            try:\n                import pickle as p\n"
    "            except E:\n                pass\n",
]


@pytest.mark.parametrize("code", NESTED_IMPORTS)
def test_an_import_anywhere_in_the_file_names_the_call(code: str) -> None:
    found = ml_sast.scan_source("app.py", code + "p.loads(blob)\n", [])
    assert [(f.rule.id, f.location.start_line) for f in found] == [("ml/pickle-load", code.count("\n") + 1)]


@pytest.mark.parametrize("code", [
    "f = lambda b: pickle.loads(b)",
    "xs = [pickle.loads(b) for b in bs]",
    "@cache(pickle.loads(b))\ndef f(): pass",
    "def f(x=pickle.loads(b)): pass",
    "s = f'{pickle.loads(b)}'",
    "x = {k: pickle.loads(v) for k, v in d.items() if v}",
    "assert pickle.loads(b), 'x'",
    "x = a if c else pickle.loads(b)",
    "print(*[pickle.loads(b)])",
])
def test_a_call_in_any_expression_is_checked(code: str) -> None:
    found = ml_sast.scan_source("app.py", "import pickle\n" + code + "\n", [])
    assert [f.rule.id for f in found] == ["ml/pickle-load"]
