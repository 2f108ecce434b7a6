"""A campaign to a segment and a list, less an exclusion list and an exclusion segment, end
to end: real Redis, a real worker process (it builds the segment and sends), a real SMTP
server (aiosmtpd). Each address the audience holds gets exactly one message."""

from __future__ import annotations

from outreach.campaigns.audience import campaign_audience

from .conftest import wait_for
from .test_campaigns import TEMPLATE, _lead_list, _wait_status


def test_a_segment_and_a_list_less_exclusions_mail_each_address_once(make_service):
    service = make_service()
    service.start_worker()
    guide = [f"g{i}@example.org" for i in range(40)]
    summit = [f"s{i}@example.org" for i in range(30)] + guide[:10]  # ten on both
    for email in guide:
        service.register(kind="white_paper", asset="guide", email=email, consent=True,
                         country="DE" if email.endswith(("1@example.org", "3@example.org")) else "FR")
    for i, email in enumerate(summit):
        service.register(kind="event", asset="summit", email=email, consent=True,
                         country="DE" if i % 2 else "FR")
    wait_for(lambda: service.processed_count() == len(guide) + len(summit), message="ingest")
    segment = service.post("/api/v1/segments", {
        "name": "Germans", "member_type": "lead",
        "rules": {"field": "country", "op": "eq", "value": "DE"}}, status=201)
    wait_for(lambda: service.get(f"/api/v1/segments/{segment['id']}")["build"]["state"] == "ready",
             message="the segment's build")
    germans = {m["email"] for m in service.all_items(f"/api/v1/segments/{segment['id']}/members")}
    assert germans and germans < set(guide) | set(summit)
    left_out = service.post("/api/v1/lists", {"name": "no", "member_type": "lead"}, status=201)
    excluded = {guide[0], summit[1]}  # one on the list only, one German in the segment
    service.post(f"/api/v1/lists/{left_out['id']}/members", {"emails": sorted(excluded)})
    g_three = service.post("/api/v1/segments", {  # a German on the guide list
        "name": "g3", "member_type": "lead",
        "rules": {"field": "email", "op": "starts_with", "value": "g3@"}}, status=201)
    wait_for(lambda: service.get(f"/api/v1/segments/{g_three['id']}")["build"]["state"] == "ready",
             message="the second segment's build")

    template = service.post("/api/v1/templates", TEMPLATE, status=201)
    campaign = service.post("/api/v1/campaigns", {
        "name": "by segment", "template_id": template["id"],
        "list_ids": [_lead_list(service, "guide")], "segment_ids": [segment["id"]],
        "exclude_list_ids": [left_out["id"]], "exclude_segment_ids": [g_three["id"]],
        "from_email": "news@mail.example.com"}, status=201)
    expected = (set(guide) | germans) - excluded - {"g3@example.org"}
    assert "g3@example.org" in germans and summit[1] in germans
    assert campaign_audience(service.store, campaign["id"])["sendable"] == len(expected)
    service.post(f"/api/v1/campaigns/{campaign['id']}/launch", status=200)
    done = _wait_status(service, campaign["id"], "sent")
    counts = service.smtp.count_by_recipient()
    assert set(counts) == expected
    assert all(n == 1 for n in counts.values())
    assert done["stats"]["sent"] == len(expected)
    # the segment a sent campaign used may go now
    response = service.client.delete(f"/api/v1/segments/{segment['id']}", headers=service.auth)
    assert response.status_code == 204
