"""Maintainer tool: regenerate modelscan's test pickles as bytes, and copy its stored test models.

modelscan builds most of its test files in `tests/test_modelscan.py` (classes whose `__reduce__` returns
`eval`, `os.system`, `requests.get`...; hand-assembled opcode strings). The same constructions are
repeated here: `pickle.dumps` of such an object only records the callable's name, it calls nothing.
`requests` and `aiohttp` are not installed here, so stand-ins registered under their real names write
the same GLOBAL/STACK_GLOBAL names. Run:
`.venv/bin/python tests/corpus/peers/regenerate_modelscan.py UPSTREAM_CHECKOUT COMMIT`.
"""

from __future__ import annotations

import bdb
import http.client
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from tests.pickle_corpus import real_names  # noqa: E402 - needs the repo on sys.path first


def _get(*args: object) -> None:
    """Stands in for requests.api.get."""


class _ClientSession:
    """Stands in for aiohttp.client.ClientSession."""


def _reducer(func: object, args: tuple[object, ...]) -> object:
    class Malicious:
        def __reduce__(self) -> tuple[object, ...]:
            return func, args
    return Malicious()


def _hand_assembled() -> dict[str, bytes]:
    p2 = pickle.PROTO + b"\x05" + pickle.GLOBAL + b"os\nsystem\n" + pickle.UNICODE + b"echo pwned!!!\n" \
        + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP
    m11 = b"".join([pickle.UNICODE + b"os\n", pickle.PUT + b"2\n", pickle.POP, pickle.UNICODE + b"system\n",
                    pickle.PUT + b"3\n", pickle.POP, pickle.UNICODE + b"torch\n", pickle.PUT + b"0\n", pickle.POP,
                    pickle.UNICODE + b"LongStorage\n", pickle.PUT + b"1\n", pickle.POP, pickle.GET + b"2\n",
                    pickle.GET + b"3\n", pickle.STACK_GLOBAL, pickle.MARK, pickle.UNICODE + b"cat flag.txt\n",
                    pickle.TUPLE, pickle.REDUCE, pickle.STOP])
    return {
        "malicious0.pkl": b'c__builtin__\nglobals\n(tRp100\n0c__builtin__\ncompile\n(S\'fl=open("/etc/passwd");'
                          b"picklesmashed=fl.read();'\nS''\nS'exec'\ntRp101\n0c__builtin__\neval\n(g101\ng100\ntRp102"
                          b"\n0c__builtin__\ngetattr\n(c__builtin__\ndict\nS'get'\ntRp103\n0c__builtin__\napply\n"
                          b"(g103\n(g100\nS'picklesmashed'\nltRp104\n0g104\n.",
        "malicious11.pkl": m11,
        "malicious12.pkl": pickle.PROTO + b"\x05" + pickle.GLOBAL + b"pickle\nloads\n" + pickle.BINBYTES
        + len(p2).to_bytes(4, "little") + p2 + pickle.TUPLE1 + pickle.REDUCE + pickle.POP + pickle.NONE + pickle.STOP,
        "malicious13.pkl": pickle.PROTO + b"\x05" + pickle.GLOBAL + b"builtins\neval.__call__\n" + pickle.UNICODE
        + b'__import__("os").system("echo pwned!!!")\n' + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP,
        "malicious14.pkl": m11 + b"\n\n\t\t",
    }


def main(argv: list[str]) -> int:
    checkout, commit = Path(argv[0]).resolve(), argv[1]
    out = HERE / "modelscan"
    out.mkdir(exist_ok=True)
    files: dict[str, bytes] = {}
    with real_names({"requests.api.get": _get, "aiohttp.client.ClientSession": _ClientSession}):
        evil = {1: (eval, ("print('456')",)), 2: (os.system, ("ls -la",))}
        for version in (0, 3, 4):
            files[f"benign0_v{version}.pkl"] = pickle.dumps(["a", "b", "c"], protocol=version)
            for n, (func, args) in evil.items():
                files[f"malicious{n}_v{version}.pkl"] = pickle.dumps(_reducer(func, args), protocol=version)
        files["malicious3.pkl"] = pickle.dumps(_reducer(http.client.HTTPSConnection, ("github.com",)), protocol=0)
        files["malicious4.pickle"] = pickle.dumps(_reducer(_get, ("https://github.com",)), protocol=4)
        files["malicious5.pickle"] = pickle.dumps(_reducer(_ClientSession, ()), protocol=4)
        files["malicious6.pkl"] = pickle.dumps(["a", "b", "c"]) + pickle.dumps(_reducer(_get, ("https://github.com",)))
        files["malicious7.pkl"] = pickle.dumps(_reducer(socket.create_connection, (("github.com", 80),)), protocol=4)
        files["malicious8.pkl"] = pickle.dumps(_reducer(subprocess.run, (["ls", "-l"],)), protocol=4)
        files["malicious9.pkl"] = pickle.dumps(_reducer(sys.exit, (0,)), protocol=4)
        files["malicious15.pkl"] = pickle.dumps(_reducer(bdb.Bdb.run, (bdb.Bdb(), 'import os\nos.system("whoami")')),
                                                protocol=4)
    files.update(_hand_assembled())
    rows = []
    for name, data in files.items():
        (out / name).write_bytes(data)
        rows.append({"file": f"modelscan/{name}", "peer": "modelscan",
                     "source": {"repo": "protectai/modelscan", "commit": commit, "path": "tests/test_modelscan.py",
                                "test": "fixture file_path"},
                     "label": "benign" if name.startswith("benign") else "malicious"})
    for name, label in (("unsafe_zip_pytorch.pt", "malicious"), ("password_protected.zip", "benign")):
        shutil.copyfile(checkout / "tests/data" / name, out / name)
        rows.append({"file": f"modelscan/{name}", "peer": "modelscan",
                     "source": {"repo": "protectai/modelscan", "commit": commit, "path": f"tests/data/{name}",
                                "test": "tests/test_modelscan.py"}, "label": label})
    manifest = HERE / "manifest.json"
    existing = json.loads(manifest.read_text()) if manifest.exists() else []
    manifest.write_text(json.dumps([r for r in existing if r.get("peer") != "modelscan"] + rows, indent=1) + "\n")
    print(f"{len(rows)} modelscan samples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
