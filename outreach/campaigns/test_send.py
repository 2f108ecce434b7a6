"""Test messages of a campaign: rendered as a recipient would get them, marked as a test,
sent straight to a few addresses, and never counted: no ledger entry, no stats, no
tracking (links are not rewritten). They still respect suppression and consent: a
suppressed or erased address, or a known lead or contact without consent, gets none (an
address that is no one's, a colleague's, may get them); and a campaign sends at most
``TEST_SENDS_PER_HOUR`` test messages an hour, so the button cannot mail anyone in bulk."""

from __future__ import annotations

import time
from typing import Any

from outreach.campaigns.templates import preview
from outreach.config import Config
from outreach.errors import Invalid, RateLimited
from outreach.mail import dkim
from outreach.mail.message import build_message
from outreach.normalize import InvalidEmail, checked_email
from outreach.people.consent import standing
from outreach.platform.paging import existing_hash
from outreach.store import Store

MAX_TEST_ADDRESSES = 5
TEST_SENDS_PER_HOUR = 30  # per campaign
TEST_HEADER = "X-Outreach-Test"


def _why_not(store: Store, address: str) -> str | None:
    """Why ``address`` may not get a test message (``None``: it may)."""
    found = standing(store, address)
    if found.may_be_mailed:
        return None
    if found.blocked:
        return "not sent: the address is suppressed"
    return "not sent: this person has not given consent"


def _within_rate(store: Store, campaign_id: str, count: int) -> bool:
    key = store.keys.campaign_test_sends(campaign_id, int(time.time() // 3600))
    pipe = store.r.pipeline(transaction=True)
    pipe.incrby(key, count)
    pipe.expire(key, 3600)
    used = pipe.execute()[0]
    return used <= TEST_SENDS_PER_HOUR


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
    allowed = []
    for address in dict.fromkeys(normal):
        why = _why_not(store, address)
        if why:
            results[address] = why
        else:
            allowed.append(address)
    if allowed and not _within_rate(store, campaign_id, len(allowed)):
        raise RateLimited(f"At most {TEST_SENDS_PER_HOUR} test messages an hour per campaign; "
                          "try again later.", 3600 - int(time.time()) % 3600)
    for address in allowed:
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
