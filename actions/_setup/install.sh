#!/usr/bin/env bash
# Install mlsec-actions from the checkout this script sits in (same ref as the calling action, so the
# action's YAML and the Python it runs can never drift apart) into a venv under $RUNNER_TEMP, and put
# the venv's bin/ on PATH for the following steps.
#
# The workspace is the scanned repository, so nothing in it may take part in the install: every command
# runs from a folder this script owns (never the workspace), Python in isolated mode (-I: no current
# folder, PYTHONPATH, PYTHONSTARTUP or user site on sys.path), pip with no configuration file and uv with
# --no-config, both against an explicit index, and with an environment built here from a short allow-list
# (PIP_*, UV_*, PYTHON* and the rest of the job's environment are not passed on).
#
# Inputs (environment, set by the calling action or workflow, never by the scanned repository):
#   MLSEC_SETUP_PYTHON     interpreter that creates the venv (default python3; needs 3.11+)
#   MLSEC_SETUP_EXTRAS     comma-separated extras to install (default trivy; empty: none); `iac` (checkov)
#                          `wapiti` (dast's web scanner) and `semgrep` each go into a venv of their own inside
#                          this one, their command linked into bin/
#   MLSEC_SETUP_INDEX_URL  package index (default https://pypi.org/simple)
#   MLSEC_SETUP_CACHE_DIR  uv and pip cache (default under $RUNNER_TEMP)
#   MLSEC_SETUP_MODE       `install` (default), or `key`: only write the tool-venv cache key (`cache-key`, empty when
#                          this job already has a venv it built or checked) and `venv-dir` to $GITHUB_OUTPUT
#   MLSEC_SETUP_VENV_DIGEST  the digest a fresh install of this venv had in a job that ran no repository code; with
#                          it, the cache key is <key>-<digest>, and a venv found in place (restored from the cache) is
#                          used only when its files have that digest and its interpreter is this job's
#                          (venv_cache.py verify); else it is removed and installed fresh, with a warning
#   MLSEC_SETUP_VENV_SAVE  `true`: after a fresh install, write `venv-digest` and `cache-key` (<key>-<digest>) to
#                          $GITHUB_OUTPUT, for a cache save step that comes next (nothing may run from the venv
#                          between the digest and the save)
# Tool-venv cache: docs/workflows.md#tool-venv-cache.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${MLSEC_SETUP_PYTHON:-python3}"
extras="${MLSEC_SETUP_EXTRAS-trivy}"
index="${MLSEC_SETUP_INDEX_URL:-https://pypi.org/simple}"
# uv resolves and installs in a few seconds where pip takes a minute; pinned like every other tool.
uv_version="0.13.9"
# dast's web scanner, as scripts/install-wapiti pins it for the dev venv (not a package extra: its pins on httpx,
# mitmproxy, sqlalchemy and aiohttp fight ours).
wapiti_pin="wapiti3==3.2.3"

if ! [[ "$extras" =~ ^[a-z0-9,-]*$ ]]; then
  echo "::error title=mlsec setup::extras must be comma-separated names" >&2
  exit 2
fi
mode="${MLSEC_SETUP_MODE:-install}"
expected="${MLSEC_SETUP_VENV_DIGEST:-}"
save="${MLSEC_SETUP_VENV_SAVE:-false}"
if [[ "$mode" != install && "$mode" != key ]]; then
  echo "::error title=mlsec setup::MLSEC_SETUP_MODE must be install or key" >&2
  exit 2
fi
if ! [[ "$expected" =~ ^([0-9a-f]{64})?$ ]]; then
  echo "::error title=mlsec setup::MLSEC_SETUP_VENV_DIGEST must be empty or 64 lowercase hex digits" >&2
  exit 2
fi
if [[ "$save" != true && "$save" != false ]]; then
  echo "::error title=mlsec setup::MLSEC_SETUP_VENV_SAVE must be true or false" >&2
  exit 2
fi
if ! [[ "$index" =~ ^(https|file)://[A-Za-z0-9._~:/?#@!$\&\'()*+,\;=%-]+$ ]]; then
  echo "::error title=mlsec setup::MLSEC_SETUP_INDEX_URL must be an https:// or file:// URL" >&2
  exit 2
fi

# checkov's pins conflict with the sbom extra's (cyclonedx-python-lib, packaging): the `iac` extra is never
# installed with the package, but into a venv of its own (as scripts/install-checkov does for .venv).
package_extras=""
checkov=false
wapiti=false
IFS=, read -ra wanted <<< "$extras"
for e in "${wanted[@]}"; do
  # `all` means every tool, checkov and wapiti too (neither is in the package's `all` extra, for their conflicts).
  if [[ "$e" == iac || "$e" == all ]]; then checkov=true; fi
  if [[ "$e" == wapiti || "$e" == all ]]; then wapiti=true; fi
  if [[ -n "$e" && "$e" != iac && "$e" != wapiti && "$e" != semgrep ]]; then
    package_extras+="${package_extras:+,}$e"
  fi
done
# semgrep: the same for its pins (jsonschema, click, opentelemetry): the `semgrep` extra (never implied by `all`:
# code-scan runs it only with --semgrep) installs it into a venv of its own (as scripts/install-semgrep does).
semgrep=false
for e in "${wanted[@]}"; do
  if [[ "$e" == semgrep ]]; then semgrep=true; fi
done

tmp="${RUNNER_TEMP:-${TMPDIR:-/tmp}}"
venv="$tmp/mlsec-venv"
work="$tmp/mlsec-setup"
cache="${MLSEC_SETUP_CACHE_DIR:-$tmp/mlsec-setup-cache}"
mkdir -p "$work/home" "$cache"
cd "$work"
# Resolve the interpreter on the job's PATH before the environment is replaced.
python_bin="$(command -v -- "$python")" || { echo "::error title=mlsec setup::interpreter not found" >&2; exit 2; }
# Through its links: a venv of an earlier install in this job may come first on PATH (its bin/ was added), and that
# venv is removed before the next is made.
python_bin="$(readlink -f -- "$python_bin")"

# The whole environment of every install command: nothing else from the job reaches pip, uv or Python.
clean=(env -i "PATH=$PATH" "HOME=$work/home" "LANG=C.UTF-8" "TMPDIR=$work"
       "PIP_CONFIG_FILE=/dev/null" "PIP_DISABLE_PIP_VERSION_CHECK=1"
       "UV_NO_CONFIG=1" "UV_CACHE_DIR=$cache/uv" "UV_PYTHON_DOWNLOADS=never")
# TLS trust is the machine's, not the repository's: keep a CA bundle the runner points at (a runner behind
# a TLS-inspecting proxy or mirror sets one; GitHub's hosted runners set none and the tools' own apply).
pip_cert=()
ca="${SSL_CERT_FILE:-${REQUESTS_CA_BUNDLE:-}}"
if [[ -n "$ca" ]]; then
  clean+=("SSL_CERT_FILE=$ca")
  pip_cert=(--cert "$ca")
fi
[[ -n "${SSL_CERT_DIR:-}" ]] && clean+=("SSL_CERT_DIR=$SSL_CERT_DIR")

uv_home="$cache/uv-$uv_version"
uv="$uv_home/bin/uv"
marker="$venv/.mlsec-install"
want="$root [$extras] $index"
# What this job built or checked itself (outside the venv, so nothing restored from a cache can claim it).
trusted="$work/trusted-venv"
venv_cache=("${clean[@]}" "$python_bin" -I "$root/actions/_setup/venv_cache.py")
in_job() { [[ -x "$venv/bin/mlsec" && -f "$marker" && "$(cat "$marker")" == "$want"
              && -f "$trusted" && "$(cat "$trusted")" == "$want" ]]; }
if [[ "$mode" == key ]]; then
  cache_key=""
  if [[ -n "$expected" ]] && ! in_job; then
    # Whatever is in the way would be mixed with the restored files: the restore gets an empty place.
    rm -rf "$venv" "$trusted"
    cache_key="$("${venv_cache[@]}" key --extras "$extras" --index "$index" --root "$root" --venv "$venv")-$expected"
  fi
  if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
    { echo "cache-key=$cache_key"; echo "venv-dir=$venv"; } >> "$GITHUB_OUTPUT"
  fi
  exit 0
fi
reuse=false
# A second stage in the same job reuses the venv when it was built from the same checkout and extras.
if in_job; then
  echo "mlsec-actions already installed in $venv"
  reuse=true
elif [[ -n "$expected" && ( -e "$venv" || -L "$venv" ) ]]; then
  # Restored from the cache: used only when its files are the ones a fresh install had, never for its key.
  if why="$("${venv_cache[@]}" verify "$venv" "$expected" 2>&1)" \
     && [[ -f "$marker" && ! -L "$marker" && "$(cat "$marker")" == "$want" ]]; then
    echo "mlsec-actions restored from the tool-venv cache into $venv (files verified)"
    printf '%s' "$want" > "$trusted"
    reuse=true
  else
    [[ -n "$why" ]] || why="it was installed from another checkout or with other extras"
    echo "::warning title=mlsec setup::tool-venv cache entry not used, installing fresh: ${why//$'\n'/ }" >&2
  fi
fi
if ! $reuse; then
  rm -f "$trusted"
  rm -rf "$venv"
  # No pip in the venv (ensurepip alone takes longer than the rest of the install): uv installs into it.
  "${clean[@]}" "$python_bin" -I -m venv --without-pip "$venv"
  # uv itself, once per cache folder (a later job on the same machine, or the e2e tests' jobs, reuse it):
  # installed with the interpreter's pip into a fresh folder that is renamed into place whole, so two jobs
  # sharing a cache never see half a uv. An interpreter without pip lends the venv ensurepip's.
  if [[ "$("${clean[@]}" "$uv" --version 2>/dev/null)" != "uv $uv_version"* ]]; then
    pip_python="$python_bin"
    if ! "${clean[@]}" "$python_bin" -I -m pip --version >/dev/null 2>&1; then
      "${clean[@]}" "$venv/bin/python" -I -m ensurepip --default-pip >/dev/null
      pip_python="$venv/bin/python"
    fi
    staging="$(mktemp -d "$cache/uv-$uv_version.XXXXXX")"
    "${clean[@]}" "$pip_python" -I -m pip install --isolated --quiet "${pip_cert[@]}" --no-warn-script-location \
      --disable-pip-version-check --root-user-action=ignore \
      --cache-dir "$cache/pip" --index-url "$index" --target "$staging" "uv==$uv_version"
    if ! mv -T "$staging" "$uv_home" 2>/dev/null; then
      # Another job got there first (use its uv), or a broken one is in the way (use this one, leave that).
      if [[ "$("${clean[@]}" "$uv" --version 2>/dev/null)" == "uv $uv_version"* ]]; then
        rm -rf "$staging"
      else
        uv="$staging/bin/uv"
      fi
    fi
  fi
  spec="$root"
  [[ -n "$package_extras" ]] && spec="$root[$package_extras]"
  "${clean[@]}" "$uv" pip install --no-config --quiet --default-index "$index" \
    --python "$venv/bin/python" "$spec"
  if $checkov; then
    # The pin is the `iac` extra's in this checkout's pyproject.toml (read as data, never run).
    pin="$("${clean[@]}" "$python_bin" -I -c 'import sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["iac"]
print(next(d for d in deps if d.startswith("checkov==")))' "$root/pyproject.toml")"
    "${clean[@]}" "$python_bin" -I -m venv --without-pip "$venv/opt/checkov"
    "${clean[@]}" "$uv" pip install --no-config --quiet --default-index "$index" \
      --python "$venv/opt/checkov/bin/python" "$pin"
    # Beside the venv's interpreter, where code-scan looks for its tools first.
    ln -sfn ../opt/checkov/bin/checkov "$venv/bin/checkov"
  fi
  if $wapiti; then
    "${clean[@]}" "$python_bin" -I -m venv --without-pip "$venv/opt/wapiti"
    "${clean[@]}" "$uv" pip install --no-config --quiet --default-index "$index" \
      --python "$venv/opt/wapiti/bin/python" "$wapiti_pin"
    # Where dast looks for it (MLSEC_WAPITI_BIN, else beside the venv's interpreter).
    ln -sfn ../opt/wapiti/bin/wapiti "$venv/bin/wapiti"
  fi
  if $semgrep; then
    # The pin is the `semgrep` extra's in this checkout's pyproject.toml (read as data, never run).
    pin="$("${clean[@]}" "$python_bin" -I -c 'import sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["semgrep"]
print(next(d for d in deps if d.startswith("semgrep==")))' "$root/pyproject.toml")"
    "${clean[@]}" "$python_bin" -I -m venv --without-pip "$venv/opt/semgrep"
    "${clean[@]}" "$uv" pip install --no-config --quiet --default-index "$index" \
      --python "$venv/opt/semgrep/bin/python" "$pin"
    ln -sfn ../opt/semgrep/bin/semgrep "$venv/bin/semgrep"
  fi
  printf '%s' "$want" > "$marker"
fi

"${clean[@]}" "$venv/bin/python" -I -m mlsec_actions --version
if ! $reuse; then
  printf '%s' "$want" > "$trusted"
  if $save && [[ -n "${GITHUB_OUTPUT:-}" ]]; then
    # After the version check above (its bytecode is part of what is saved); the save step comes next.
    digest="$("${venv_cache[@]}" digest "$venv")"
    key="$("${venv_cache[@]}" key --extras "$extras" --index "$index" --root "$root" --venv "$venv")"
    { echo "venv-digest=$digest"; echo "cache-key=$key-$digest"; } >> "$GITHUB_OUTPUT"
  fi
fi
if [[ -n "${GITHUB_PATH:-}" ]]; then
  echo "$venv/bin" >> "$GITHUB_PATH"
fi
if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
  # `python` is how the stage actions start mlsec: "$python" -I -m mlsec_actions <stage>, never a bare
  # `mlsec` looked up on PATH (docs/workflows.md#stage-action-pattern).
  { echo "bin-dir=$venv/bin"; echo "python=$venv/bin/python"; echo "venv-dir=$venv"; } >> "$GITHUB_OUTPUT"
fi
