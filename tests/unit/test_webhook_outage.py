"""Webhooks wait out an outage (issue 18): disabled only after failing continuously for
OUTREACH_WEBHOOK_DISABLE_AFTER_HOURS, every pending delivery keeps its schedule, the
console shows each webhook's backlog, and lead.created is recorded by the ingest script."""

from __future__ import annotations

import contextlib
import json
import re
import time
from typing import Any

from outreach.people import ingest
from outreach.platform import webhooks
from outreach.platform.users import create_user


def _deliver_due(env, now: float, post) -> list[str]:
    return [webhooks.deliver(env.store, env.config, d, post, now=now)
            for d in webhooks.claim_due(env.store, now=now, limit=1000)]


def test_a_receiver_down_for_a_minute_in_a_burst_gets_every_event_and_stays_on(make_env):
    with make_env(webhook_allow_private=True) as env:
        hook = env.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/h",
                                             "events": ["lead.created"]}).get_json()
        for n in range(40):
            assert env.register(f"p{n}@example.com").status_code == 202
        env.drain()
        assert webhooks.backlog(env.store, [hook["id"]]) == {hook["id"]: 40}
        received: list[str] = []
        down_until = time.time() + 60

        def post(url: str, body: bytes, headers: dict[str, str], timeout: float,
                 allow: bool) -> int:
            if now < down_until:
                raise ConnectionRefusedError("refused")
            received.append(json.loads(body)["data"]["lead"]["email"])
            return 200

        now = time.time()
        while now < down_until + 400:  # the beat's ticks, every few seconds of a fake clock
            _deliver_due(env, now, post)
            now += 5
        shown = env.get(f"/api/v1/webhooks/{hook['id']}").get_json()
        assert shown["active"] is True and not shown["disabled_reason"]
        assert sorted(received) == sorted(f"p{n}@example.com" for n in range(40))
        assert webhooks.backlog(env.store, [hook["id"]]) == {hook["id"]: 0}


def test_the_console_shows_the_backlog_per_webhook(make_env):
    with make_env(webhook_allow_private=True) as env:
        env.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/h", "events": ["lead.created"]})
        for n in range(3):
            env.register(f"p{n}@example.com")
        env.drain()
        password = "correct horse battery"
        create_user(env.store, "admin@example.com", "admin", password)
        login = env.client.get("/console/login").data
        csrf = re.search(rb'name="csrf_token" value="([^"]+)"', login).group(1).decode()
        env.client.post("/console/login", data={"email": "admin@example.com",
                                                "password": password, "csrf_token": csrf})
        page = env.client.get("/console/webhooks").get_data(as_text=True)
        assert "3 pending deliveries" in page


def test_lead_created_is_recorded_by_the_ingest_script_itself(make_env, monkeypatch):
    with make_env(webhook_allow_private=True) as env:
        hook = env.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/h",
                                             "events": ["lead.created"]}).get_json()
        for n in range(3):
            env.register(f"p{n}@example.com")
        # the worker dies between the ingest script and writing the deliveries
        def die(*_: Any, **__: Any) -> int:
            raise SystemExit("killed")

        monkeypatch.setattr(ingest, "announce_created", die)
        with contextlib.suppress(SystemExit):
            env.drain()
        monkeypatch.undo()
        assert webhooks.backlog(env.store, [hook["id"]]) == {hook["id"]: 0}
        # the webhooks tick flushes what the script recorded, once however often it runs
        assert ingest.announce_created(env.store) == 3
        assert ingest.announce_created(env.store) == 0
        assert webhooks.backlog(env.store, [hook["id"]]) == {hook["id"]: 3}
        emails = []
        for delivery_id in webhooks.claim_due(env.store, now=time.time() + 1):
            body = env.store.r.hget(env.store.keys.webhook_delivery(delivery_id), "body")
            emails.append(json.loads(body)["data"]["lead"]["email"])
        assert sorted(emails) == ["p0@example.com", "p1@example.com", "p2@example.com"]
