"""Journeys end to end: real Redis, a real beat and real worker processes, a real SMTP
server. Short journeys (``PT2S`` waits) run send -> wait -> branch on an open -> send, are
paused and resumed, get a new version and an exit rule mid-way, and survive SIGKILLed
workers with no message sent twice (a send whose fate a crash left open is ``unknown``).
Two people take the two sides of a segment-rule branch through the list, task, qualify
and exit steps, and quiet hours hold one person's send in one zone and not another's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from outreach.platform.users import create_user

from .conftest import wait_for

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def _template(service, subject: str) -> str:
    body = {"name": subject, "subject": subject,
            "html": '<p>Hi {{ first_name }}, <a href="https://example.com/x">read</a>.</p>'
                    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
            "text": "Hi {{ first_name }}. Unsubscribe: {{ unsubscribe_url }}"}
    return service.post("/api/v1/templates", body, status=201)["id"]


def _start_beat(service) -> subprocess.Popen[bytes]:
    log = service.tmp / "beat.log"
    return subprocess.Popen(
        [str(BIN / "outreach"), "beat", "-s", str(service.tmp / "beat-schedule")],
        env={**os.environ, **service.env}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True, cwd=service.tmp)


@pytest.fixture
def journeys(make_service):
    # opens right after the send are human here (the machine-open rule is tested elsewhere)
    service = make_service(journey_tick_seconds=0.5, send_heartbeat_seconds=2,
                           machine_open_seconds=0)
    beat = _start_beat(service)
    yield service
    if beat.poll() is None:
        os.killpg(beat.pid, signal.SIGKILL)
        beat.wait(timeout=30)


def _people(service, emails: list[str], **fields) -> None:
    before = service.processed_count()
    for email in emails:
        service.register(kind="white_paper", asset="guide", email=email, consent=True,
                         first_name=email.split("@")[0], **fields)
    wait_for(lambda: service.processed_count() >= before + len(emails), message="ingest")


def _create(service, steps, settings=None) -> str:
    body = {"name": "nurture", "trigger": {"type": "manual"}, "steps": steps,
            "settings": settings or {}}
    journey_id = service.post("/api/v1/journeys", body, status=201)["id"]
    service.post(f"/api/v1/journeys/{journey_id}/activate", status=200)
    return journey_id


def _enrollments(service, journey_id: str) -> list[dict]:
    return service.all_items(f"/api/v1/journeys/{journey_id}/enrollments")


def _all_over(service, journey_id: str, n: int) -> bool:
    items = _enrollments(service, journey_id)
    return len(items) == n and all(i["status"] != "active" for i in items)


def _outcomes(item: dict) -> list[tuple[str, str]]:
    return [(h["step"], h["outcome"]) for h in item["history"] if h["step"]]  # not "entered"


def _sent(service) -> Counter[tuple[str, str]]:
    return Counter((m.rcpt_tos[0], m.message["Subject"]) for m in service.smtp.messages)


def _open(service, address: str, subject: str) -> None:
    (msg,) = [m.message for m in service.smtp.messages
              if m.rcpt_tos[0] == address and m.message["Subject"] == subject]
    token = re.search(r"/t/o/([^\"]+)\"", msg.get_body(("html",)).get_content()).group(1)
    assert service.client.get(f"/t/o/{token}").status_code == 200


def test_send_wait_branch_on_open_send(journeys):
    service = journeys
    service.start_worker()
    emails = ["ann@example.org", "bob@example.org", "cat@example.org"]
    _people(service, emails)
    hello, thanks, nudge = (_template(service, s) for s in ("Hello", "Thanks", "Nudge"))
    journey_id = _create(service, [
        {"id": "hello", "type": "send", "template_id": hello},
        {"id": "pause", "type": "wait", "duration": "PT2S"},
        {"id": "check", "type": "branch", "if": {"opened": {"step": "hello"}},
         "within": "PT4S", "then": "thanks", "else": "nudge"},
        {"id": "thanks", "type": "send", "template_id": thanks, "next": "end"},
        {"id": "nudge", "type": "send", "template_id": nudge},
        {"id": "end", "type": "exit"},
    ])
    assert service.post(f"/api/v1/journeys/{journey_id}/enroll", {"emails": emails},
                        status=200)["enrolled"] == 3
    wait_for(lambda: sum(1 for _, s in _sent(service) if s == "Hello") == 3, timeout=60,
             message="the first sends")
    _open(service, "ann@example.org", "Hello")
    wait_for(lambda: _all_over(service, journey_id, 3), timeout=90, message="everyone through")
    sent = _sent(service)
    assert sent == Counter({("ann@example.org", "Hello"): 1, ("bob@example.org", "Hello"): 1,
                            ("cat@example.org", "Hello"): 1, ("ann@example.org", "Thanks"): 1,
                            ("bob@example.org", "Nudge"): 1, ("cat@example.org", "Nudge"): 1})
    stats = service.get(f"/api/v1/journeys/{journey_id}")["stats"]
    assert stats["steps"]["hello"]["sent"] == 3 and stats["steps"]["hello"]["opened"] == 1
    assert stats["exited"] == 3  # "nudge" leads on to the exit step too


def test_pause_resume_new_version_and_exit_rule(journeys):
    service = journeys
    service.start_worker()
    emails = [f"p{i}@example.org" for i in range(6)]
    _people(service, emails + ["late@example.org"])
    first, v1, v2 = (_template(service, s) for s in ("First", "Second v1", "Second v2"))
    steps = [{"id": "w1", "type": "wait", "duration": "PT2S"},
             {"id": "s1", "type": "send", "template_id": first},
             {"id": "w2", "type": "wait", "duration": "PT2S"},
             {"id": "s2", "type": "send", "template_id": v1}]
    settings = {"exit_when": {"field": "job_title", "op": "eq", "value": "CEO"}}
    journey_id = _create(service, steps, settings)
    service.post(f"/api/v1/journeys/{journey_id}/pause", status=200)
    service.post(f"/api/v1/journeys/{journey_id}/enroll", {"emails": emails}, status=200)
    # held: every first wait is long over and still nothing ran
    import time as clock

    wait_for(lambda: all(i["next_at"] and i["next_at"] < clock.time() - 3
                         for i in _enrollments(service, journey_id)),
             timeout=30, message="the waits to be over")
    assert service.smtp.messages == []
    assert all(i["step"] == "w1" for i in _enrollments(service, journey_id))
    # a new version while paused (people in keep v1), and a person who now matches the exit rule
    steps[3]["template_id"] = v2
    response = service.client.put(f"/api/v1/journeys/{journey_id}", headers=service.auth,
                                  json={"name": "nurture", "trigger": {"type": "manual"},
                                        "steps": steps, "settings": settings})
    assert response.status_code == 200 and response.get_json()["version"] == 2
    lead = service.get("/api/v1/leads?email=p0@example.org")["items"][0]
    assert service.client.patch(f"/api/v1/leads/{lead['id']}", json={"job_title": "CEO"},
                                headers=service.auth).status_code == 200
    service.post(f"/api/v1/journeys/{journey_id}/resume", status=200)
    service.post(f"/api/v1/journeys/{journey_id}/enroll", {"emails": ["late@example.org"]},
                 status=200)
    wait_for(lambda: _all_over(service, journey_id, 7), timeout=90, message="everyone through")
    sent = _sent(service)
    assert max(sent.values()) == 1
    assert not [k for k in sent if k[0] == "p0@example.org"]  # left before any send
    for email in emails[1:]:
        assert sent[(email, "First")] == 1 and sent[(email, "Second v1")] == 1
    assert sent[("late@example.org", "Second v2")] == 1
    by_email = {i["email"]: i for i in _enrollments(service, journey_id)}
    assert by_email["p0@example.org"]["status"] == "exited"
    assert by_email["late@example.org"]["version"] == 2


def test_workers_killed_mid_journey_send_nothing_twice(journeys):
    service = journeys
    worker = service.start_worker(concurrency=2)
    n = 400
    emails = [f"k{i}@example.org" for i in range(n)]
    _people(service, emails)
    one, two = _template(service, "One"), _template(service, "Two")
    journey_id = _create(service, [{"id": "one", "type": "send", "template_id": one},
                                   {"id": "w", "type": "wait", "duration": "PT2S"},
                                   {"id": "two", "type": "send", "template_id": two}])
    for start in range(0, n, 200):
        service.post(f"/api/v1/journeys/{journey_id}/enroll", {"emails": emails[start:start + 200]},
                     status=200)
    for kill, threshold in enumerate((n // 3, n)):
        wait_for(lambda t=threshold: len(service.smtp.messages) >= t, interval=0.01,
                 timeout=120, message=f"sending under way ({kill})")
        worker.kill(signal.SIGKILL)
        assert len(service.smtp.messages) < 2 * n, "finished before the kill"
        worker = service.start_worker(concurrency=2)
    wait_for(lambda: _all_over(service, journey_id, n), timeout=240, message="everyone through")
    sent = _sent(service)
    assert max(sent.values()) == 1, "a message went twice"
    items = _enrollments(service, journey_id)
    unknown = {(i["email"], h["step"]) for i in items for h in i["history"]
               if h["outcome"] == "unknown"}
    assert len(unknown) <= 8, unknown  # at most one in flight per worker process and kill
    subject = {"one": "One", "two": "Two"}
    for item in items:
        assert item["status"] == "done", item
        for step in ("one", "two"):
            got = sent[(item["email"], subject[step])]
            assert got == 1 or (item["email"], step) in unknown, (item, got)


def test_every_other_step_type_two_people_two_branches(journeys):
    service = journeys
    create_user(service.store, "mark@sales.example.com", "sales", "password-mark-1")
    service.start_worker()
    _people(service, ["de@example.org"], country="DE")
    _people(service, ["us@example.org"], country="US")
    both = ["de@example.org", "us@example.org"]
    added = service.post("/api/v1/lists", {"name": "journey-added", "member_type": "lead"},
                         status=201)["id"]
    removed = service.post("/api/v1/lists", {"name": "journey-removed", "member_type": "lead"},
                           status=201)["id"]
    service.post(f"/api/v1/lists/{removed}/members", {"emails": both})
    assert {m["email"] for m in service.all_items(f"/api/v1/lists/{removed}/members")} == set(both)
    hello = _template(service, "Welcome")
    journey_id = _create(service, [
        {"id": "add", "type": "add_to_list", "list_id": added},
        {"id": "rm", "type": "remove_from_list", "list_id": removed},
        {"id": "check", "type": "branch",
         "if": {"field": "country", "op": "eq", "value": "DE"}, "then": "call", "else": "bye"},
        {"id": "bye", "type": "exit"},
        {"id": "call", "type": "task", "subject": "Call from the journey", "due_in": "P2D"},
        {"id": "pause", "type": "wait", "duration": "PT2S"},
        {"id": "hello", "type": "send", "template_id": hello},
        {"id": "convert", "type": "qualify"},
    ])
    assert service.post(f"/api/v1/journeys/{journey_id}/enroll", {"emails": both},
                        status=200)["enrolled"] == 2
    wait_for(lambda: _all_over(service, journey_id, 2), timeout=120, message="both through")
    by_email = {i["email"]: i for i in _enrollments(service, journey_id)}
    de, us = by_email["de@example.org"], by_email["us@example.org"]
    assert de["status"] == "done", de
    assert us["status"] == "exited", us
    assert _outcomes(de) == [
        ("add", "added"), ("rm", "removed"), ("check", "then"), ("call", "task"),
        ("pause", "waited"), ("hello", "sent"), ("convert", "qualified")], de
    assert _outcomes(us)[:3] == [
        ("add", "added"), ("rm", "removed"), ("check", "else")], us
    assert [step for step, _ in _outcomes(us)[3:]] in ([], ["bye"]), us
    # lists: both were added to one and taken off the other (qualifying moved the DE
    # person from the lead list to its parallel contact list)
    assert {m["email"] for m in service.all_items(f"/api/v1/lists/{added}/members")} == {
        "us@example.org"}
    (parallel,) = [lst["parallel_list_id"] for lst in service.all_items("/api/v1/lists")
                   if lst["id"] == added]
    assert {m["email"] for m in service.all_items(f"/api/v1/lists/{parallel}/members")} == {
        "de@example.org"}
    assert {m["email"] for m in service.all_items(f"/api/v1/lists/{removed}/members")} == set()
    # one follow-up task, for the only sales user, for the DE person alone
    tasks = [t for t in service.all_items("/api/v1/tasks?owner=mark@sales.example.com")
             if t["subject"] == "Call from the journey"]
    assert len(tasks) == 1, tasks
    assert tasks[0]["status"] == "open"
    # the mail went to the DE person only, once
    assert _sent(service) == Counter({("de@example.org", "Welcome"): 1})
    # qualified: the lead is now a contact with an account and an opportunity
    lead = service.get("/api/v1/leads?email=de@example.org")["items"][0]
    assert lead["status"] == "qualified"
    assert service.get("/api/v1/leads?email=us@example.org")["items"][0]["status"] == "new"
    (contact,) = [c for c in service.all_items("/api/v1/contacts")
                  if c["email"] == "de@example.org"]
    assert service.get(f"/api/v1/contacts/{contact['id']}")["account_id"]
    assert [o for o in service.all_items("/api/v1/opportunities")
            if o.get("contact_id") == contact["id"]]


def test_quiet_hours_in_two_time_zones(journeys):
    service = journeys
    # Fixed-offset zones (no DST; note the POSIX sign: Etc/GMT-3 is UTC+3). The quiet
    # window is the two local hours of the inside zone starting at its current hour, so the
    # inside person is in it for at least an hour from now whatever the time of day (it may
    # wrap midnight); the outside zone is 12 hours away, far outside a 2-hour window.
    inside_zone, inside_offset = "Etc/GMT-3", 3
    outside_zone = "Etc/GMT+9"  # UTC-9: 12 hours from UTC+3
    hour_start = int(time.time()) // 3600 * 3600
    local_hour = (hour_start // 3600 + inside_offset) % 24
    quiet = {"start": f"{local_hour:02d}:00", "end": f"{(local_hour + 2) % 24:02d}:00"}
    quiet_end = hour_start + 7200  # the same instant as "end" in the inside zone
    service.start_worker()
    _people(service, ["night@example.org"], timezone=inside_zone)
    _people(service, ["day@example.org"], timezone=outside_zone)
    hello = _template(service, "Quiet")
    journey_id = _create(service, [{"id": "hello", "type": "send", "template_id": hello}],
                         {"quiet_hours": quiet})
    service.post(f"/api/v1/journeys/{journey_id}/enroll",
                 {"emails": ["night@example.org", "day@example.org"]}, status=200)

    def night() -> dict:
        return service.get(f"/api/v1/journeys/{journey_id}/enrollments"
                           "?email=night@example.org")["items"][0]

    wait_for(lambda: _sent(service)[("day@example.org", "Quiet")] == 1, timeout=90,
             message="the send outside quiet hours")
    wait_for(lambda: night()["next_at"] is not None and abs(night()["next_at"] - quiet_end) < 1,
             timeout=90, message="the quiet send to wait for the end of quiet hours")
    day = service.get(f"/api/v1/journeys/{journey_id}/enrollments"
                      "?email=day@example.org")["items"][0]
    assert day["status"] == "done" and _outcomes(day) == [("hello", "sent")]
    held = night()
    assert held["status"] == "active" and held["step"] == "hello", held
    assert _outcomes(held) == [], held
    assert _sent(service) == Counter({("day@example.org", "Quiet"): 1})
