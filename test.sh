#!/usr/bin/env bash
# Build the wheel, install it (not editable) with the test dependencies into .venv, and run
# ruff and the whole test suite against that install: what users get is what is tested.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
PIP=(.venv/bin/pip install -q --disable-pip-version-check)
rm -rf dist build
.venv/bin/pip wheel -q --disable-pip-version-check --no-deps . -w dist
WHEEL=$(ls dist/outreach-*.whl)
"${PIP[@]}" "${WHEEL}[test]"
"${PIP[@]}" --force-reinstall --no-deps "$WHEEL"
rm -rf build
.venv/bin/ruff check outreach tasks tests bench setup.py
# imports run one way (pyproject.toml's layers contract, the order in DESIGN.md)
.venv/bin/lint-imports --no-cache
# `pytest` (not `python -m pytest`) keeps the source checkout off sys.path, so the tests
# import the installed package; tests/test_installed.py fails if they do not.
export OUTREACH_TEST_INSTALLED=1
exec .venv/bin/pytest "$@"
