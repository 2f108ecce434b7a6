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
