"""This process's running send batches: their heartbeats, and whether any is running."""

from __future__ import annotations

import contextlib
import threading
import time

from outreach.store import Store


class _Heartbeats:
    """Keeps each running batch's heartbeat key alive from a daemon thread, so a long SMTP
    transaction never looks like a dead worker; a killed process stops refreshing and its
    runs are seen dead after ``send_heartbeat_seconds``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, tuple[Store, float]] = {}
        self.thread: threading.Thread | None = None

    def beat(self, store: Store, run: str, seconds: float) -> None:
        store.r.set(store.keys.send_run(run), "1", px=max(1, int(seconds * 1000)))

    def add(self, store: Store, run: str, seconds: float) -> None:
        self.beat(store, run, seconds)
        with self.lock:
            self.runs[run] = (store, seconds)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="send-heartbeat",
                                               daemon=True)
                self.thread.start()

    def remove(self, store: Store, run: str) -> None:
        with self.lock:
            self.runs.pop(run, None)
        with contextlib.suppress(Exception):
            store.r.delete(store.keys.send_run(run))

    def busy(self) -> bool:
        with self.lock:
            return bool(self.runs)

    def _loop(self) -> None:
        while True:
            with self.lock:
                runs = list(self.runs.items())
            interval = min([seconds for _, (_, seconds) in runs] or [3.0]) / 3
            for run, (store, seconds) in runs:
                with contextlib.suppress(Exception):  # the next beat or the claim refreshes it
                    self.beat(store, run, seconds)
            time.sleep(max(0.2, interval))


HEARTBEATS = _Heartbeats()


def busy() -> bool:
    """Whether this process is in the middle of a send batch."""
    return HEARTBEATS.busy()
