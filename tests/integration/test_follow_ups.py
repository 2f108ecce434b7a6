"""A follow-up to non-openers on real parts: a worker, Redis and an SMTP sink. Only the
people who were sent the campaign and did not open it (a human open; a privacy proxy's
does not count) get the follow-up, once, with its own subject."""

from __future__ import annotations

import re

from .conftest import wait_for
from .test_campaigns import TEMPLATE, _lead_list, _wait_status

PEOPLE = ("ann@acme.io", "bob@acme.io", "cy@globex.com", "dee@initech.com")


def test_a_follow_up_reaches_the_non_openers_once(make_service) -> None:
    service = make_service(machine_open_seconds=0)  # opened the moment they are sent
    service.start_worker()
    for email in PEOPLE:
        service.register(kind="white_paper", asset="guide", email=email, consent=True)
    wait_for(lambda: service.processed_count() == len(PEOPLE), message="ingest")
    template = service.post("/api/v1/templates", TEMPLATE, status=201)
    campaign = service.post("/api/v1/campaigns", {
        "name": "guide", "template_id": template["id"], "list_ids": [_lead_list(service, "guide")],
        "from_email": "news@mail.example.com"}, status=201)
    service.post(f"/api/v1/campaigns/{campaign['id']}/launch", status=200)
    _wait_status(service, campaign["id"], "sent")

    for message in service.smtp.messages:
        (rcpt,) = message.rcpt_tos
        html = message.message.get_body(("html",)).get_content()
        pixel = re.search(r'src="http://outreach\.test(/t/o/[^"]+)"', html).group(1)
        if rcpt == "ann@acme.io":  # a person
            assert service.client.get(pixel).status_code == 200
        elif rcpt == "bob@acme.io":  # Apple Mail Privacy Protection: not an open
            assert service.client.get(pixel, headers={"User-Agent": "Mozilla/5.0"}).status_code == 200
    stats = service.get(f"/api/v1/campaigns/{campaign['id']}")["stats"]
    assert (stats["opened"], stats["opened_machine"]) == (1, 1)

    follow_up = service.post(f"/api/v1/campaigns/{campaign['id']}/follow-up", {
        "to": "non_openers", "name": "guide again", "subject": "In case you missed it"},
        status=201)
    before = len(service.smtp.messages)
    service.post(f"/api/v1/campaigns/{follow_up['id']}/launch", status=200)
    _wait_status(service, follow_up["id"], "sent")
    later = service.smtp.messages[before:]
    assert sorted(r for m in later for r in m.rcpt_tos) == ["bob@acme.io", "cy@globex.com",
                                                            "dee@initech.com"]
    assert {m.message["Subject"] for m in later} == {"In case you missed it"}
    report = service.get(f"/api/v1/campaigns/{campaign['id']}/report")
    assert report["rates"]["opened"] == 0.25
    assert {d["domain"]: d["sent"] for d in report["domains"]} == {
        "acme.io": 2, "globex.com": 1, "initech.com": 1}
