"""Campaigns end to end: real Redis, real worker processes, a real SMTP server (aiosmtpd).

What arrives at the SMTP server is counted per address: every eligible address gets
exactly one message, whatever crashes, pauses, 4xx/5xx answers or outages happen.
"""

from __future__ import annotations

import random
import re
import signal
import time

from outreach.mail.capture import SmtpCapture

from .conftest import wait_for

TEMPLATE = {
    "name": "follow-up",
    "subject": "Hello {{ first_name or 'there' }}",
    "html": '<p>Hi {{ first_name }}, read <a href="https://example.com/guide">the guide</a>.</p>'
            '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
    "text": "Hi {{ first_name }}, read https://example.com/guide\nUnsubscribe: {{ unsubscribe_url }}",
}


def _audience(service, people: int, asset: str = "guide", consent_ratio: float = 1.0,
              seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    emails = []
    for i in range(people):
        email = f"r{i}@example.org"
        consent = rng.random() < consent_ratio
        service.register(kind="white_paper", asset=asset, email=email, first_name=f"R{i}",
                         consent=consent)
        if consent:
            emails.append(email)
    return emails


def _lead_list(service, asset: str) -> str:
    for lst in service.all_items("/api/v1/lists"):
        if lst["asset"] and lst["asset"]["slug"] == asset and lst["member_type"] == "lead":
            return lst["id"]
    raise AssertionError(f"no lead list for {asset}")


def _campaign(service, list_ids: list[str], **extra) -> str:
    template = service.post("/api/v1/templates", TEMPLATE, status=201)
    body = {"name": "launch", "template_id": template["id"], "list_ids": list_ids,
            "from_email": "news@mail.example.com", **extra}
    return service.post("/api/v1/campaigns", body, status=201)["id"]


def _wait_status(service, campaign_id: str, status: str, timeout: float = 120) -> dict:
    return wait_for(lambda: (c := service.get(f"/api/v1/campaigns/{campaign_id}"))["status"] == status
                    and c, timeout=timeout, message=f"campaign {status}")


def _recipients(service, campaign_id: str, status: str) -> set[str]:
    return {r["email"] for r in service.all_items(
        f"/api/v1/campaigns/{campaign_id}/recipients?status={status}")}


def test_each_eligible_address_gets_exactly_one_message(make_service):
    service = make_service()
    service.start_worker()
    a = _audience(service, 120, asset="guide", consent_ratio=0.8, seed=1)
    # the same people (and some new ones) registered for an event: overlapping lists
    b = _audience(service, 160, asset="summit", consent_ratio=0.8, seed=2)
    service.post("/api/v1/contacts", {"email": "cto@bigco.com", "consent": True}, status=201)
    service.register(kind="white_paper", asset="guide", email="CTO@bigco.com")
    wait_for(lambda: service.processed_count() == 281, message="ingest")
    lists = service.all_items("/api/v1/lists")
    guide_contacts = next(lst["id"] for lst in lists
                          if lst["asset"]["slug"] == "guide" and lst["member_type"] == "contact")

    # someone unsubscribes through a first campaign's one-click link
    first = _campaign(service, [_lead_list(service, "guide")])
    service.post(f"/api/v1/campaigns/{first}/launch", status=200)
    _wait_status(service, first, "sent")
    victim = "r5@example.org"
    message = next(m for m in service.smtp.messages if m.rcpt_tos == [victim])
    url = re.search(r"<http://outreach\.test(/u/[^>]+)>", message.message["List-Unsubscribe"]).group(1)
    response = service.client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    service.smtp.clear()

    second = _campaign(service, [_lead_list(service, "guide"), _lead_list(service, "summit"),
                                 guide_contacts])
    service.post(f"/api/v1/campaigns/{second}/launch", status=200)
    campaign = _wait_status(service, second, "sent")
    counts = service.smtp.count_by_recipient()
    consenting = set(a) | set(b)
    # a registration never withdraws consent given on another form: consent is per person
    eligible = {e for e in consenting} | {"cto@bigco.com"}
    eligible.discard(victim)
    assert set(counts) == eligible
    assert all(n == 1 for n in counts.values())
    assert campaign["stats"]["sent"] == len(eligible)
    assert campaign["stats"]["suppressed"] == 1
    assert campaign["progress"] == 1.0
    for msg in service.smtp.messages:
        parsed = msg.message
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert parsed["Message-ID"].endswith("@mail.example.com>")
        assert parsed.get_body(("plain",)) is not None and parsed.get_body(("html",)) is not None


def test_send_worker_killed_mid_campaign_sends_no_duplicates(make_service):
    service = make_service()
    service.start_worker()
    emails = _audience(service, 3000, asset="big")
    wait_for(lambda: service.processed_count() == 3000, message="ingest")
    campaign_id = _campaign(service, [_lead_list(service, "big")])
    service.workers[0].stop()
    worker = service.start_worker(concurrency=2)
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    wait_for(lambda: len(service.smtp.messages) >= 600, interval=0.01, message="sending under way")
    worker.kill(signal.SIGKILL)
    assert len(service.smtp.messages) < 3000, "finished before the kill"
    service.start_worker(concurrency=2)
    campaign = _wait_status(service, campaign_id, "sent", timeout=180)
    counts = service.smtp.count_by_recipient()
    assert max(counts.values()) == 1, "an address got two messages"
    unknown = _recipients(service, campaign_id, "unknown")
    sent = _recipients(service, campaign_id, "sent")
    assert len(unknown) <= 2, unknown  # at most one in flight per worker process
    assert sent | unknown == set(emails)
    assert set(counts) - unknown == sent
    assert campaign["stats"]["sent"] == len(sent)
    assert campaign["stats"]["unknown"] == len(unknown)


def test_pause_and_resume_never_resend(make_service):
    service = make_service()
    service.start_worker()
    emails = _audience(service, 600, asset="paced")
    wait_for(lambda: service.processed_count() == 600, message="ingest")
    campaign_id = _campaign(service, [_lead_list(service, "paced")], rate_per_second=150)
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    wait_for(lambda: len(service.smtp.messages) >= 150, interval=0.01, message="sending under way")
    assert service.post(f"/api/v1/campaigns/{campaign_id}/pause", status=200)["status"] == "paused"
    time.sleep(1.0)
    frozen = len(service.smtp.messages)
    time.sleep(1.5)
    assert len(service.smtp.messages) == frozen < 600
    service.post(f"/api/v1/campaigns/{campaign_id}/resume", status=200)
    _wait_status(service, campaign_id, "sent")
    counts = service.smtp.count_by_recipient()
    assert set(counts) == set(emails) and max(counts.values()) == 1


def test_421_answers_slow_down_and_retry_without_loss(make_service):
    service = make_service()
    service.start_worker()
    emails = _audience(service, 200, asset="busy")
    wait_for(lambda: service.processed_count() == 200, message="ingest")
    refuse_until = time.monotonic() + 3.0
    refused = []

    def responder(rcpt: str) -> str | None:
        if time.monotonic() < refuse_until:
            refused.append(rcpt)
            return "421 4.7.0 Try again later"
        return None

    service.smtp.set_responder(responder)
    campaign_id = _campaign(service, [_lead_list(service, "busy")])
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    campaign = _wait_status(service, campaign_id, "sent", timeout=120)
    assert refused, "the server never refused"
    counts = service.smtp.count_by_recipient()
    assert set(counts) == set(emails) and max(counts.values()) == 1
    assert campaign["stats"]["sent"] == 200 and campaign["stats"]["failed"] == 0


def test_550_fails_and_suppresses_only_those_addresses_and_retry_failed(make_service):
    service = make_service()
    service.start_worker()
    emails = _audience(service, 150, asset="bounce")
    wait_for(lambda: service.processed_count() == 150, message="ingest")
    bad = {e for e in emails if int(e[1:].split("@")[0]) % 10 == 0}
    service.smtp.set_responder(lambda rcpt: "550 5.1.1 No such user" if rcpt in bad else None)
    campaign_id = _campaign(service, [_lead_list(service, "bounce")])
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    campaign = _wait_status(service, campaign_id, "sent")
    assert set(service.smtp.count_by_recipient()) == set(emails) - bad
    assert _recipients(service, campaign_id, "failed") == bad
    assert campaign["stats"]["failed"] == len(bad)
    suppressed = service.store.r.hgetall(service.store.keys.suppressed)
    assert set(suppressed) == bad

    service.smtp.set_responder(None)
    result = service.post(f"/api/v1/campaigns/{campaign_id}/retry-failed", status=200)
    assert result["requeued"] == len(bad)
    _wait_status(service, campaign_id, "sent")
    counts = service.smtp.count_by_recipient()
    assert set(counts) == set(emails) and max(counts.values()) == 1


def test_smtp_server_down_auto_pauses_then_resume_completes(make_service):
    service = make_service(send_max_consecutive_failures=4)
    service.start_worker()
    emails = _audience(service, 300, asset="outage")
    wait_for(lambda: service.processed_count() == 300, message="ingest")
    port = service.smtp.port
    service.smtp.stop()  # the relay is down
    campaign_id = _campaign(service, [_lead_list(service, "outage")])
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    paused = _wait_status(service, campaign_id, "paused", timeout=60)
    assert "consecutive delivery failures" in paused["status_reason"]
    assert "connect" in paused["status_reason"]

    service.smtp = SmtpCapture(port=port).start()  # the relay is back
    service.post(f"/api/v1/campaigns/{campaign_id}/resume", status=200)
    campaign = _wait_status(service, campaign_id, "sent", timeout=120)
    counts = service.smtp.count_by_recipient()
    assert set(counts) == set(emails) and max(counts.values()) == 1
    assert campaign["stats"]["sent"] == 300


def test_a_template_that_explodes_for_one_person_fails_only_that_person(make_service):
    """Templates are untrusted programs: a loop bomb that goes off for one person's data is
    stopped by the render budget in a live worker; that person is failed with the reason,
    everyone else is sent, and the worker goes on to the next campaign."""
    service = make_service()
    worker = service.start_worker()
    emails = _audience(service, 12, asset="bomb")
    service.register(kind="white_paper", asset="bomb", email="eve@example.org", first_name="Eve",
                     consent=True)
    wait_for(lambda: service.processed_count() == 13, message="ingest")
    bomb = ("{% if first_name == 'Eve' %}{% for a in range(100000) %}{% for b in range(100000) %}"
            "x{% endfor %}{% endfor %}{% endif %}")
    template = service.post("/api/v1/templates", {**TEMPLATE, "html": bomb + TEMPLATE["html"]},
                            status=201)
    list_id = _lead_list(service, "bomb")
    campaign_id = service.post("/api/v1/campaigns", {
        "name": "bomb", "template_id": template["id"], "list_ids": [list_id],
        "from_email": "news@mail.example.com"}, status=201)["id"]
    started = time.monotonic()
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    shown = _wait_status(service, campaign_id, "sent", timeout=60)
    assert time.monotonic() - started < 30
    assert shown["stats"]["sent"] == 12 and shown["stats"]["failed"] == 1
    assert _recipients(service, campaign_id, "failed") == {"eve@example.org"}
    assert set(service.smtp.count_by_recipient()) == set(emails)
    failed = service.all_items(f"/api/v1/campaigns/{campaign_id}/recipients?status=failed")
    assert "steps" in (failed[0].get("error") or "")
    assert worker.proc.poll() is None
    # the same worker sends the next campaign
    service.smtp.clear()
    again = _campaign(service, [list_id])
    service.post(f"/api/v1/campaigns/{again}/launch", status=200)
    assert _wait_status(service, again, "sent", timeout=60)["stats"]["sent"] == 13
    assert service.smtp.count_by_recipient()["eve@example.org"] == 1
