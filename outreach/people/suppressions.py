"""Suppressions: the addresses never mailed again, and why.

``keys.suppressed`` maps an address to its reason as the senders check it
(``unsubscribed``, ``bounced:<campaign>``, ``complaint...``, ``manual``); the details of a
bounce (when, the campaign, the relay's reply) are in ``keys.suppression_info``. Erased
people are only a hash in ``keys.erased``: they are listed by hash, never by address.
A bounce suppression (or a manual one) can be lifted by a marketer; an unsubscribe or an
erasure only by the person's confirmed opt-in (``lift``); a complaint never.
"""

from __future__ import annotations

import json
from typing import Any

from outreach.errors import Conflict, Invalid, NotFound
from outreach.normalize import InvalidEmail, checked_email, email_hash
from outreach.platform.paging import bad_cursor, int_position, walk
from outreach.store import Store
from outreach.vocabulary import SUPPRESSION_REASONS, iso

REASONS = SUPPRESSION_REASONS
LIFTABLE = ("hard_bounce", "manual")


def suppress(store: Store, email: str, value: str, info: dict[str, Any] | None = None) -> bool:
    """The one writer of suppressions from Python (the send and bounce scripts include the
    same rule, ``store/lua/_suppression.lua``): ``value`` (``unsubscribed``,
    ``bounced[:<campaign>]``, ``complaint``, ``manual``) replaces a weaker reason and never a
    stronger one (complaint > unsubscribed = erased > manual > bounced). True when written."""
    keys = store.keys
    return bool(store.run("suppress", keys=[keys.suppressed, keys.suppression_info],
                          args=[email, value, json.dumps(info) if info else ""]))


def lift(store: Store, email: str) -> str | None:
    """The one lifter by consent: a confirmed opt-in (the double opt-in link) lifts an
    unsubscribe or an erasure of ``email`` (``_suppression.lua`` decides, as it decides
    precedence); a complaint, a bounce or a manual suppression stays. The evidence is the
    caller's (``how: confirmation`` on the person's consent trail). Returns the public reason
    lifted, or None."""
    keys = store.keys
    lifted = store.run("lift", keys=[keys.suppressed, keys.suppression_info, keys.erased],
                       args=[email, email_hash(email)])
    return reason_of(lifted) if lifted else None


def liftable_by_consent(value: str | None, erased: bool) -> bool:
    """Whether a confirmed opt-in would lift this suppression (so a confirmation may be
    mailed to the address): an unsubscribe or an erasure, nothing stronger in the way."""
    if value:
        return reason_of(value) in ("unsubscribed", "erased")
    return erased


def reason_of(value: str) -> str:
    """The public reason for a stored suppression value."""
    if value.startswith("bounce"):
        return "hard_bounce"
    if value.startswith("unsubscribe"):
        return "unsubscribed"
    if value.startswith("complain"):
        return "complaint"
    if value == "erased":
        return "erased"
    return "manual"


def _item(email: str, value: str, info: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if info:
        try:
            details = json.loads(info)
        except ValueError:
            details = {}
    campaign_id = details.get("campaign_id")
    if campaign_id is None and value.startswith("bounced:"):
        campaign_id = value.partition(":")[2]
    return {
        "email": email,
        "email_hash": email_hash(email),
        "reason": reason_of(value),
        "at": iso(details.get("at")) if details.get("at") else None,
        "campaign_id": campaign_id or None,
        "reply": details.get("reply") or None,
    }


def _erased_item(digest: str) -> dict[str, Any]:
    return {"email": None, "email_hash": digest, "reason": "erased", "at": None,
            "campaign_id": None, "reply": None}


def find_suppressions(store: Store, *, reason: str | None = None, limit: int = 50,
                      cursor: str | None = None) -> dict[str, Any]:
    """Suppressions, optionally of one reason, paged: addresses first (HSCAN), then the
    erased hashes (SSCAN); a step's position is ``a<scan cursor>`` or ``e<scan cursor>``."""
    keys = store.keys

    def step(position: str, size: int) -> tuple[list[tuple[dict[str, Any], None]], str | None, int]:
        phase, scan = position[:1], int_position(position[1:])
        if phase == "a":
            next_scan, rows = store.r.hscan(keys.suppressed, scan, count=size)
            matches = [(e, v) for e, v in rows.items() if not reason or reason_of(v) == reason]
            infos = store.r.hmget(keys.suppression_info, [e for e, _ in matches]) if matches else []
            items = [_item(e, v, i) for (e, v), i in zip(matches, infos, strict=True)]
        elif phase == "e":
            next_scan, members = store.r.sscan(keys.erased, scan, count=size)
            rows, items = members, [_erased_item(d) for d in members]
        else:
            raise bad_cursor()
        if int(next_scan):
            following: str | None = f"{phase}{int(next_scan)}"
        else:
            following = "e0" if phase == "a" and reason in (None, "erased") else None
        return [(item, None) for item in items], following, len(rows)

    return walk(step, limit=limit, cursor=cursor, start="e0" if reason == "erased" else "a0",
                size=max(limit, 100))


def _address(raw: str) -> str:
    try:
        return checked_email(raw)
    except InvalidEmail as exc:
        raise Invalid("Validation failed.", {"email": [str(exc)]}) from exc


def get_suppression(store: Store, raw_email: str) -> dict[str, Any] | None:
    """Why ``raw_email`` is suppressed, or ``None`` (for the person's page)."""
    email = _address(raw_email)
    keys = store.keys
    value, info = store.r.hget(keys.suppressed, email), store.r.hget(keys.suppression_info, email)
    if value:
        return _item(email, value, info)
    if store.r.sismember(keys.erased, email_hash(email)):
        return {**_erased_item(email_hash(email)), "email": email}
    return None


def lift_suppression(store: Store, raw_email: str) -> dict[str, Any]:
    """Lift a bounce (or manual) suppression; 409 for an unsubscribe, complaint or erasure."""
    email = _address(raw_email)
    keys = store.keys
    found = get_suppression(store, email)
    if found is None:
        raise NotFound(f"{email} is not suppressed.")
    if found["reason"] not in LIFTABLE:
        raise Conflict(f"A suppression for {found['reason']} cannot be lifted.")
    value = store.r.hget(keys.suppressed, email)
    pipe = store.r.pipeline(transaction=True)
    pipe.hdel(keys.suppressed, email)
    pipe.hdel(keys.suppression_info, email)
    pipe.delete(keys.soft_bounces(email_hash(email)))  # a fresh start: one more soft bounce
    pipe.execute()                                      # does not suppress it again at once
    if value and reason_of(value) not in LIFTABLE:  # changed meanwhile: put it back
        store.r.hsetnx(keys.suppressed, email, value)
        raise Conflict(f"A suppression for {reason_of(value)} cannot be lifted.")
    return {**found, "lifted": True}
