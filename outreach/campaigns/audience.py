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

from outreach.campaigns import sources
from outreach.campaigns.dispatch import own_audience_page, verdicts
from outreach.platform.paging import existing_hash
from outreach.store import Store

PAGE = 1000
CACHE_SECONDS = 60
SEEN_SECONDS = 600
_REASONS = {"x": "suppressed", "n": "no_consent", "d": "disqualified"}  # dispatch verdicts


def audience_of_lists(store: Store, list_ids: list[str]) -> dict[str, int]:
    """``audience_of`` lists only."""
    return audience_of(store, list_ids)


def audience_of(store: Store, list_ids: list[str], segment_ids: list[str] | tuple[str, ...] = (),
                exclude_list_ids: list[str] | tuple[str, ...] = (),
                exclude_segment_ids: list[str] | tuple[str, ...] = ()) -> dict[str, int]:
    """``{"members", "addresses", "sendable", "suppressed", "no_consent", "disqualified"}``:
    members counts list and segment entries read (an account list: its contacts), less the
    excluded people; addresses distinct addresses; the rest split the distinct addresses by
    the first verdict dispatch would give them (the first source wins, as in dispatch), the
    sources and exclusions read as dispatch reads them (``sources``)."""
    import secrets

    keys = store.keys
    seen = keys.audience_seen(secrets.token_hex(8))
    counts = {"members": 0, "addresses": 0, "sendable": 0, "suppressed": 0, "no_consent": 0,
              "disqualified": 0}
    h = {"list_ids": json.dumps(list(dict.fromkeys(list_ids))),
         "segment_ids": json.dumps(list(dict.fromkeys(segment_ids))),
         "exclude_list_ids": json.dumps(list(exclude_list_ids)),
         "exclude_segment_ids": json.dumps(list(exclude_segment_ids))}
    try:
        for source in sources.included(h):
            after, done = 0, False
            while not done:
                groups, after, done, read = sources.source_page(store, source, after, PAGE)
                flat: list[str] = []
                for member_type, members in groups:
                    flat += verdicts(store, member_type, members)
                kept = sources.drop_excluded(store, h, flat)
                counts["members"] += read - (len(flat) - len(kept)) // 3
                flat = kept
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
    if h.get("follow_up_of"):
        counts = _own_audience(store, campaign_id, h)
    else:
        list_ids, segment_ids = (json.loads(h.get(f) or "[]") for f in ("list_ids", "segment_ids"))
        exclude_lists, exclude_segments = sources.excluded(h)
        counts = audience_of(store, list_ids, segment_ids, exclude_lists, exclude_segments)
    store.r.set(cache, json.dumps(counts), ex=CACHE_SECONDS)
    return counts


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
