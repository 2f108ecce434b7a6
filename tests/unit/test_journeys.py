"""Journeys: definition checks, the engine's steps (claim, act, mark), versions, controls,
triggers, and what a crash leaves (never a second send)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from outreach.journeys import catalog, engine, enrollments, inbox


class Journeys:
    """Drives a journey by hand on a fake clock: the inbox, then the due steps."""

    def __init__(self, env: Any) -> None:
        self.env = env
        # a clock the test moves (from now: the API lets people in at the real time, so
        # it is never behind the real clock; waits are minutes long, so that a busy
        # machine's real seconds between two calls never end one a test expects running)
        self.t0 = self.now = time.time()

    def create(self, steps: list[dict[str, Any]], trigger: dict[str, Any] | None = None,
               settings: dict[str, Any] | None = None, activate: bool = True) -> str:
        body = {"name": "nurture", "trigger": trigger or {"type": "manual"}, "steps": steps,
                "settings": settings or {}}
        response = self.env.post("/api/v1/journeys", json=body)
        assert response.status_code == 201, response.get_json()
        journey_id = response.get_json()["id"]
        if activate:
            response = self.env.post(f"/api/v1/journeys/{journey_id}/activate")
            assert response.status_code == 200, response.get_json()
        return journey_id

    def enroll(self, journey_id: str, *emails: str) -> dict[str, Any]:
        response = self.env.post(f"/api/v1/journeys/{journey_id}/enroll",
                                 json={"emails": list(emails)})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def pump(self, rounds: int = 20) -> int:
        """Drain the inbox and run every due step at ``self.now`` until nothing is due."""
        store, config = self.env.store, self.env.config
        self.now = max(self.now, time.time())  # never behind the real clock the API used
        done = 0
        for _ in range(rounds):
            catalog.end_stopped(store)  # the tick's order: stops, inbox, due steps
            inbox.drain(store, config)
            self.now = max(self.now, time.time())
            batches: list[tuple[str, list[str]]] = []
            for journey_id in sorted(store.r.smembers(store.keys.journeys_running)):
                engine.drain_due(store, journey_id, self._collector(batches), now=self.now)
            if not batches:
                break
            for journey_id, refs in batches:
                done += engine.run_steps(store, config, self.env.messenger, journey_id, refs,
                                         now=lambda: self.now)
        return done

    @staticmethod
    def _collector(batches: list[tuple[str, list[str]]]) -> Any:
        return lambda journey_id, refs: batches.append((journey_id, refs))

    def advance(self, seconds: float) -> int:
        self.now += seconds
        return self.pump()

    def show(self, journey_id: str) -> dict[str, Any]:
        response = self.env.get(f"/api/v1/journeys/{journey_id}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def enrollment(self, journey_id: str, email: str) -> dict[str, Any]:
        response = self.env.get(f"/api/v1/journeys/{journey_id}/enrollments",
                                query_string={"email": email})
        assert response.status_code == 200, response.get_json()
        (item,) = response.get_json()["items"]
        return item


@pytest.fixture
def jenv(cenv):
    return cenv, Journeys(cenv)


def _open(env: Any, address: str, nth: int = 0) -> None:
    msgs = [m for m, _, rcpt in env.messenger.messages if rcpt == address]
    html = msgs[nth].get_body(("html",)).get_content()
    token = re.search(r"/t/o/([^\"]+)\"", html).group(1)
    assert env.client.get(f"/t/o/{token}").status_code == 200


def _flow(first: str, second: str, third: str) -> list[dict[str, Any]]:
    return [
        {"id": "hello", "type": "send", "template_id": first},
        {"id": "pause", "type": "wait", "duration": "PT10M"},
        {"id": "check", "type": "branch", "if": {"opened": {"step": "hello"}}, "within": "PT1H",
         "then": "thanks", "else": "nudge"},
        {"id": "thanks", "type": "send", "template_id": second, "next": "end"},
        {"id": "nudge", "type": "send", "template_id": third},
        {"id": "end", "type": "exit"},
    ]


# ------------------------------------------------------------------ definitions

def test_a_bad_step_is_a_422_naming_it(jenv, check_error) -> None:
    env, _ = jenv
    body = {"name": "x", "trigger": {"type": "manual"},
            "steps": [{"id": "a", "type": "wait", "duration": "PT1S"},
                      {"id": "b", "type": "wait", "duration": "P91D"}]}
    error = check_error(env.post("/api/v1/journeys", json=body), 422)
    assert "b" in error["fields"]["steps.1"][0]
    body["steps"][1] = {"id": "b", "type": "wait", "until": "25:00"}
    assert "steps.1" in check_error(env.post("/api/v1/journeys", json=body), 422)["fields"]
    body["steps"][1] = {"id": "a", "type": "exit"}
    assert "used twice" in check_error(env.post("/api/v1/journeys", json=body), 422)["fields"]["steps.1"][0]


@pytest.mark.parametrize("steps, index, words", [
    ([{"id": "a", "type": "wait", "duration": "PT1S", "next": "zz"}], 0, "'zz'"),
    ([{"id": "a", "type": "exit"}, {"id": "b", "type": "exit"}], 1, "cannot be reached"),
    ([{"id": "a", "type": "add_to_list", "list_id": "LIST"},
      {"id": "b", "type": "remove_from_list", "list_id": "LIST", "next": "a"}], 0, "loop"),
    ([{"id": "a", "type": "send", "template_id": "nope"}], 0, "no template"),
    ([{"id": "a", "type": "branch", "if": {"opened": {"step": "b"}}, "within": "PT1H",
       "then": "b", "else": "b"}, {"id": "b", "type": "exit"}], 0, "not a send"),
])
def test_activation_checks_the_graph(jenv, check_error, steps, index, words) -> None:
    env, j = jenv
    list_id = env.manual_list()
    for step in steps:
        if step.get("list_id") == "LIST":
            step["list_id"] = list_id
    journey_id = j.create(steps, activate=False)
    error = check_error(env.post(f"/api/v1/journeys/{journey_id}/activate"), 422)
    assert words in error["fields"][f"steps.{index}"][0], error
    assert steps[index]["id"] in error["fields"][f"steps.{index}"][0]
    assert j.show(journey_id)["status"] == "draft"


def test_a_loop_with_a_wait_is_allowed(jenv) -> None:
    env, j = jenv
    list_id = env.manual_list()
    j.create([{"id": "a", "type": "add_to_list", "list_id": list_id},
              {"id": "w", "type": "wait", "duration": "PT1S", "next": "a"}])


def test_sales_may_read_journeys_not_change_them(jenv) -> None:
    env, j = jenv
    from outreach.platform.apikeys import create_api_key

    journey_id = j.create([{"id": "a", "type": "exit"}])
    sales = {"Authorization": f"Bearer {create_api_key(env.store, 's', role='sales')}"}
    assert env.client.get(f"/api/v1/journeys/{journey_id}", headers=sales).status_code == 200
    assert env.client.post(f"/api/v1/journeys/{journey_id}/pause", headers=sales).status_code == 403


# ------------------------------------------------------------------ the engine

def test_send_wait_branch_on_open_then_send(jenv) -> None:
    env, j = jenv
    env.leads("ann@example.com", "bob@example.com", first_name="Ann")
    t1, t2, t3 = (env.template(subject=s) for s in ("One", "Thanks", "Nudge"))
    journey_id = j.create(_flow(t1, t2, t3))
    assert j.enroll(journey_id, "ann@example.com", "bob@example.com", "nobody@example.com") == {
        "enrolled": 2, "skipped": [{"email": "nobody@example.com", "reason": "unknown_person"}]}
    j.pump()
    assert sorted(env.messenger.recipients) == ["ann@example.com", "bob@example.com"]
    _open(env, "ann@example.com")
    j.advance(300)  # the wait is not over: nothing moves
    assert j.enrollment(journey_id, "ann@example.com")["step"] == "pause"
    j.advance(301)  # over: ann opened (then), bob waits on the branch
    assert j.enrollment(journey_id, "ann@example.com")["status"] == "exited"
    assert j.enrollment(journey_id, "bob@example.com")["step"] == "check"
    _open(env, "bob@example.com")  # the open wakes bob's branch: no polling
    j.pump()
    bob = j.enrollment(journey_id, "bob@example.com")
    assert bob["status"] == "exited"
    assert [h["outcome"] for h in bob["history"]] == ["entered", "sent", "waited", "then",
                                                      "sent", "exited"]
    subjects = sorted(m["Subject"] for m, _, _ in env.messenger.messages)
    assert subjects == ["One", "One", "Thanks", "Thanks"]
    stats = j.show(journey_id)["stats"]
    assert stats["enrolled"] == 2 and stats["exited"] == 2 and stats["active"] == 0
    assert stats["steps"]["hello"] == {"entered": 2, "waiting": 0, "done": 2, "sent": 2,
                                       "opened": 2, "clicked": 0, "failed": 0, "unknown": 0}
    assert stats["steps"]["nudge"]["entered"] == 0


def test_else_when_within_ends(jenv) -> None:
    env, j = jenv
    env.leads("ann@example.com")
    t = env.template()
    steps = _flow(t, t, t)
    steps[2]["within"] = "PT30M"
    journey_id = j.create(steps)
    j.enroll(journey_id, "ann@example.com")
    j.pump()
    j.advance(601)
    assert j.enrollment(journey_id, "ann@example.com")["next_at"] == pytest.approx(
        j.t0 + 600 + 1800, abs=30)  # within of a busy machine's real seconds
    j.advance(1700)
    assert j.enrollment(journey_id, "ann@example.com")["step"] == "check"
    j.advance(200)
    ann = j.enrollment(journey_id, "ann@example.com")
    assert ann["status"] == "exited" and "else" in [h["outcome"] for h in ann["history"]]
    assert len(env.messenger.messages) == 2


def test_journey_sends_keep_campaign_rules_and_stay_out_of_the_listing(jenv) -> None:
    env, j = jenv
    env.leads("ann@example.com")
    env.leads("nope@example.com", consent=False)
    t = env.template()
    journey_id = j.create([{"id": "hello", "type": "send", "template_id": t}])
    j.enroll(journey_id, "ann@example.com", "nope@example.com")
    j.pump()
    assert env.messenger.recipients == ["ann@example.com"]
    nope = j.enrollment(journey_id, "nope@example.com")
    assert nope["status"] == "done" and nope["history"][1]["outcome"] == "skipped"
    msg = env.messenger.to("ann@example.com")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert env.get("/api/v1/campaigns").get_json()["items"] == []


def test_a_send_claimed_by_a_dead_worker_after_data_is_unknown_never_resent(jenv) -> None:
    env, j = jenv
    env.leads("ann@example.com")
    t = env.template()
    journey_id = j.create([{"id": "hello", "type": "send", "template_id": t},
                           {"id": "bye", "type": "exit"}])
    j.enroll(journey_id, "ann@example.com")

    class Killed(BaseException):
        pass

    def die(_rcpt: str) -> None:  # the worker dies after DATA went out, before the mark
        raise Killed

    real_send = env.messenger.send

    def send_then_die(msg, mail_from, rcpt_to, before_data=None):
        real_send(msg, mail_from, rcpt_to, before_data)
        die(rcpt_to)

    env.messenger.send = send_then_die
    with pytest.raises(Killed):
        j.pump()
    env.messenger.send = real_send
    assert len(env.messenger.messages) == 1
    # the dead run's heartbeat is gone (run_steps removed it in its finally, as a killed
    # process stops refreshing it); a second run takes the step over once the lease ends
    j.advance(engine.LEASE_SECONDS + env.config.send_heartbeat_seconds + 1)
    ann = j.enrollment(journey_id, "ann@example.com")
    assert ann["status"] == "exited"
    assert [h["outcome"] for h in ann["history"]][1] == "unknown"
    assert len(env.messenger.messages) == 1
    assert j.show(journey_id)["stats"]["steps"]["hello"]["unknown"] == 1


def test_a_claim_held_by_a_live_run_is_left_alone(jenv) -> None:
    env, j = jenv
    env.leads("ann@example.com")
    journey_id = j.create([{"id": "w", "type": "wait", "duration": "PT1S"}])
    j.enroll(journey_id, "ann@example.com")
    store = env.store
    ref = j.enrollment(journey_id, "ann@example.com")["person"]
    store.r.set(store.keys.send_run("other"), "1")
    outcome, seq, _ = store.run("journey_claim", keys=[
        store.keys.journey(journey_id), store.keys.journey_enrollment(journey_id, ref),
        store.keys.journey_due(journey_id)], args=[ref, "other", repr(j.now), 10,
                                                   store.keys.send_run("")])
    assert outcome == "claimed"
    j.advance(5)
    assert j.enrollment(journey_id, "ann@example.com")["status"] == "active"
    # a mark by someone else's run changes nothing (compare-and-set on the claim)
    from outreach.journeys.steps import Act

    assert engine._mark(store, journey_id, ref, seq, "me", j.now, "w",
                        Act("end", end="done")) == 0
    store.r.delete(store.keys.send_run("other"))  # that run died: after the lease, taken over
    j.advance(engine.LEASE_SECONDS + 20)
    assert j.enrollment(journey_id, "ann@example.com")["status"] == "done"


def test_each_step_once_when_the_same_batch_runs_twice(jenv) -> None:
    env, j = jenv
    env.leads("ann@example.com", "bob@example.com")
    list_id = env.manual_list()
    t = env.template()
    journey_id = j.create([{"id": "hello", "type": "send", "template_id": t},
                           {"id": "join", "type": "add_to_list", "list_id": list_id}])
    j.enroll(journey_id, "ann@example.com", "bob@example.com")
    store = env.store
    refs = list(store.r.zrange(store.keys.journey_due(journey_id), 0, -1))
    for _ in range(3):  # a redelivered task, a second beat
        engine.run_steps(store, env.config, env.messenger, journey_id, refs, now=lambda: j.now)
    j.pump()
    assert env.messenger.counts() == {"ann@example.com": 1, "bob@example.com": 1}
    assert j.show(journey_id)["stats"]["completed"] == 2


# ------------------------------------------------------------------ versions and control

def test_people_keep_their_version_new_entrants_take_the_newest(jenv) -> None:
    env, j = jenv
    env.leads("ann@example.com", "bob@example.com")
    t1, t2 = env.template(subject="v1"), env.template(subject="v2")
    steps = [{"id": "w", "type": "wait", "duration": "PT5S"},
             {"id": "s", "type": "send", "template_id": t1}]
    journey_id = j.create(steps)
    j.enroll(journey_id, "ann@example.com")
    j.pump()
    steps[1]["template_id"] = t2
    response = env.client.put(f"/api/v1/journeys/{journey_id}", headers=env.auth,
                              json={"name": "nurture", "trigger": {"type": "manual"},
                                    "steps": steps})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["version"] == 2 and response.get_json()["status"] == "active"
    j.enroll(journey_id, "bob@example.com")
    j.advance(60)  # far past both waits, however long the requests took
    assert env.messenger.to("ann@example.com")["Subject"] == "v1"
    assert env.messenger.to("bob@example.com")["Subject"] == "v2"
    assert j.enrollment(journey_id, "ann@example.com")["version"] == 1
    assert catalog.load_version(env.store, journey_id, 1)["steps"][1]["template_id"] == t1


def test_pause_holds_every_step_resume_carries_on_stop_ends_all(jenv) -> None:
    env, j = jenv
    env.leads("ann@example.com", "bob@example.com")
    t = env.template()
    journey_id = j.create([{"id": "w", "type": "wait", "duration": "PT2S"},
                           {"id": "s", "type": "send", "template_id": t},
                           {"id": "w2", "type": "wait", "duration": "P1D"}])
    j.enroll(journey_id, "ann@example.com")
    j.pump()
    assert env.post(f"/api/v1/journeys/{journey_id}/pause").status_code == 200
    j.advance(60)
    assert env.messenger.messages == []
    assert j.enrollment(journey_id, "ann@example.com")["step"] == "w"
    assert env.post(f"/api/v1/journeys/{journey_id}/resume").status_code == 200
    j.pump()
    assert env.messenger.recipients == ["ann@example.com"]  # nothing skipped
    assert j.enrollment(journey_id, "ann@example.com")["step"] == "w2"
    assert env.post(f"/api/v1/journeys/{journey_id}/stop").get_json()["status"] == "stopped"
    ann = j.enrollment(journey_id, "ann@example.com")
    assert ann["status"] == "stopped" and ann["next_at"] is None
    j.pump()  # the beat ends the enrollments
    stats = j.show(journey_id)["stats"]
    assert stats["stopped"] == 1 and stats["active"] == 0
    assert stats["steps"]["w2"]["waiting"] == 0
    assert catalog.end_stopped(env.store) == 0  # once
    assert env.post(f"/api/v1/journeys/{journey_id}/resume").status_code == 409
    j.advance(2 * 86400)
    assert len(env.messenger.messages) == 1


def test_re_entry(jenv) -> None:
    env, j = jenv
    env.leads("ann@example.com")
    once = j.create([{"id": "x", "type": "exit"}])
    again = j.create([{"id": "x", "type": "exit"}], settings={"re_entry": "after_exit"})
    for journey_id in (once, again):
        j.enroll(journey_id, "ann@example.com")
    j.pump()
    assert j.enroll(once, "ann@example.com")["skipped"][0]["reason"] == "already_enrolled"
    assert j.enroll(again, "ann@example.com")["enrolled"] == 1


def test_exit_rule_and_goal(jenv) -> None:
    env, j = jenv
    env.leads("ann@example.com", "bob@example.com")
    journey_id = j.create([{"id": "w", "type": "wait", "duration": "P1D"}],
                          settings={"exit_when": {"field": "job_title", "op": "eq",
                                                  "value": "CEO"},
                                    "goal": {"field": "job_title", "op": "eq", "value": "CTO"}})
    j.enroll(journey_id, "ann@example.com", "bob@example.com")
    j.pump()
    lead = env.lead_of("ann@example.com")
    assert env.patch(f"/api/v1/leads/{lead['id']}", json={"job_title": "CEO"}).status_code == 200
    bob = env.lead_of("bob@example.com")
    env.patch(f"/api/v1/leads/{bob['id']}", json={"job_title": "CTO"})
    engine.wake(env.store, journey_id, f"l:{lead['id']}", now=j.now)  # as a segment move does
    j.pump()
    ann = j.enrollment(journey_id, "ann@example.com")
    assert ann["status"] == "exited" and ann["history"][-1]["outcome"] == "exited"
    j.advance(86400)
    stats = j.show(journey_id)["stats"]
    assert stats["exited"] == 1 and stats["completed"] == 1 and stats["goal_reached"] == 1


def test_segment_moves_enter_and_wake(jenv) -> None:
    env, j = jenv
    env.leads("ann@example.com")
    store = env.store
    created = env.post("/api/v1/segments", json={"name": "s", "member_type": "lead",
                                                  "rules": {"field": "email", "op": "contains",
                                                            "value": "@"}}).get_json()
    journey_id = j.create([{"id": "w", "type": "wait", "duration": "P1D"}],
                          trigger={"type": "segment_entered", "segment_id": created["id"]})
    stream = store.keys.segment_moves
    # activation asked for the segment's moves
    assert store.r.hget(store.keys.segment_move_listeners, created["id"]) == "1"
    ref = f"l:{env.lead_of('ann@example.com')['id']}"
    store.r.xadd(stream, {"segment_id": created["id"], "ref": ref, "move": "in", "at": "1"})
    assert inbox.consume_moves(store, env.config) == 1
    assert inbox.consume_moves(store, env.config) == 0  # acknowledged
    assert j.enrollment(journey_id, "ann@example.com")["status"] == "active"
    env.post(f"/api/v1/journeys/{journey_id}/stop")
    assert not store.r.hget(store.keys.segment_move_listeners, created["id"])


def test_registration_trigger_is_written_by_ingest(jenv) -> None:
    env, j = jenv
    env.leads("old@example.com", asset="paper")  # the asset exists
    journey_id = j.create([{"id": "x", "type": "exit"}],
                          trigger={"type": "registration", "asset": "paper"})
    env.leads("ann@example.com", asset="paper")
    env.leads("bob@example.com", asset="other")
    assert env.store.r.llen(env.store.keys.journey_inbox) == 1
    j.pump()
    assert j.show(journey_id)["stats"]["enrolled"] == 1
    assert j.enrollment(journey_id, "ann@example.com")["status"] == "exited"


def test_qualified_trigger_and_timeline(jenv) -> None:
    env, j = jenv
    env.leads("ann@example.com", company="Acme")
    journey_id = j.create([{"id": "x", "type": "exit"}], trigger={"type": "qualified"})
    lead = env.lead_of("ann@example.com")
    response = env.post(f"/api/v1/leads/{lead['id']}/qualify", json={"on_duplicate": "create"})
    assert response.status_code in (200, 201), response.get_json()
    j.pump()
    item = j.enrollment(journey_id, "ann@example.com")
    assert item["person"].startswith("c:") and item["status"] == "exited"
    contact_id = item["person"][2:]
    timeline = env.get(f"/api/v1/contacts/{contact_id}/timeline").get_json()["items"]
    assert any(i["type"] == "journey" for i in timeline)


def test_task_step_once_for_the_owner_or_the_next_sales_user(jenv) -> None:
    env, j = jenv
    from outreach.platform import users

    users.create_user(env.store, "sam@example.com", "sales")
    env.leads("ann@example.com")
    journey_id = j.create([{"id": "call", "type": "task", "subject": "Call Ann", "due_in": "P1D"}])
    j.enroll(journey_id, "ann@example.com")
    j.pump()
    tasks = env.get("/api/v1/tasks", query_string={"owner": "sam@example.com"}).get_json()["items"]
    assert [t["subject"] for t in tasks] == ["Call Ann"]


def test_metrics_show_lag_and_rate(jenv) -> None:
    env, j = jenv
    text = env.client.get("/metrics").get_data(as_text=True)
    assert "outreach_journey_step_lag_seconds" in text
    assert "outreach_journey_steps_per_second" in text


def test_enrollments_filters(jenv) -> None:
    env, j = jenv
    env.leads("ann@example.com", "bob@example.com")
    journey_id = j.create([{"id": "w", "type": "wait", "duration": "PT5S"}])
    j.enroll(journey_id, "ann@example.com", "bob@example.com")
    j.pump()
    page = env.get(f"/api/v1/journeys/{journey_id}/enrollments",
                   query_string={"status": "active", "limit": 1}).get_json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = env.get(f"/api/v1/journeys/{journey_id}/enrollments",
                   query_string={"status": "active", "cursor": page["next_cursor"]}).get_json()
    assert len(rest["items"]) == 1
    assert env.get(f"/api/v1/journeys/{journey_id}/enrollments",
                   query_string={"status": "done"}).get_json()["items"] == []
    assert enrollments.find_enrollments(env.store, journey_id, step="w")["items"]



def test_quiet_hours_in_each_persons_zone(jenv) -> None:
    env, j = jenv
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    env.leads("berlin@example.com", timezone="Europe/Berlin")
    env.leads("newyork@example.com", timezone="America/New_York")
    t = env.template()
    journey_id = j.create([{"id": "hello", "type": "send", "template_id": t}],
                          settings={"quiet_hours": {"start": "20:00", "end": "08:00"}})
    # the next 20:30 UTC: 21:30 or 22:30 in Berlin (quiet), 15:30 or 16:30 in New York
    now = datetime.now(UTC)
    at = now.replace(hour=20, minute=30, second=0, microsecond=0)
    if at <= now:
        at = datetime.fromtimestamp(at.timestamp() + 86400, UTC)
    j.now = at.timestamp()
    j.enroll(journey_id, "berlin@example.com", "newyork@example.com")
    j.pump()
    assert env.messenger.recipients == ["newyork@example.com"]
    berlin = j.enrollment(journey_id, "berlin@example.com")
    woke = datetime.fromtimestamp(berlin["next_at"], ZoneInfo("Europe/Berlin"))
    assert (woke.hour, woke.minute) == (8, 0)
    j.advance(berlin["next_at"] - j.now - 1)
    assert env.messenger.recipients == ["newyork@example.com"]
    j.advance(1)
    assert sorted(env.messenger.recipients) == ["berlin@example.com", "newyork@example.com"]


def _ann_sent_and_waiting(env, j) -> str:
    """A journey that mailed ann and now waits a day; its id."""
    env.leads("ann@example.com")
    t = env.template()
    journey_id = j.create([{"id": "hello", "type": "send", "template_id": t},
                           {"id": "w", "type": "wait", "duration": "P1D"}])
    j.enroll(journey_id, "ann@example.com")
    j.pump()
    return journey_id


def test_erasure_forgets_enrollments_and_scrubs_the_journey_sends(jenv) -> None:
    env, j = jenv
    journey_id = _ann_sent_and_waiting(env, j)
    store = env.store
    (campaign_id,) = store.r.hvals(store.keys.journey_campaigns(journey_id))
    assert store.r.hget(store.keys.campaign_ledger(campaign_id), "ann@example.com")
    assert env.erase("ann@example.com")["status"] == "done"
    assert store.r.hget(store.keys.campaign_ledger(campaign_id), "ann@example.com") is None
    assert env.get(f"/api/v1/journeys/{journey_id}/enrollments").get_json()["items"] == []
    stats = j.show(journey_id)["stats"]
    assert stats["active"] == 0 and stats["exited"] == 1


def test_journey_webhooks(jenv) -> None:
    env, j = jenv
    from outreach.platform import webhooks

    env.leads("ann@example.com", "bob@example.com")
    response = env.post("/api/v1/webhooks", json={
        "url": "https://93.184.215.14/x",
        "events": ["journey.entered", "journey.completed", "journey.exited"]})
    assert response.status_code == 201, response.get_json()
    done = j.create([{"id": "w", "type": "wait", "duration": "PT1S"}])
    out = j.create([{"id": "x", "type": "exit"}])
    j.enroll(done, "ann@example.com")
    j.enroll(out, "bob@example.com")
    j.advance(60)
    events = []
    for delivery_id in webhooks.claim_due(env.store, now=time.time() + 3600, limit=100):
        raw = env.store.r.hgetall(env.store.keys.webhook_delivery(delivery_id))
        events.append(raw.get("event"))
    assert sorted(events) == ["journey.completed", "journey.entered", "journey.entered",
                              "journey.exited"]


def test_a_relay_that_trips_the_breaker_pauses_the_journey_with_the_reason(make_cenv) -> None:
    from outreach.mail.smtp.classify import PermanentFailure

    with make_cenv(send_breaker_refusals=2) as env:
        j = Journeys(env)
        emails = [f"p{i}@example.com" for i in range(4)]
        env.leads(*emails)
        t = env.template()
        journey_id = j.create([{"id": "hello", "type": "send", "template_id": t}])
        for email in emails[:2]:
            env.messenger.fail[email] = [PermanentFailure("550 5.7.1 relay says no", 550), None]
        j.enroll(journey_id, *emails)
        j.pump()
        shown = j.show(journey_id)
        assert shown["status"] == "paused" and "relay says no" in shown["status_reason"]
        (backing,) = shown["send_campaigns"]
        assert backing["step"] == "hello"
        assert env.post(f"/api/v1/journeys/{journey_id}/resume").status_code == 200
        j.advance(60)  # past the deferred one's back-off
        # the one whose refusal tripped the breaker is sent on resume; the one refused
        # before it had already moved on as failed (a journey does not go back a step)
        assert sorted(env.messenger.recipients) == emails[1:]
        hello = j.show(journey_id)["stats"]["steps"]["hello"]
        assert hello["sent"] == 3 and hello["failed"] == 1


def test_a_task_step_whose_run_died_before_the_mark_makes_one_task(jenv, monkeypatch) -> None:
    env, j = jenv
    from outreach.platform import users

    users.create_user(env.store, "sam@example.com", "sales")
    env.leads("ann@example.com")
    journey_id = j.create([{"id": "call", "type": "task", "subject": "Call Ann"}])
    j.enroll(journey_id, "ann@example.com")

    class Killed(BaseException):
        pass

    real_mark = engine._mark

    def die(*args, **kwargs):  # the task was made; the worker dies before the mark
        raise Killed

    monkeypatch.setattr(engine, "_mark", die)
    with pytest.raises(Killed):
        j.pump()
    monkeypatch.setattr(engine, "_mark", real_mark)
    j.advance(engine.LEASE_SECONDS + env.config.send_heartbeat_seconds + 1)
    assert j.enrollment(journey_id, "ann@example.com")["status"] == "done"
    tasks = env.get("/api/v1/tasks", query_string={"owner": "sam@example.com"}).get_json()["items"]
    assert [t["subject"] for t in tasks] == ["Call Ann"]


def test_journey_webhooks_survive_a_worker_that_dies_right_after_the_script(jenv,
                                                                            monkeypatch) -> None:
    """The entry and the end queue their events in the script that records them: a worker
    dying between the script and the deliveries loses none (the tick flushes the outbox)."""
    env, j = jenv
    from outreach.platform import webhooks

    env.leads("ann@example.com")
    response = env.post("/api/v1/webhooks", json={
        "url": "https://93.184.215.14/x", "events": ["journey.entered", "journey.exited"]})
    assert response.status_code == 201, response.get_json()
    journey_id = j.create([{"id": "x", "type": "exit"}])

    class Killed(BaseException):
        pass

    def die(*args, **kwargs):  # the worker dies right after the script
        raise Killed

    monkeypatch.setattr(webhooks, "emit", die)
    monkeypatch.setattr(webhooks, "emit_many", die)
    monkeypatch.setattr(webhooks, "flush_outbox", die)
    with pytest.raises(Killed):
        j.enroll(journey_id, "ann@example.com")
    with pytest.raises(Killed):
        j.pump()
    assert j.enrollment(journey_id, "ann@example.com")["status"] == "exited"
    monkeypatch.undo()
    assert enrollments.flush_webhooks(env.store) == 2  # the beat's tick does this
    assert enrollments.flush_webhooks(env.store) == 0  # once
    events = sorted(env.store.r.hget(env.store.keys.webhook_delivery(d), "event")
                    for d in webhooks.claim_due(env.store, now=time.time() + 3600, limit=100))
    assert events == ["journey.entered", "journey.exited"]


def test_stop_answers_at_once_and_the_beat_ends_the_enrollments_in_pages(jenv) -> None:
    """``/stop`` is a state change (nothing runs for the journey from then on); the
    enrollments are ended by the beat, a page at a time, carrying on where it got to."""
    env, j = jenv
    store = env.store
    emails = [f"p{i}@example.com" for i in range(7)]
    env.leads(*emails)
    t = env.template()
    journey_id = j.create([{"id": "w", "type": "wait", "duration": "PT5S"},
                           {"id": "s", "type": "send", "template_id": t}])
    j.enroll(journey_id, *emails)
    response = env.post(f"/api/v1/journeys/{journey_id}/stop")
    assert response.status_code == 200 and response.get_json()["status"] == "stopped"
    # the request ended nobody: the enrollments read as stopped, and nothing runs
    assert j.show(journey_id)["stats"]["active"] == 7
    assert all(store.r.hget(store.keys.journey_enrollment(journey_id, f"l:{env.lead_of(e)['id']}"),
                            "status") == "active" for e in emails)
    assert j.enrollment(journey_id, "p0@example.com")["status"] == "stopped"
    j.now += 60
    for journey_id_ in store.r.smembers(store.keys.journeys_running):
        assert journey_id_ != journey_id
    assert env.messenger.messages == []
    # the beat: pages of 3, carrying on across ticks
    assert catalog.end_stopped(store, page_size=3) == 7
    stats = j.show(journey_id)["stats"]
    assert stats["active"] == 0 and stats["stopped"] == 7
    assert not store.r.sismember(store.keys.journeys_stopping, journey_id)
    assert not store.r.exists(store.keys.journey_due(journey_id))
    assert catalog.end_stopped(store, page_size=3) == 0
    j.advance(60)
    assert env.messenger.messages == []


def test_a_stop_cut_short_by_the_tick_budget_carries_on_from_its_cursor(jenv) -> None:
    env, j = jenv
    store = env.store
    emails = [f"p{i}@example.com" for i in range(5)]
    env.leads(*emails)
    journey_id = j.create([{"id": "w", "type": "wait", "duration": "P1D"}])
    j.enroll(journey_id, *emails)
    env.post(f"/api/v1/journeys/{journey_id}/stop")
    assert catalog.end_stopped(store, page_size=2, budget_seconds=0) == 0
    n, cursor = catalog.end_page(store, journey_id, 0, page_size=2)
    assert (n, cursor) == (2, 2)
    store.r.hset(store.keys.journey(journey_id), "stop_cursor", str(cursor))
    assert catalog.end_stopped(store, page_size=2) == 3
    assert j.show(journey_id)["stats"]["active"] == 0


def test_retention_compacts_the_send_campaigns_of_a_stopped_journey(jenv) -> None:
    env, j = jenv
    from outreach.campaigns.retention import run_retention

    store = env.store
    journey_id = _ann_sent_and_waiting(env, j)
    assert env.messenger.recipients == ["ann@example.com"]
    (campaign_id,) = store.r.hvals(store.keys.journey_campaigns(journey_id))
    later = time.time() + (env.config.campaign_detail_days + 1) * 86_400
    # while people may still reach the step, its ledger stays (exactly once)
    assert run_retention(store, env.config, now=later) == []
    env.post(f"/api/v1/journeys/{journey_id}/stop")
    j.pump()  # the beat ends the enrollments, then the send campaigns are finished
    assert store.r.hget(store.keys.campaign(campaign_id), "status") == "sent"
    assert run_retention(store, env.config, now=time.time()) == []  # not yet past retention
    assert [c["id"] for c in run_retention(store, env.config, now=later)] == [campaign_id]
    assert not store.r.exists(store.keys.campaign_ledger(campaign_id))
    assert store.r.hget(store.keys.campaign(campaign_id), "compacted_at")
    assert run_retention(store, env.config, now=later) == []  # once
