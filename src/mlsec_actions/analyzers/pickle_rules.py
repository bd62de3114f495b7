"""The pickle analyzer's rules (one section each in docs/model-scan.md, anchored by id)."""

from __future__ import annotations

from mlsec_actions.analyzers.base import MODEL_SCAN_DOCS, model_rule
from mlsec_actions.findings import Rule

_FIX = ("Do not load this file. Get the model from a trusted source, or convert it to a format that cannot run "
        "code (safetensors, ONNX without custom ops, GGUF) and load it with `weights_only=True` or equivalent.")


def _rule(rid: str, name: str, short: str, full: str, help_text: str = _FIX, precision: str = "high") -> Rule:
    return model_rule(("model", "pickle", "supply-chain"), MODEL_SCAN_DOCS, rid, name, short, full, help_text,
                      precision=precision)


DANGEROUS = _rule("pickle/dangerous-global", "PickleDangerousGlobal", "Pickle imports a code-execution primitive",
                  "Loading this pickle imports a callable that runs commands or code, or reaches files or the "
                  "network (os.system, eval, importlib, subprocess, a known gadget...), possibly through an "
                  "attribute chain such as torch.os.system. Unpickling it executes the attacker's payload.")
RISKY = _rule("pickle/risky-global", "PickleRiskyGlobal", "Pickle imports a callable used to smuggle code",
              "Loading this pickle imports a higher-order callable (functools.partial, map, reduce, operator...) "
              "that payloads use to chain other calls; no model format needs it.", precision="medium")
UNKNOWN = _rule("pickle/unknown-global", "PickleUnknownGlobal", "Pickle imports a callable outside the allowlist",
                "Loading this pickle imports a callable that is not on the allowlist of exact names torch, numpy, "
                "scikit-learn, joblib, pandas and the standard containers need. Any importable callable can run "
                "code when unpickled, so an unknown one is treated as dangerous until reviewed.",
                "Check that the named class or function is yours and safe to call with attacker-chosen "
                "arguments; prefer a format that stores only tensors (safetensors).", precision="medium")
COMPUTED = _rule("pickle/computed-argument", "PickleComputedArgument",
                 "An allowlisted loader helper gets an argument built at load time",
                 "A helper that is safe only with literal arguments (torch.storage._load_from_bytes, which runs "
                 "torch.load on its bytes; numpy's _ufunc_reconstruct, which imports what it names) is given a "
                 "value computed while loading, passed around as a value, or names something off the allowlist. "
                 "What it would load or import cannot be checked from the file.")
INDIRECT = _rule("pickle/indirect-call", "PickleIndirectCall", "Pickle calls the result of another call",
                 "A REDUCE or NEWOBJ whose callable is the return value of an earlier call (a function fetched "
                 "at load time). Pickles written by Python name their callables as globals; this is a gadget "
                 "chain.")
BUILD_GLOBAL = _rule("pickle/build-on-global", "PickleBuildOnGlobal", "Pickle modifies an imported object",
                     "A BUILD sets attributes on an imported class or function itself (monkey-patching it for "
                     "code that runs later). Pickles written by Python only BUILD objects they create.")
FRAME = _rule("pickle/frame-violation", "PickleFrameViolation", "Pickle opcode runs past the end of its frame",
               "An opcode or its argument crosses the end of the FRAME it sits in, or a frame opens inside "
               "another. Python's pickler never writes this; CPython's two unpicklers (and scanners) disagree "
               "on where the next opcode starts (python/cpython#154848), which hides a payload from one of "
               "them. Imports found at every plausible start inside the straddling bytes are reported too.")
DYNAMIC = _rule("pickle/dynamic-global", "PickleDynamicGlobal", "Pickle builds an import name at load time",
                "A STACK_GLOBAL takes its module or name from values computed while loading, so what it imports "
                "cannot be read from the file. Legitimate pickles write these names as plain strings.")
EXTENSION = _rule("pickle/extension-code", "PickleExtensionCode", "Pickle imports through the extension registry",
                  "EXT1/EXT2/EXT4 opcodes import whatever the loading process registered in copyreg under that "
                  "code; the callable cannot be judged from the file.", precision="medium")
LIMIT = _rule("pickle/limit", "PickleLimit", "Pickle exceeds the walker's modelling limits",
              "The pickle holds more stack entries, marks, memo entries or container items than the walker "
              "models (its memory is bounded whatever the file declares). Imports are still all read; values "
              "past the limit are not followed, so some checks on arguments are less precise.",
              "Re-export the file; if it is legitimately this large, review it by hand.", precision="medium")
MALFORMED = _rule("pickle/malformed", "PickleMalformed", "Pickle data is malformed or truncated",
                  "The pickle stream does not parse to the end (bad opcode, truncated argument, stack error). "
                  "Scanners that stop at the first error miss what follows; loaders may still run what precedes.",
                  "Re-export the file from its source. If it was not corrupted in transit, treat it as crafted.",
                  precision="medium")
RULES = (DANGEROUS, RISKY, UNKNOWN, COMPUTED, INDIRECT, BUILD_GLOBAL, FRAME, DYNAMIC, EXTENSION, LIMIT, MALFORMED)
