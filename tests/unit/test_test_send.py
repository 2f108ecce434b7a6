"""Test messages: rendered for the person, marked, never counted or recorded."""

from __future__ import annotations

from typing import Any

import pytest

from outreach.campaigns.test_send import send_test
from outreach.errors import Invalid


def test_a_test_is_marked_rendered_for_the_person_and_not_counted(cenv: Any) -> None:
    list_id = cenv.leads("ann@example.com", first_name="Ann")
    campaign_id = cenv.campaign([list_id])
    results = send_test(cenv.store, cenv.config, cenv.messenger, campaign_id,
                        ["ANN@example.com", "boss@elsewhere.example"])
    assert results == {"ann@example.com": "sent", "boss@elsewhere.example": "sent"}
    to_ann = cenv.messenger.to("ann@example.com")
    assert to_ann["Subject"] == "[TEST] Hello Ann" and to_ann["X-Outreach-Test"] == "yes"
    assert cenv.messenger.to("boss@elsewhere.example")["Subject"] == "[TEST] Hello Alex"
    assert "/t/c/" not in to_ann.get_body(preferencelist=("html",)).get_content()  # no tracking
    shown = cenv.show(campaign_id)
    assert shown["status"] == "draft" and not any(shown["stats"].values())
    assert cenv.ledger(campaign_id) == {}


def test_bad_addresses_and_too_many(cenv: Any) -> None:
    campaign_id = cenv.campaign([cenv.leads("ann@example.com")])
    for bad in ([], ["not an address"], [f"a{i}@example.com" for i in range(6)]):
        with pytest.raises(Invalid) as exc:
            send_test(cenv.store, cenv.config, cenv.messenger, campaign_id, bad)
        assert "emails" in exc.value.fields
    assert cenv.messenger.messages == []


def test_a_delivery_error_is_reported_per_address(cenv: Any) -> None:
    campaign_id = cenv.campaign([cenv.leads("ann@example.com")])
    cenv.messenger.fail["ann@example.com"] = OSError("relay down")
    results = send_test(cenv.store, cenv.config, cenv.messenger, campaign_id,
                        ["ann@example.com", "bob@example.com"])
    assert results["ann@example.com"].startswith("not sent: OSError") and results["bob@example.com"] == "sent"
