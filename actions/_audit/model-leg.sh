#!/usr/bin/env bash
# One model of an org-wide audit (docs/audit.md#models): fetch it into a quarantine with the fetch stage
# (the pinned SHA-256, the size cap, ClamAV and model-scan's analyzers; nothing is placed unless every check
# passed and every tool ran), model-scan what was placed, then the gate with a builtin policy over both
# SARIF files. Writes OUT/verdict.json (what audit-merge reads), OUT/summary.md and OUT/sarif/.
#
# Inputs (environment, set by actions/_audit, never by anything audited):
#   MLSEC_VENV_PYTHON  the installed venv's interpreter (actions/_setup/install.sh)
#   MODEL              one entry, URL#sha256=HEX (checked again by audit-plan before anything is fetched)
#   POLICY             default or strict (a builtin; a model brings no policy of its own)
#   RUNNER_TEMP        where the quarantine and the leg's lock go
#   MLSEC_CLAMAV_DB    ClamAV's signature database (folder or file)
#   OUT                results folder (default mlsec-audit-results)
# Exit: 0 the gate passed, 3 it failed (GITHUB_OUTPUT exit-code says which); anything else is this script's
# own failure. A fetch or model-scan that fails leaves its SARIF saying so (or none): the gate then fails.
set -uo pipefail
: "${MLSEC_VENV_PYTHON:?}" "${MODEL:?}" "${POLICY:?}" "${RUNNER_TEMP:?}"
out="${OUT:-mlsec-audit-results}"
if [[ "$POLICY" != default && "$POLICY" != strict ]]; then
  echo "::error title=mlsec audit::policy must be a builtin (default or strict), got: $POLICY"
  exit 2
fi
# Options come from the command lines below only; no MLSEC_* of the job may set one of these commands'.
unset MLSEC_REPOSITORIES MLSEC_CHUNKS MLSEC_CHUNK MLSEC_MODELS MLSEC_PATHS MLSEC_SARIF MLSEC_LOCK MLSEC_DEST \
  MLSEC_POLICY MLSEC_CONFIG
leg="$(mktemp -d "$RUNNER_TEMP/mlsec-audit-model.XXXXXX")"
trap 'rm -rf "$leg"' EXIT
mkdir -p "$leg/model" "$out/sarif"
"$MLSEC_VENV_PYTHON" -I -m mlsec_actions audit-plan --models "$MODEL" --write-lock "$leg/mlsec.lock" || exit 2
rc=0
"$MLSEC_VENV_PYTHON" -I -m mlsec_actions fetch "$leg" --lock "$leg/mlsec.lock" --dest "$leg/model" \
  --sarif "$out/sarif/fetch.sarif" || rc=$?
echo "fetch: exit $rc"
rc=0
"$MLSEC_VENV_PYTHON" -I -m mlsec_actions model-scan "$leg/model" --sarif "$out/sarif/model-scan.sarif" || rc=$?
echo "model-scan: exit $rc"
# Checkpoint 11 of both builtins requires no stage of its own: exactly the two expected here are required,
# and the builtin's thresholds (no critical or high finding) and tool-errors: fail apply to them.
rc=0
"$MLSEC_VENV_PYTHON" -I -m mlsec_actions gate --sarif-dir "$out/sarif" --policy "$POLICY" --checkpoint 11 \
  --expect-stage fetch --expect-stage model-scan --verdict "$out/verdict.json" --summary "$out/summary.md" \
  --sarif "$out/gate.sarif" || rc=$?
[[ -n "${GITHUB_OUTPUT:-}" ]] && echo "exit-code=$rc" >> "$GITHUB_OUTPUT"
if [[ "$rc" -ne 0 && "$rc" -ne 3 ]]; then exit "$rc"; fi
exit 0
