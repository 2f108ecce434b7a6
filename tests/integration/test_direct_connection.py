"""The intake's own Redis connection (Store.direct) on a real server: reconnects, keeps in
step after error replies, reloads flushed scripts, and is never shared across a fork."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator

import pytest
import redis

from outreach.config import Config
from outreach.people.intake import accept_registration
from outreach.store import DirectConnection, Store, connect


@pytest.fixture
def store(redis_server: str) -> Iterator[Store]:
    store = connect(redis_server, "direct-test")
    yield store
    keys = list(store.r.scan_iter(match=store.keys.tag + ":*", count=1000))
    if keys:
        store.r.delete(*keys)


def _client_id(store: Store) -> int:
    return int(store.direct("CLIENT", "ID"))


def test_a_real_server_gets_the_direct_path(store: Store) -> None:
    assert isinstance(store.direct, DirectConnection)
    entry = store.direct("XADD", store.keys.intake_stream, "*", "d", "{}")
    assert isinstance(entry, str) and "-" in entry
    assert store.r.xlen(store.keys.intake_stream) == 1


def test_the_same_connection_serves_every_call_of_a_thread(store: Store) -> None:
    first = _client_id(store)
    for _ in range(5):
        store.direct("PING")
    assert _client_id(store) == first


def test_an_error_reply_keeps_the_connection(store: Store) -> None:
    first = _client_id(store)
    store.r.set(store.keys.tag + ":not-a-stream", "x")
    with pytest.raises(redis.ResponseError):
        store.direct("XADD", store.keys.tag + ":not-a-stream", "*", "d", "{}")
    assert _client_id(store) == first


def test_a_killed_connection_is_reopened_and_the_write_lands_once(store: Store) -> None:
    killed = _client_id(store)
    store.r.execute_command("CLIENT", "KILL", "ID", killed)
    store.direct("XADD", store.keys.intake_stream, "*", "d", "{}")
    assert store.r.xlen(store.keys.intake_stream) == 1
    assert _client_id(store) != killed


def test_flushed_scripts_are_loaded_again(store: Store) -> None:
    config = Config.from_env().with_overrides(intake_rate_limit="5/minute")
    data = {"kind": "event", "asset": "summit", "email": "a@example.com"}
    accept_registration(store, config, data, client="198.51.100.7")
    store.r.script_flush()
    accepted = accept_registration(store, config, data, client="198.51.100.7")
    assert not accepted.duplicate
    assert store.r.xlen(store.keys.intake_stream) == 2


def _child_client_id(queue: multiprocessing.Queue) -> None:
    queue.put(_client_id(_inherited))


_inherited: Store


def test_a_forked_process_opens_its_own_connection(store: Store) -> None:
    # gunicorn may create the app before forking its workers: a socket inherited from the
    # parent must never carry a child's commands
    global _inherited
    _inherited = store
    parent = _client_id(store)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_client_id, args=(queue,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert queue.get(timeout=5) != parent
    assert _client_id(store) == parent


def test_after_a_timeout_a_late_reply_is_never_taken_for_the_next_ones(redis_server: str) -> None:
    store = connect(redis_server + "?socket_timeout=0.2", "direct-test")
    waiting = store.keys.tag + ":never-filled"
    with pytest.raises(redis.TimeoutError):
        store.direct("BLPOP", waiting, 1)  # Redis answers (nil) after 1 s, too late
    time.sleep(1.2)  # the late answer has arrived by now on the old socket
    assert store.direct("ECHO", "fresh") == "fresh"
