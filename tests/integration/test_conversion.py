"""The whole story on real parts: registrations -> campaign -> recipients click their own
tracked links -> conversion -> accounts, contacts, opportunities and list memberships."""

from __future__ import annotations

import re
import signal
from collections import Counter

from .conftest import wait_for
from .test_campaigns import TEMPLATE, _lead_list, _wait_status

PEOPLE = [
    # email, company, assets
    ("ann@acme.io", "ACME Inc.", ["guide"]),
    ("bob@acme.io", "Acme", ["guide", "summit"]),
    ("cy@globex.com", "", ["guide"]),          # no company: account from the domain
    ("dee@gmail.com", "", ["guide"]),          # free mail, no company: no account
    ("eve@initech.com", "Initech", ["summit"]),
    ("fay@initech.com", "Initech", ["guide"]),  # will not click: stays a lead
    ("gus@umbrella.com", "Umbrella", ["guide"]),  # clicks, but no consent: never mailed
]
CLICKERS = {"ann@acme.io", "bob@acme.io", "cy@globex.com", "dee@gmail.com", "eve@initech.com"}


def test_clicks_promote_leads_to_contacts_accounts_and_opportunities(make_service):
    # one open (5) + one click (15) reach the threshold of 20
    service = make_service(promotion_threshold=20, score_repeat_registration=0,
                           score_event_after_white_paper=0,
                           machine_open_seconds=0)  # opened the moment they are sent
    service.start_worker()
    for email, company, assets in PEOPLE:
        for asset in assets:
            service.register(kind="event" if asset == "summit" else "white_paper", asset=asset,
                             email=email, company=company, consent=email != "gus@umbrella.com")
    wait_for(lambda: service.processed_count() == 8, message="ingest")
    guide, summit = _lead_list(service, "guide"), _lead_list(service, "summit")
    template = service.post("/api/v1/templates", TEMPLATE, status=201)
    campaign = service.post("/api/v1/campaigns", {
        "name": "nurture", "template_id": template["id"], "list_ids": [guide, summit],
        "from_email": "news@mail.example.com"}, status=201)
    service.post(f"/api/v1/campaigns/{campaign['id']}/launch", status=200)
    _wait_status(service, campaign["id"], "sent")
    assert set(service.smtp.count_by_recipient()) == {p[0] for p in PEOPLE} - {"gus@umbrella.com"}

    for message in service.smtp.messages:
        (rcpt,) = message.rcpt_tos
        if rcpt not in CLICKERS:
            continue
        html = message.message.get_body(("html",)).get_content()
        pixel = re.search(r'src="http://outreach\.test(/t/o/[^"]+)"', html).group(1)
        link = re.search(r'href="http://outreach\.test(/t/c/[^"]+)"', html).group(1)
        for _ in range(3):  # prefetching clients: counted once
            assert service.client.get(pixel).status_code == 200
        response = service.client.get(link)
        assert response.status_code == 302
        assert response.headers["Location"] == "https://example.com/guide"

    stats = service.get(f"/api/v1/campaigns/{campaign['id']}")["stats"]
    assert stats["opened"] == stats["clicked"] == len(CLICKERS)

    result = service.post("/api/v1/conversions/run", status=200)
    assert result["promoted"] == len(CLICKERS)
    assert service.post("/api/v1/conversions/run", status=200)["promoted"] == 0

    leads = {lead["email"]: lead for lead in service.all_items("/api/v1/leads")}
    contacts = {c["email"]: c for c in service.all_items("/api/v1/contacts")}
    accounts = {a["id"]: a for a in service.all_items("/api/v1/accounts")}
    opportunities = service.all_items("/api/v1/opportunities")
    assert set(contacts) == CLICKERS
    assert {e for e, lead in leads.items() if lead["status"] == "qualified"} == CLICKERS
    assert leads["fay@initech.com"]["status"] == "new"
    assert sorted(a["name"] for a in accounts.values()) == ["ACME Inc.", "Initech", "globex.com"]
    acme = contacts["ann@acme.io"]["account_id"]
    assert contacts["bob@acme.io"]["account_id"] == acme  # "ACME Inc." == "Acme"
    assert contacts["dee@gmail.com"]["account_id"] is None
    assert len(opportunities) == len(CLICKERS)
    assert Counter(o["lead_id"] for o in opportunities) == Counter(
        leads[e]["id"] for e in CLICKERS)
    for opp in opportunities:
        assert opp["status"] == "open" and opp["contact_id"] and opp["estimated_close_date"]
        lead = service.get(f"/api/v1/leads/{opp['lead_id']}")
        assert lead["opportunity_id"] == opp["id"] and lead["contact_id"] == opp["contact_id"]

    # memberships moved from each lead list to its parallel contact list
    lists = {lst["id"]: lst for lst in service.all_items("/api/v1/lists")}
    guide_members = {m["email"] for m in service.all_items(f"/api/v1/lists/{guide}/members")}
    guide_contacts = lists[guide]["parallel_list_id"]
    summit_contacts = lists[summit]["parallel_list_id"]
    assert guide_members == {"fay@initech.com", "gus@umbrella.com"}
    assert {m["email"] for m in service.all_items(f"/api/v1/lists/{guide_contacts}/members")} == {
        "ann@acme.io", "bob@acme.io", "cy@globex.com", "dee@gmail.com"}
    assert {m["email"] for m in service.all_items(f"/api/v1/lists/{summit_contacts}/members")} == {
        "bob@acme.io", "eve@initech.com"}
    assert {m["email"] for m in service.all_items(f"/api/v1/lists/{summit}/members")} == set()

    funnel = service.get("/api/v1/funnel")
    assert funnel["leads"] == {"total": 7, "new": 2, "qualified": 5, "disqualified": 0}
    assert funnel["contacts"] == 5 and funnel["opportunities"] == {"open": 5, "won": 0, "lost": 0}

    # a later registration of a qualified person goes to the contact list
    service.register(kind="white_paper", asset="guide", email="ANN@acme.io")
    wait_for(lambda: service.processed_count() == 9, message="ingest")
    assert "ann@acme.io" not in {
        m["email"] for m in service.all_items(f"/api/v1/lists/{guide}/members")}


def _engaged_leads(service, count: int) -> None:
    """``count`` consenting leads, each registered for three assets (score 20)."""
    for i in range(count):
        for kind, asset in (("white_paper", "a"), ("white_paper", "b"), ("event", "c")):
            service.register(kind=kind, asset=asset, email=f"lead{i}@co{i % 37}.com",
                             company=f"Company {i % 37}", consent=True)


def _assert_exactly_one_conversion_each(service, count: int) -> None:
    store, keys = service.store, service.store.keys
    lead_ids = store.r.zrange(keys.leads, 0, -1)
    assert len(lead_ids) == count
    opps = store.r.zrange(keys.opportunities, 0, -1)
    assert len(opps) == count
    by_lead = store.r.hgetall(keys.opportunity_by_lead)
    assert sorted(by_lead) == sorted(lead_ids)
    assert sorted(by_lead.values()) == sorted(opps)
    assert store.r.zcard(keys.contacts) == count
    assert store.r.zcard(keys.accounts) == 37
    for lead_id in lead_ids:
        lead = store.r.hgetall(keys.lead(lead_id))
        assert lead["status"] == "qualified"
        assert store.r.hget(keys.opportunity(lead["opportunity_id"]), "lead_id") == lead_id
        assert store.r.hget(keys.contact(lead["contact_id"]), "email") == lead["email"]


def test_two_workers_converting_the_same_leads_create_exactly_one_of_each(make_service):
    service = make_service(promotion_threshold=20, score_event_after_white_paper=0)
    service.start_worker()
    _engaged_leads(service, 300)
    wait_for(lambda: service.processed_count() == 900, message="ingest")
    service.start_worker()
    celery = service.app.extensions["celery"]
    for _ in range(6):
        celery.send_task("outreach.conversion.run", queue="default")
    wait_for(lambda: service.store.r.zcard(service.store.keys.leads_by_status("qualified")) == 300,
             message="all promoted")
    _assert_exactly_one_conversion_each(service, 300)


def test_worker_killed_mid_conversion_leaves_nothing_half_converted(make_service):
    service = make_service(promotion_threshold=20, score_event_after_white_paper=0)
    worker = service.start_worker()
    _engaged_leads(service, 3000)
    wait_for(lambda: service.processed_count() == 9000, timeout=120, message="ingest")
    store, keys = service.store, service.store.keys
    service.app.extensions["celery"].send_task("outreach.conversion.run", queue="default")
    wait_for(lambda: store.r.zcard(keys.opportunities) >= 200, interval=0.005,
             message="conversion under way")
    worker.kill(signal.SIGKILL)
    done = store.r.zcard(keys.opportunities)
    assert done < 3000, "finished before the kill"
    # nothing half-converted: every qualified lead has its contact and opportunity, and
    # every opportunity belongs to a qualified lead
    qualified = store.r.zrange(keys.leads_by_status("qualified"), 0, -1)
    assert len(qualified) == done == store.r.hlen(keys.opportunity_by_lead)
    for lead_id in qualified:
        lead = store.r.hgetall(keys.lead(lead_id))
        assert store.r.exists(keys.contact(lead["contact_id"]), keys.opportunity(lead["opportunity_id"])) == 2
    service.start_worker()
    # RabbitMQ hands the killed worker's unacknowledged pass to the new worker at once (a
    # Redis broker only after its visibility timeout): this pass and that one share the rest
    assert service.post("/api/v1/conversions/run", status=200)["promoted"] <= 3000 - done
    wait_for(lambda: store.r.zcard(keys.leads_by_status("qualified")) == 3000, timeout=60,
             message="every engaged lead converted")
    _assert_exactly_one_conversion_each(service, 3000)
