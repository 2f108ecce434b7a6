"""Celery's own tools work against the configured app: ``celery -A tasks ...`` reads the
``OUTREACH_*`` settings (tasks.app, configured lazily) and reaches the workers that
``outreach worker`` runs, on either broker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import wait_for

pytestmark = pytest.mark.integration


def _celery(service: Any, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # from a folder without a checkout: `-A tasks` is the installed package
    return subprocess.run([sys.executable, "-m", "celery", "-A", "tasks", *args],
                          env={**os.environ, **service.env}, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_inspect_and_purge_reach_the_configured_broker(make_service, tmp_path: Path) -> None:
    service = make_service()
    worker = service.start_worker(concurrency=1)
    name = f"it1-{os.getpid()}@{socket.gethostname()}"

    ping = _celery(service, tmp_path, "inspect", "ping", "-d", name, "-t", "10", "-j")
    assert ping.returncode == 0, ping.stderr
    assert json.loads(ping.stdout) == {name: {"ok": "pong"}}

    queues = _celery(service, tmp_path, "inspect", "active_queues", "-d", name, "-t", "10", "-j")
    assert queues.returncode == 0, queues.stderr
    assert {q["name"] for q in json.loads(queues.stdout)[name]} == {"ingest", "send", "default"}

    stats = _celery(service, tmp_path, "inspect", "stats", "-d", name, "-t", "10", "-j")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)[name]["pool"]["max-concurrency"] == 1

    # with no worker consuming, `purge` empties the queues outreach publishes to
    worker.stop()
    celery_app = service.app.extensions["celery"]
    for _ in range(3):
        celery_app.send_task("outreach.conversion.run", queue="default")
    purged = _celery(service, tmp_path, "purge", "-f", "-Q", "default")
    assert purged.returncode == 0, purged.stderr
    assert "Purged 3 messages" in purged.stdout, purged.stdout
    again = wait_for(lambda: _celery(service, tmp_path, "purge", "-f", "-Q", "default"),
                     message="a second purge")
    assert "No messages purged" in again.stdout, again.stdout
