"""The audience a campaign would mail, counted before launch with dispatch's own rule.

Each address once across the lists (the ledger is keyed by address), minus suppressed or
erased addresses, people without consent and disqualified leads: the verdicts come from
the same function dispatch uses (``dispatch.verdicts``), so the count and the send
cannot disagree. Members are read in pages; the work is linear in the lists' sizes, so the
console asks for it on a click (never on a page view) and a campaign's count is cached for
``CACHE_SECONDS``. The addresses seen are a short-lived set in Redis, counted by a script
per page: no process holds every address.
"""

from __future__ import annotations

import json
from typing import Any

from outreach.campaigns.dispatch import verdicts
from outreach.platform.paging import existing_hash
from outreach.store import Store

PAGE = 1000
CACHE_SECONDS = 60
SEEN_SECONDS = 600


def audience_of_lists(store: Store, list_ids: list[str]) -> dict[str, int]:
    """``{"members", "addresses", "sendable", "suppressed", "no_consent", "disqualified"}``:
    members counts list entries, addresses distinct addresses; the rest split the distinct
    addresses by the first verdict dispatch would give them (the first list wins, as in
    dispatch)."""
    import secrets

    keys = store.keys
    seen = keys.audience_seen(secrets.token_hex(8))
    counts = {"members": 0, "addresses": 0, "sendable": 0, "suppressed": 0, "no_consent": 0,
              "disqualified": 0}
    try:
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
                pairs = []
                for i in range(0, len(flat), 3):
                    pairs += [flat[i], flat[i + 2] or ""]
                if pairs:
                    new, sendable, suppressed, no_consent, disqualified = store.run(
                        "audience_seen", keys=[seen], args=[SEEN_SECONDS, *pairs])
                    counts["addresses"] += int(new)
                    counts["sendable"] += int(sendable)
                    counts["suppressed"] += int(suppressed)
                    counts["no_consent"] += int(no_consent)
                    counts["disqualified"] += int(disqualified)
                if len(rows) < PAGE:
                    break
    finally:
        store.r.delete(seen)
    return counts


def campaign_audience(store: Store, campaign_id: str) -> dict[str, Any]:
    """The campaign's audience counted (``audience_of_lists``), cached ``CACHE_SECONDS``."""
    h = existing_hash(store, store.keys.campaign(campaign_id), "campaign", campaign_id)
    cache = store.keys.campaign_audience_count(campaign_id)
    cached = store.r.get(cache)
    if cached:
        return dict(json.loads(cached))
    counts = audience_of_lists(store, json.loads(h.get("list_ids") or "[]"))
    store.r.set(cache, json.dumps(counts), ex=CACHE_SECONDS)
    return counts
