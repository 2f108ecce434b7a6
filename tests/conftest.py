"""Unit-test fixtures: an app on the in-process fake Redis, one key prefix per test.

No servers: the store is fakeredis (``outreach.store.embedded``), the broker is
``memory://`` and the ingest kick is recorded instead of publishing a Celery task.
Registrations are processed by calling the ingest service directly (``env.drain()``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import outreach
from outreach.services import ingest
from outreach.services.apikeys import create_api_key

_serial = itertools.count(1)


class Env:
    """One app with its own keys in the shared fake Redis, plus request helpers."""

    def __init__(self, **overrides: Any) -> None:
        self.prefix = f"ut{os.getpid()}-{next(_serial)}"
        config = {
            "redis_url": "",
            "key_prefix": self.prefix,
            "intake_rate_limit": "0",
            "broker_url": "memory://",
            # one kick per drain, whatever the clock does while a test runs
            "ingest_kick_ms": 24 * 3600 * 1000,
        }
        config.update(overrides)
        self.app = outreach.create_app(config)
        self.kicks: list[int] = []
        self.app.extensions["outreach.kick_ingest"] = lambda: self.kicks.append(1)
        self.store = self.app.extensions["outreach.store"]
        self.config = self.app.extensions["outreach.config"]
        self.client = self.app.test_client()
        self.api_key = create_api_key(self.store, "test")
        self.auth = {"Authorization": f"Bearer {self.api_key}"}

    # intake
    def register(self, email: str = "ann@example.com", kind: str = "white_paper",
                 asset: str = "guide", headers: dict[str, str] | None = None,
                 **fields: Any) -> Any:
        body = {"kind": kind, "asset": asset, "email": email, **fields}
        return self.client.post("/api/v1/registrations", json=body, headers=headers or {})

    def drain(self) -> ingest.DrainResult:
        return ingest.drain(self.store, self.config, "test-consumer")

    def registered(self, email: str = "ann@example.com", **kwargs: Any) -> dict[str, Any]:
        """Register, drain and return the registration's status (processed)."""
        response = self.register(email, **kwargs)
        assert response.status_code == 202, response.get_json()
        self.drain()
        return self.get(f"/api/v1/registrations/{response.get_json()['id']}").get_json()

    # marketer API
    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.auth, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.client.post(path, json=json, headers=self.auth, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.client.patch(path, json=json, headers=self.auth, **kwargs)

    def close(self) -> None:
        keys = list(self.store.r.scan_iter(match=self.store.keys.tag + ":*", count=1000))
        if keys:
            self.store.r.delete(*keys)

    def __enter__(self) -> Env:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture(scope="session")
def make_env() -> Callable[..., Env]:
    """A factory for fresh environments; use it as ``with make_env() as env:`` inside
    hypothesis tests, where each example needs a clean store."""
    return Env


@pytest.fixture
def env() -> Iterator[Env]:
    with Env() as e:
        yield e


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape: ``{"error": {"code", "message"[, "fields"]}}``."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if status == 422:
        assert isinstance(error["fields"], dict) and error["fields"]
        for messages in error["fields"].values():
            assert isinstance(messages, list) and all(isinstance(m, str) for m in messages)
    else:
        assert "fields" not in error
    if code is not None:
        assert error["code"] == code
    return error


@pytest.fixture(scope="session")
def check_error() -> Callable[..., dict[str, Any]]:
    """``check_error(response, status, code=None)`` asserts the one error shape."""
    return assert_error
