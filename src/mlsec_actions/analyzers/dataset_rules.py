"""The data-scan rules (`data/<name>`): licence and provenance, schema drift, poisoning and quality
signals, train/test leakage, and files not read. Personal data uses the `pii/<kind>` rules
(`dataset_pii`). One SARIF rule each; the help link is its section of docs/data-scan.md."""

from __future__ import annotations

from dataclasses import dataclass

from mlsec_actions.analyzers.dataset_pii import DATA_SCAN_DOCS
from mlsec_actions.findings import Rule, Severity


@dataclass(frozen=True)
class DataRule:
    """One check and its SARIF rule."""

    rule: Rule
    """The SARIF rule."""
    severity: Severity
    """Severity of a finding."""


def _r(name: str, short: str, full: str, fix: str, severity: Severity, *tags: str) -> DataRule:
    rid = f"data/{name}"
    return DataRule(Rule(id=rid, name="Data" + "".join(w.title() for w in name.split("-")), short_description=short,
                         full_description=full, help_text=fix, help_uri=f"{DATA_SCAN_DOCS}#{rid.replace('/', '')}",
                         tags=("dataset", *tags)), severity)


UNREADABLE = _r("unreadable", "Dataset file not read",
                "The file could not be parsed as its format (broken CSV quoting, a JSON line that is not an object, "
                "not UTF-8, a format whose reader is not installed): its content was not checked.",
                "Repair the file, or install the reader (pyarrow for Parquet and Arrow).", Severity.MEDIUM, "coverage")
MISSING_LICENCE = _r("missing-licence", "Dataset without a licence",
                     "No dataset card next to the data (README.md front matter as on Hugging Face, datapackage.json, "
                     "Croissant JSON-LD) names a licence: nobody can tell whether the data may be used for training.",
                     "Add a dataset card with `license:` (an SPDX id) and the source of the data.", Severity.MEDIUM,
                     "licence", "provenance")
UNKNOWN_LICENCE = _r("unknown-licence", "Dataset licence not recognised",
                     "The dataset card names a licence that is not an SPDX identifier or a known data licence "
                     "(`other`, `unknown`, free text): whether training is allowed has to be checked by hand.",
                     "Use an SPDX id (cc-by-4.0, odc-by, mit, apache-2.0, ...) or document the terms and review them.",
                     Severity.LOW, "licence", "provenance")
MISSING_SOURCE = _r("missing-source", "Dataset card without a source",
                    "The dataset card names no source (source_datasets, homepage, url, sources): the data's "
                    "provenance cannot be traced.",
                    "Add where the data comes from and how it was collected.", Severity.LOW, "provenance")
SCHEMA_DRIFT = _r("schema-drift", "Dataset schema differs from the committed schema",
                  "Columns were added, removed or changed type compared with the schema file given with --schema: "
                  "a pipeline trained on this data may silently read the wrong columns.",
                  "Review the change; if it is intended, regenerate the schema with --write-schema.", Severity.MEDIUM,
                  "schema")
CONFLICTING_DUPLICATES = _r("conflicting-duplicates", "Identical rows with different labels",
                            "The same features appear with different labels: label noise or poisoning.",
                            "Find where the rows came from; deduplicate and fix or drop the wrong labels.",
                            Severity.MEDIUM, "poisoning")
LABEL_FLIP = _r("label-flip", "Near-duplicate rows with different labels (label-flip suspects)",
                "A share of the rows have near-identical features (text normalised, numbers to three significant "
                "digits) but different labels: the pattern of a label-flipping poisoning attack.",
                "Review the listed share of rows; compare with the data's source and drop the flipped copies.",
                Severity.MEDIUM, "poisoning")
CLASS_IMBALANCE = _r("class-imbalance", "Extreme class imbalance",
                     "The rarest label is less than 1% as frequent as the commonest: a model may ignore it, and a few "
                     "poisoned rows weigh heavily.",
                     "Check that this is the real distribution; rebalance or weight classes if not.", Severity.LOW,
                     "quality")
OUTLIERS = _r("outliers", "Numeric outliers by robust z-score",
              "Values further than 10 median absolute deviations from a column's median (computed on a bounded "
              "sample): data errors, unit mix-ups or injected points.",
              "Inspect the rows; fix or drop values that are errors.", Severity.LOW, "quality", "poisoning")
CONSTANT_COLUMN = _r("constant-column", "Column with a single value",
                     "The column holds one value in every row read: it carries no information.",
                     "Drop it from the features.", Severity.INFO, "quality")
LABEL_LEAK = _r("label-leak", "Feature that reveals the label (leakage)",
                "A feature column maps one-to-one onto the label: a model learns the column, not the task, and "
                "fails in production.",
                "Drop the column from the features (it is usually derived from the label or recorded after it).",
                Severity.MEDIUM, "leakage")
TRIGGER_TOKEN = _r("trigger-token", "Token that appears almost only with one label (backdoor signal)",
                   "A token occurs in at least 1% of the rows and in 99% of its rows with the same label, while "
                   "that label is far less common overall: the signature of a backdoor trigger.",
                   "Look at the rows holding the token; remove injected rows.", Severity.MEDIUM, "poisoning")
SPLIT_LEAKAGE = _r("split-leakage", "Rows shared between the training and the test split",
                   "Rows of the test (or validation) split also appear in the training split (by normalised row "
                   "hash): evaluation scores are inflated and do not measure generalisation.",
                   "Deduplicate across splits before evaluating (split by a group key if rows repeat).",
                   Severity.MEDIUM, "leakage")

RULES: tuple[Rule, ...] = tuple(r.rule for r in (
    UNREADABLE, MISSING_LICENCE, UNKNOWN_LICENCE, MISSING_SOURCE, SCHEMA_DRIFT, CONFLICTING_DUPLICATES, LABEL_FLIP,
    CLASS_IMBALANCE, OUTLIERS, CONSTANT_COLUMN, LABEL_LEAK, TRIGGER_TOKEN, SPLIT_LEAKAGE))
"""Every data rule."""
