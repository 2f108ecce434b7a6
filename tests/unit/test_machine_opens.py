"""Machine opens: the user-agent rule on real user agents, the too-soon rule and the link
scanner rule as track_event.lua applies them (counts, report, score taken back)."""

from __future__ import annotations

import re

import pytest

from outreach.campaigns import model
from outreach.campaigns.machine_opens import is_machine_agent

# user agents as these clients and proxies send them (from their documentation and from
# tracking logs published by ESPs)
HUMAN = {
    "Gmail image proxy": "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
                         "(via ggpht.com GoogleImageProxy)",
    "Yahoo Mail proxy": "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
    "Outlook for Windows": "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
    "Outlook (new)": "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
    "Apple Mail, privacy protection off": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) "
                                          "AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "iPhone Mail": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
                   "(KHTML, like Gecko) Mobile/15E148",
    "Thunderbird": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 "
                   "Thunderbird/115.9.0",
    "Chrome (webmail)": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                        "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
}
MACHINE = {
    "Apple Mail Privacy Protection": "Mozilla/5.0",
    "Microsoft Safe Links / Outlook previews (BingPreview)":
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534+ (KHTML, like Gecko) BingPreview/1.0b",
    "Google Safe Browsing": "Google-Safety",
    "Barracuda": "Barracuda Sentinel (EE)",
    "Mimecast": "Mozilla/5.0 (compatible; Mimecast URL Protect)",
    "Proofpoint URL Defense": "Mozilla/5.0 (compatible; Proofpoint URLDefense)",
    "headless Chrome (sandbox detonation)": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
                                            "(KHTML, like Gecko) HeadlessChrome/120.0.6099.71 "
                                            "Safari/537.36",
    "python-requests": "python-requests/2.31.0",
    "Go": "Go-http-client/1.1",
    "curl": "curl/8.5.0",
    "no user agent": "",
}


@pytest.mark.parametrize("agent", HUMAN.values(), ids=HUMAN.keys())
def test_mail_clients_and_on_open_proxies_are_human(agent) -> None:
    assert not is_machine_agent(agent)


@pytest.mark.parametrize("agent", MACHINE.values(), ids=MACHINE.keys())
def test_privacy_proxies_and_scanners_are_machines(agent) -> None:
    assert is_machine_agent(agent)


HTML = ('<p>Hi</p><a href="https://example.com/one">1</a>'
        '<a href="https://example.com/two">2</a>')


def _sent(env, *emails, html=HTML):
    list_id = env.leads(*emails)
    campaign_id = env.launched([list_id], env.template(html=html))
    assert env.run(campaign_id)["stats"]["sent"] == len(emails)
    tokens = {}
    for address in emails:
        body = env.messenger.to(address).get_body(("html",)).get_content()
        tokens[address] = {"open": re.search(r"/t/o/([^\"]+)\"", body).group(1),
                           "clicks": re.findall(r"/t/c/([^\"]+)\"", body)}
    return campaign_id, tokens


def _score(env, address):
    return env.lead_of(address)["score"]


def _report(env, campaign_id):
    response = env.get(f"/api/v1/campaigns/{campaign_id}/report")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_an_open_too_soon_after_delivery_is_a_machines(make_cenv, monkeypatch) -> None:
    with make_cenv(machine_open_seconds=10) as env:
        campaign_id, tokens = _sent(env, "ann@example.com", "bob@example.com")
        base = _score(env, "ann@example.com")
        sent_at = env.store.r.hget(env.store.keys.campaign_ledger(campaign_id), "ann@example.com")
        at = float(sent_at.rsplit("|", 1)[1])
        monkeypatch.setattr(model, "now", lambda: at + 3)
        env.client.get(f"/t/o/{tokens['ann@example.com']['open']}")
        stats = env.show(campaign_id)["stats"]
        assert (stats["opened"], stats["opened_machine"]) == (0, 1)
        assert _score(env, "ann@example.com") == base
        # the person opens it later: a human open
        monkeypatch.setattr(model, "now", lambda: at + 600)
        env.client.get(f"/t/o/{tokens['ann@example.com']['open']}")
        env.client.get(f"/t/o/{tokens['bob@example.com']['open']}")
        stats = env.show(campaign_id)["stats"]
        assert (stats["opened"], stats["opened_machine"]) == (2, 1)
        assert _score(env, "ann@example.com") == base + env.config.score_open
        assert _report(env, campaign_id)["rates"]["opened"] == 1.0


def test_proxies_by_user_agent(cenv) -> None:
    campaign_id, tokens = _sent(cenv, "ann@example.com", "bob@example.com", "cara@example.com")
    base = _score(cenv, "ann@example.com")
    cenv.client.get(f"/t/o/{tokens['ann@example.com']['open']}",
                    headers={"User-Agent": MACHINE["Apple Mail Privacy Protection"]})
    cenv.client.get(f"/t/o/{tokens['bob@example.com']['open']}",
                    headers={"User-Agent": HUMAN["Gmail image proxy"]})
    # a scanner's click: no click, no score, a machine open
    response = cenv.client.get(f"/t/c/{tokens['cara@example.com']['clicks'][0]}",
                               headers={"User-Agent": MACHINE["Barracuda"]})
    assert response.status_code == 302
    stats = cenv.show(campaign_id)["stats"]
    assert (stats["opened"], stats["opened_machine"], stats["clicked"]) == (1, 2, 0)
    assert _score(cenv, "ann@example.com") == base
    assert _score(cenv, "cara@example.com") == base
    assert _score(cenv, "bob@example.com") == base + cenv.config.score_open
    assert [link["clicks"] for link in _report(cenv, campaign_id)["links"]] == [0, 0]


def test_every_link_clicked_within_a_second_is_a_scanner(cenv, monkeypatch) -> None:
    campaign_id, tokens = _sent(cenv, "ann@example.com", "bob@example.com")
    base = _score(cenv, "ann@example.com")
    clock = [model.now() + 60]
    monkeypatch.setattr(model, "now", lambda: clock[0])
    ann, bob = tokens["ann@example.com"], tokens["bob@example.com"]
    # bob, a person: clicks one link, then the other a minute later
    cenv.client.get(f"/t/c/{bob['clicks'][0]}")
    clock[0] += 60
    cenv.client.get(f"/t/c/{bob['clicks'][1]}")
    # ann's gateway: the pixel, then both links within half a second
    cenv.client.get(f"/t/o/{ann['open']}")
    cenv.client.get(f"/t/c/{ann['clicks'][0]}")
    assert cenv.show(campaign_id)["stats"]["clicked"] == 2  # not yet known
    clock[0] += 0.5
    cenv.client.get(f"/t/c/{ann['clicks'][1]}")
    stats = cenv.show(campaign_id)["stats"]
    assert (stats["opened"], stats["clicked"], stats["opened_machine"]) == (1, 1, 1)
    assert _score(cenv, "ann@example.com") == base
    assert _score(cenv, "bob@example.com") == (base + 2 * cenv.config.score_click
                                               + cenv.config.score_open)
    lead = cenv.lead_of("ann@example.com")
    history = cenv.store.r.lrange(cenv.store.keys.person_events(f"l:{lead['id']}"), 0, -1)
    assert not [e for e in history if e.startswith(("open|", "click|"))]
    # the scanner again: still nothing human
    cenv.client.get(f"/t/c/{ann['clicks'][0]}")
    report = _report(cenv, campaign_id)
    assert sorted((link["clicks"], link["unique_clicks"]) for link in report["links"]) == [(1, 1),
                                                                                          (1, 1)]
    assert sum(hour["clicked"] for hour in report["timeline"]) == 2
    assert sum(hour["opened"] for hour in report["timeline"]) == 1
    assert report["domains"] == [{"domain": "example.com", "sent": 2, "bounced": 0, "opened": 1,
                                  "clicked": 1}]
    assert report["rates"]["clicked"] == 0.5
    assert report["rates"]["click_to_open"] == 1.0


def test_one_link_clicked_at_once_is_a_person(cenv, monkeypatch) -> None:
    campaign_id, tokens = _sent(cenv, "ann@example.com",
                                html='<p>Hi</p><a href="https://example.com/one">1</a>')
    cenv.client.get(f"/t/c/{tokens['ann@example.com']['clicks'][0]}")
    stats = cenv.show(campaign_id)["stats"]
    assert (stats["opened"], stats["clicked"], stats["opened_machine"]) == (1, 1, 0)
