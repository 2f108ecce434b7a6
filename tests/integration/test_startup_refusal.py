"""The real entry points refuse a forgeable secret or a malformed setting: one line, no
traceback, a non-zero exit (gunicorn's master included, with and without --preload)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(argv: list[str], tmp_path: Path, **env: str) -> tuple[int, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    full_env.update({"OUTREACH_REDIS_URL": "redis://127.0.0.1:6379/15",
                     "OUTREACH_SECRET_KEY": "s" * 40, **env})
    done = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=90,
                          cwd=tmp_path)
    return done.returncode, done.stdout + done.stderr


CASES = [
    ({"OUTREACH_SECRET_KEY": "dev-secret-change-me"}, "OUTREACH_SECRET_KEY is the built-in"),
    ({"OUTREACH_SECRET_KEY": "only-31-bytes-long-0123456789ab"}, "OUTREACH_SECRET_KEY is 31 bytes"),
    ({"OUTREACH_SMTP_PORT": "abc"}, "OUTREACH_SMTP_PORT='abc' is not an integer"),
]


@pytest.mark.parametrize("command, env, line", [
    (["worker"], *CASES[0]), (["beat"], *CASES[1]), (["api-key", "create", "ops"], *CASES[0]),
    (["worker"], *CASES[2]),
])
def test_outreach_commands_refuse(command: list[str], env: dict[str, str], line: str,
                                  tmp_path: Path) -> None:
    code, output = _run([str(BIN / "outreach"), *command], tmp_path, **env)
    assert code == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {line}"), output


@pytest.mark.parametrize("flags, env, line", [
    ([], *CASES[0]), ([], *CASES[1]), ([], *CASES[2]), (["--preload"], *CASES[1]),
    (["--preload", "-w", "3"], *CASES[2]),
])
def test_gunicorn_refuses(flags: list[str], env: dict[str, str], line: str, tmp_path: Path) -> None:
    """Plain ``gunicorn 'outreach:create_app()'``, no config file or hook: exit 4 (gunicorn's
    "App failed to load"), our line once per distinct message, no traceback. Several workers
    without --preload all failing at once can make gunicorn 27 itself print a HaltServer
    traceback (its halt -> stop -> reap_workers raises again), hence --preload in the image."""
    argv = [str(BIN / "gunicorn"), *flags, "-b", f"127.0.0.1:{_free_port()}", "outreach:create_app()"]
    code, output = _run(argv, tmp_path, **env)
    assert code == 4, output
    assert "Traceback" not in output
    ours = {text for text in output.splitlines() if "OUTREACH_" in text}
    assert len(ours) == 1 and ours.pop().startswith(f"outreach: error: {line}"), output
