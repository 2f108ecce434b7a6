"""A/B experiments on real parts: a worker, Redis and an SMTP sink (aiosmtpd). The test share
gets its variants, the decision comes at ``decide_after`` (by the test, or by hand), the rest
gets the winner (A when inconclusive); a pause and resume during the test phase gives nobody a
second variant; every address is mailed once. Conditions are waited for, never timed."""

from __future__ import annotations

import re
import time
from collections import Counter

from outreach.campaigns.experiments.assignment import bucket

from .conftest import wait_for
from .test_campaigns import TEMPLATE, _lead_list, _wait_status

SUBJECTS = {0: "Subject A", 1: "Subject B"}


def _audience(service, n: int) -> tuple[str, list[str]]:
    people = [f"person{i:03d}@example{i % 4}.org" for i in range(n)]
    for email in people:
        service.register(kind="white_paper", asset="ab", email=email, consent=True)
    wait_for(lambda: service.processed_count() == n, timeout=120, message="ingest")
    return _lead_list(service, "ab"), people


def _experiment_campaign(service, list_id: str, **experiment) -> tuple[str, str]:
    template = service.post("/api/v1/templates", {**TEMPLATE, "subject": "Subject A"}, status=201)
    campaign = service.post("/api/v1/campaigns", {
        "name": "ab", "template_id": template["id"], "list_ids": [list_id],
        "from_email": "news@mail.example.com",
        "experiment": {"variants": [{}, {"subject": "Subject B"}], **experiment}}, status=201)
    return campaign["id"], template["id"]


def _delivered(service) -> dict[str, list[str]]:
    """Subjects each address was sent, in order."""
    out: dict[str, list[str]] = {}
    for message in list(service.smtp.messages):
        for rcpt in message.rcpt_tos:
            out.setdefault(rcpt, []).append(message.message["Subject"])
    return out


def _test_share(campaign_id: str, people: list[str], share: float) -> dict[str, int]:
    return {e: v for e in people if (v := bucket(campaign_id, e, share, 2)) is not None}


def _each_once_with_its_variant(service, campaign_id: str, people: list[str], share: float,
                                rest_subject: str) -> None:
    delivered = _delivered(service)
    assert sorted(delivered) == sorted(people)
    assert all(len(subjects) == 1 for subjects in delivered.values()), delivered
    tested = _test_share(campaign_id, people, share)
    for email in people:
        want = SUBJECTS[tested[email]] if email in tested else rest_subject
        assert delivered[email] == [want], (email, delivered[email], want)
    view = service.get(f"/api/v1/campaigns/{campaign_id}/experiment")
    assert sum(v["sent"] for v in view["variants"]) == len(people)


def test_b_clicks_win_and_the_rest_gets_b(make_service) -> None:
    service = make_service(machine_open_seconds=0)
    service.start_worker()
    list_id, people = _audience(service, 40)
    share = 0.5
    campaign_id, _ = _experiment_campaign(service, list_id, test_share=share,
                                          decide_after="PT20S", metric="clicks")
    tested = _test_share(campaign_id, people, share)
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    wait_for(lambda: len(service.smtp.messages) >= len(tested), timeout=120,
             message="the test share sent")
    for message in list(service.smtp.messages):
        (rcpt,) = message.rcpt_tos
        if tested[rcpt] == 1:
            html = message.message.get_body(("html",)).get_content()
            link = re.search(r'href="http://outreach\.test(/t/c/[^"]+)"', html).group(1)
            assert service.client.get(link, headers={"User-Agent": "Thunderbird/115"}
                                      ).status_code == 302
    view = service.get(f"/api/v1/campaigns/{campaign_id}/experiment")
    assert view["status"] == "testing" and len(service.smtp.messages) == len(tested)
    decided = wait_for(lambda: (v := service.get(f"/api/v1/campaigns/{campaign_id}/experiment")
                                )["status"] != "testing" and v, timeout=120, message="a decision")
    assert (decided["status"], decided["winner"], decided["decided_by"]) == ("decided", "B", "test")
    _wait_status(service, campaign_id, "sent", timeout=180)
    _each_once_with_its_variant(service, campaign_id, people, share, "Subject B")
    rows = {v["name"]: v for v in service.get(f"/api/v1/campaigns/{campaign_id}/report")["variants"]}
    assert rows["B"]["clicked"] == sum(1 for v in tested.values() if v == 1)
    assert rows["A"]["clicked"] == 0


def test_pause_and_resume_in_the_test_phase_then_inconclusive_rest_gets_a(make_service) -> None:
    service = make_service(machine_open_seconds=0)
    service.start_worker()
    list_id, people = _audience(service, 40)
    share = 0.6
    campaign_id, _ = _experiment_campaign(service, list_id, test_share=share, decide_after="PT3S")
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    # paused while the test share is going out (at least one sent; maybe all, under load)
    wait_for(lambda: len(service.smtp.messages) >= 1, timeout=120, message="a first message")
    service.post(f"/api/v1/campaigns/{campaign_id}/pause", status=200)
    wait_for(lambda: service.get(f"/api/v1/campaigns/{campaign_id}")["status"] == "paused",
             message="paused")
    count = len(service.smtp.messages)
    wait_for(lambda: service.store.r.zcard(service.store.keys.campaign_sending(campaign_id)) == 0,
             timeout=60, message="no message in flight")
    # decide_after passes while paused: the decision waits for resume
    wait_for(lambda: service.get(f"/api/v1/campaigns/{campaign_id}")["started_at"], message="start")
    time.sleep(4)  # decide_after (3 s from launch) passes while paused
    assert service.get(f"/api/v1/campaigns/{campaign_id}/experiment")["status"] == "testing"
    assert len(service.smtp.messages) <= count + 2  # at most what was in flight
    service.post(f"/api/v1/campaigns/{campaign_id}/resume", status=200)
    _wait_status(service, campaign_id, "sent", timeout=180)
    view = service.get(f"/api/v1/campaigns/{campaign_id}/experiment")
    assert (view["status"], view["winner"], view["decided_by"]) == ("inconclusive", None, "test")
    assert view["rest_variant"] == "A"
    _each_once_with_its_variant(service, campaign_id, people, share, "Subject A")
    assert Counter(r["email"] for r in service.all_items(
        f"/api/v1/campaigns/{campaign_id}/recipients?status=sent")) == Counter(people)


def test_a_decision_by_hand(make_service) -> None:
    service = make_service()
    service.start_worker()
    list_id, people = _audience(service, 30)
    share = 0.4
    campaign_id, _ = _experiment_campaign(service, list_id, test_share=share, decide_after="PT1H")
    tested = _test_share(campaign_id, people, share)
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    wait_for(lambda: len(service.smtp.messages) >= len(tested), timeout=120,
             message="the test share sent")
    assert service.get(f"/api/v1/campaigns/{campaign_id}")["status"] == "sending"  # held
    service.post(f"/api/v1/campaigns/{campaign_id}/experiment/decide", {"variant": "X"}, status=422)
    view = service.post(f"/api/v1/campaigns/{campaign_id}/experiment/decide", {"variant": "B"},
                        status=200)
    assert (view["status"], view["winner"]) == ("decided", "B")
    assert view["decided_by"] and view["decided_by"] != "test"
    service.post(f"/api/v1/campaigns/{campaign_id}/experiment/decide", {"variant": "A"}, status=409)
    _wait_status(service, campaign_id, "sent", timeout=180)
    _each_once_with_its_variant(service, campaign_id, people, share, "Subject B")
