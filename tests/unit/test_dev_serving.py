"""``outreach dev`` says it is serving only once its port answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dev_prints_serving_only_after_its_port_answers() -> None:
    port = _free_port()
    command = Path(sys.executable).with_name("outreach")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    proc = subprocess.Popen([str(command), "dev", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "serving" in line:
                break
        else:
            raise AssertionError("outreach dev never said it was serving")
        # at once, no retry: the port answers when the line is out
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            assert answer.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_port_answers_at_the_moment_serving_is_printed(monkeypatch) -> None:
    """In process and without timing: the "serving" line itself tries the port (before the
    command goes on), so printing it before the server listens fails every time."""
    import pytest

    from outreach.cli import dev
    from outreach.config import Config

    port = _free_port()
    answered: list[bool] = []
    servers: list[object] = []

    class Said(Exception):
        pass

    def say(*args: object, **_: object) -> None:
        if "serving" in " ".join(map(str, args)):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2):
                    answered.append(True)
            except OSError:
                answered.append(False)
            raise Said

    real = getattr(dev, "listening_server", None)

    def listening(*args: object, **kwargs: object) -> object:
        assert real is not None
        server = real(*args, **kwargs)
        servers.append(server)
        return server

    monkeypatch.setattr(dev, "print", say, raising=False)
    monkeypatch.setattr(dev, "listening_server", listening, raising=False)
    monkeypatch.setattr(dev, "start_in_process_worker", lambda app: None)
    try:
        with pytest.raises(Said):
            dev.run_dev(Config(), "127.0.0.1", port)
    finally:
        for server in servers:
            server.shutdown()  # type: ignore[attr-defined]
    assert answered == [True]


def _child_processes() -> set[str]:
    """This process's children (every thread's), from /proc."""
    from pathlib import Path as _Path

    found: set[str] = set()
    for children in _Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        found.update(children.read_text().split())
    return found


def test_the_beat_runs_in_process_and_forks_nothing() -> None:
    """The beat's tasks reach this process's worker (the worker's embedded beat forked a
    process whose tasks went to its own copy of the in-memory broker, where nothing ran
    them, and which outlived ``outreach dev``)."""
    import time

    from celery.signals import task_prerun
    from celery.worker import state

    from outreach.cli import dev
    from outreach.config import Config

    app, capture = dev.build_dev_app(Config(), port=_free_port())
    ran: list[str] = []

    def seen(sender: object = None, **_: object) -> None:
        ran.append(getattr(sender, "name", ""))

    task_prerun.connect(seen, weak=False)
    before = _child_processes()
    worker, beat = dev.start_in_process_worker(app)
    try:
        deadline = time.monotonic() + 30
        while "outreach.experiments.tick" not in ran and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "outreach.experiments.tick" in ran  # the beat's every-second entry, run here
        assert _child_processes() == before
    finally:
        beat.stop()
        state.should_terminate = 0  # how celery's own test worker is stopped
        worker.join(20)
        state.should_terminate = None
        task_prerun.disconnect(seen)
        capture.stop()
    assert not worker.is_alive()
