#!/usr/bin/env bash
# Set up bulletdrive in ./.venv: torch 2.13.0 (CPU) first, then the project with its dev extras.
# Idempotent: a second run only checks a stamp and returns.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${BULLETDRIVE_VENV:-.venv}
stamp="$venv/.setup-$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)"
[ -f "$stamp" ] && exit 0
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import torch" 2>/dev/null || "$venv/bin/pip" install -q torch==2.13.0
"$venv/bin/pip" install -q -e ".[dev]"
rm -f "$venv"/.setup-*
touch "$stamp"
echo "bulletdrive is set up in $venv"
