"""The compose healthchecks as real processes: ``outreach worker-ping`` answers for a running
worker node and fails for a dead one; ``outreach beat-ping`` follows the beat's heartbeat."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import wait_for

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def _outreach(service, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "outreach"), *args], env={**os.environ, **service.env},
                          capture_output=True, text=True, timeout=60, cwd=service.tmp)


def test_worker_ping_answers_for_a_live_node_only(make_service) -> None:
    service = make_service()
    worker = service.start_worker(concurrency=1)
    node = f"it1-{os.getpid()}@{socket.gethostname()}"
    ok = _outreach(service, "worker-ping", "--node", node, "--timeout", "5")
    assert ok.returncode == 0 and f"{node}: pong" in ok.stdout, ok.stdout + ok.stderr
    worker.kill()
    dead = _outreach(service, "worker-ping", "--node", node, "--timeout", "2")
    assert dead.returncode == 1 and "did not answer" in dead.stderr, dead.stdout + dead.stderr


def test_beat_ping_follows_the_beat_heartbeat(make_service) -> None:
    service = make_service()
    none_yet = _outreach(service, "beat-ping")
    assert none_yet.returncode == 1 and "no beat heartbeat" in none_yet.stderr
    log = service.tmp / "beat.log"
    proc = subprocess.Popen([str(BIN / "outreach"), "beat", "-s", str(service.tmp / "schedule")],
                            env={**os.environ, **service.env}, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True, cwd=service.tmp)
    try:
        wait_for(lambda: _outreach(service, "beat-ping", "--max-age", "10").returncode == 0
                 or proc.poll() is not None, timeout=60, interval=0.5, message="a beat heartbeat")
        assert proc.poll() is None, log.read_text()
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=30)
    time.sleep(2.5)
    stale = _outreach(service, "beat-ping", "--max-age", "2")
    assert stale.returncode == 1 and "last tick" in stale.stderr, stale.stdout + stale.stderr
