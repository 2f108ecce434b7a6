"""The sales story on real Redis, a real `outreach worker -B` (beat inside) and a real SMTP
server: Christine registers and is qualified onto an existing account, Mark logs a call and
a meeting and a follow-up task, the reminder reaches Mark once (also across a worker
SIGKILL and restart), the opportunity moves develop -> propose -> close and is won, the
pipeline and funnel show it, and a webhook receiver (http.server in this process) that
fails the first two attempts of every event gets each event once, validly signed."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from outreach.platform.apikeys import create_api_key
from outreach.platform.users import create_user

from .conftest import Worker, wait_for

pytestmark = pytest.mark.integration

SECRET = "integration-webhook-secret"


class Receiver:
    """A webhook endpoint that answers 500 to the first two attempts of every event."""

    def __init__(self) -> None:
        self.attempts: list[tuple[dict[str, str], bytes]] = []
        self.accepted: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()}
                with receiver.lock:
                    receiver.attempts.append((headers, body))
                    tries = sum(1 for h, _ in receiver.attempts
                                if h.get("Outreach-Event-Id") == headers.get("Outreach-Event-Id"))
                    ok = tries > 2
                    if ok and _valid(headers, body):
                        seen = {e["id"] for e in receiver.accepted}
                        event = json.loads(body)
                        if event["id"] not in seen:  # idempotent by event id
                            receiver.accepted.append(event)
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/outreach"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.accepted if e["type"] == kind]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _valid(headers: dict[str, str], body: bytes) -> bool:
    try:
        parts = dict(p.split("=", 1) for p in headers["Outreach-Signature"].split(","))
        expected = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + body,
                            hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 600
    except (KeyError, ValueError):
        return False


def _start_worker_with_beat(service: Any) -> Worker:
    n = len(service.workers) + 1
    log = service.tmp / f"sales-worker{n}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "outreach.cli.main", "worker", "-c", "2", "-Q", "ingest,send,default",
         "-l", "INFO", "-n", f"sales{n}-{os.getpid()}@%h", "--without-mingle", "--without-gossip",
         "-B", "-s", str(service.tmp / "beat-schedule")],
        env={**os.environ, **service.env}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True, cwd=service.tmp,
    )
    worker = Worker(proc, log)
    service.workers.append(worker)
    wait_for(lambda: "ready" in log.read_text(errors="replace") or proc.poll() is not None,
             timeout=60, message="the worker to start")
    assert proc.poll() is None, log.read_text()
    return worker


def _reminders_to(service: Any, address: str) -> list[str]:
    out = []
    for m in service.smtp.messages:
        if address in m.rcpt_tos:
            subject = m.message["Subject"]
            if subject.startswith("Task due:"):
                out.append(subject)
    return out


def test_sales_story_reminders_and_signed_webhooks(make_service):
    # a delivery claimed by the worker this test kills comes back after the lease (15 s)
    service = make_service(webhook_allow_private=1, task_reminder_seconds=1,
                           webhook_tick_seconds=0.5, webhook_timeout_seconds=5,
                           webhook_lease_seconds=15, from_email="crm@outreach.example")
    receiver = Receiver()
    try:
        _story(service, receiver)
    finally:
        receiver.close()


def _story(service: Any, receiver: Receiver) -> None:
    store = service.store
    create_user(store, "mark@sales.example.com", "sales", "password-mark-1")
    mark = {"Authorization": f"Bearer {create_api_key(store, 'mark', user='mark@sales.example.com')}"}

    def call(method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = service.client.open(path, method=method, json=body, headers=mark)
        assert response.status_code == status, (path, response.get_json())
        return response.get_json()

    worker = _start_worker_with_beat(service)
    # an existing account (qualified before anyone subscribed)
    service.register(kind="white_paper", asset="pricing", email="boss@contoso.com",
                     company="Contoso", consent=True)
    wait_for(lambda: service.get("/api/v1/leads?email=boss@contoso.com")["items"], 30,
             message="the first lead")
    boss = service.get("/api/v1/leads?email=boss@contoso.com")["items"][0]
    account_id = call("POST", f"/api/v1/leads/{boss['id']}/qualify", {})["account_id"]

    # webhooks are an admin's (issue 17: a sales key gets 403): the service's admin key
    hook = service.post("/api/v1/webhooks", {"url": receiver.url, "secret": SECRET, "events": [
        "lead.qualified", "opportunity.stage_changed", "opportunity.won", "task.due"]}, 201)
    call("POST", "/api/v1/webhooks", {"url": receiver.url, "events": ["task.due"]}, 403)

    # Christine registers for the event, downloads the white paper: engaged
    service.register(kind="event", asset="contoso-expo", email="christine@gmail.com",
                     first_name="Christine", company="Contoso Pharmaceuticals", consent=True)
    service.register(kind="white_paper", asset="pricing", email="christine@gmail.com", consent=True)
    wait_for(lambda: len((service.get("/api/v1/leads?email=christine@gmail.com")["items"] or
                          [{"registrations": []}])[0]["registrations"]) == 2, 30,
             message="both registrations")
    lead = service.get("/api/v1/leads?email=christine@gmail.com")["items"][0]
    assert lead["score"] > 0
    ids = call("POST", f"/api/v1/leads/{lead['id']}/qualify",
               {"account_id": account_id, "estimated_revenue": 50000,
                "estimated_close_date": "2027-02-15", "probability": 40})
    assert ids["account_id"] == account_id
    opp_path = f"/api/v1/opportunities/{ids['opportunity_id']}"
    assert service.get(opp_path)["owner"] == "mark@sales.example.com"  # the caller's user

    call("POST", f"{opp_path}/activities", {"type": "call", "subject": "Phone call with Christine",
                                            "body": "200 seats, decision in February"}, 201)
    call("POST", f"{opp_path}/activities", {"type": "meeting", "subject": "Demo at Contoso"}, 201)
    due = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + s))  # noqa: E731
    first = call("POST", f"{opp_path}/activities", {"type": "task", "subject": "Send the proposal",
                                                    "due_at": due(3)}, 201)
    assert first["owner"] == "mark@sales.example.com"
    wait_for(lambda: _reminders_to(service, "mark@sales.example.com"), 30, message="the reminder")
    # a second task falls due while the worker is dead: still exactly one reminder each
    second = call("POST", f"{opp_path}/activities", {"type": "task", "subject": "Call back",
                                                     "due_at": due(4)}, 201)
    worker.kill(signal.SIGKILL)
    time.sleep(5)
    _start_worker_with_beat(service)
    wait_for(lambda: len(_reminders_to(service, "mark@sales.example.com")) >= 2, 30,
             message="the second reminder")
    time.sleep(4)  # several more beats
    reminders = Counter(_reminders_to(service, "mark@sales.example.com"))
    assert reminders == {"Task due: Send the proposal": 1, "Task due: Call back": 1}, reminders
    call("POST", f"/api/v1/tasks/{second['id']}/done")

    for stage in ("develop", "propose", "close"):
        call("PATCH", opp_path, {"stage": stage})
    won = call("PATCH", opp_path, {"status": "won", "actual_revenue": 48000})
    assert won["actual_revenue"] == 48000.0 and won["status"] == "won"
    assert [h["stage"] for h in won["stage_history"]] == ["qualify", "develop", "propose", "close"]
    pipeline = service.get("/api/v1/pipeline")
    assert pipeline["won"] == {"count": 1, "revenue": 48000.0}
    assert sum(s["count"] for s in pipeline["stages"]) == 1  # the boss's opportunity, still open
    assert service.get("/api/v1/funnel")["opportunities"]["won"] == 1
    timeline = call("GET", f"{opp_path}/timeline")["items"]
    kinds = [i["type"] for i in timeline]
    assert {"call", "meeting", "task", "registration", "qualified", "stage_changed",
            "status_changed"} <= set(kinds)

    # every event once, after two refused attempts each (retried ~5 s and ~30 s later)
    def all_arrived() -> bool:
        return (len(receiver.events("opportunity.stage_changed")) == 3
                and len(receiver.events("opportunity.won")) == 1
                and len(receiver.events("lead.qualified")) == 1
                and len(receiver.events("task.due")) == 2)

    try:
        wait_for(all_arrived, 120, interval=0.5, message="every webhook event")
    except AssertionError:
        with receiver.lock:
            got = Counter(e["type"] for e in receiver.accepted)
            tries = Counter(h.get("Outreach-Event") for h, _ in receiver.attempts)
        due = store.r.zrange(store.keys.webhook_due, 0, -1, withscores=True)
        logs = [w.log.read_text(errors="replace")[-3000:] for w in service.workers]
        raise AssertionError(f"accepted {got}, attempts {tries}, due {due}, now {time.time()}, "
                             f"worker logs: {logs}") from None
    assert sorted(e["data"]["to"] for e in receiver.events("opportunity.stage_changed")) == [
        "close", "develop", "propose"]
    assert receiver.events("lead.qualified")[0]["data"]["opportunity_id"] == ids["opportunity_id"]
    with receiver.lock:
        attempts = list(receiver.attempts)
    assert all(_valid(h, b) for h, b in attempts)
    per_event = Counter(h["Outreach-Event-Id"] for h, _ in attempts)
    assert set(per_event.values()) == {3}, per_event
    log = service.get(f"/api/v1/webhooks/{hook['id']}/deliveries?limit=500")["items"]
    assert sorted(Counter(d["event_id"] for d in log).values()) == [3] * len(per_event)
    assert {d["status_code"] for d in log} == {500, 200}
