"""Campaign dispatch: the audience read page by page and queued into small batches.

The audience is the union of the campaign's lists (or, for a follow-up, its own set of
people: ``follow_ups``), each address once (the ledger is keyed by normalised address),
minus suppressed addresses, people without consent and disqualified leads. It is read page
by page and queued into small batches, at most ``send_window_batches`` ahead of the
senders, so memory stays flat whatever the audience size. No chords: completion is counted in Redis.
"""

from __future__ import annotations

import json
from typing import Any

from outreach.campaigns import follow_ups, local_time, model
from outreach.campaigns.experiments import assignment
from outreach.config import Config
from outreach.normalize import email_hash
from outreach.platform import refs
from outreach.platform.jobs import Jobs
from outreach.store import Store


def dispatch(store: Store, config: Config, jobs: Jobs, campaign_id: str) -> int:
    """Queue audience pages until ``send_window_batches`` batches are outstanding.

    Returns the number of batches created. Safe to run twice (the ledger's HSETNX
    lets each address into one batch only) and serialised by a short lock.
    """
    keys = store.keys
    lock = keys.campaign_lock(campaign_id, "dispatch")
    if not store.r.set(lock, "1", nx=True, px=30_000):
        return 0
    created = 0
    try:
        page_size = config.send_batch_size * 4
        while store.r.hlen(keys.campaign_batches(campaign_id)) < config.send_window_batches:
            h = store.r.hgetall(keys.campaign(campaign_id))
            if h.get("status") != "sending" or h.get("dispatched"):
                break
            new_batches = _queue_next_page(store, config, campaign_id, h, page_size)
            if new_batches is None:
                break
            for batch_no in new_batches:
                jobs.send_batch(campaign_id, int(batch_no))
            created += len(new_batches)
        created += local_time.release_due(store, config, jobs, campaign_id)
    finally:
        store.r.delete(lock)
    return created


def _queue_next_page(
    store: Store, config: Config, campaign_id: str, h: dict[str, str], page_size: int
) -> list[int] | None:
    keys = store.keys
    list_ids = json.loads(h.get("list_ids") or "[]")
    index = int(h.get("d_list") or 0)
    after = int(h.get("d_after") or 0)
    candidates: list[str] = []
    exhausted = False
    if h.get("follow_up_of"):
        candidates, after, exhausted = own_audience_page(store, campaign_id, h, after, page_size)
        index = 1 if exhausted else 0
    elif index >= len(list_ids):
        exhausted = True
    else:
        list_id = list_ids[index]
        member_type = store.r.hget(keys.list(list_id), "member_type") or "lead"
        rows = store.r.zrangebyscore(keys.list_members(list_id), f"({after}", "+inf",
                                     start=0, num=page_size, withscores=True)
        if rows:
            after = int(rows[-1][1])
            members = [member for member, _ in rows]
            if member_type == "account":  # an account list mails its accounts' contacts
                from outreach.people.affiliation import contacts_of_accounts

                members, member_type = contacts_of_accounts(store, list_id, members), "contact"
            candidates = verdicts(store, member_type, members)
        if len(rows) < page_size:
            index, after = index + 1, 0
            exhausted = index >= len(list_ids)
    if h.get("experiment"):  # test phase: the test share only; variants recorded
        candidates = assignment.page(store, campaign_id, h, candidates)
    candidates = local_time.hold(store, config, campaign_id, h, candidates)
    args: list[Any] = [keys.campaign_batch(campaign_id, ""), config.send_batch_size,
                       str(int(model.now())), index, after, "1" if exhausted else "0",
                       len(candidates) // 3, *candidates]
    result = store.run("queue_page", keys=[keys.campaign(campaign_id),
                                           keys.campaign_ledger(campaign_id),
                                           keys.campaign_batches(campaign_id)], args=args)
    if result == -1:
        return None
    return [int(n) for n in result]


def own_audience_page(store: Store, campaign_id: str, h: dict[str, str], after: int,
                       page_size: int) -> tuple[list[str], int, bool]:
    """The next page of a campaign's own audience (a follow-up's, ``follow_ups``): its
    verdict triples, the new cursor and whether the audience is exhausted."""
    rows = store.r.zrangebyscore(store.keys.campaign_audience(campaign_id), f"({after}", "+inf",
                                 start=0, num=page_size, withscores=True)
    if rows:
        after = int(rows[-1][1])
    by_kind: dict[str, list[str]] = {refs.LEAD: [], refs.CONTACT: []}
    for ref, _ in rows:
        kind, person_id = refs.parse(ref)
        by_kind.setdefault(kind, []).append(person_id)
    triples = (verdicts(store, "lead", by_kind[refs.LEAD])
               + verdicts(store, "contact", by_kind[refs.CONTACT]))
    return follow_ups.still_to_follow(store, h, triples), after, len(rows) < page_size


def verdicts(store: Store, member_type: str, person_ids: list[str]) -> list[str]:
    """Flat (email, ref, verdict) triples: '1' send, 'x' suppressed, 'n' no consent,
    'd' disqualified lead, '-' gone. ``audience`` counts with it too, so the count before
    launch and the send agree."""
    keys = store.keys
    pipe = store.r.pipeline(transaction=False)
    for person_id in person_ids:
        key = keys.lead(person_id) if member_type == "lead" else keys.contact(person_id)
        pipe.hmget(key, "email", "consent", "status")
    people = pipe.execute()
    emails = [p[0] for p in people if p[0]]
    suppressed = dict(zip(emails, store.r.hmget(keys.suppressed, emails), strict=True)) if emails else {}
    if emails:
        erased = store.r.smismember(keys.erased, [email_hash(e) for e in emails])
        suppressed.update({e: "erased" for e, gone in zip(emails, erased, strict=True) if gone})
    prefix = (refs.LEAD if member_type == "lead" else refs.CONTACT) + ":"
    out: list[str] = []
    for person_id, (email, consent, status) in zip(person_ids, people, strict=True):
        if not email:
            continue
        if suppressed.get(email):
            verdict = "x"
        elif consent != "1":
            verdict = "n"
        elif status == "disqualified":
            verdict = "d"
        else:
            verdict = "1"
        out += [email, prefix + person_id, verdict]
    return out
