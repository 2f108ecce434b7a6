"""The store: outreach's system of record in Redis.

This package is the one owner of Redis keys (``keys.py``) and Lua scripts
(``lua/``); services reach Redis only through a ``Store``.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import redis

from outreach.store.keys import Keys

_SCRIPTS = ("intake", "ingest", "claim_send", "finish_send", "queue_page", "track_event", "qualify",
            "remember_list")


def _load(name: str) -> str | None:
    """A script's source; a ``--@prelude`` line is replaced by ``_prelude.lua``."""
    folder = resources.files("outreach.store").joinpath("lua")
    path = folder.joinpath(name + ".lua")
    if not path.is_file():
        return None
    source = path.read_text()
    if "--@prelude\n" in source:
        source = source.replace("--@prelude\n", folder.joinpath("_prelude.lua").read_text(), 1)
    return source


class Store:
    """A Redis client, the key names and the registered Lua scripts of one installation."""

    def __init__(self, client: redis.Redis, prefix: str = "outreach") -> None:
        self.r = client
        self.keys = Keys(prefix)
        self.scripts: dict[str, Any] = {}
        for name in _SCRIPTS:
            source = _load(name)
            if source is not None:
                self.scripts[name] = client.register_script(source)

    def run(self, script: str, keys: list[str] | None = None, args: list[Any] | None = None) -> Any:
        """EVALSHA a registered script (loading it once if the server lost it)."""
        keys = keys or []
        registered = self.scripts[script]
        try:
            return self.r.execute_command("EVALSHA", registered.sha, len(keys), *keys, *(args or []))
        except redis.exceptions.NoScriptError:
            return registered(keys=keys, args=args or [])

    def ensure_ingest_group(self) -> None:
        try:
            self.r.xgroup_create(self.keys.intake_stream, self.keys.ingest_group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def next_id(self, kind: str, prefix: str) -> tuple[str, int]:
        n = int(self.r.hincrby(self.keys.sequences, kind, 1))
        return prefix + to_base36(n), n


def to_base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def connect(url: str, prefix: str = "outreach") -> Store:
    """A store on a real Redis server."""
    pool = redis.ConnectionPool.from_url(url, decode_responses=True, health_check_interval=30)
    return Store(redis.Redis(connection_pool=pool), prefix)


_FAKE_SERVERS: dict[str, Any] = {}


def embedded(name: str = "embedded", prefix: str = "outreach") -> Store:
    """An in-process fake Redis (``outreach dev`` and unit tests). Same name, same data."""
    import fakeredis

    server = _FAKE_SERVERS.setdefault(name, fakeredis.FakeServer())
    return Store(fakeredis.FakeRedis(server=server, decode_responses=True), prefix)
