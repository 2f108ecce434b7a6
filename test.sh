#!/usr/bin/env bash
# Install outreach with its test dependencies into .venv and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check outreach tasks tests bench
exec .venv/bin/python -m pytest "$@"
