"""Where a campaign's audience comes from: its lists, then its segments (``segment_ids``),
minus the people on its exclusion lists and segments (``exclude_list_ids``,
``exclude_segment_ids``) at the moment they are read.

Dispatch (``dispatch``) and the count before launch (``audience``) page the same sources
the same way and drop the same excluded people, so the count and the send agree. Sources
are numbered in one sequence (lists first, then segments): dispatch keeps that number and a
cursor in the campaign (``d_list``, ``d_after``). A list is paged by its member sequence; a
segment by the position in its member bitmaps (``people.segments.members``: leads, then
contacts, in creation order), which reaches every member present for the whole dispatch
once (a repeat would be harmless: the ledger takes each address once).

A person is excluded when their address belongs to a member of an exclusion list or
segment: the lead or the contact with that address (a qualified lead and its contact are
one address).

The segments a campaign names are indexed (``Keys.segment_campaigns``) so that a segment a
draft, scheduled or sending campaign includes or excludes is not deleted under it
(``people.segments.catalog`` reads the index; people cannot import campaigns).
"""

from __future__ import annotations

import json
from typing import Any

from outreach.people.segments import members
from outreach.platform import refs
from outreach.store import Store


def included(h: dict[str, str]) -> list[tuple[str, str]]:
    """``[("list", id), ..., ("segment", id), ...]`` of a campaign's hash."""
    return ([("list", i) for i in json.loads(h.get("list_ids") or "[]")]
            + [("segment", i) for i in json.loads(h.get("segment_ids") or "[]")])


def excluded(h: dict[str, str]) -> tuple[list[str], list[str]]:
    return (json.loads(h.get("exclude_list_ids") or "[]"),
            json.loads(h.get("exclude_segment_ids") or "[]"))


def source_page(store: Store, source: tuple[str, str], after: int, size: int
                ) -> tuple[list[tuple[str, list[str]]], int, bool, int]:
    """The next page of one source: ``([(member_type, person ids)], new cursor, done,
    entries read)`` (an account list's entries are accounts; its people their contacts)."""
    keys = store.keys
    kind, source_id = source
    if kind == "segment":
        hits, following = members.scan(store, source_id, after, size)
        by_kind: dict[str, list[str]] = {}
        for ref, _ in hits:
            kind_code, person_id = refs.parse(ref)
            by_kind.setdefault(refs.TYPES[kind_code], []).append(person_id)
        return list(by_kind.items()), following or 0, following is None, len(hits)
    member_type = store.r.hget(keys.list(source_id), "member_type") or "lead"
    found = store.r.zrangebyscore(keys.list_members(source_id), f"({after}", "+inf",
                                  start=0, num=size, withscores=True)
    people = [member for member, _ in found]
    new_after = int(found[-1][1]) if found else after
    if member_type == "account" and people:  # an account list mails its accounts' contacts
        from outreach.people.affiliation import contacts_of_accounts

        people, member_type = contacts_of_accounts(store, source_id, people), "contact"
    return ([(member_type, people)] if people else [], new_after, len(found) < size,
            len(found))


def drop_excluded(store: Store, h: dict[str, str], triples: list[str]) -> list[str]:
    """``triples`` (email, ref, verdict) without the people excluded now."""
    list_ids, segment_ids = excluded(h)
    if not triples or not (list_ids or segment_ids):
        return triples
    emails = triples[0::3]
    out_emails = excluded_addresses(store, list_ids, segment_ids, emails)
    kept: list[str] = []
    for i in range(0, len(triples), 3):
        if triples[i] not in out_emails:
            kept += triples[i:i + 3]
    return kept


def excluded_addresses(store: Store, list_ids: list[str], segment_ids: list[str],
                       emails: list[str]) -> set[str]:
    """Which of ``emails`` belong to a member of one of the lists or segments (two pipelined
    round trips per page)."""
    keys = store.keys
    if not emails or not (list_ids or segment_ids):
        return set()
    pipe = store.r.pipeline(transaction=False)
    pipe.hmget(keys.lead_by_email, emails)
    pipe.hmget(keys.contact_by_email, emails)
    for list_id in list_ids:
        pipe.hget(keys.list(list_id), "member_type")
    leads, contacts, *types = pipe.execute()
    accounts = {}
    if any(t == "account" for t in types):
        pipe = store.r.pipeline(transaction=False)
        for contact_id in contacts:
            pipe.hget(keys.contact(contact_id or "-"), "account_id")
        accounts = dict(zip(emails, pipe.execute(), strict=True))
    checks: list[str] = []
    pipe = store.r.pipeline(transaction=False)
    for email, lead_id, contact_id in zip(emails, leads, contacts, strict=True):
        for list_id, member_type in zip(list_ids, types, strict=True):
            person = {"lead": lead_id, "contact": contact_id,
                      "account": accounts.get(email)}.get(member_type or "lead")
            if person:
                pipe.zscore(keys.list_members(list_id), person)
                checks.append(email)
        for segment_id in segment_ids:
            for ref in (lead_id and refs.lead_ref(lead_id), contact_id and refs.contact_ref(contact_id)):
                if ref and members.queue_check(store, pipe, segment_id, ref):
                    checks.append(email)
    # a list's reply: the member's sequence (from 1) or None; a segment's: its bit, 1 or 0
    return {email for email, reply in zip(checks, pipe.execute(), strict=True) if reply}


def index_segments(pipe: Any, store: Store, campaign_id: str, record: dict[str, str]) -> None:
    """In the campaign's save transaction: the segments it names know it (``catalog``
    refuses to delete them while it is a draft, scheduled or sending)."""
    for segment_id in {*json.loads(record.get("segment_ids") or "[]"),
                       *json.loads(record.get("exclude_segment_ids") or "[]")}:
        pipe.sadd(store.keys.segment_campaigns(segment_id), campaign_id)
