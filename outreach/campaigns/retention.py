"""Retention: anything that grows with time has a bound.

A finished campaign (sent or cancelled) older than ``OUTREACH_CAMPAIGN_DETAIL_DAYS`` (from
its end) is compacted: it keeps its hash (stats, counters, report figures, experiment
results) and drops its per-recipient detail: the ledger, the seen (distinct opens/clicks)
hash, the errors, the stored links, the rate buckets, the claims and the other per-address
working keys; it leaves its recipients' per-address campaigns index (erasure's).
``GET .../recipients`` then answers 410. The hidden campaigns (a journey's send steps, not
in the listing) are in reach too: the journey puts each in ``campaigns_hidden`` and marks
it finished (``sent``) once nobody can reach its step any more (the journey stopped and
everyone in it ended). Run by beat daily and by ``outreach retention run [--dry-run]``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from outreach.config import Config
from outreach.store import Store

FINISHED = ("sent", "cancelled")
PAGE = 500


def detail_keys(store: Store, campaign_id: str) -> list[str]:
    """The per-recipient and working keys a compacted campaign drops."""
    keys = store.keys
    return [
        keys.campaign_ledger(campaign_id), keys.campaign_seen(campaign_id),
        keys.campaign_errors(campaign_id), keys.campaign_links(campaign_id),
        keys.campaign_bucket(campaign_id), keys.campaign_sent_per_10s(campaign_id),
        keys.campaign_claims(campaign_id), keys.campaign_soft(campaign_id),
        keys.campaign_deferred(campaign_id), keys.campaign_streak(campaign_id),
        keys.campaign_batches(campaign_id), keys.campaign_batch_runs(campaign_id),
        keys.campaign_sending(campaign_id), keys.campaign_waiting_local(campaign_id),
        keys.campaign_variants(campaign_id),
    ]


def _campaigns(store: Store) -> Iterator[list[str]]:
    """The listed campaigns, then the hidden ones, a page at a time."""
    for index in (store.keys.campaigns, store.keys.campaigns_hidden):
        start = 0
        while True:
            ids = store.r.zrange(index, start, start + PAGE - 1)
            if not ids:
                break
            yield ids
            start += len(ids)


def due(store: Store, config: Config, now: float | None = None) -> list[dict[str, Any]]:
    """The finished campaigns whose detail is past retention and not yet dropped."""
    cutoff = (now if now is not None else time.time()) - config.campaign_detail_days * 86_400
    out = []
    for ids in _campaigns(store):
        pipe = store.r.pipeline(transaction=False)
        for campaign_id in ids:
            pipe.hmget(store.keys.campaign(campaign_id), "status", "finished_at", "compacted_at",
                       "name")
        for campaign_id, (status, finished, compacted, name) in zip(ids, pipe.execute(),
                                                                    strict=True):
            if status in FINISHED and finished and not compacted and int(finished) <= cutoff:
                out.append({"id": campaign_id, "name": name or ""})
    return out


def run_retention(store: Store, config: Config, *, dry_run: bool = False,
                  now: float | None = None) -> list[dict[str, Any]]:
    """Compact every campaign ``due``; returns them (id, name). ``dry_run``: only say which.
    Builds the per-address campaigns index first when it was never built."""
    found = due(store, config, now)
    if dry_run:
        return found
    build_address_index(store)
    stamp = str(int(now if now is not None else time.time()))
    for campaign in found:
        campaign_id = campaign["id"]
        # out of its recipients' campaign index first (a run that dies here is done again:
        # SREM is idempotent, and a finished campaign queues no one new)
        for emails in ledger_addresses(store, campaign_id):
            _index(store, campaign_id, "remove", emails)
        pipe = store.r.pipeline(transaction=True)
        pipe.delete(*detail_keys(store, campaign_id))
        pipe.hset(store.keys.campaign(campaign_id), "compacted_at", stamp)
        pipe.execute()
    return found


def ledger_addresses(store: Store, campaign_id: str) -> Iterator[list[str]]:
    """The addresses a campaign's ledger holds, a page at a time (an erased recipient's entry,
    ``erased:<hash>``, names no address)."""
    cursor = 0
    while True:
        cursor, page = store.r.hscan(store.keys.campaign_ledger(campaign_id), cursor, count=PAGE)
        emails = [email for email in page if not email.startswith("erased:")]
        if emails:
            yield emails
        if cursor == 0:
            return


def _index(store: Store, campaign_id: str, how: str, emails: list[str]) -> None:
    """Add the campaign to (``how`` ``add``) or drop it from (``remove``) the per-address
    campaigns index of ``emails``, in one script (``campaign_index.lua``: a dispatch beside
    it never loses an id)."""
    store.run("campaign_index", keys=[store.keys.address_campaigns],
              args=[campaign_id, how, *emails])


def build_address_index(store: Store) -> int:
    """Put the ledgers written before the per-address campaigns index existed into it, once
    (``queue_page.lua`` keeps it since): erasure reads the index alone after this. Returns
    how many campaigns were read (0 once built). Run with retention."""
    keys = store.keys
    if store.r.exists(keys.address_campaigns_built):
        return 0
    read = 0
    for ids in _campaigns(store):
        for campaign_id in ids:
            read += 1
            for emails in ledger_addresses(store, campaign_id):
                _index(store, campaign_id, "add", emails)
    store.r.set(keys.address_campaigns_built, "1")
    return read


def compacted(store: Store, campaign_id: str) -> bool:
    return bool(store.r.hget(store.keys.campaign(campaign_id), "compacted_at"))
