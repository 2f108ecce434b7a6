"""Campaigns: the marketer API (lifecycle, stats, progress), the audience, and the watch."""

from __future__ import annotations

import time

import pytest

from outreach.campaigns import model, recipients, watch
from outreach.mail.smtp.classify import PermanentFailure

ZERO_STATS = {"targeted": 0, "sent": 0, "failed": 0, "suppressed": 0, "unknown": 0, "opened": 0,
              "opened_machine": 0,
              "clicked": 0, "unsubscribed": 0, "bounced": 0, "soft_bounced": 0, "blocked": 0,
              "complained": 0, "waiting_local": 0}


def job_names(env) -> list[str]:
    return [name for name, _ in env.pending()]


# ---------------------------------------------------------------- create and read

def test_create_campaign(cenv) -> None:
    list_id = cenv.leads("ann@example.com")
    template_id = cenv.template()
    response = cenv.post("/api/v1/campaigns", json={
        "name": "Spring", "template_id": template_id, "list_ids": [list_id, list_id],
        "rate_per_second": 5})
    assert response.status_code == 201
    created = response.get_json()
    assert created["status"] == "draft"
    assert created["name"] == "Spring"
    assert created["template_id"] == template_id
    assert created["list_ids"] == [list_id]  # each list once
    assert created["from_email"] == "news@outreach.example"  # the configured default
    assert created["rate_per_second"] == 5.0
    assert created["send_at"] is None
    assert created["stats"] == ZERO_STATS
    assert created["progress"] == 0.0
    assert created["status_reason"] is None
    assert cenv.show(created["id"]) == created
    listed = cenv.get("/api/v1/campaigns").get_json()
    assert listed == {"items": [created], "next_cursor": None}
    assert cenv.jobs.calls == []  # creating sends nothing


def test_create_with_from_and_send_at(cenv) -> None:
    list_id = cenv.leads("ann@example.com")
    campaign_id = cenv.campaign([list_id], from_email="Sales@Other.Example",
                                send_at="2031-05-04T10:00:00Z")
    shown = cenv.show(campaign_id)
    assert shown["from_email"] == "sales@other.example"
    assert shown["send_at"] == "2031-05-04T10:00:00Z"
    assert shown["rate_per_second"] is None


def test_create_refuses_unknown_template_and_lists(cenv, check_error) -> None:
    list_id = cenv.leads("ann@example.com")
    template_id = cenv.template()
    fields = check_error(cenv.post("/api/v1/campaigns", json={
        "name": "x", "template_id": "tp404", "list_ids": [list_id, "ls404", "ls405"]}), 422)["fields"]
    assert set(fields) == {"template_id", "list_ids"}
    assert "ls404" in fields["list_ids"][0] and "ls405" in fields["list_ids"][0]
    assert list_id not in fields["list_ids"][0]
    fields = check_error(cenv.post("/api/v1/campaigns", json={
        "name": "x", "template_id": template_id, "list_ids": ["ls404"]}), 422)["fields"]
    assert set(fields) == {"list_ids"}
    assert cenv.get("/api/v1/campaigns").get_json()["items"] == []


@pytest.mark.parametrize("change", [
    {"name": ""}, {"list_ids": []}, {"list_ids": "ls1"}, {"template_id": None},
    {"from_email": "not an address"}, {"send_at": "tomorrow"}, {"send_at": "2031-05-04T25:00:00Z"},
    {"rate_per_second": -1},
])
def test_create_validation(cenv, check_error, change) -> None:
    list_id = cenv.leads("ann@example.com")
    body = {"name": "x", "template_id": cenv.template(), "list_ids": [list_id], **change}
    fields = check_error(cenv.post("/api/v1/campaigns", json=body), 422)["fields"]
    assert set(fields) == set(change)


def test_campaign_endpoints_need_a_key(cenv, check_error) -> None:
    campaign_id = cenv.campaign([cenv.leads("ann@example.com")])
    client = cenv.client
    check_error(client.post("/api/v1/campaigns", json={}), 401)
    check_error(client.get("/api/v1/campaigns"), 401)
    check_error(client.get(f"/api/v1/campaigns/{campaign_id}"), 401)
    for action in ("launch", "pause", "resume", "cancel", "retry-failed"):
        check_error(client.post(f"/api/v1/campaigns/{campaign_id}/{action}"), 401)
    check_error(client.get(f"/api/v1/campaigns/{campaign_id}/recipients"), 401)
    bad = {"Authorization": "Bearer not-a-key"}
    check_error(client.post(f"/api/v1/campaigns/{campaign_id}/launch", headers=bad), 401)
    assert cenv.show(campaign_id)["status"] == "draft"
    assert cenv.jobs.calls == []


def test_unknown_campaign_is_404(cenv, check_error) -> None:
    check_error(cenv.get("/api/v1/campaigns/cp404"), 404, "not_found")
    for action in ("launch", "pause", "resume", "cancel", "retry-failed"):
        check_error(cenv.post(f"/api/v1/campaigns/cp404/{action}"), 404, "not_found")
    check_error(cenv.get("/api/v1/campaigns/cp404/recipients"), 404, "not_found")
    assert cenv.jobs.calls == []


# ---------------------------------------------------------------- lifecycle

def test_launch_starts_sending(cenv, check_error) -> None:
    list_id = cenv.leads("a@example.com", "b@example.com")
    campaign_id = cenv.campaign([list_id])
    response = cenv.post(f"/api/v1/campaigns/{campaign_id}/launch")
    assert response.status_code == 200
    shown = response.get_json()
    assert shown["status"] == "sending"
    assert shown["started_at"] is not None
    assert [name for name, _ in cenv.jobs.calls] == ["dispatch", "watch"]
    assert cenv.jobs.calls[0] == ("dispatch", (campaign_id,))
    check_error(cenv.post(f"/api/v1/campaigns/{campaign_id}/launch"), 409, "conflict")
    assert len(cenv.jobs.calls) == 2


def test_launch_with_future_send_at_is_scheduled(cenv, check_error) -> None:
    campaign_id = cenv.campaign([cenv.leads("a@example.com")], send_at="2031-05-04T10:00:00Z")
    shown = cenv.post(f"/api/v1/campaigns/{campaign_id}/launch").get_json()
    assert shown["status"] == "scheduled"
    assert shown["started_at"] is None
    assert job_names(cenv) == ["watch"]  # nothing dispatched before send_at
    check_error(cenv.post(f"/api/v1/campaigns/{campaign_id}/launch"), 409)


def test_launch_with_past_send_at_sends_now(cenv) -> None:
    campaign_id = cenv.campaign([cenv.leads("a@example.com")], send_at="2020-01-01T00:00:00Z")
    assert cenv.post(f"/api/v1/campaigns/{campaign_id}/launch").get_json()["status"] == "sending"
    assert job_names(cenv) == ["dispatch", "watch"]


def test_pause_resume_cancel(cenv, check_error) -> None:
    campaign_id = cenv.campaign([cenv.leads("a@example.com")])
    path = f"/api/v1/campaigns/{campaign_id}"
    check_error(cenv.post(path + "/pause"), 409)  # draft
    check_error(cenv.post(path + "/resume"), 409)  # draft
    cenv.post(path + "/launch")
    check_error(cenv.post(path + "/resume"), 409)  # sending, not paused
    paused = cenv.post(path + "/pause").get_json()
    assert paused["status"] == "paused"
    assert paused["status_reason"] == "paused by a marketer"
    check_error(cenv.post(path + "/pause"), 409)
    cenv.pending()
    resumed = cenv.post(path + "/resume").get_json()
    assert resumed["status"] == "sending"
    assert resumed["status_reason"] is None
    assert job_names(cenv) == ["dispatch", "watch"]
    cenv.post(path + "/pause")
    cancelled = cenv.post(path + "/cancel").get_json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["finished_at"] is not None
    for action in ("launch", "pause", "resume", "cancel"):
        check_error(cenv.post(f"{path}/{action}"), 409)
    cenv.pump()
    assert cenv.messenger.messages == []  # nothing sent after the cancel
    assert cenv.show(campaign_id)["status"] == "cancelled"


def test_cancel_draft_and_scheduled(cenv) -> None:
    list_id = cenv.leads("a@example.com")
    draft = cenv.campaign([list_id])
    assert cenv.post(f"/api/v1/campaigns/{draft}/cancel").get_json()["status"] == "cancelled"
    scheduled = cenv.campaign([list_id], send_at="2031-05-04T10:00:00Z")
    cenv.post(f"/api/v1/campaigns/{scheduled}/launch")
    assert cenv.post(f"/api/v1/campaigns/{scheduled}/pause").get_json()["status"] == "paused"
    # resuming a paused campaign that never started waits for its send_at again
    assert cenv.post(f"/api/v1/campaigns/{scheduled}/resume").get_json()["status"] == "scheduled"
    assert cenv.post(f"/api/v1/campaigns/{scheduled}/cancel").get_json()["status"] == "cancelled"
    assert cenv.watch(scheduled) is None
    assert cenv.store.r.sismember(cenv.store.keys.active_campaigns, scheduled) == 0


def test_cancel_mid_run_stops_sending(cenv) -> None:
    emails = [f"p{i}@example.com" for i in range(9)]
    campaign_id = cenv.launched([cenv.leads(*emails)])
    cenv.pending()
    cenv.dispatch(campaign_id)
    (name, (_, first_batch)), *_ = cenv.pending()
    cenv.send_batch(campaign_id, first_batch)
    assert len(cenv.messenger.messages) == 3
    cenv.post(f"/api/v1/campaigns/{campaign_id}/cancel")
    cenv.pump()
    for batch_no in range(1, 5):
        cenv.send_batch(campaign_id, batch_no)
    assert len(cenv.messenger.messages) == 3
    shown = cenv.show(campaign_id)
    assert shown["status"] == "cancelled"
    assert shown["stats"]["sent"] == 3


def test_cancel_a_sent_campaign_is_a_conflict(cenv, check_error) -> None:
    campaign_id = cenv.launched([cenv.leads("a@example.com")])
    assert cenv.run(campaign_id)["status"] == "sent"
    for action in ("launch", "pause", "resume", "cancel"):
        check_error(cenv.post(f"/api/v1/campaigns/{campaign_id}/{action}"), 409)
    assert cenv.show(campaign_id)["status"] == "sent"


def test_stats_and_progress_while_sending(cenv) -> None:
    emails = [f"p{i}@example.com" for i in range(7)]  # batches of 3: 3 + 3 + 1
    campaign_id = cenv.launched([cenv.leads(*emails)])
    cenv.pending()
    shown = cenv.show(campaign_id)
    assert (shown["stats"]["targeted"], shown["progress"]) == (0, 0.0)
    assert cenv.dispatch(campaign_id) == 3  # one page of 12 > 7 people
    batches = [args[1] for name, args in cenv.pending() if name == "send_batch"]
    assert batches == [1, 2, 3]
    shown = cenv.show(campaign_id)
    assert shown["stats"]["targeted"] == 7
    assert shown["progress"] == 0.0
    assert cenv.send_batch(campaign_id, 1).sent == 3
    shown = cenv.show(campaign_id)
    assert shown["stats"]["sent"] == 3
    assert shown["progress"] == round(3 / 7, 4)
    assert shown["status"] == "sending"
    cenv.send_batch(campaign_id, 2)
    cenv.send_batch(campaign_id, 3)
    cenv.pump()
    assert cenv.show(campaign_id)["status"] == "sending"  # the watch decides it is done
    assert cenv.watch(campaign_id) is None
    shown = cenv.show(campaign_id)
    assert shown["status"] == "sent"
    assert shown["progress"] == 1.0
    assert shown["stats"] == {**ZERO_STATS, "targeted": 7, "sent": 7}
    assert shown["finished_at"] is not None


def test_recipients_endpoint(cenv, check_error) -> None:
    list_id = cenv.leads("a@example.com", "b@example.com")
    campaign_id = cenv.launched([list_id])
    cenv.run(campaign_id)
    response = cenv.get(f"/api/v1/campaigns/{campaign_id}/recipients")
    items = sorted(response.get_json()["items"], key=lambda i: i["email"])
    assert [(i["email"], i["status"], i["person"]["type"]) for i in items] == [
        ("a@example.com", "sent", "lead"), ("b@example.com", "sent", "lead")]
    assert all(i["at"].endswith("Z") for i in items)
    lead = cenv.lead_of("a@example.com")
    assert items[0]["person"]["id"] == lead["id"]
    assert cenv.get(f"/api/v1/campaigns/{campaign_id}/recipients?status=failed").get_json() == {
        "items": [], "next_cursor": None}
    check_error(cenv.get(f"/api/v1/campaigns/{campaign_id}/recipients?status=bogus"), 422)


# ---------------------------------------------------------------- audience

def test_audience_is_the_union_of_lists_each_address_once(cenv) -> None:
    keys = cenv.store.keys
    # the asset's lead list: two ordinary leads, one without consent, one to disqualify,
    # one that unsubscribed earlier
    lead_list = cenv.leads("ann@example.com", "bob@example.com", "dis@example.com",
                           "gone@example.com", asset="guide")
    cenv.leads("nocon@example.com", asset="guide", consent=False)
    # a contact list: contacts who registered for the asset (one of them without consent)
    for email, consent in (("carol@example.com", True), ("dave@example.com", False)):
        created = cenv.post("/api/v1/contacts", json={"email": email, "consent": consent})
        assert created.status_code == 201
        cenv.register(email, asset="guide", consent=consent)
    cenv.drain()
    contact_list = cenv.asset_list("guide", "contact")
    assert cenv.get(f"/api/v1/lists/{contact_list}").get_json()["size"] == 2
    # a manual list: an address already on the lead list, and a lead of another asset
    cenv.leads("erin@example.com", asset="other")
    manual = cenv.manual_list("ann@example.com", "erin@example.com")

    dis = cenv.lead_of("dis@example.com")["id"]
    response = cenv.post(f"/api/v1/leads/{dis}/disqualify", json={"reason": "no_budget"})
    assert response.status_code == 200, response.get_json()
    assert cenv.lead_of("dis@example.com")["status"] == "disqualified"
    cenv.store.r.hset(keys.suppressed, "gone@example.com", "unsubscribed")

    campaign_id = cenv.launched([lead_list, contact_list, manual])
    shown = cenv.run(campaign_id)

    eligible = ["ann@example.com", "bob@example.com", "carol@example.com", "erin@example.com"]
    assert cenv.messenger.counts() == dict.fromkeys(eligible, 1)
    assert shown["status"] == "sent"
    assert shown["stats"] == {**ZERO_STATS, "targeted": 5, "sent": 4, "suppressed": 1}
    assert shown["progress"] == 1.0
    assert cenv.ledger(campaign_id) == {**dict.fromkeys(eligible, "sent"),
                                        "gone@example.com": "suppressed"}
    carol = cenv.messenger.to("carol@example.com")
    assert carol["To"] == "carol@example.com"


def test_audience_larger_than_a_page_and_the_window(cenv) -> None:
    """Pages of 12 (4 batches of 3), at most 2 batches ahead: dispatch is asked again as
    batches finish, and every address still gets exactly one message."""
    emails = [f"p{i:02d}@example.com" for i in range(40)]
    list_id = cenv.leads(*emails)
    campaign_id = cenv.launched([list_id, list_id])
    cenv.pending()
    assert cenv.dispatch(campaign_id) == 4  # one page is queued whole, then the window is full
    assert cenv.dispatch(campaign_id) == 0
    assert cenv.store.r.hlen(cenv.store.keys.campaign_batches(campaign_id)) == 4
    shown = cenv.run(campaign_id)
    assert cenv.messenger.counts() == dict.fromkeys(emails, 1)
    assert shown["stats"]["targeted"] == 40
    assert shown["status"] == "sent"


def test_dispatch_again_queues_nobody_twice(cenv) -> None:
    emails = [f"p{i}@example.com" for i in range(5)]
    campaign_id = cenv.launched([cenv.leads(*emails)])
    cenv.pump()
    assert cenv.messenger.counts() == dict.fromkeys(emails, 1)
    # a redelivered dispatch task that lost its page cursor walks the lists again
    cenv.store.r.hdel(cenv.store.keys.campaign(campaign_id), "d_list", "d_after", "dispatched")
    assert cenv.dispatch(campaign_id) == 0
    shown = cenv.run(campaign_id)
    assert cenv.messenger.counts() == dict.fromkeys(emails, 1)
    assert shown["stats"]["targeted"] == 5
    assert shown["status"] == "sent"


def test_empty_audience_completes(cenv) -> None:
    list_id = cenv.leads("nocon@example.com", consent=False)
    campaign_id = cenv.launched([list_id])
    shown = cenv.run(campaign_id)
    assert shown["status"] == "sent"
    assert shown["stats"] == ZERO_STATS
    assert shown["progress"] == 1.0
    assert cenv.messenger.messages == []


# ---------------------------------------------------------------- watch

def test_watch_completes_only_when_everything_is_terminal(cenv) -> None:
    emails = [f"p{i}@example.com" for i in range(5)]
    campaign_id = cenv.launched([cenv.leads(*emails)])
    cenv.pending()
    assert cenv.watch(campaign_id) == cenv.config.campaign_watch_seconds  # not dispatched yet
    assert job_names(cenv) == ["dispatch"]
    cenv.dispatch(campaign_id)
    cenv.send_batch(campaign_id, 1)
    assert cenv.watch(campaign_id) == cenv.config.campaign_watch_seconds
    assert cenv.show(campaign_id)["status"] == "sending"
    cenv.send_batch(campaign_id, 2)
    assert cenv.watch(campaign_id) is None
    shown = cenv.show(campaign_id)
    assert (shown["status"], shown["progress"]) == ("sent", 1.0)
    assert shown["stats"]["sent"] == 5
    assert cenv.store.r.sismember(cenv.store.keys.active_campaigns, campaign_id) == 0


def test_watch_waits_for_a_claim_in_flight(cenv) -> None:
    campaign_id = cenv.launched([cenv.leads("a@example.com", "b@example.com")])
    held = []

    def hold(rcpt: str) -> None:
        if rcpt == "b@example.com" and not held:
            held.append(rcpt)
            # while b's SMTP transaction is under way, the watch looks
            assert cenv.watch(campaign_id) == cenv.config.campaign_watch_seconds

    cenv.messenger.before_send = hold
    cenv.pump()
    assert held == ["b@example.com"]
    assert cenv.watch(campaign_id) is None
    assert cenv.show(campaign_id)["stats"]["sent"] == 2


def test_watch_requeues_stale_batches(cenv) -> None:
    emails = [f"p{i}@example.com" for i in range(6)]
    campaign_id = cenv.launched([cenv.leads(*emails)])
    cenv.pending()
    cenv.dispatch(campaign_id)
    cenv.pending()  # the send jobs "get lost"
    batches = cenv.store.keys.campaign_batches(campaign_id)
    stale = int(time.time() - cenv.config.send_batch_stale_seconds - 5)
    cenv.store.r.hset(batches, "2", str(stale))
    cenv.watch(campaign_id)
    assert cenv.pending() == [("send_batch", (campaign_id, 2))]
    assert float(cenv.store.r.hget(batches, "2")) > stale  # not again at the next look
    cenv.watch(campaign_id)
    assert cenv.pending() == []
    cenv.store.r.hset(batches, "1", str(stale))
    cenv.store.r.hset(batches, "2", str(stale))
    cenv.watch(campaign_id)
    assert sorted(cenv.pending()) == [("send_batch", (campaign_id, 1)),
                                      ("send_batch", (campaign_id, 2))]
    cenv.jobs.calls.extend([("send_batch", (campaign_id, 1)), ("send_batch", (campaign_id, 2))])
    shown = cenv.run(campaign_id)
    assert shown["status"] == "sent"
    assert cenv.messenger.counts() == dict.fromkeys(emails, 1)


def test_scheduled_campaign_starts_when_send_at_passes(cenv, monkeypatch) -> None:
    campaign_id = cenv.campaign([cenv.leads("a@example.com", "b@example.com")],
                                send_at="2031-05-04T10:00:00Z")
    cenv.post(f"/api/v1/campaigns/{campaign_id}/launch")
    cenv.pending()
    send_at = model.utc_from_iso("2031-05-04T10:00:00Z").timestamp()
    monkeypatch.setattr(model, "now", lambda: send_at - 30)
    assert cenv.watch(campaign_id) == 30
    assert cenv.show(campaign_id)["status"] == "scheduled"
    monkeypatch.setattr(model, "now", lambda: send_at - 3600)
    assert cenv.watch(campaign_id) == 60.0  # looks again at least every minute
    assert cenv.pending() == []
    monkeypatch.setattr(model, "now", lambda: send_at + 1)
    assert cenv.watch(campaign_id) == cenv.config.campaign_watch_seconds
    shown = cenv.show(campaign_id)
    assert shown["status"] == "sending"
    assert shown["started_at"] == "2031-05-04T10:00:01Z"
    assert cenv.pending() == [("dispatch", (campaign_id,))]
    cenv.jobs.calls.append(("dispatch", (campaign_id,)))
    assert cenv.run(campaign_id)["status"] == "sent"
    assert cenv.messenger.counts() == {"a@example.com": 1, "b@example.com": 1}


def test_watch_with_an_old_token_stops(cenv) -> None:
    campaign_id = cenv.launched([cenv.leads("a@example.com")])
    (_, (_, token)), = [call for call in cenv.jobs.calls if call[0] == "watch"]
    assert watch.watch(cenv.store, cenv.config, cenv.jobs, campaign_id, token) is not None
    cenv.post(f"/api/v1/campaigns/{campaign_id}/pause")
    cenv.post(f"/api/v1/campaigns/{campaign_id}/resume")  # starts a new watch with a new token
    assert watch.watch(cenv.store, cenv.config, cenv.jobs, campaign_id, token) is None


def test_watch_all_restarts_a_dead_watch(cenv, monkeypatch) -> None:
    campaign_id = cenv.launched([cenv.leads("a@example.com")])
    cenv.watch(campaign_id)
    cenv.pending()
    assert watch.watch_all(cenv.store, cenv.config, cenv.jobs) == 0
    assert cenv.pending() == []
    later = time.time() + 3600
    monkeypatch.setattr(model, "now", lambda: later)
    assert watch.watch_all(cenv.store, cenv.config, cenv.jobs) == 1
    (call,) = cenv.pending()
    assert call[0] == "watch" and call[1][0] == campaign_id
    assert watch.watch_all(cenv.store, cenv.config, cenv.jobs) == 0


def test_a_starting_worker_restarts_a_fresh_looking_watch(cenv) -> None:
    """The dead worker may hold the watch's next countdown task: a worker that starts
    restarts every active watch with a new token, and the old chain stops."""
    campaign_id = cenv.launched([cenv.leads("a@example.com")])
    cenv.watch(campaign_id)
    cenv.pending()
    old_token = cenv.store.r.hget(cenv.store.keys.campaign(campaign_id), "watch_token")
    assert watch.watch_all(cenv.store, cenv.config, cenv.jobs) == 0
    assert watch.watch_all(cenv.store, cenv.config, cenv.jobs, force=True) == 1
    (call,) = cenv.pending()
    assert call[0] == "watch" and call[1][0] == campaign_id and call[1][1] != old_token
    assert watch.watch(cenv.store, cenv.config, cenv.jobs, campaign_id, old_token) is None


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50])
def test_recipients_pages_respect_the_limit(cenv, limit) -> None:
    emails = [f"p{i}@example.com" for i in range(7)]
    for address in ("p1@example.com", "p4@example.com", "p6@example.com"):
        cenv.messenger.fail[address] = PermanentFailure("550 unknown user", 550)
    campaign_id = cenv.launched([cenv.leads(*emails)])
    cenv.run(campaign_id)
    for status, expected in ((None, emails), ("failed", ["p1@example.com", "p4@example.com",
                                                          "p6@example.com"])):
        seen: list[str] = []
        cursor = None
        for _ in range(20):
            query = {"limit": limit, **({"status": status} if status else {}),
                     **({"cursor": cursor} if cursor else {})}
            page = cenv.get(f"/api/v1/campaigns/{campaign_id}/recipients", query_string=query)
            assert page.status_code == 200
            body = page.get_json()
            assert len(body["items"]) <= limit
            seen += [item["email"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == expected


def test_recipients_bad_cursor(cenv, check_error) -> None:
    campaign_id = cenv.campaign([cenv.leads("a@example.com")])
    for cursor in ("x", "1.x", "-1", "1.", "\u00b2", "1" * 30):
        response = cenv.get(f"/api/v1/campaigns/{campaign_id}/recipients?cursor={cursor}")
        assert "cursor" in check_error(response, 422)["fields"]


def test_recipients_paging_over_a_large_ledger(cenv) -> None:
    campaign_id = cenv.campaign([cenv.leads("a@example.com")])
    ledger = cenv.store.keys.campaign_ledger(campaign_id)
    cenv.store.r.hset(ledger, mapping={f"r{i:03d}@example.com": f"{'Sf'[i % 2]}|l:ld{i}|1700000000"
                                       for i in range(301)})
    for status, expected in ((None, 301), ("failed", 150), ("sent", 151)):
        seen: list[str] = []
        cursor = None
        while True:
            page = recipients.recipients(cenv.store, campaign_id, status=status, limit=7,
                                         cursor=cursor)
            assert len(page["items"]) <= 7
            seen += [item["email"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == expected
