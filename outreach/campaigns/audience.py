"""The audience a campaign would mail, counted before launch with dispatch's own rule.

Each address once across the lists (the ledger is keyed by address), minus suppressed or
erased addresses, people without consent and disqualified leads: the verdicts come from
the same function dispatch uses (``dispatch.verdicts``), so the count and the send
cannot disagree. Members are read in pages; the work is linear in the lists' sizes, so the
console asks for it on demand rather than on every page view.
"""

from __future__ import annotations

import json
from typing import Any

from outreach.campaigns.dispatch import own_audience_page, verdicts
from outreach.platform.paging import existing_hash
from outreach.store import Store

PAGE = 1000
_REASONS = {"x": "suppressed", "n": "no_consent", "d": "disqualified"}


def audience_of_lists(store: Store, list_ids: list[str]) -> dict[str, int]:
    """``{"members", "addresses", "sendable", "suppressed", "no_consent", "disqualified"}``:
    members counts list entries, addresses distinct addresses; the rest split the distinct
    addresses by the first verdict dispatch would give them (the first list wins, as in
    dispatch)."""
    keys = store.keys
    seen: set[str] = set()
    counts = {"members": 0, "addresses": 0, "sendable": 0, "suppressed": 0, "no_consent": 0,
              "disqualified": 0}
    for list_id in dict.fromkeys(list_ids):
        member_type = store.r.hget(keys.list(list_id), "member_type") or "lead"
        after = 0
        while True:
            rows = store.r.zrangebyscore(keys.list_members(list_id), f"({after}", "+inf",
                                         start=0, num=PAGE, withscores=True)
            if not rows:
                break
            after = int(rows[-1][1])
            counts["members"] += len(rows)
            flat = verdicts(store, member_type, [member for member, _ in rows])
            for i in range(0, len(flat), 3):
                email, verdict = flat[i], flat[i + 2]
                if email in seen:
                    continue
                seen.add(email)
                counts["addresses"] += 1
                counts[_REASONS.get(verdict, "sendable")] += 1
            if len(rows) < PAGE:
                break
    return counts


def campaign_audience(store: Store, campaign_id: str) -> dict[str, Any]:
    h = existing_hash(store, store.keys.campaign(campaign_id), "campaign", campaign_id)
    if h.get("follow_up_of"):
        return _own_audience(store, campaign_id, h)
    return audience_of_lists(store, json.loads(h.get("list_ids") or "[]"))


def _own_audience(store: Store, campaign_id: str, h: dict[str, str]) -> dict[str, int]:
    """``audience_of_lists`` for a follow-up's own audience, paged as dispatch pages it
    (people who engaged with the original since count as neither sendable nor refused)."""
    counts = {"members": 0, "addresses": 0, "sendable": 0, "suppressed": 0, "no_consent": 0,
              "disqualified": 0}
    after, exhausted = 0, False
    while not exhausted:
        flat, after, exhausted = own_audience_page(store, campaign_id, h, after, PAGE)
        for i in range(0, len(flat), 3):
            counts["members"] += 1
            verdict = flat[i + 2]
            if verdict == "-":
                continue
            counts["addresses"] += 1
            counts[_REASONS.get(verdict, "sendable")] += 1
    return counts
