"""Sales follow-through on fakeredis: activities, timelines, owners, tasks and reminders,
the pipeline, qualify options and webhooks (through the Flask test client)."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from typing import Any

import pytest

from outreach import vocabulary
from outreach.platform import outbound, webhooks
from outreach.platform.apikeys import create_api_key
from outreach.platform.users import create_user, disable_user
from outreach.sales import opportunities
from outreach.sales import tasks as followups
from outreach.sales.pipeline import pipeline


def _user(env, email: str, role: str = "sales") -> dict[str, str]:
    create_user(env.store, email, role, "password-1234")
    return {"Authorization": f"Bearer {create_api_key(env.store, email, user=email)}"}


def _lead(env, email: str, **fields: Any) -> dict[str, Any]:
    env.registered(email, **fields)
    return env.get(f"/api/v1/leads?email={email}").get_json()["items"][0]


def _qualified(env, email: str = "christine@contoso.com", **body: Any) -> dict[str, Any]:
    lead = _lead(env, email, company="Contoso", consent=True)
    response = env.post(f"/api/v1/leads/{lead['id']}/qualify", body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


class Messenger:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, str]] = []

    def send(self, msg: Any, mail_from: str, rcpt_to: str) -> str:
        self.sent.append((msg, rcpt_to))
        return "250 OK"


# ------------------------------------------------------------------ activities

@pytest.mark.parametrize("plural", ["leads", "contacts", "accounts", "opportunities"])
def test_activities_on_every_kind_of_record(env, plural):
    mark = _user(env, "mark@example.com")
    ids = _qualified(env)
    record_id = {"leads": ids["lead_id"], "contacts": ids["contact_id"],
                 "accounts": ids["account_id"], "opportunities": ids["opportunity_id"]}[plural]
    path = f"/api/v1/{plural}/{record_id}/activities"
    made = env.client.post(path, json={"type": "call", "subject": "Phone call",
                                       "body": "Wants 200 seats", "at": "2026-11-30T10:00:00Z"},
                           headers=mark)
    assert made.status_code == 201, made.get_json()
    call = made.get_json()
    assert call["by"] == "mark@example.com" and call["at"] == "2026-11-30T10:00:00Z"
    assert call["record"] == {"kind": plural.removesuffix("s").replace("opportunitie", "opportunity"),
                              "id": record_id}
    note = env.client.post(path, json={"type": "note", "subject": "Later note"}, headers=mark)
    listed = env.get(path).get_json()["items"]
    assert [a["id"] for a in listed] == [note.get_json()["id"], call["id"]]  # newest first
    assert env.get(f"{path}?type=call").get_json()["items"][0]["id"] == call["id"]


def test_activity_errors(env, check_error):
    ids = _qualified(env)
    path = f"/api/v1/leads/{ids['lead_id']}/activities"
    check_error(env.post("/api/v1/leads/nope/activities", {"type": "note", "subject": "x"}), 404)
    error = check_error(env.post(path, {"type": "fax", "subject": ""}), 422)
    assert set(error["fields"]) == {"type", "subject"}
    assert "due_at" in check_error(env.post(path, {"type": "task", "subject": "x"}), 422)["fields"]
    # a task needs an owner: the record has none and this key acts for no user
    assert "owner" in check_error(env.post(path, {"type": "task", "subject": "x",
                                                  "due_at": "2030-01-01T00:00:00Z"}), 422)["fields"]
    check_error(env.patch("/api/v1/activities/nope", {"subject": "x"}), 404)
    check_error(env.client.delete("/api/v1/activities/nope", headers=env.auth), 404)
    check_error(env.client.get("/api/v1/pipelines/x/activities", headers=env.auth), 404)


def test_only_author_owner_or_admin_edit_and_delete(env, check_error):
    mark = _user(env, "mark@example.com")
    sam = _user(env, "sam@example.com")
    boss = _user(env, "boss@example.com", "admin")
    ids = _qualified(env)
    path = f"/api/v1/opportunities/{ids['opportunity_id']}/activities"
    note = env.client.post(path, json={"type": "note", "subject": "mine"}, headers=mark).get_json()
    check_error(env.client.patch(f"/api/v1/activities/{note['id']}", json={"subject": "x"},
                                 headers=sam), 403)
    check_error(env.client.delete(f"/api/v1/activities/{note['id']}", headers=sam), 403)
    assert env.get(f"/api/v1/activities/{note['id']}").get_json()["subject"] == "mine"
    edited = env.client.patch(f"/api/v1/activities/{note['id']}",
                              json={"subject": "edited", "type": "meeting"}, headers=mark)
    assert edited.status_code == 200 and edited.get_json()["type"] == "meeting"
    assert check_error(env.client.patch(f"/api/v1/activities/{note['id']}", json={"type": "task"},
                                        headers=mark), 422)["fields"]["type"]
    assert env.client.patch(f"/api/v1/activities/{note['id']}", json={"body": "by the admin"},
                            headers=boss).status_code == 200
    assert env.client.delete(f"/api/v1/activities/{note['id']}", headers=mark).status_code == 204
    check_error(env.get(f"/api/v1/activities/{note['id']}"), 404)
    assert env.get(path).get_json()["items"] == []


def test_qualify_carries_activities_registrations_and_events(env):
    mark = _user(env, "mark@example.com")
    lead = _lead(env, "christine@contoso.com", company="Contoso", consent=True)
    env.registered("christine@contoso.com", kind="event", asset="expo")
    env.store.r.lpush(env.store.keys.person_events(f"l:{lead['id']}"), f"open|cp1|{int(time.time())}|")
    call = env.client.post(f"/api/v1/leads/{lead['id']}/activities",
                           json={"type": "call", "subject": "Before qualifying"},
                           headers=mark).get_json()
    ids = env.client.post(f"/api/v1/leads/{lead['id']}/qualify", json={}, headers=mark).get_json()
    for plural, record_id in (("contacts", ids["contact_id"]),
                              ("opportunities", ids["opportunity_id"])):
        acts = env.get(f"/api/v1/{plural}/{record_id}/activities").get_json()["items"]
        assert [a["id"] for a in acts] == [call["id"]]
        timeline = env.get(f"/api/v1/{plural}/{record_id}/timeline").get_json()["items"]
        types = [item["type"] for item in timeline]
        assert {"call", "registration", "open", "qualified"} <= set(types), types
        assert sorted(i["subject"] for i in timeline if i["type"] == "registration") == [
            "event: expo", "white_paper: guide"]
        qualified = next(i for i in timeline if i["type"] == "qualified")
        assert qualified["by"] == "mark@example.com" and qualified["kind"] == "event"
        ats = [item["at"] for item in timeline]
        assert ats == sorted(ats, reverse=True)
    assert {r["kind"] for r in env.get(f"/api/v1/activities/{call['id']}").get_json()["records"]} \
        == {"lead", "contact", "opportunity"}


def test_timeline_shows_stage_and_status_changes_with_who(env):
    mark = _user(env, "mark@example.com")
    ids = _qualified(env)
    opp = f"/api/v1/opportunities/{ids['opportunity_id']}"
    for stage in ("develop", "propose"):
        assert env.client.patch(opp, json={"stage": stage}, headers=mark).status_code == 200
    env.client.patch(opp, json={"status": "won", "actual_revenue": 1234}, headers=mark)
    items = env.get(f"{opp}/timeline").get_json()["items"]
    changes = [(i["type"], i.get("from"), i.get("to"), i["by"]) for i in items
               if i["type"] in ("stage_changed", "status_changed")]
    assert changes == [("status_changed", "open", "won", "mark@example.com"),
                       ("stage_changed", "develop", "propose", "mark@example.com"),
                       ("stage_changed", "qualify", "develop", "mark@example.com")]
    history = env.get(opp).get_json()["stage_history"]
    assert [(h["stage"], h["by"]) for h in history] == [
        ("qualify", "api-key:test"), ("develop", "mark@example.com"),
        ("propose", "mark@example.com")]


# ------------------------------------------------------------------ owners

def test_owner_must_be_an_active_sales_or_admin_user(env, check_error):
    _user(env, "mark@example.com")
    _user(env, "mia@example.com", "marketer")
    _user(env, "gone@example.com")
    disable_user(env.store, "gone@example.com")
    ids = _qualified(env)
    targets = [f"/api/v1/leads/{ids['lead_id']}", f"/api/v1/accounts/{ids['account_id']}",
               f"/api/v1/contacts/{ids['contact_id']}",
               f"/api/v1/opportunities/{ids['opportunity_id']}"]
    for path in targets:
        for bad in ("nobody@example.com", "mia@example.com", "gone@example.com"):
            assert "owner" in check_error(env.patch(path, {"owner": bad}), 422)["fields"]
        response = env.patch(path, {"owner": "Mark@Example.com"})
        assert response.status_code == 200 and response.get_json()["owner"] == "mark@example.com"
    lead_timeline = env.get(f"/api/v1/leads/{ids['lead_id']}/timeline").get_json()["items"]
    assert any(i["type"] == "owner_changed" and i["to"] == "mark@example.com" for i in lead_timeline)


def test_opportunities_by_owner_and_me(env, check_error):
    mark = _user(env, "mark@example.com")
    _user(env, "sam@example.com")
    mine = _qualified(env, "a@one.io", owner="mark@example.com")["opportunity_id"]
    theirs = _qualified(env, "b@two.io", owner="sam@example.com")["opportunity_id"]
    got = env.client.get("/api/v1/opportunities?owner=me", headers=mark).get_json()["items"]
    assert [o["id"] for o in got] == [mine]
    got = env.get("/api/v1/opportunities?owner=sam@example.com").get_json()["items"]
    assert [o["id"] for o in got] == [theirs]
    assert "owner" in check_error(env.get("/api/v1/opportunities?owner=me"), 422)["fields"]
    env.patch(f"/api/v1/opportunities/{theirs}", {"owner": "mark@example.com"})
    got = env.client.get("/api/v1/opportunities?owner=me", headers=mark).get_json()["items"]
    assert sorted(o["id"] for o in got) == sorted([mine, theirs])
    assert env.get("/api/v1/opportunities?owner=sam@example.com").get_json()["items"] == []


def _engaged(env, n: int) -> None:
    """``n`` consenting leads that registered twice (score 10: at the threshold). The
    environments that call it keep scores from fading (``score_half_life_days=0``): the
    stored scores are then the points themselves, whenever the decay epoch was set."""
    for i in range(n):
        for asset in ("guide", "other-guide"):
            assert env.register(f"p{i}@c{i}.io", asset=asset, consent=True).status_code == 202
    env.drain()
    assert env.store.r.zcount(env.store.keys.lead_scores, 10, "+inf") == n


def test_automatic_pass_assigns_round_robin(make_env):
    with make_env(promotion_threshold=10, score_half_life_days=0) as env:
        for name in ("s1", "s2", "s3"):
            _user(env, f"{name}@example.com")
        _user(env, "admin@example.com", "admin")  # admins are not in the rotation
        _engaged(env, 30)
        result = env.post("/api/v1/conversions/run").get_json()
        assert result["promoted"] == 30
        counts = {name: len(env.get(f"/api/v1/opportunities?owner={name}@example.com&limit=100")
                            .get_json()["items"]) for name in ("s1", "s2", "s3")}
        assert counts == {"s1": 10, "s2": 10, "s3": 10}


def test_automatic_pass_with_a_fixed_owner(make_env):
    with make_env(promotion_threshold=10, opportunity_owner="boss@example.com",
                  score_half_life_days=0) as env:
        _user(env, "s1@example.com")
        _user(env, "boss@example.com", "admin")
        _engaged(env, 4)
        env.post("/api/v1/conversions/run")
        owners = {o["owner"] for o in env.get("/api/v1/opportunities").get_json()["items"]}
        assert owners == {"boss@example.com"}


# ------------------------------------------------------------------ tasks and reminders

def _task(env, headers, record: str, subject: str, due: float, **extra: Any) -> dict[str, Any]:
    due_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due))
    response = env.client.post(f"{record}/activities", headers=headers,
                               json={"type": "task", "subject": subject, "due_at": due_at, **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_tasks_list_filter_and_done(env, check_error):
    mark = _user(env, "mark@example.com")
    _user(env, "sam@example.com")
    ids = _qualified(env)
    opp = f"/api/v1/opportunities/{ids['opportunity_id']}"
    now = time.time()
    soon = _task(env, mark, opp, "soon", now + 60)
    later = _task(env, mark, opp, "later", now + 7200)
    other = _task(env, mark, opp, "for sam", now + 30, owner="sam@example.com")
    assert soon["owner"] == "mark@example.com" and soon["status"] == "open"
    mine = env.client.get("/api/v1/tasks?owner=me", headers=mark).get_json()["items"]
    assert [t["id"] for t in mine] == [soon["id"], later["id"]]
    everyone = env.get("/api/v1/tasks").get_json()["items"]
    assert [t["id"] for t in everyone] == [other["id"], soon["id"], later["id"]]
    cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600))
    due = env.get(f"/api/v1/tasks?owner=mark@example.com&due_before={cutoff}").get_json()["items"]
    assert [t["id"] for t in due] == [soon["id"]]
    page1 = env.get("/api/v1/tasks?limit=2").get_json()
    page2 = env.get(f"/api/v1/tasks?limit=2&cursor={page1['next_cursor']}").get_json()
    assert [t["id"] for t in page1["items"] + page2["items"]] == [t["id"] for t in everyone]
    done = env.client.post(f"/api/v1/tasks/{soon['id']}/done", headers=mark).get_json()
    assert done["status"] == "done" and done["done_by"] == "mark@example.com" and done["done_at"]
    again = env.post(f"/api/v1/tasks/{soon['id']}/done").get_json()
    assert again["done_by"] == "mark@example.com"  # the first completion stays
    assert [t["id"] for t in env.get("/api/v1/tasks?owner=mark@example.com&status=done")
            .get_json()["items"]] == [soon["id"]]
    assert soon["id"] not in [t["id"] for t in env.get("/api/v1/tasks").get_json()["items"]]
    check_error(env.post("/api/v1/tasks/nope/done"), 404)
    note = env.client.post(f"{opp}/activities", json={"type": "note", "subject": "n"},
                           headers=mark).get_json()
    check_error(env.post(f"/api/v1/tasks/{note['id']}/done"), 422)
    check_error(env.get("/api/v1/tasks?status=maybe"), 422)
    # the record's owner is a task's default owner
    env.patch(opp, {"owner": "sam@example.com"})
    assert _task(env, mark, opp, "x", now + 5)["owner"] == "sam@example.com"


def test_reminder_once_per_task_and_due_time(env):
    mark = _user(env, "mark@example.com")
    ids = _qualified(env)
    opp = f"/api/v1/opportunities/{ids['opportunity_id']}"
    now = time.time()
    task = _task(env, mark, opp, "Call back Christine", now + 10)
    _task(env, mark, opp, "Not yet", now + 3600)
    messenger = Messenger()
    assert followups.send_due_reminders(env.store, env.config, messenger, now=now) == 0
    assert followups.send_due_reminders(env.store, env.config, messenger, now=now + 11) == 1
    for _ in range(3):  # more beats, and a "restarted worker": the claim is in Redis
        assert followups.send_due_reminders(env.store, env.config, messenger, now=now + 20) == 0
    (msg, rcpt), = messenger.sent
    assert rcpt == "mark@example.com" and "Call back Christine" in msg["Subject"]
    assert f"/console/opportunities/{ids['opportunity_id']}" in msg.get_payload(decode=True).decode()
    # moved to a new due time: one more reminder, at that time
    env.client.patch(f"/api/v1/activities/{task['id']}", headers=mark,
                     json={"due_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 100))})
    assert followups.send_due_reminders(env.store, env.config, messenger, now=now + 50) == 0
    assert followups.send_due_reminders(env.store, env.config, messenger, now=now + 101) == 1
    assert followups.send_due_reminders(env.store, env.config, messenger, now=now + 200) == 0
    # done before it falls due: never reminded
    quick = _task(env, mark, opp, "Done early", now + 300)
    env.post(f"/api/v1/tasks/{quick['id']}/done")
    assert followups.send_due_reminders(env.store, env.config, messenger, now=now + 400) == 0
    assert len(messenger.sent) == 2


def test_daily_digest_of_overdue_tasks_once_a_day(make_env):
    with make_env(task_digest_hour=7) as env:
        mark = _user(env, "mark@example.com")
        ids = _qualified(env)
        opp = f"/api/v1/opportunities/{ids['opportunity_id']}"
        day = 1_800_000_000 - 1_800_000_000 % 86400  # a UTC midnight
        _task(env, mark, opp, "Overdue one", day - 3600)
        _task(env, mark, opp, "Overdue two", day - 60)
        _task(env, mark, opp, "Future", day + 5 * 86400)
        messenger = Messenger()
        assert followups.send_digests(env.store, env.config, messenger, now=day + 3600) == 0
        assert followups.send_digests(env.store, env.config, messenger, now=day + 8 * 3600) == 1
        assert followups.send_digests(env.store, env.config, messenger, now=day + 9 * 3600) == 0
        (msg, rcpt), = messenger.sent
        text = msg.get_payload(decode=True).decode()
        assert rcpt == "mark@example.com" and "Overdue one" in text and "Overdue two" in text
        assert "Future" not in text
        assert followups.send_digests(env.store, env.config, messenger,
                                      now=day + 86400 + 8 * 3600) == 1


# ------------------------------------------------------------------ pipeline

def test_pipeline_report(env, check_error):
    def opp(email: str, revenue: float, probability: int, close: str) -> str:
        return _qualified(env, email, estimated_revenue=revenue, probability=probability,
                          estimated_close_date=close)["opportunity_id"]

    a = opp("a@a.io", 1000, 50, "2027-01-10")
    b = opp("b@b.io", 3000, 10, "2027-01-20")
    c = opp("c@c.io", 500, 20, "2027-02-01")
    d = opp("d@d.io", 800, 30, "2027-03-01")
    e = opp("e@e.io", 900, 30, "2027-03-01")
    env.patch(f"/api/v1/opportunities/{b}", {"stage": "propose"})
    assert "lost_reason" in check_error(env.patch(f"/api/v1/opportunities/{c}",
                                                  {"status": "lost"}), 422)["fields"]
    assert env.get(f"/api/v1/opportunities/{c}").get_json()["status"] == "open"
    check_error(env.patch(f"/api/v1/opportunities/{c}", {"status": "lost", "lost_reason": "nah"}), 422)
    lost = env.patch(f"/api/v1/opportunities/{c}", {"status": "lost", "lost_reason": "price",
                                                    "competitor": "Fabrikam"}).get_json()
    assert lost["lost_reason"] == "price" and lost["competitor"] == "Fabrikam"
    won = env.patch(f"/api/v1/opportunities/{d}", {"status": "won", "actual_revenue": 750}).get_json()
    assert won["actual_revenue"] == 750.0 and won["actual_close_date"] and won["probability"] == 100
    env.patch(f"/api/v1/opportunities/{e}", {"status": "won"})  # actual revenue: the estimate
    report = env.get("/api/v1/pipeline").get_json()
    assert report["stages"] == [
        {"stage": "qualify", "count": 1, "estimated_revenue": 1000.0, "weighted_revenue": 500.0},
        {"stage": "develop", "count": 0, "estimated_revenue": 0.0, "weighted_revenue": 0.0},
        {"stage": "propose", "count": 1, "estimated_revenue": 3000.0, "weighted_revenue": 300.0},
        {"stage": "close", "count": 0, "estimated_revenue": 0.0, "weighted_revenue": 0.0}]
    assert report["forecast"] == [
        {"month": "2027-01", "count": 2, "estimated_revenue": 4000.0, "weighted_revenue": 800.0}]
    assert report["won"] == {"count": 2, "revenue": 1650.0}
    assert report["lost"] == {"count": 1, "by_reason": {"price": 1}}
    # reopening takes it out of lost and back into its stage with its open probability
    reopened = env.patch(f"/api/v1/opportunities/{c}", {"status": "open"}).get_json()
    assert reopened["probability"] == 20 and reopened["lost_reason"] is None
    report = env.get("/api/v1/pipeline").get_json()
    assert report["lost"] == {"count": 0, "by_reason": {}}
    assert report["stages"][0]["count"] == 2 and report["stages"][0]["weighted_revenue"] == 600.0
    assert [o["id"] for o in env.get("/api/v1/opportunities?stage=propose").get_json()["items"]] == [b]
    assert [o["id"] for o in env.get("/api/v1/opportunities?stage=qualify&status=open")
            .get_json()["items"]] == [a, c]


def test_pipeline_aggregates_equal_a_rebuild_after_random_changes(env):
    rng = random.Random(12)
    ids = [_qualified(env, f"p{n}@c{n}.io", estimated_revenue=rng.randint(1, 90) * 100,
                      probability=rng.randint(0, 100),
                      estimated_close_date=f"2027-0{rng.randint(1, 9)}-01")["opportunity_id"]
           for n in range(12)]
    for _ in range(60):
        opp_id = rng.choice(ids)
        change = rng.choice([
            {"stage": rng.choice(vocabulary.STAGES)}, {"status": "won"},
            {"status": "won", "actual_revenue": rng.randint(1, 50) * 10},
            {"status": "lost", "lost_reason": rng.choice(vocabulary.LOST_REASONS)}, {"status": "open"},
            {"estimated_revenue": rng.randint(1, 90) * 50, "probability": rng.randint(0, 100)},
            {"estimated_close_date": f"2028-0{rng.randint(1, 9)}-15"}])
        assert env.patch(f"/api/v1/opportunities/{opp_id}", change).status_code == 200
    kept = env.get("/api/v1/pipeline").get_json()
    env.store.r.delete(env.store.keys.pipeline)
    assert env.get("/api/v1/pipeline").get_json() == kept  # rebuilt from every opportunity


# ------------------------------------------------------------------ qualify options

def test_possible_duplicates_409_then_link_or_create(env, check_error):
    first = _qualified(env, "a@contoso.com")
    lead = _lead(env, "b@gmail.com", company="Contoso Pharmaceuticals")
    before = {k: env.store.r.zcard(k) for k in (env.store.keys.accounts, env.store.keys.contacts,
                                                 env.store.keys.opportunities)}
    error = check_error(env.post(f"/api/v1/leads/{lead['id']}/qualify"), 409, "possible_duplicates")
    assert error["possible_duplicates"] == [{"account_id": first["account_id"], "name": "Contoso"}]
    after = {k: env.store.r.zcard(k) for k in before}
    assert after == before
    assert env.get(f"/api/v1/leads/{lead['id']}").get_json()["status"] == "new"
    linked = env.post(f"/api/v1/leads/{lead['id']}/qualify", {"on_duplicate": "link"}).get_json()
    assert linked["account_id"] == first["account_id"]
    other = _lead(env, "c@gmail.com", company="Contoso Pharmaceuticals Group")
    # now "contoso pharmaceuticals" is no account name of its own; the likely one is Contoso
    created = env.post(f"/api/v1/leads/{other['id']}/qualify", {"on_duplicate": "create"}).get_json()
    assert created["account_id"] not in (None, first["account_id"])
    again = env.post(f"/api/v1/leads/{other['id']}/qualify").get_json()
    assert again == created  # idempotent, no duplicate check on a qualified lead
    check_error(env.post(f"/api/v1/leads/{other['id']}/qualify", {"on_duplicate": "merge"}), 422)


def test_qualify_attach_existing_and_leave_out(env, check_error):
    existing = _qualified(env, "boss@contoso.com")
    lead = _lead(env, "christine@gmail.com", company="Totally Different")
    check_error(env.post(f"/api/v1/leads/{lead['id']}/qualify", {"account_id": "nope"}), 422)
    check_error(env.post(f"/api/v1/leads/{lead['id']}/qualify", {"contact_id": "nope"}), 422)
    ids = env.post(f"/api/v1/leads/{lead['id']}/qualify",
                   {"account_id": existing["account_id"]}).get_json()
    assert ids["account_id"] == existing["account_id"]
    assert env.get(f"/api/v1/contacts/{ids['contact_id']}").get_json()["account_id"] == \
        existing["account_id"]
    bare = _lead(env, "solo@gmail.com", company="Solo")
    only = env.post(f"/api/v1/leads/{bare['id']}/qualify",
                    {"create_account": False, "create_opportunity": False}).get_json()
    assert only["account_id"] is None and only["opportunity_id"] is None and only["contact_id"]
    assert env.get(f"/api/v1/leads/{bare['id']}").get_json()["status"] == "qualified"
    to_contact = _lead(env, "x@gmail.com", company="Xylo")
    got = env.post(f"/api/v1/leads/{to_contact['id']}/qualify",
                   {"contact_id": existing["contact_id"], "create_account": False}).get_json()
    assert got["contact_id"] == existing["contact_id"] and got["opportunity_id"]
    assert env.get(f"/api/v1/opportunities/{got['opportunity_id']}").get_json()["contact_id"] == \
        existing["contact_id"]


# ------------------------------------------------------------------ webhooks

def test_webhook_urls_are_checked(env, make_env, check_error):
    for url in ("ftp://example.com/x", "http://127.0.0.1/hook", "http://10.1.2.3/x",
                "http://169.254.169.254/latest", "http://[::1]/x", "http://localhost/x",
                "not a url", "http://user:pw@example.com/"):
        error = check_error(env.post("/api/v1/webhooks", {"url": url, "events": ["lead.qualified"]}),
                            422)
        assert "url" in error["fields"], url
    assert "events.0" in check_error(env.post("/api/v1/webhooks", {
        "url": "http://127.0.0.1/x", "events": ["lead.exploded"]}), 422)["fields"]
    with make_env(webhook_allow_private=True) as private:
        made = private.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook",
                                                 "events": ["lead.qualified"]})
        assert made.status_code == 201 and len(made.get_json()["secret"]) >= 32


def test_webhook_crud(make_env, check_error):
    with make_env(webhook_allow_private=True) as env:
        made = env.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/a", "events": [
            "opportunity.won"], "secret": "s" * 20}).get_json()
        assert made["secret"] == "s" * 20
        got = env.get(f"/api/v1/webhooks/{made['id']}").get_json()
        assert "secret" not in got and got["events"] == ["opportunity.won"] and got["active"]
        patched = env.patch(f"/api/v1/webhooks/{made['id']}", {"events": ["task.due"],
                                                                "active": False}).get_json()
        assert patched["events"] == ["task.due"] and patched["active"] is False
        assert [w["id"] for w in env.get("/api/v1/webhooks").get_json()["items"]] == [made["id"]]
        assert env.client.delete(f"/api/v1/webhooks/{made['id']}", headers=env.auth).status_code == 204
        check_error(env.get(f"/api/v1/webhooks/{made['id']}"), 404)
        check_error(env.get(f"/api/v1/webhooks/{made['id']}/deliveries"), 404)


def _verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in headers["Outreach-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def test_webhook_delivery_signed_retried_logged_and_disabled(make_env):
    with make_env(webhook_allow_private=True, webhook_disable_after_hours=1) as env:
        secret = "k" * 24
        hook = env.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/h", "secret": secret,
                                             "events": ["lead.qualified", "opportunity.won"]}).get_json()
        ids = _qualified(env)
        calls: list[tuple[dict[str, str], bytes]] = []
        answers = [500, 503, 200]

        def post(url: str, body: bytes, headers: dict[str, str], timeout: float, allow: bool) -> int:
            calls.append((headers, body))
            return answers.pop(0)

        t0 = time.time()
        (delivery,) = webhooks.claim_due(env.store, now=t0 + 1)
        assert webhooks.claim_due(env.store, now=t0 + 1) == []  # taken once
        assert webhooks.deliver(env.store, env.config, delivery, post, now=t0 + 1) == "retrying"
        assert webhooks.claim_due(env.store, now=t0 + 5) == []
        assert webhooks.claim_due(env.store, now=t0 + 6.5) == [delivery]  # ~5 s later
        assert webhooks.deliver(env.store, env.config, delivery, post, now=t0 + 7) == "retrying"
        assert webhooks.claim_due(env.store, now=t0 + 30) == []
        assert webhooks.claim_due(env.store, now=t0 + 37.5) == [delivery]  # ~30 s later
        assert webhooks.deliver(env.store, env.config, delivery, post, now=t0 + 38) == "delivered"
        assert webhooks.deliver(env.store, env.config, delivery, post, now=t0 + 39) == "delivered"
        assert len(calls) == 3
        event_ids = {h["Outreach-Event-Id"] for h, _ in calls}
        assert len(event_ids) == 1
        for headers, body in calls:
            assert _verify(secret, headers, body)
            event = json.loads(body)
            assert event["type"] == "lead.qualified" and event["id"] in event_ids
            assert event["data"]["opportunity_id"] == ids["opportunity_id"]
        log = env.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["items"]
        assert [(d["attempt"], d["status_code"]) for d in log] == [(3, 200), (2, 503), (1, 500)]
        assert log[1]["error"] == "HTTP 503"
        # redeliver on demand
        assert env.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery}/redeliver"
                        ).status_code == 202
        assert webhooks.claim_due(env.store, now=time.time() + 1) == [delivery]
        # failing continuously for OUTREACH_WEBHOOK_DISABLE_AFTER_HOURS (here 1) with no
        # success disables the webhook, with the reason; a count of failures never does
        # (issue 18: changed from "5 consecutive failures")
        def refuse(*_: Any) -> int:
            raise ConnectionRefusedError("refused")

        for n in range(25):
            assert webhooks.deliver(env.store, env.config, delivery, refuse,
                                    now=t0 + 100 + n) == "retrying"
        assert env.get(f"/api/v1/webhooks/{hook['id']}").get_json()["active"] is True
        assert webhooks.deliver(env.store, env.config, delivery, refuse,
                                now=t0 + 100 + 3600) == "failed"
        shown = env.get(f"/api/v1/webhooks/{hook['id']}").get_json()
        assert shown["active"] is False and "failing for 1 h" in shown["disabled_reason"]
        assert webhooks.emit(env.store, "lead.qualified", {}) is None  # nobody listens now


def test_retry_delays():
    assert [webhooks.retry_delay(n) for n in range(1, 8)] == [5, 30, 120, 600, 3600, 3600, 3600]


def test_deliveries_refuse_private_addresses_at_send_time(make_env):
    with make_env(webhook_allow_private=True) as env:
        env.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/h", "events": ["lead.qualified"]})
        _qualified(env)
    strict = env.config.with_overrides(webhook_allow_private=False)
    with pytest.raises(Exception) as raised:
        outbound.resolve("http://127.0.0.1:9/h", strict.webhook_allow_private)
    assert "url" in raised.value.fields  # type: ignore[attr-defined]



# ------------------------------------------------------------------ account lists

@pytest.mark.parametrize(("account_contacts", "expected"), [
    ("all", {"a@contoso.com": 1, "b@contoso.com": 1, "z@fabrikam.com": 1}),
    ("primary", {"a@contoso.com": 1, "z@fabrikam.com": 1}),
])
def test_account_lists_mail_the_accounts_contacts_once(cenv, check_error, account_contacts,
                                                       expected):
    env = cenv
    for email, company, consent in (("a@contoso.com", "Contoso", True),
                                    ("b@contoso.com", "Contoso", True),
                                    ("c@contoso.com", "Contoso", False),
                                    ("z@fabrikam.com", "Fabrikam", True)):
        lead = _lead(env, email, company=company, consent=consent)
        assert env.post(f"/api/v1/leads/{lead['id']}/qualify").status_code == 200
    made = env.post("/api/v1/lists", {"name": "Key accounts", "member_type": "account",
                                      "account_contacts": account_contacts})
    assert made.status_code == 201, made.get_json()
    listed = made.get_json()
    assert listed["member_type"] == "account" and listed["account_contacts"] == account_contacts
    contoso = env.get("/api/v1/contacts?email=a@contoso.com").get_json()["items"][0]["account_id"]
    assert env.get(f"/api/v1/accounts/{contoso}").get_json()["primary_contact_id"] == \
        env.get("/api/v1/contacts?email=a@contoso.com").get_json()["items"][0]["id"]
    added = env.post(f"/api/v1/lists/{listed['id']}/members",
                     {"account_ids": [contoso, "nope"], "emails": ["z@fabrikam.com"]}).get_json()
    assert added == {"added": 2, "already_members": 0, "unknown": ["nope"]}
    members = env.get(f"/api/v1/lists/{listed['id']}/members").get_json()["items"]
    assert [m["name"] for m in members] == ["Contoso", "Fabrikam"]
    assert {m["type"] for m in members} == {"account"}
    contacts = env.manual_list("a@contoso.com", member_type="contact")
    campaign = env.launched([listed["id"], contacts])
    env.run(campaign)
    assert env.messenger.counts() == expected  # c@ has no consent; a@ once across both lists
    check_error(env.post("/api/v1/lists", {"name": "x", "member_type": "account",
                                           "account_contacts": "some"}), 422)


# ------------------------------------------------------------------ console

def _console_token(page: bytes) -> str:
    import re

    found = re.search(rb'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:300]
    return found.group(1).decode()


def test_console_timeline_activity_box_tasks_and_pipeline(env):
    create_user(env.store, "mark@example.com", "sales", "correct horse battery")
    ids = _qualified(env)
    client = env.client
    login = client.get("/console/login")
    client.post("/console/login", data={"email": "mark@example.com",
                                        "password": "correct horse battery",
                                        "csrf_token": _console_token(login.data)})
    lead_page = client.get(f"/console/leads/{ids['lead_id']}")
    assert lead_page.status_code == 200 and b'id="timeline"' in lead_page.data
    assert b"Qualified" in lead_page.data  # the system event
    csrf = _console_token(lead_page.data)
    opp = f"/console/opportunities/{ids['opportunity_id']}"
    made = client.post(f"{opp}/activities", data={
        "csrf_token": csrf, "type": "call", "subject": "Called Christine", "body": "200 seats"})
    assert made.status_code == 302
    client.post(f"{opp}/activities", data={"csrf_token": csrf, "type": "task",
                                           "subject": "Send proposal",
                                           "due_at": "2030-01-02T09:30"})
    page = client.get(opp).data.decode()
    assert "Called Christine" in page and "Send proposal" in page and "mark@example.com" in page
    (task,) = env.get("/api/v1/tasks?owner=mark@example.com").get_json()["items"]
    assert task["due_at"] == "2030-01-02T09:30:00Z" and task["by"] == "mark@example.com"
    tasks_page = client.get("/console/tasks").data.decode()
    assert "Send proposal" in tasks_page
    client.post(f"/console/tasks/{task['id']}/done", data={"csrf_token": csrf})
    assert env.get(f"/api/v1/activities/{task['id']}").get_json()["done_by"] == "mark@example.com"
    pipeline = client.get("/console/pipeline")
    assert pipeline.status_code == 200 and b'id="stage-qualify"' in pipeline.data
    client.post(f"{opp}/stage", data={"csrf_token": csrf, "stage": "propose",
                                      "next": "/console/pipeline"})
    moved = env.get(f"/api/v1/opportunities/{ids['opportunity_id']}").get_json()
    assert moved["stage"] == "propose" and moved["stage_history"][-1]["by"] == "mark@example.com"
    refused = client.post(opp, data={"csrf_token": csrf, "status": "lost"})
    assert refused.status_code == 422 and b"Closing as lost needs a reason" in refused.data
    client.post(opp, data={"csrf_token": csrf, "status": "lost", "lost_reason": "outsold",
                           "competitor": "Fabrikam"})
    lost = env.get(f"/api/v1/opportunities/{ids['opportunity_id']}").get_json()
    assert lost["status"] == "lost" and lost["competitor"] == "Fabrikam"
    for path in (f"/console/contacts/{ids['contact_id']}", f"/console/accounts/{ids['account_id']}"):
        assert b'id="timeline"' in client.get(path).data


def test_openapi_documents_sales_endpoints_and_webhook_payloads(env):
    spec = env.client.get("/api/openapi.json").get_json()
    for path in ("/api/v1/pipeline", "/api/v1/tasks", "/api/v1/tasks/{task_id}/done",
                 "/api/v1/activities/{activity_id}", "/api/v1/webhooks/{webhook_id}/deliveries",
                 "/api/v1/{plural}/{record_id}/activities", "/api/v1/{plural}/{record_id}/timeline"):
        assert path in spec["paths"], path
    callback = spec["paths"]["/api/v1/webhooks"]["post"]["callbacks"]["event"]
    delivery = callback["{$request.body#/url}"]["post"]
    assert {p["name"] for p in delivery["parameters"]} >= {"Outreach-Signature", "Outreach-Event-Id"}
    ref = delivery["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    event = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert "opportunity.stage_changed" in event["properties"]["type"]["enum"]
    assert "403" in spec["paths"]["/api/v1/activities/{activity_id}"]["patch"]["responses"]


def test_timeline_shows_campaign_messages_and_carries_them_to_the_opportunity(cenv):
    env = cenv
    list_id = env.leads("christine@contoso.com", company="Contoso")
    campaign = env.launched([list_id], name="November news")
    env.run(campaign)
    lead = env.lead_of("christine@contoso.com")
    items = env.get(f"/api/v1/leads/{lead['id']}/timeline").get_json()["items"]
    (message,) = [i for i in items if i["type"] == "message"]
    assert message["campaign_id"] == campaign and message["subject"] == "Campaign November news"
    ids = env.post(f"/api/v1/leads/{lead['id']}/qualify").get_json()
    opp_items = env.get(f"/api/v1/opportunities/{ids['opportunity_id']}/timeline").get_json()["items"]
    assert [i["campaign_id"] for i in opp_items if i["type"] == "message"] == [campaign]


def test_erasure_removes_the_persons_activities_everywhere_and_tells_webhooks(make_env):
    with make_env(webhook_allow_private=True) as env:
        mark = _user(env, "mark@example.com")
        env.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/h", "events": ["person.erased"]})
        lead = _lead(env, "christine@contoso.com", company="Contoso", consent=True)
        call = env.client.post(f"/api/v1/leads/{lead['id']}/activities", headers=mark,
                               json={"type": "call", "subject": "Private details"}).get_json()
        ids = env.post(f"/api/v1/leads/{lead['id']}/qualify").get_json()
        task = _task(env, mark, f"/api/v1/contacts/{ids['contact_id']}", "Call her", time.time() + 60)
        deal = env.client.post(f"/api/v1/opportunities/{ids['opportunity_id']}/activities",
                               headers=mark, json={"type": "note", "subject": "Deal note"}).get_json()
        assert env.erase("christine@contoso.com")["status"] == "done"
        for gone in (call["id"], task["id"]):
            assert env.get(f"/api/v1/activities/{gone}").status_code == 404
        left = env.get(f"/api/v1/opportunities/{ids['opportunity_id']}/activities").get_json()
        assert [a["id"] for a in left["items"]] == [deal["id"]]
        assert env.get("/api/v1/tasks").get_json()["items"] == []
        (delivery,) = webhooks.claim_due(env.store, now=time.time() + 1)
        body = json.loads(env.store.r.hget(env.store.keys.webhook_delivery(delivery), "body"))
        assert body["type"] == "person.erased" and "christine" not in json.dumps(body)
        assert body["data"]["email_sha256"] == hashlib.sha256(b"christine@contoso.com").hexdigest()


def test_pipeline_built_in_chunks_while_opportunities_change(env):
    ids = [_qualified(env, f"p{n}@c{n}.io", estimated_revenue=100 * (n + 1),
                      probability=10 * n, estimated_close_date="2027-05-01")["opportunity_id"]
           for n in range(8)]
    keys = env.store.keys
    env.store.r.delete(keys.pipeline)  # as if the opportunities predated the aggregates
    assert env.store.run("pipeline_rebuild", args=[keys.tag, 3]) == 0  # 3 of 8 counted
    env.patch(f"/api/v1/opportunities/{ids[0]}", {"stage": "develop"})  # passed already
    env.patch(f"/api/v1/opportunities/{ids[6]}", {"status": "won"})  # not yet
    _qualified(env, "late@late.io", estimated_revenue=999, probability=50,
               estimated_close_date="2027-05-01")  # created during the build
    while not env.store.run("pipeline_rebuild", args=[keys.tag, 3]):
        pass
    built = env.get("/api/v1/pipeline").get_json()
    env.store.r.delete(keys.pipeline)
    assert env.get("/api/v1/pipeline").get_json() == built
    assert built["won"]["count"] == 1 and sum(s["count"] for s in built["stages"]) == 8


def test_a_delivery_whose_worker_died_is_taken_again_after_the_lease(make_env):
    with make_env(webhook_allow_private=True) as env:
        env.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/h", "events": ["lead.qualified"]})
        _qualified(env)
        t0 = time.time()
        (delivery,) = webhooks.claim_due(env.store, now=t0 + 1)  # ... and the worker dies
        assert webhooks.claim_due(env.store, now=t0 + 1 + webhooks.LEASE_SECONDS - 1) == []
        assert webhooks.claim_due(env.store, now=t0 + 2 + webhooks.LEASE_SECONDS) == [delivery]
        assert webhooks.deliver(env.store, env.config, delivery, lambda *_: 204) == "delivered"
        assert webhooks.claim_due(env.store, now=t0 + 10_000) == []


def test_console_webhooks_page_for_admins(make_env):
    with make_env(webhook_allow_private=True) as env:
        create_user(env.store, "boss@example.com", "admin", "correct horse battery")
        create_user(env.store, "mark@example.com", "sales", "correct horse battery")
        client = env.client

        def sign_in(email: str) -> str:
            login = client.get("/console/login")
            client.post("/console/login", data={"email": email, "password": "correct horse battery",
                                                "csrf_token": _console_token(login.data)})
            return _console_token(client.get("/console/").data)

        csrf = sign_in("mark@example.com")
        assert client.get("/console/webhooks").status_code == 403
        client.post("/console/logout", data={"csrf_token": csrf})
        csrf = sign_in("boss@example.com")
        made = client.post("/console/webhooks", data={
            "csrf_token": csrf, "url": "http://127.0.0.1:9/in", "events": ["lead.qualified",
                                                                          "opportunity.won"]},
            follow_redirects=True)
        assert b"shown once" in made.data and b"http://127.0.0.1:9/in" in made.data
        (hook,) = env.get("/api/v1/webhooks").get_json()["items"]
        assert hook["events"] == ["lead.qualified", "opportunity.won"]
        bad = client.post("/console/webhooks", data={"csrf_token": csrf, "url": "ftp://x",
                                                     "events": ["task.due"]}, follow_redirects=True)
        assert b"Not created" in bad.data and len(env.get("/api/v1/webhooks").get_json()["items"]) == 1
        client.post(f"/console/webhooks/{hook['id']}/disable", data={"csrf_token": csrf})
        assert env.get(f"/api/v1/webhooks/{hook['id']}").get_json()["active"] is False
        client.post(f"/console/webhooks/{hook['id']}/delete", data={"csrf_token": csrf})
        assert env.get("/api/v1/webhooks").get_json()["items"] == []


def test_campaign_finished_and_person_unsubscribed_events(make_cenv):
    import re

    with make_cenv(webhook_allow_private=True) as env:
        env.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/h",
                                      "events": ["campaign.finished", "person.unsubscribed"]})
        list_id = env.leads("ann@example.com", "bob@example.com")
        campaign = env.launched([list_id])
        env.run(campaign)
        env.watch(campaign)  # a second look: still one event
        msg = env.messenger.to("ann@example.com")
        url = re.search(r"<(https?://[^>]+/u/[^>]+)>", msg["List-Unsubscribe"]).group(1)
        path = "/" + url.split("/", 3)[3]
        for _ in range(2):  # idempotent: one event
            assert env.client.post(path, data="List-Unsubscribe=One-Click",
                                   content_type="application/x-www-form-urlencoded").status_code == 200
        bodies = [json.loads(env.store.r.hget(env.store.keys.webhook_delivery(d), "body"))
                  for d in webhooks.claim_due(env.store, now=time.time() + 1)]
        assert sorted(b["type"] for b in bodies) == ["campaign.finished", "person.unsubscribed"]
        finished = next(b for b in bodies if b["type"] == "campaign.finished")
        assert finished["data"]["campaign"]["id"] == campaign
        assert finished["data"]["campaign"]["status"] == "sent"
        unsubscribed = next(b for b in bodies if b["type"] == "person.unsubscribed")
        assert unsubscribed["data"]["email"] == "ann@example.com"
        assert unsubscribed["data"]["campaign_id"] == campaign


def test_console_reassigns_every_kind_of_record(env):
    create_user(env.store, "mark@example.com", "sales", "correct horse battery")
    create_user(env.store, "sam@example.com", "sales", "correct horse battery")
    ids = _qualified(env)
    client = env.client
    login = client.get("/console/login")
    client.post("/console/login", data={"email": "mark@example.com",
                                        "password": "correct horse battery",
                                        "csrf_token": _console_token(login.data)})
    csrf = _console_token(client.get("/console/").data)
    for plural, record_id in (("leads", ids["lead_id"]), ("contacts", ids["contact_id"]),
                              ("accounts", ids["account_id"]),
                              ("opportunities", ids["opportunity_id"])):
        bad = client.post(f"/console/{plural}/{record_id}/owner",
                          data={"csrf_token": csrf, "owner": "nobody@example.com"},
                          follow_redirects=True)
        assert b"Not reassigned" in bad.data
        client.post(f"/console/{plural}/{record_id}/owner",
                    data={"csrf_token": csrf, "owner": "sam@example.com"})
        assert env.get(f"/api/v1/{plural}/{record_id}").get_json()["owner"] == "sam@example.com"
        assert b'id="record-owner">sam@example.com' in client.get(
            f"/console/{plural}/{record_id}").data


def test_record_activities_page_by_cursor(env):
    ids = _qualified(env)
    path = f"/api/v1/accounts/{ids['account_id']}/activities"
    made = [env.post(path, {"type": "note" if n % 2 else "call", "subject": f"n{n}",
                            "at": f"2026-11-{n + 1:02d}T10:00:00Z"}).get_json()["id"]
            for n in range(7)]
    seen, cursor = [], None
    while True:
        page = env.get(f"{path}?limit=3" + (f"&cursor={cursor}" if cursor else "")).get_json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(made))
    calls = env.get(f"{path}?type=call&limit=2").get_json()
    assert [a["subject"] for a in calls["items"]] == ["n6", "n4"] and calls["next_cursor"]


def test_notices_follow_the_address_rules_of_campaign_mail():
    """Reminders and digests: an IDN domain goes out as its A-label (no SMTPUTF8 needed);
    a non-ASCII local part makes the headers raw UTF-8 (RFC 6532), never an encoded-word."""
    from outreach.mail.notice import build_notice

    ascii_local = build_notice(from_email="crm@outreach.example", to_email="mark@bücher.example",
                               subject="Task due: Grüße", text="t")
    assert ascii_local["To"] == "mark@xn--bcher-kva.example"
    assert ascii_local["Auto-Submitted"] == "auto-generated"
    assert b"Subject: =?utf-8?" in ascii_local.as_bytes()
    utf8 = build_notice(from_email="crm@outreach.example", to_email="zoë@bücher.example",
                        subject="Task due: Grüße", text="t")
    raw = utf8.as_bytes()
    assert "To: zoë@bücher.example".encode() in raw and b"=?" not in raw.split(b"\n\n")[0]


def test_open_opportunities_by_stage_follow_every_change_and_an_older_build(env):
    ids = [_qualified(env, f"s{n}@st{n}.io")["opportunity_id"] for n in range(5)]
    keys = env.store.keys

    def column(stage):
        found = opportunities.find_opportunities(env.store, status="open", stage=stage, limit=50)["items"]
        return sorted(o["id"] for o in found)

    def indexed(stage):
        return sorted(env.store.r.zrange(keys.open_opportunities_by_stage(stage), 0, -1))

    assert column("qualify") == indexed("qualify") == sorted(ids)
    env.patch(f"/api/v1/opportunities/{ids[0]}", {"stage": "develop"})
    env.patch(f"/api/v1/opportunities/{ids[1]}", {"stage": "close"})
    env.patch(f"/api/v1/opportunities/{ids[1]}", {"status": "won"})  # closed: in no column
    env.patch(f"/api/v1/opportunities/{ids[2]}", {"status": "lost", "lost_reason": "price"})
    env.patch(f"/api/v1/opportunities/{ids[2]}", {"status": "open"})  # reopened
    expected = {"qualify": sorted(ids[2:]), "develop": [ids[0]], "propose": [], "close": []}
    assert {s: indexed(s) for s in vocabulary.STAGES} == expected
    assert {s: column(s) for s in vocabulary.STAGES} == expected
    # an installation whose aggregates predate the stage index: built again on first read
    env.store.r.hset(keys.pipeline, "v", "1")
    env.store.r.delete(*[keys.open_opportunities_by_stage(s) for s in vocabulary.STAGES])
    assert column("develop") == [ids[0]]
    assert {s: indexed(s) for s in vocabulary.STAGES} == expected
    assert sum(s["count"] for s in pipeline(env.store)["stages"]) == 4
