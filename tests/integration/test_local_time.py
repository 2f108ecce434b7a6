"""A local-time send on real parts (a worker, Redis and an SMTP server): two recipients in
two zones, one whose 09:00-like moment has passed at launch (Tokyo) and one whose moment is
the next minute boundary (Reykjavik, UTC all year). Each gets the message once, and the
later one never before its moment; the campaign is finished only after it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from .conftest import wait_for
from .test_campaigns import TEMPLATE, _lead_list, _wait_status

PEOPLE = {"now@example.org": "Asia/Tokyo", "later@example.org": "Atlantic/Reykjavik"}


def _next_minute(lead_seconds: float) -> datetime:
    """The first whole minute (UTC) at least ``lead_seconds`` from now."""
    soon = datetime.now(UTC) + timedelta(seconds=lead_seconds)
    return soon.replace(second=0, microsecond=0) + timedelta(minutes=1)


def test_each_recipient_gets_it_at_their_local_time_once(make_service) -> None:
    service = make_service()
    arrived: dict[str, list[float]] = {}
    lock = threading.Lock()

    def record(rcpt: str) -> None:  # the SMTP server's DATA hook: when each one arrived
        with lock:
            arrived.setdefault(rcpt, []).append(time.time())

    service.smtp.set_responder(record)
    service.start_worker()
    for email, zone in PEOPLE.items():
        service.register(kind="white_paper", asset="guide", email=email, consent=True,
                         timezone=zone)
    wait_for(lambda: service.processed_count() == len(PEOPLE), message="ingest")
    template = service.post("/api/v1/templates", TEMPLATE, status=201)

    moment = _next_minute(5)  # Reykjavik's moment: a few seconds ahead; Tokyo's was 9 h ago
    campaign = service.post("/api/v1/campaigns", {
        "name": "local", "template_id": template["id"],
        "list_ids": [_lead_list(service, "guide")], "from_email": "news@mail.example.com",
        "send_at": moment.strftime("%Y-%m-%d"), "send_at_local": moment.strftime("%H:%M")},
        status=201)
    launched = service.post(f"/api/v1/campaigns/{campaign['id']}/launch", status=200)
    assert launched["status"] == "sending"  # the first zone (UTC+14) got there long ago

    wait_for(lambda: "now@example.org" in arrived, message="the recipient whose time has come")
    shown = service.get(f"/api/v1/campaigns/{campaign['id']}")
    if time.time() < moment.timestamp():  # (a very slow machine may already be past it)
        assert shown["status"] == "sending"
        assert shown["stats"]["waiting_local"] == 1
        assert "later@example.org" not in arrived

    done = _wait_status(service, campaign["id"], "sent", timeout=150)
    assert done["stats"]["sent"] == 2 and done["stats"]["waiting_local"] == 0
    assert {rcpt: len(times) for rcpt, times in arrived.items()} == dict.fromkeys(PEOPLE, 1)
    assert service.smtp.count_by_recipient() == dict.fromkeys(PEOPLE, 1)
    assert arrived["later@example.org"][0] >= moment.timestamp()  # never before its moment
