"""Redis servers of a test's own: private port and data dir, killable, restartable.

For store-fault tests: a redis-server with AOF (``appendfsync always``) that a test can
SIGKILL and start again from the same directory, a replica, and Sentinels
(``redis-server --sentinel``, which Debian's redis-sentinel package also runs).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return binary


class RedisProcess:
    """One redis-server (or sentinel) child process on 127.0.0.1:``port``, data in ``folder``."""

    def __init__(self, folder: Path, port: int | None = None, *, aof: bool = True,
                 replica_of: int | None = None, sentinel_conf: str | None = None) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.aof, self.replica_of, self.sentinel_conf = aof, replica_of, sentinel_conf
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.folder / "server.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        if self.sentinel_conf is not None:
            conf = self.folder / "sentinel.conf"
            if not conf.exists():  # a sentinel rewrites its file: write it once
                conf.write_text(self.sentinel_conf)
            return [redis_binary(), str(conf), "--sentinel", "--port", str(self.port),
                    "--dir", str(self.folder), "--logfile", str(self.log)]
        argv = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.folder), "--save", "", "--logfile", str(self.log),
                "--maxmemory-policy", "noeviction"]
        if self.aof:
            argv += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            argv += ["--appendonly", "no"]
        if self.replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        return argv

    def start(self, timeout: float = 30.0, restart: bool = False) -> RedisProcess:
        """Start (or, ``restart``, start again from the same data dir: failing is then an
        error, not a reason to skip)."""
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                self.kill()
                reason = f"redis-server did not start on port {self.port}: {log[-500:]}"
                if restart:
                    raise AssertionError(reason)
                pytest.skip(reason)
            time.sleep(0.05)
        if self.sentinel_conf is None:
            # loading the AOF: PING answers LOADING errors until the data is there
            while True:
                try:
                    redis.Redis(port=self.port, socket_timeout=2).dbsize()
                    break
                except redis.BusyLoadingError:
                    time.sleep(0.05)
        return self

    def ping(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1,
                                    socket_connect_timeout=1).ping())
        except redis.BusyLoadingError:
            return True
        except redis.RedisError:
            return False

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL: what a crash, an OOM kill or a lost machine does."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5)


class SentinelGroup:
    """One master, one replica, three sentinels (quorum 2), all on free local ports."""

    def __init__(self, folder: Path, name: str = "outreach-it", down_after_ms: int = 2000) -> None:
        self.name = name
        self.master = RedisProcess(folder / "a")
        self.replica = RedisProcess(folder / "b", replica_of=self.master.port)
        conf = (f"sentinel monitor {name} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {name} {down_after_ms}\n"
                f"sentinel failover-timeout {name} 10000\n"
                f"sentinel parallel-syncs {name} 1\n")
        self.sentinels = [RedisProcess(folder / f"s{i}", sentinel_conf=conf) for i in range(3)]

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def start(self) -> SentinelGroup:
        self.master.start()
        self.replica.start()
        wait_until(lambda: self.master.client().info("replication").get("connected_slaves", 0) >= 1
                   and self.replica.client().info("replication").get("master_link_status") == "up",
                   60, "the replica to sync")
        for sentinel in self.sentinels:
            sentinel.start()
        # every sentinel knows the replica and the other sentinels before anything is killed
        wait_until(lambda: all(self._ready(s) for s in self.sentinels), 60, "sentinels to agree")
        return self

    def _ready(self, sentinel: RedisProcess) -> bool:
        try:
            info = sentinel.client().execute_command("SENTINEL", "MASTER", self.name)
        except redis.RedisError:
            return False
        fields = dict(zip(info[::2], info[1::2], strict=False)) if isinstance(info, list) else info
        return int(fields.get("num-slaves", 0)) >= 1 and int(fields.get("num-other-sentinels", 0)) >= 2

    def master_port(self) -> int | None:
        for sentinel in self.sentinels:
            try:
                address = sentinel.client().execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
            except redis.RedisError:
                continue
            if address:
                return int(address[1])
        return None

    def stop(self) -> None:
        for process in (*self.sentinels, self.replica, self.master):
            process.kill()


def wait_until(predicate, timeout: float, message: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(0.1)
