"""Redis is the outbox (issue 18, API.md "Integrity and recovery"): with the broker down,
launch, resume, retry-failed, a double opt-in registration and an import answer as usual,
and the work is done once the broker is back, with no further request and nothing twice.

The broker is a redis-server of the test's own (not the store), which the test stops and
starts again; on the RabbitMQ pass, the run's vhost behind a TCP proxy that the test closes
and opens again (``tcp_proxy``). A real worker and a real beat run throughout.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from outreach.people import confirmations

from .conftest import AMQP, BROKER_URL, wait_for
from .redis_procs import RedisProcess
from .tcp_proxy import AmqpBroker

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
TEMPLATE = {"name": "t", "subject": "Hello {{ first_name }}", "html": "<p>Hi</p>",
            "text": "Hi"}
DOI = {"slug": "letter", "kind": "white_paper", "title": "The Letter",
       "form": {"double_opt_in": True, "consent_text": "Send me the newsletter."}}


@pytest.fixture
def broker(tmp_path):
    """A broker the test stops and starts: on the RabbitMQ pass, this run's vhost behind a
    TCP proxy (this machine's RabbitMQ serves every test: only the proxy goes away); else a
    redis-server of the test's own."""
    if AMQP:
        proxied = AmqpBroker(BROKER_URL).start()
        yield proxied
        proxied.kill()
        return
    if BROKER_URL:
        pytest.skip("this pass runs its broker elsewhere")
    proc = RedisProcess(tmp_path / "broker", aof=True).start()
    yield proc
    proc.kill()


def _start_beat(service) -> subprocess.Popen[bytes]:
    log = service.tmp / "beat.log"
    return subprocess.Popen(
        [str(BIN / "outreach"), "beat", "-s", str(service.tmp / "beat-schedule")],
        env={**os.environ, **service.env}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True, cwd=service.tmp)


def _lead_list(service, asset: str) -> str:
    for lst in service.all_items("/api/v1/lists"):
        if lst["asset"] and lst["asset"]["slug"] == asset and lst["member_type"] == "lead":
            return lst["id"]
    raise AssertionError(f"no lead list for {asset}")


def test_every_door_with_the_broker_down_completes_once_it_is_back(make_service, broker):
    service = make_service(broker_url=broker.url, outbox_grace_seconds=1,
                           outbox_tick_seconds=1, webhook_tick_seconds=1)
    service.start_worker()
    beat = _start_beat(service)
    try:
        emails = [f"b{i}@example.org" for i in range(20)]
        for email in emails:
            service.register(kind="white_paper", asset="guide", email=email, consent=True)
        wait_for(lambda: service.processed_count() == 20, message="ingest")
        assert service.client.post("/api/v1/assets", json=DOI,
                                   headers=service.auth).status_code == 201
        template = service.post("/api/v1/templates", TEMPLATE, status=201)
        campaign_id = service.post("/api/v1/campaigns", {
            "name": "outage", "template_id": template["id"],
            "list_ids": [_lead_list(service, "guide")],
            "from_email": "news@mail.example.com"}, status=201)["id"]

        broker.kill()  # the broker is unreachable from here on
        launched = service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
        assert launched["status"] == "sending"
        response = service.client.post("/api/v1/registrations", json={
            "kind": "white_paper", "asset": "letter", "email": "doi@example.org",
            "consent": True})
        assert response.status_code == 202, response.get_json()
        upload = service.client.post("/api/v1/imports", headers=service.auth, data={
            "file": (io.BytesIO(b"email\nimp1@example.org\nimp2@example.org\n"), "x.csv"),
            "type": "leads", "asset": "fair"}, content_type="multipart/form-data")
        assert upload.status_code == 202, upload.get_json()
        import_id = upload.get_json()["id"]
        assert service.smtp.count_by_recipient() == {}

        broker.start(restart=True)  # back: nothing more is asked of the service
        wait_for(lambda: service.get(f"/api/v1/campaigns/{campaign_id}")["status"] == "sent",
                 timeout=120, message="the campaign to finish")
        wait_for(lambda: service.get(f"/api/v1/imports/{import_id}")["status"] == "done",
                 timeout=60, message="the import")
        wait_for(lambda: service.smtp.count_by_recipient().get("doi@example.org"),
                 timeout=60, message="the confirmation mail")
        wait_for(lambda: confirmations.pending(service.store) == [], timeout=30,
                 message="the confirmation to leave the schedule")
        counts = service.smtp.count_by_recipient()
        assert {e: counts.get(e, 0) for e in emails} == dict.fromkeys(emails, 1)
        assert counts["doi@example.org"] == 1
        job = service.get(f"/api/v1/imports/{import_id}")
        assert job["created"] == 2 and job["rows"] == 2
        campaign = service.get(f"/api/v1/campaigns/{campaign_id}")
        assert campaign["stats"]["sent"] == 20
    finally:
        os.killpg(beat.pid, signal.SIGKILL)
        beat.wait(timeout=30)


def test_resume_and_retry_failed_with_the_broker_down_complete_once_it_is_back(
        make_service, broker):
    service = make_service(broker_url=broker.url, outbox_grace_seconds=1,
                           outbox_tick_seconds=1)
    service.start_worker()
    beat = _start_beat(service)
    try:
        emails = [f"r{i}@example.org" for i in range(12)]
        slow = [f"s{i}@example.org" for i in range(12)]
        bad = {"r3@example.org", "r7@example.org"}
        for email in emails:
            service.register(kind="white_paper", asset="fail", email=email, consent=True)
        for email in slow:
            service.register(kind="white_paper", asset="slow", email=email, consent=True)
        wait_for(lambda: service.processed_count() == 24, message="ingest")
        template = service.post("/api/v1/templates", TEMPLATE, status=201)

        def campaign(asset: str, **extra) -> str:
            return service.post("/api/v1/campaigns", {
                "name": "c", "template_id": template["id"],
                "list_ids": [_lead_list(service, asset)],
                "from_email": "news@mail.example.com", **extra}, status=201)["id"]

        # retry-failed: a finished campaign with two refused addresses
        service.smtp.set_responder(lambda rcpt: "550 5.1.1 No such user" if rcpt in bad
                                   else None)
        first = campaign("fail")
        service.post(f"/api/v1/campaigns/{first}/launch", status=200)
        wait_for(lambda: service.get(f"/api/v1/campaigns/{first}")["status"] == "sent",
                 timeout=120, message="the first campaign")
        service.smtp.set_responder(None)
        # resume: a slow campaign paused once it has begun
        second = campaign("slow", rate_per_second=2)
        service.post(f"/api/v1/campaigns/{second}/launch", status=200)
        wait_for(lambda: service.get(f"/api/v1/campaigns/{second}")["stats"]["sent"] >= 1,
                 timeout=60, message="the second campaign to begin")
        service.post(f"/api/v1/campaigns/{second}/pause", status=200)

        broker.kill()
        retried = service.post(f"/api/v1/campaigns/{first}/retry-failed", status=200)
        assert retried["requeued"] == 2
        resumed = service.post(f"/api/v1/campaigns/{second}/resume", status=200)
        assert resumed["status"] == "sending"
        broker.start(restart=True)

        for campaign_id in (first, second):
            wait_for(lambda c=campaign_id: service.get(f"/api/v1/campaigns/{c}")["status"]
                     == "sent", timeout=120, message=f"campaign {campaign_id} to finish")
        assert service.get(f"/api/v1/campaigns/{first}")["stats"]["failed"] == 0
        assert service.get(f"/api/v1/campaigns/{second}")["stats"]["sent"] == 12
        # each address once (the refused ones once, after the retry)
        counts = service.smtp.count_by_recipient()
        assert {e: counts.get(e, 0) for e in emails + slow} == dict.fromkeys(emails + slow, 1)
    finally:
        os.killpg(beat.pid, signal.SIGKILL)
        beat.wait(timeout=30)
