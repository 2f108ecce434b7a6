"""``lead.created`` on real Redis and a real `outreach worker -B`: a receiver in this process
gets one signed event per new lead, from website registrations (the ingest drain) and from a
CSV import, and none for a repeat registration, a known address or a contact."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from .conftest import wait_for
from .test_sales import SECRET, _start_worker_with_beat, _valid

pytestmark = pytest.mark.integration


class Receiver:
    """A webhook endpoint that accepts every delivery and keeps it."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.received.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/in"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_lead_created_once_per_new_lead_from_intake_and_import(make_service):
    service = make_service(webhook_allow_private=1)
    receiver = Receiver()
    try:
        _story(service, receiver)
    finally:
        receiver.close()


def _story(service: Any, receiver: Receiver) -> None:
    service.post("/api/v1/webhooks", {"url": receiver.url, "secret": SECRET,
                                      "events": ["lead.created"]}, status=201)
    other = service.post("/api/v1/webhooks", {"url": receiver.url + "/other", "secret": SECRET,
                                              "events": ["lead.qualified"]}, status=201)
    service.post("/api/v1/contacts", {"email": "cara@example.com"}, status=201)
    _start_worker_with_beat(service)
    for email in ("ann@example.com", "bob@example.com", " ANN@Example.com", "cara@example.com"):
        service.register(kind="white_paper", asset="guide", email=email, first_name="X")
    wait_for(lambda: service.processed_count() == 4, message="the registrations processed")
    response = service.client.post("/api/v1/imports", headers=service.auth, data={
        "file": (io.BytesIO(b"Email,First Name\nbob@example.com,Bob\ndan@example.com,Dan\n"),
                 "fair.csv"), "type": "leads", "asset": "fair"},
        content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()
    import_id = response.get_json()["id"]
    job = wait_for(lambda: (j := service.get(f"/api/v1/imports/{import_id}"))["status"] == "done"
                   and j, message="the import done")
    assert (job["created"], job["updated"]) == (1, 1)
    keys = service.store.keys
    # every delivery made, none left scheduled
    wait_for(lambda: len(receiver.events()) >= 3 and not service.store.r.zcard(keys.webhook_due),
             message="the lead.created deliveries")
    events = receiver.events()
    assert sorted(e["data"]["lead"]["email"] for e in events) == [
        "ann@example.com", "bob@example.com", "dan@example.com"]
    assert {e["type"] for e in events} == {"lead.created"}
    assert len({e["id"] for e in events}) == 3
    leads = {lead["email"]: lead for lead in service.all_items("/api/v1/leads")}
    for event in events:
        lead = event["data"]["lead"]
        assert lead["id"] == leads[lead["email"]]["id"]
    dan = next(e["data"]["lead"] for e in events if e["data"]["lead"]["email"] == "dan@example.com")
    assert dan["source"] == "import" and dan["registrations"][0]["asset"] == "fair"
    with receiver.lock:
        for headers, body in receiver.received:
            assert headers["Outreach-Event"] == "lead.created" and _valid(headers, body)
            assert headers["Outreach-Event-Id"] == json.loads(body)["id"]
    # the webhook that did not ask for it got nothing
    assert service.get(f"/api/v1/webhooks/{other['id']}/deliveries")["items"] == []
