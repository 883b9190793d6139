#!/usr/bin/env bash
# Microsoft's Python SDK for Azure Blob Storage, for the tests that mix it
# with etagstore (tests/integration/azure_foreign.rs): a virtualenv of the
# project's own in .venv-sdk/ (git ignores it) with the exact versions of
# scripts/requirements-sdk.txt. Idempotent: a second run with the same
# requirements installs nothing.
#
#   scripts/python-sdk.sh          # then: .venv-sdk/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-sdk
requirements=scripts/requirements-sdk.txt
stamp=$venv/.requirements

if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then
  exit 0
fi
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
# --no-deps: the file pins every package, dependencies included
# (made once with pip install azure-storage-blob==12.31.1 && pip freeze).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --no-deps -r "$requirements"
"$venv/bin/python" -c 'import azure.storage.blob'
cp "$requirements" "$stamp"
