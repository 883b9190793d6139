#!/usr/bin/env bash
# A real jq (libjq 1.8.2, bundled by the PyPI `jq` package 1.13.0) for the
# compatibility table of `edit --jq` (tests/integration/jq_compat.rs): a
# virtualenv of the project's own in .venv-jq/ (git ignores it). Idempotent.
# The wheel needs no compiler; nothing else of the project uses it.
#
#   scripts/jq-oracle.sh && cargo test --all-features --test integration -- jq_compat
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-jq
pin="jq==1.13.0"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.pin" 2>/dev/null)" = "$pin" ]; then
  exit 0
fi
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$pin"
"$venv/bin/python" -c 'import jq'
echo "$pin" > "$venv/.pin"
