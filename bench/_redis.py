"""Private redis-servers for the durability benchmarks: own port, own data dir, killable.

A ``RedisServer`` runs with the persistence a benchmark asks for (``aof=None``: none,
``"everysec"`` or ``"always"``), optionally as a replica; ``SentinelGroup`` is one master,
one replica and three sentinels (quorum 2) on free local ports.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from _common import free_port, start


@contextlib.contextmanager
def private_server(prefix: str) -> Iterator[RedisServer]:
    """A started ``RedisServer`` (no persistence) in a temporary directory, killed on the way
    out: a benchmark's own Redis, whose memory and keys are all its own."""
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        server = RedisServer(Path(folder) / "redis").start()
        try:
            yield server
        finally:
            server.kill()


class RedisServer:
    def __init__(self, folder: Path, *, aof: str | None = None, replica_of: int | None = None,
                 sentinel_conf: str | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.aof, self.replica_of, self.sentinel_conf = aof, replica_of, sentinel_conf
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        binary = shutil.which("redis-server") or "redis-server"
        log = str(self.folder / "server.log")
        if self.sentinel_conf is not None:
            conf = self.folder / "sentinel.conf"
            if not conf.exists():
                conf.write_text(self.sentinel_conf)
            return [binary, str(conf), "--sentinel", "--port", str(self.port),
                    "--dir", str(self.folder), "--logfile", log]
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                "--save", "", "--logfile", log, "--maxmemory-policy", "noeviction",
                "--repl-diskless-sync-delay", "0"]
        argv += (["--appendonly", "yes", "--appendfsync", self.aof] if self.aof
                 else ["--appendonly", "no"])
        if self.replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        return argv

    def start(self, timeout: float = 30.0) -> RedisServer:
        self.proc = start(self.argv())
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = redis.Redis(port=self.port, socket_timeout=1)
                # a sentinel has no keyspace; a server answers LOADING while it reads its AOF
                client.ping() if self.sentinel_conf is not None else client.dbsize()
                return self
            except redis.BusyLoadingError:
                pass
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {self.port} did not start; see "
                                       f"{self.folder / 'server.log'}") from None
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5)


class SentinelGroup:
    def __init__(self, folder: Path, name: str = "outreach-bench", down_after_ms: int = 1000,
                 aof: str | None = None) -> None:
        self.name = name
        self.master = RedisServer(folder / "a", aof=aof)
        self.replica = RedisServer(folder / "b", aof=aof, replica_of=self.master.port)
        conf = (f"sentinel monitor {name} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {name} {down_after_ms}\n"
                f"sentinel failover-timeout {name} 10000\n")
        self.sentinels = [RedisServer(folder / f"s{i}", sentinel_conf=conf) for i in range(3)]

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def start(self) -> SentinelGroup:
        self.master.start()
        self.replica.start()
        wait(lambda: self.replica.client().info("replication").get("master_link_status") == "up",
             60, "the replica to sync")
        for sentinel in self.sentinels:
            sentinel.start()
        wait(lambda: all(self._ready(s) for s in self.sentinels), 60, "the sentinels to agree")
        return self

    def _ready(self, sentinel: RedisServer) -> bool:
        info = sentinel.client().execute_command("SENTINEL", "MASTER", self.name)
        fields = dict(zip(info[::2], info[1::2], strict=False)) if isinstance(info, list) else info
        return int(fields.get("num-slaves", 0)) >= 1 and int(fields.get("num-other-sentinels", 0)) >= 2

    def master_port(self) -> int | None:
        for sentinel in self.sentinels:
            with contextlib.suppress(redis.RedisError):
                address = sentinel.client().execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
                if address:
                    return int(address[1])
        return None

    def stop(self) -> None:
        for server in (*self.sentinels, self.replica, self.master):
            server.kill()


def wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(redis.RedisError):
            if predicate():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)
