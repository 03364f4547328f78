#!/usr/bin/env bash
# Create or update the project's virtualenv idempotently and install the package with dev extras.
set -euo pipefail
venv="${1:-.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv with $python"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
echo "setup: installing aiadmin and its dev extras into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2> >(grep -v "is ignored: it is neither" >&2)
