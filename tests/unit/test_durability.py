"""Durability settings: Sentinel addresses become the broker URL and transport options;
OUTREACH_INTAKE_MIN_REPLICAS answers 503 (with Retry-After) when fewer replicas acknowledged
the write, 202 when enough did; a store that cannot be reached is a 503, never a 500."""

from __future__ import annotations

from typing import Any

import redis

from outreach.config import Config
from tasks import broker_transport_options, celery_settings


def test_sentinels_make_the_broker_a_sentinel_url_with_the_master_name() -> None:
    config = Config.from_env({
        "OUTREACH_REDIS_SENTINELS": "10.0.0.1:26379, 10.0.0.2:26380",
        "OUTREACH_REDIS_SENTINEL_MASTER": "prod",
        "OUTREACH_REDIS_URL": "redis://:s3cret@ignored/3",
    })
    assert not config.embedded
    assert config.redis_sentinels == ("10.0.0.1:26379", "10.0.0.2:26380")
    assert config.effective_broker_url == (
        "sentinel://:s3cret@10.0.0.1:26379/3;sentinel://:s3cret@10.0.0.2:26380/3")
    options = celery_settings(config)["broker_transport_options"]
    assert options["master_name"] == "prod"
    assert options["socket_timeout"] == config.broker_socket_timeout
    assert options["health_check_interval"] == config.broker_health_check_seconds


def test_an_explicit_broker_url_wins_and_amqp_gets_no_redis_options() -> None:
    config = Config.from_env({"OUTREACH_REDIS_SENTINELS": "h:1",
                              "OUTREACH_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"})
    assert config.effective_broker_url.startswith("amqp://")
    assert broker_transport_options(config, config.effective_broker_url) == {
        "visibility_timeout": config.visibility_timeout_seconds}
    settings = celery_settings(config)
    assert settings["broker_connection_retry"] is True
    assert settings["broker_connection_max_retries"] is None


def _with_replicas(env: Any, acked: int, monkeypatch: Any) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []
    store = env.store

    def durable(replicas: int, timeout_ms: int, *args: Any, **kwargs: Any) -> tuple[Any, int]:
        calls.append((replicas, timeout_ms, args, kwargs))
        if kwargs.get("script"):
            reply = store.run(kwargs["script"], keys=kwargs["keys"], args=kwargs["script_args"])
        else:
            reply = store.direct(*args)
        return reply, acked

    monkeypatch.setattr(store, "durable", durable)
    return calls


def test_min_replicas_not_reached_is_503_with_retry_after(make_env, check_error, monkeypatch) -> None:
    with make_env(intake_min_replicas=1, intake_replica_timeout_ms=250) as env:
        calls = _with_replicas(env, 0, monkeypatch)
        response = env.register("ann@example.com")
        check_error(response, 503, "unavailable")
        assert response.headers["Retry-After"] == "1"
        assert calls and calls[0][:2] == (1, 250)


def test_min_replicas_reached_is_202(make_env, monkeypatch) -> None:
    with make_env(intake_min_replicas=1) as env:
        calls = _with_replicas(env, 1, monkeypatch)
        assert env.register("ann@example.com").status_code == 202
        # the Lua path (Idempotency-Key) waits too, and a retry answers the same id
        first = env.register("bob@example.com", headers={"Idempotency-Key": "k1"})
        again = env.register("bob@example.com", headers={"Idempotency-Key": "k1"})
        assert first.status_code == again.status_code == 202
        assert first.get_json()["id"] == again.get_json()["id"]
        assert [c[3].get("script") for c in calls] == [None, "intake", "intake"]


def test_min_replicas_zero_never_waits(env, monkeypatch) -> None:
    calls = _with_replicas(env, 0, monkeypatch)
    assert env.register("ann@example.com").status_code == 202
    assert calls == []


def test_store_unreachable_is_503_not_500(env, check_error, monkeypatch) -> None:
    def down(*_args: Any) -> Any:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(env.store, "direct", down)
    response = env.register("ann@example.com")
    check_error(response, 503, "unavailable")
    assert response.headers["Retry-After"]
