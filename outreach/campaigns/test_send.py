"""Test messages of a campaign: rendered as a recipient would get them, marked as a test,
sent straight to a few addresses, and never counted: no ledger entry, no stats, no
tracking (links are not rewritten), no suppression or consent check (the marketer asks
for them by address)."""

from __future__ import annotations

from typing import Any

from outreach.campaigns.templates import preview
from outreach.config import Config
from outreach.errors import Invalid
from outreach.mail import dkim
from outreach.mail.message import build_message
from outreach.normalize import InvalidEmail, checked_email
from outreach.platform.paging import existing_hash
from outreach.store import Store

MAX_TEST_ADDRESSES = 5
TEST_HEADER = "X-Outreach-Test"


def send_test(store: Store, config: Config, messenger: Any, campaign_id: str,
              addresses: list[str]) -> dict[str, str]:
    """``{address: "sent" | "<why not>"}``. Each message has ``[TEST]`` before its subject
    and the header ``X-Outreach-Test: yes``; each is rendered for the lead or contact with
    that address, or for a sample person."""
    if not addresses or len(addresses) > MAX_TEST_ADDRESSES:
        raise Invalid("Validation failed.", {"emails": [
            f"Between 1 and {MAX_TEST_ADDRESSES} addresses."]})
    normal: list[str] = []
    for raw in addresses:
        try:
            normal.append(checked_email(raw))
        except InvalidEmail as exc:
            raise Invalid("Validation failed.", {"emails": [f"{raw!r} is not a valid address."]}) from exc
    h = existing_hash(store, store.keys.campaign(campaign_id), "campaign", campaign_id)
    from_email = h.get("from_email") or config.from_email
    base = config.base_url.rstrip("/")
    results: dict[str, str] = {}
    for address in dict.fromkeys(normal):
        shown = preview(store, config, h["template_id"], address)
        if shown["error"]:
            results[address] = f"not sent: {shown['error']}"
            continue
        msg = build_message(
            from_email=from_email, to_email=address, subject=f"[TEST] {shown['subject']}",
            text=shown["text"], html=shown["html"], unsubscribe_url=f"{base}/u/test",
            unsubscribe_mailto=f"mailto:{from_email}?subject=test", campaign_id=campaign_id,
            dkim=dkim.from_config(config), headers={TEST_HEADER: "yes"})
        try:
            messenger.send(msg, from_email, address)
        except Exception as exc:  # noqa: BLE001 - reported to the marketer, per address
            results[address] = f"not sent: {type(exc).__name__}: {exc}"
        else:
            results[address] = "sent"
    return results
