#!/usr/bin/env bash
# Install outreach into .venv and run it on its embedded default (no servers needed).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
exec .venv/bin/outreach dev "$@"
