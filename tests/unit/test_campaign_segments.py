"""Campaigns by segment: ``segment_ids`` beside ``list_ids`` and the exclusions, validated;
the audience counted before launch is what dispatch mails, each address once; a segment a
campaign still needs is not deleted; and the account rule ``has_open_opportunity``."""

from __future__ import annotations

from typing import Any

from outreach.campaigns.audience import audience_of, campaign_audience
from outreach.people.segments import build, catalog, reading
from outreach.sales import opportunities, qualify


def _segment(env: Any, rules: dict[str, Any], member_type: str = "lead") -> str:
    segment = catalog.create_segment(env.store, "s", member_type, rules)
    assert not build.build(env.store, segment["id"])
    return segment["id"]


def _new(env: Any, **fields: Any) -> Any:
    body = {"name": "c", "template_id": env.template(), **fields}
    return env.post("/api/v1/campaigns", json=body)


def test_a_campaign_to_a_segment_and_a_list_less_exclusions_mails_each_address_once(cenv) -> None:
    guide = cenv.leads("ann@example.com", "bob@example.com", "cy@example.com", asset="guide",
                       country="DE")
    cenv.leads("dee@example.com", "eve@example.com", asset="summit", kind="event", country="DE")
    cenv.leads("fay@example.com", asset="summit", kind="event", country="FR")
    germans = _segment(cenv, {"field": "country", "op": "eq", "value": "DE"})
    no_eve = cenv.manual_list("eve@example.com")
    no_bob = _segment(cenv, {"field": "email", "op": "starts_with", "value": "bob@"})
    created = _new(cenv, list_ids=[guide], segment_ids=[germans], exclude_list_ids=[no_eve],
                   exclude_segment_ids=[no_bob])
    assert created.status_code == 201, created.get_json()
    campaign = created.get_json()
    assert (campaign["segment_ids"], campaign["exclude_list_ids"],
            campaign["exclude_segment_ids"]) == ([germans], [no_eve], [no_bob])
    counts = campaign_audience(cenv.store, campaign["id"])
    # guide: ann bob cy; the segment: ann bob cy dee eve; less eve and bob
    assert counts["addresses"] == counts["sendable"] == 3
    assert counts == audience_of(cenv.store, [guide], [germans], [no_eve], [no_bob])
    assert cenv.post(f"/api/v1/campaigns/{campaign['id']}/launch").status_code == 200
    shown = cenv.run(campaign["id"])
    assert shown["stats"]["sent"] == counts["sendable"]
    assert sorted(cenv.messenger.recipients) == ["ann@example.com", "cy@example.com",
                                                 "dee@example.com"]


def test_the_audience_is_read_at_dispatch_and_a_qualified_lead_is_one_address(cenv) -> None:
    guide = cenv.leads("ann@example.com", "bob@example.com", asset="guide")
    everyone = _segment(cenv, {"field": "email", "op": "ends_with", "value": "example.com"},
                        member_type="any")
    lead = cenv.lead_of("ann@example.com")
    qualify.qualify(cenv.store, cenv.config, lead["id"], on_duplicate="create")
    # ann is the contact in the segment and the lead on the list: one address, one message
    campaign_id = _new(cenv, list_ids=[guide], segment_ids=[everyone]).get_json()["id"]
    cenv.leads("cy@example.com", asset="guide")  # joins the segment (and the list) before launch
    assert cenv.post(f"/api/v1/campaigns/{campaign_id}/launch").status_code == 200
    shown = cenv.run(campaign_id)
    assert sorted(cenv.messenger.recipients) == ["ann@example.com", "bob@example.com",
                                                 "cy@example.com"]
    assert shown["stats"]["sent"] == 3


def test_excluding_a_segment_of_contacts_leaves_out_the_lead_with_that_address(cenv) -> None:
    guide = cenv.leads("ann@example.com", "bob@example.com", asset="guide")
    lead = cenv.lead_of("ann@example.com")
    qualify.qualify(cenv.store, cenv.config, lead["id"], on_duplicate="create")
    contacts = _segment(cenv, {"field": "email", "op": "exists", "value": True},
                        member_type="contact")
    counts = audience_of(cenv.store, [guide], [], [], [contacts])
    campaign_id = _new(cenv, list_ids=[guide], exclude_segment_ids=[contacts]).get_json()["id"]
    assert campaign_audience(cenv.store, campaign_id) == counts
    cenv.post(f"/api/v1/campaigns/{campaign_id}/launch")
    assert cenv.run(campaign_id)["stats"]["sent"] == counts["sendable"]
    assert cenv.messenger.recipients == ["bob@example.com"]


def test_audience_fields_are_validated(cenv, check_error) -> None:
    guide = cenv.leads("ann@example.com", asset="guide")
    error = check_error(_new(cenv, list_ids=[], segment_ids=[]), 422)
    assert "list_ids" in error["fields"]
    error = check_error(_new(cenv), 422)
    assert "list_ids" in error["fields"]
    error = check_error(_new(cenv, segment_ids=["sg404"]), 422)
    assert "sg404" in error["fields"]["segment_ids"][0]
    error = check_error(_new(cenv, list_ids=[guide], exclude_list_ids=["ls404"],
                             exclude_segment_ids=["sg9"]), 422)
    assert set(error["fields"]) == {"exclude_list_ids", "exclude_segment_ids"}
    error = check_error(_new(cenv, list_ids=[guide], segment_ids="sg1"), 422)
    assert "segment_ids" in error["fields"]
    segment = _segment(cenv, {"field": "email", "op": "exists", "value": True})
    assert _new(cenv, segment_ids=[segment]).status_code == 201  # a segment alone will do


def test_a_segment_a_live_campaign_uses_cannot_be_deleted(cenv, check_error) -> None:
    guide = cenv.leads("ann@example.com", asset="guide")
    used = _segment(cenv, {"field": "email", "op": "exists", "value": True})
    left_out = _segment(cenv, {"field": "country", "op": "eq", "value": "DE"})
    campaign_id = _new(cenv, list_ids=[guide], segment_ids=[used],
                       exclude_segment_ids=[left_out]).get_json()["id"]
    for segment_id in (used, left_out):
        error = check_error(cenv.client.delete(f"/api/v1/segments/{segment_id}",
                                               headers=cenv.auth), 409)
        assert campaign_id in error["message"]
    assert cenv.post(f"/api/v1/campaigns/{campaign_id}/cancel").status_code == 200
    for segment_id in (used, left_out):
        assert cenv.client.delete(f"/api/v1/segments/{segment_id}",
                                  headers=cenv.auth).status_code == 204
    assert cenv.store.r.exists(cenv.store.keys.segment_campaigns(used)) == 0


def test_account_has_open_opportunity_for_contacts_and_matched_leads(env, check_error) -> None:
    for email, company in (("ann@acme.com", "Acme"), ("bob@acme.com", "Acme"),
                           ("cy@beta.io", "Beta")):
        env.registered(email, company=company)
    ann = env.get("/api/v1/leads?email=ann@acme.com").get_json()["items"][0]["id"]
    rules = {"account": {"has_open_opportunity": True}}
    for bad, path in (({"account": {"has_open_opportunity": "yes"}},
                       "rules.account.has_open_opportunity"),
                      ({"account": {"has_open_opportunity": True, "field": "name"}},
                       "rules.account.field")):
        error = check_error(env.post("/api/v1/segments/preview",
                                     json={"member_type": "any", "rules": bad}), 422)
        assert list(error["fields"]) == [path]
    segment = env.post("/api/v1/segments", json={"name": "open deals", "member_type": "any",
                                                  "rules": rules}).get_json()
    closed = env.post("/api/v1/segments", json={"name": "no deal", "member_type": "contact",
                                                "rules": {"account": {
                                                    "has_open_opportunity": False}}}).get_json()

    def settle() -> None:
        for segment_id in build.pending_builds(env.store):
            assert not build.build(env.store, segment_id)

    def members(segment_id: str) -> set[str]:
        body = env.get(f"/api/v1/segments/{segment_id}/members").get_json()
        return {(m["type"], m["email"]) for m in body["items"]}

    settle()
    assert members(segment["id"]) == set()
    result = qualify.qualify(env.store, env.config, ann)  # Acme: an account, an open deal
    settle()
    # ann's contact, and bob: a lead whose company matches the account
    assert members(segment["id"]) == {("contact", "ann@acme.com"), ("lead", "bob@acme.com")}
    assert members(closed["id"]) == set()
    explained = reading.explain(env.store, segment["id"], "ann@acme.com")
    assert explained["member"] and "has an open opportunity" in explained["rules"][0]["because"]
    opportunities.update_opportunity(env.store, result["opportunity_id"],
                                     {"status": "lost", "lost_reason": "no_budget"})
    settle()
    assert members(segment["id"]) == set()
    assert members(closed["id"]) == {("contact", "ann@acme.com")}
    explained = reading.explain(env.store, segment["id"], "bob@acme.com")
    assert "has no open opportunity" in explained["rules"][0]["because"]
    opportunities.update_opportunity(env.store, result["opportunity_id"], {"status": "open"})
    settle()
    assert members(segment["id"]) == {("contact", "ann@acme.com"), ("lead", "bob@acme.com")}
    assert env.store.r.hget(env.store.keys.account_open_opportunities,
                            result["account_id"]) == "1"
    explained = reading.explain(env.store, segment["id"], "cy@beta.io")
    assert not explained["member"] and explained["rules"][0]["because"] == "no account"


def test_account_name_and_domain_rules_for_leads_and_contacts(env) -> None:
    env.registered("ann@acme.com", company="Acme")
    env.registered("bob@acme.com")  # no company: matched by the email's domain
    env.registered("cy@gmail.com", company="Acme Inc.")  # free mail: by the normalised name
    env.registered("dee@gmail.com")  # free mail, no company: no account
    ann = env.get("/api/v1/leads?email=ann@acme.com").get_json()["items"][0]["id"]
    qualify.qualify(env.store, env.config, ann)
    by_name = _segment(env, {"account": {"field": "name", "op": "eq", "value": "acme"}}, "any")
    by_domain = _segment(env, {"account": {"field": "domain", "op": "eq", "value": "acme.com"}},
                         "any")
    for segment_id in (by_name, by_domain):
        shown = reading.members(env.store, segment_id)["items"]
        assert {(m["type"], m["email"]) for m in shown} == {
            ("contact", "ann@acme.com"), ("lead", "bob@acme.com"), ("lead", "cy@gmail.com")}
