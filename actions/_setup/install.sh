#!/usr/bin/env bash
# Install mlsec-actions from the checkout this script sits in (same ref as the calling action, so the
# action's YAML and the Python it runs can never drift apart) into a venv under $RUNNER_TEMP, and put
# the venv's bin/ on PATH for the following steps.
#
# Inputs (environment):
#   MLSEC_SETUP_PYTHON  interpreter that creates the venv (default python3; needs 3.11+)
#   MLSEC_SETUP_EXTRAS  comma-separated extras to install (default trivy)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${MLSEC_SETUP_PYTHON:-python3}"
extras="${MLSEC_SETUP_EXTRAS:-trivy}"
# uv resolves and installs in a few seconds where pip takes a minute; pinned like every other tool.
uv_version="0.13.9"

if ! [[ "$extras" =~ ^[a-z0-9,-]*$ ]]; then
  echo "::error title=mlsec setup::extras must be comma-separated names, got: $extras" >&2
  exit 2
fi

venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/mlsec-venv"
marker="$venv/.mlsec-install"
want="$root [$extras]"
# A second stage in the same job reuses the venv when it was built from the same checkout and extras.
if [[ -x "$venv/bin/mlsec" && -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
  echo "mlsec-actions already installed in $venv"
else
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$uv_version"
  spec="$root"
  [[ -n "$extras" ]] && spec="$root[$extras]"
  "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" "$spec"
  printf '%s' "$want" > "$marker"
fi

"$venv/bin/mlsec" --version
if [[ -n "${GITHUB_PATH:-}" ]]; then
  echo "$venv/bin" >> "$GITHUB_PATH"
fi
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
  echo "bin-dir=$venv/bin" >> "$GITHUB_OUTPUT"
fi
