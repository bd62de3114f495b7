"""The train stage's checks: one rule each, its id the docs anchor (docs/train.md)."""

from __future__ import annotations

from mlsec_actions.findings import Rule

_DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/train.md"


def _rule(slug: str, name: str, short: str, full: str, fix: str, *tags: str) -> Rule:
    return Rule(id=f"train/{slug}", name=name, short_description=short, full_description=full, help_text=fix,
                help_uri=f"{_DOCS}#train{slug}", tags=("ml", "provenance", *tags))


WRITE_OUTSIDE_OUTPUT = _rule(
    "write-outside-output", "WriteOutsideOutput", "The training run changed files outside its output folder",
    "The training command created, changed or removed a file in the work tree outside the declared output "
    "folder. Only the output folder's files are recorded as the run's outputs, so anything else it wrote (a "
    "forged result, a changed script or dataset, a planted file) is unaccounted for.",
    "Make the training script write only under the output folder (`--output`), or declare the folder it "
    "writes to.", "integrity")
OUTPUT_NOT_REGULAR = _rule(
    "output-not-regular", "OutputNotRegular", "The output folder holds a link or special file",
    "A symbolic link, FIFO, socket or device in the output folder is not recorded as an output: a link could "
    "make a signature cover a file outside the run.",
    "Write regular files only; copy what a link points to.", "integrity")
NO_OUTPUTS = _rule(
    "no-outputs", "NoOutputs", "The training run wrote nothing to its output folder",
    "The command exited successfully but left no regular file in the output folder, so there is no model to "
    "evaluate, describe or sign.",
    "Check the output folder the script writes to against `--output`.", "integrity")
INPUT_CHANGED = _rule(
    "input-changed", "InputChanged", "A declared input changed while training ran",
    "A file declared as an input (a dataset, a script, a base model) has a different SHA-256 after the run than "
    "before it: the provenance cannot say which content the model was trained on.",
    "Do not modify inputs while training; write derived data under the output folder.", "integrity")
NOT_REPRODUCIBLE = _rule(
    "not-reproducible", "NotReproducible", "A second run of the training command gave different outputs",
    "With `--check-reproducible` the command ran twice on the same inputs; the output files' digests differ, "
    "so the model cannot be rebuilt from its recorded provenance.",
    "Fix every seed (`random_state`, numpy, framework seeds) and avoid time- or order-dependent output.",
    "reproducibility")
UNDECLARED_READ = _rule(
    "undeclared-read", "UndeclaredRead", "The training run read data that is neither declared nor pinned",
    "A process of the training command opened a data file in the work tree that is not a declared input "
    "(`--input`), not pinned in `mlsec.lock`, or whose content differs from its pin: the provenance cannot say "
    "the model was made only from what it lists.",
    "Declare the file with `--input`, or pin it in `mlsec.lock` (and let fetch bring it in).", "integrity")
NETWORK_ACCESS = _rule(
    "network-access", "NetworkAccess", "The training run reached a host on the network",
    "A process of the training command connected or sent to an internet address outside the loopback range. "
    "What it downloaded (data, weights, code) is not in the provenance; with `--network forbid` this is a policy "
    "violation.",
    "Fetch what training needs beforehand with `mlsec fetch` (pinned in `mlsec.lock`) and declare it as an input; "
    "turn off telemetry and remote logging in the training run.", "network")

RULES = (WRITE_OUTSIDE_OUTPUT, OUTPUT_NOT_REGULAR, NO_OUTPUTS, INPUT_CHANGED, NOT_REPRODUCIBLE, UNDECLARED_READ,
         NETWORK_ACCESS)
