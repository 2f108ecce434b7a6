#!/usr/bin/env bash
# Install outreach into .venv (a normal install, as a user gets it) and run it on its
# embedded default (no servers needed).
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check --force-reinstall --no-deps . 
.venv/bin/pip install -q --disable-pip-version-check .
rm -rf build
cd /tmp && exec "$OLDPWD/.venv/bin/outreach" dev "$@"
