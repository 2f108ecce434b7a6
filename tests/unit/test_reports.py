"""The campaign report (counters kept by the scripts that record events) and follow-ups to
the recipients who did not open or click."""

from __future__ import annotations

import re

import pytest

from outreach.campaigns import model
from outreach.campaigns.bounces.processor import apply_report
from outreach.mail.reports import Report
from outreach.vocabulary import iso

HTML = ('<p>Hi</p><a href="https://example.com/one">1</a>'
        '<a href="https://example.com/two">2</a>')
PEOPLE = ("ann@a.example", "bob@a.example", "cat@a.example", "dan@b.example", "eve@c.example")


@pytest.fixture
def sent(cenv, monkeypatch):
    """A campaign sent to PEOPLE; returns (env, campaign id, tokens by address, clock)."""
    list_id = cenv.leads(*PEOPLE)
    campaign_id = cenv.launched([list_id], cenv.template(html=HTML))
    assert cenv.run(campaign_id)["stats"]["sent"] == len(PEOPLE)
    tokens = {}
    for address in PEOPLE:
        body = cenv.messenger.to(address).get_body(("html",)).get_content()
        tokens[address] = {"open": re.search(r"/t/o/([^\"]+)\"", body).group(1),
                           "clicks": re.findall(r"/t/c/([^\"]+)\"", body)}
    clock = [3600 * (int(model.now()) // 3600 + 1)]  # the start of the next hour
    monkeypatch.setattr(model, "now", lambda: clock[0])
    return cenv, campaign_id, tokens, clock


def _report(env, campaign_id):
    response = env.get(f"/api/v1/campaigns/{campaign_id}/report")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_report_counts_rates_links_hours_and_domains(sent) -> None:
    env, campaign_id, tokens, clock = sent
    hour = model.now()
    env.client.get(f"/t/o/{tokens['ann@a.example']['open']}")
    env.client.get(f"/t/o/{tokens['ann@a.example']['open']}")  # one person, one open
    env.client.get(f"/t/c/{tokens['bob@a.example']['clicks'][0]}")  # a click is an open too
    clock[0] += 3600
    env.client.get(f"/t/c/{tokens['bob@a.example']['clicks'][0]}")
    env.client.get(f"/t/o/{tokens['dan@b.example']['open']}")
    ref = "l:" + env.lead_of("eve@c.example")["id"]
    assert apply_report(env.store, env.config, Report(
        kind="hard", recipient="eve@c.example", status="5.1.1", campaign_id=campaign_id,
        ref=ref, report_id="r1")) == "suppressed"
    unsubscribe = env.messenger.to("cat@a.example")["List-Unsubscribe"]
    path = re.search(r"<https://[^/]+(/u/[^>]+)>", unsubscribe).group(1)
    assert env.client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200

    report = _report(env, campaign_id)
    assert report["rates"] == {"delivered": 0.8, "opened": 0.6, "clicked": 0.2,
                               "click_to_open": 0.3333, "unsubscribed": 0.2, "bounced": 0.2,
                               "complained": 0.0}
    assert report["links"] == [
        {"url": "https://example.com/one", "clicks": 2, "unique_clicks": 1},
        {"url": "https://example.com/two", "clicks": 0, "unique_clicks": 0}]
    assert report["timeline"] == [
        {"hour": iso(hour),
         "opened": 2, "clicked": 1},
        {"hour": iso(hour + 3600),
         "opened": 1, "clicked": 1}]
    assert report["domains"] == [
        {"domain": "a.example", "sent": 3, "bounced": 0, "opened": 2, "clicked": 1},
        {"domain": "b.example", "sent": 1, "bounced": 0, "opened": 1, "clicked": 0},
        {"domain": "c.example", "sent": 1, "bounced": 1, "opened": 0, "clicked": 0}]
    assert report["variants"] == []


def test_a_report_of_nothing_sent_and_of_no_campaign(cenv, check_error) -> None:
    campaign_id = cenv.campaign([cenv.leads("ann@example.com")])
    report = _report(cenv, campaign_id)
    assert report == {"rates": dict.fromkeys(("delivered", "opened", "clicked", "click_to_open",
                                              "unsubscribed", "bounced", "complained"), 0.0),
                      "links": [], "timeline": [], "domains": [], "variants": []}
    check_error(cenv.get("/api/v1/campaigns/cp404/report"), 404)


def _follow_up(env, campaign_id, **body):
    response = env.post(f"/api/v1/campaigns/{campaign_id}/follow-up",
                        json={"to": "non_openers", "name": "again", **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_follow_up_to_non_openers_mails_each_once_and_only_the_mailable(sent) -> None:
    env, campaign_id, tokens, clock = sent
    env.client.get(f"/t/o/{tokens['ann@a.example']['open']}")
    env.client.get(f"/t/c/{tokens['bob@a.example']['clicks'][0]}")
    ref = "l:" + env.lead_of("eve@c.example")["id"]
    apply_report(env.store, env.config, Report(kind="hard", recipient="eve@c.example",
                                               status="5.1.1", campaign_id=campaign_id, ref=ref,
                                               report_id="r2"))
    follow_up = _follow_up(env, campaign_id, subject="Did you miss it?")
    assert follow_up["status"] == "draft" and follow_up["list_ids"] == []
    assert follow_up["template_id"] != env.show(campaign_id)["template_id"]
    # cat unsubscribes before the follow-up goes; dan opens the original meanwhile
    unsubscribe = env.messenger.to("cat@a.example")["List-Unsubscribe"]
    path = re.search(r"<https://[^/]+(/u/[^>]+)>", unsubscribe).group(1)
    env.client.post(path, data={"List-Unsubscribe": "One-Click"})
    env.client.get(f"/t/o/{tokens['dan@b.example']['open']}")
    audience = env.get(f"/api/v1/campaigns/{follow_up['id']}").get_json()
    assert audience["status"] == "draft"
    before = len(env.messenger.messages)
    assert env.post(f"/api/v1/campaigns/{follow_up['id']}/launch").status_code == 200
    shown = env.run(follow_up["id"])
    assert shown["status"] == "sent"
    assert shown["stats"]["sent"] == 0 and shown["stats"]["suppressed"] == 1  # cat
    # an opener of the original, a bounce and an unsubscribe: nobody else was left
    assert env.messenger.messages[before:] == []


def test_a_follow_up_to_non_clickers_with_its_subject(sent) -> None:
    env, campaign_id, tokens, clock = sent
    env.client.get(f"/t/o/{tokens['ann@a.example']['open']}")  # opened, did not click
    env.client.get(f"/t/c/{tokens['bob@a.example']['clicks'][0]}")
    follow_up = _follow_up(env, campaign_id, to="non_clickers", subject="One more look")
    env.post(f"/api/v1/campaigns/{follow_up['id']}/launch")
    shown = env.run(follow_up["id"])
    assert shown["stats"]["sent"] == 4
    later = [(m["Subject"], rcpt) for m, _, rcpt in env.messenger.messages[len(PEOPLE):]]
    assert sorted(rcpt for _, rcpt in later) == sorted(set(PEOPLE) - {"bob@a.example"})
    assert {subject for subject, _ in later} == {"One more look"}
    # launching twice, or dispatching again, mails nobody twice
    env.dispatch(follow_up["id"])
    env.pump()
    assert len(env.messenger.messages) == len(PEOPLE) + 4


def test_a_follow_up_needs_a_sent_campaign_and_a_valid_body(cenv, check_error) -> None:
    list_id = cenv.leads("ann@example.com")
    draft = cenv.campaign([list_id])
    check_error(cenv.post(f"/api/v1/campaigns/{draft}/follow-up",
                          json={"to": "non_openers", "name": "x"}), 409)
    check_error(cenv.post("/api/v1/campaigns/cp404/follow-up",
                          json={"to": "non_openers", "name": "x"}), 404)
    sent = cenv.launched([list_id])
    cenv.run(sent)
    for body in ({"to": "everyone", "name": "x"}, {"to": "non_openers"},
                 {"to": "non_openers", "name": "x", "template_id": "tp404"}):
        check_error(cenv.post(f"/api/v1/campaigns/{sent}/follow-up", json=body), 422)
