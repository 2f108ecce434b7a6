"""The store: outreach's system of record in Redis.

This package is the one owner of Redis keys (``keys.py``) and Lua scripts
(``lua/``); services reach Redis only through a ``Store``.
"""

from __future__ import annotations

import os
import re
import threading
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import redis

from outreach.store.keys import Keys

_SCRIPTS = ("intake", "ingest", "claim_send", "finish_send", "queue_page", "track_event", "qualify",
            "remember_list", "opp_write", "pipeline_rebuild", "claim_due", "mark_data",
            "forget_run", "bounce", "domain_take", "suppress", "lead_status", "lift")
_SCRIPTS += ("requeue_failed", "quota_take", "audience_seen", "add_members", "campaign_index")
_SCRIPTS += ("local_hold", "local_release")  # campaigns.local_time
_SCRIPTS += ("score_rebase",)  # people.scoring
_SCRIPTS += ("segment_fields",)  # people.segments.candidates
_SCRIPTS += ("segment_facts", "segment_write")  # people.segments.facts, .members
_SCRIPTS += ("journey_enter", "journey_claim", "journey_mark", "journey_stop")
_INCLUDE = re.compile(r"^--@(\w+)\n", re.M)


def _load(name: str) -> str | None:
    """A script's source; a ``--@<part>`` line is replaced by ``_<part>.lua`` (``--@prelude``:
    the shared helpers, ``--@suppression``: the one rule of suppression precedence)."""
    folder = resources.files("outreach.store").joinpath("lua")
    path = folder.joinpath(name + ".lua")
    if not path.is_file():
        return None
    return _INCLUDE.sub(lambda m: folder.joinpath(f"_{m[1]}.lua").read_text(), path.read_text())


class DirectConnection:
    """One command at a time on a connection this thread owns, outside the pool.

    For the hottest request path (intake: one command per request). redis-py's pooled
    ``execute_command`` costs ~15-20 us of CPU per call on top of the round trip (pool lock,
    a readiness poll of the socket, metrics, retry wrapper). A connection kept per thread
    and per process (safe across gunicorn's fork) skips all of that; it still answers
    ``health_check_interval`` like a pooled one. A connection that turns out dead is
    reopened and the command sent once more, as redis-py's default retry does.
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self._pool = pool
        self._local = threading.local()

    def _conn(self) -> Any:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():
            conn = local.conn = self._pool.connection_class(**self._pool.connection_kwargs)
            local.pid = os.getpid()
        # connect() explicitly, as the pool does: sending on an unconnected connection would
        # connect to its own host/port, bypassing a Sentinel-managed connection's discovery
        if not conn.is_connected:
            conn.connect()
        return conn

    def __call__(self, *args: Any) -> Any:
        conn = self._conn()
        try:
            conn.send_command(*args)
            return conn.read_response()
        except redis.ResponseError:
            raise  # an error reply: the connection is still in step
        except redis.ConnectionError:
            conn.disconnect()
            conn.connect()
            conn.send_command(*args)
            return conn.read_response()
        except BaseException:
            conn.disconnect()  # a timeout or an interrupted read: never reuse a desynced socket
            raise

    def many(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Several commands in one round trip (e.g. a write and its ``WAIT``); error replies
        come back as exception objects in place, so the connection stays in step."""
        conn = self._conn()
        try:
            return self._exchange(conn, commands)
        except redis.ConnectionError:
            conn.disconnect()
            conn.connect()
            return self._exchange(conn, commands)
        except BaseException:
            conn.disconnect()
            raise

    @staticmethod
    def _exchange(conn: Any, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
        conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
        return replies


class Store:
    """A Redis client, the key names and the registered Lua scripts of one installation."""

    def __init__(self, client: redis.Redis, prefix: str = "outreach") -> None:
        self.r = client
        self.keys = Keys(prefix)
        # a real server: the hot path gets its own connections (fakeredis: the client itself)
        self.direct: Any = (DirectConnection(client.connection_pool) if type(client) is redis.Redis
                            else client.execute_command)
        self.scripts: dict[str, Any] = {}
        self.sources: dict[str, str] = {}  # for EVAL where EVALSHA cannot fall back (MULTI)
        for name in _SCRIPTS:
            source = _load(name)
            if source is not None:
                self.sources[name] = source
                self.scripts[name] = client.register_script(source)

    def run(self, script: str, keys: list[str] | None = None, args: list[Any] | None = None,
            direct: bool = False) -> Any:
        """EVALSHA a registered script (loading it once if the server lost it).

        ``direct``: on this thread's own connection (``DirectConnection``), for hot paths.
        """
        keys = keys or []
        registered = self.scripts[script]
        execute = self.direct if direct else self.r.execute_command
        try:
            return execute("EVALSHA", registered.sha, len(keys), *keys, *(args or []))
        except redis.exceptions.NoScriptError:
            return registered(keys=keys, args=args or [])

    def durable(self, replicas: int, timeout_ms: int, *args: Any,
                script: str | None = None, keys: list[str] | None = None,
                script_args: list[Any] | None = None) -> tuple[Any, int]:
        """One write on this thread's direct connection followed by ``WAIT replicas timeout``
        in the same round trip: the write's reply and how many replicas acknowledged it.

        ``script``: the write is that registered script (``keys``/``script_args``), otherwise
        the command ``args``."""
        if script is not None:
            keys = keys or []
            registered = self.scripts[script]
            args = ("EVALSHA", registered.sha, len(keys), *keys, *(script_args or []))
        wait = ("WAIT", replicas, timeout_ms)
        if isinstance(self.direct, DirectConnection):
            reply, acked = self.direct.many(args, wait)
            if isinstance(reply, redis.exceptions.NoScriptError) and script is not None:
                reply, acked = self.direct.many(
                    ("EVAL", registered.script, len(keys or []), *(keys or []), *(script_args or [])),
                    wait)
        else:  # fakeredis (no replicas): the write alone
            reply, acked = self.direct(*args), replicas
        for value in (reply, acked):
            if isinstance(value, Exception):
                raise value
        return reply, int(acked)

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


def connect(url: str, prefix: str = "outreach", *, sentinels: tuple[str, ...] = (),
            master: str = "mymaster", socket_timeout: float = 5.0,
            connect_timeout: float = 2.0) -> Store:
    """A store on a real Redis server, or on the master that ``sentinels`` name.

    Every socket has a timeout: a store that hangs makes a command fail (the API answers
    503) instead of holding a request or a task forever. With Sentinel, every connection,
    the intake's ``DirectConnection`` included, asks the sentinels for the master when it
    (re)connects, and a master demoted to replica (``READONLY``) drops its connections.
    """
    timeouts = {"socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout,
                "socket_keepalive": True}
    if not sentinels:
        pool = redis.ConnectionPool.from_url(url, decode_responses=True, health_check_interval=30,
                                             **timeouts)
        return Store(redis.Redis(connection_pool=pool), prefix)
    from redis.sentinel import Sentinel

    parts = urlsplit(url) if url else None
    db = int((parts.path.strip("/") if parts else "") or 0)
    addresses = []
    for address in sentinels:
        host, _, port = address.rpartition(":")
        addresses.append((host or "127.0.0.1", int(port or 26379)))
    sentinel = Sentinel(addresses, sentinel_kwargs=dict(timeouts), **timeouts)
    client = sentinel.master_for(master, redis_class=redis.Redis, db=db, decode_responses=True,
                                 health_check_interval=30,
                                 username=(parts.username or None) if parts else None,
                                 password=(parts.password or None) if parts else None)
    return Store(client, prefix)


def from_config(config: Any) -> Store:
    """The store ``config`` (an ``outreach.config.Config``) describes."""
    if config.embedded:
        return embedded(prefix=config.key_prefix)
    return connect(config.redis_url, config.key_prefix, sentinels=config.redis_sentinels,
                   master=config.redis_sentinel_master, socket_timeout=config.redis_socket_timeout,
                   connect_timeout=config.redis_connect_timeout)


_FAKE_SERVERS: dict[str, Any] = {}


def embedded(name: str = "embedded", prefix: str = "outreach") -> Store:
    """An in-process fake Redis (``outreach dev`` and unit tests). Same name, same data."""
    import fakeredis

    server = _FAKE_SERVERS.setdefault(name, fakeredis.FakeServer())
    return Store(fakeredis.FakeRedis(server=server, decode_responses=True), prefix)
