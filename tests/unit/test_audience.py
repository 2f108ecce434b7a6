"""The audience count before launch agrees with what dispatch then mails."""

from __future__ import annotations

from typing import Any

from outreach.campaigns.audience import audience_of_lists, campaign_audience


def test_count_before_launch_equals_what_is_sent(cenv: Any) -> None:
    guide = cenv.leads("ann@example.com", "bob@example.com", "cy@example.com", "dee@example.com",
                       asset="guide")
    event = cenv.leads("ann@example.com", "eve@example.com", asset="summit", kind="event")
    cenv.leads("nope@example.com", asset="summit", kind="event", consent=False)
    cenv.store.r.hset(cenv.store.keys.suppressed, "cy@example.com", "unsubscribed")
    dee = cenv.get("/api/v1/leads?email=dee@example.com").get_json()["items"][0]["id"]
    assert cenv.post(f"/api/v1/leads/{dee}/disqualify", json={"reason": "no_budget"}).status_code == 200
    counts = audience_of_lists(cenv.store, [guide, event])
    assert counts == {"members": 7, "addresses": 6, "sendable": 3, "suppressed": 1,
                      "no_consent": 1, "disqualified": 1}
    campaign_id = cenv.campaign([guide, event])
    assert campaign_audience(cenv.store, campaign_id) == counts
    cenv.post(f"/api/v1/campaigns/{campaign_id}/launch")
    shown = cenv.run(campaign_id)
    assert shown["stats"]["sent"] == counts["sendable"]
    assert sorted(cenv.messenger.recipients) == ["ann@example.com", "bob@example.com", "eve@example.com"]
