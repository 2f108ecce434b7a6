"""Finding leads: search by name, address or company with filters and a time budget, the
console's leads page (a plain index page when no search is needed), leads by score, and
``fold``, the case- and accent-insensitive form searches compare."""

from __future__ import annotations

import time
import unicodedata
from typing import Any

from outreach.people.records import asset_slugs, find_leads, lead_view, load_leads
from outreach.platform.paging import decode_cursor, encode_cursor, existing_hash
from outreach.store import Store


def fold(text: str | None) -> str:
    """Case- and accent-insensitive form for search: NFKD, combining marks dropped, casefolded."""
    if not text or text.isascii():  # the common case, ~20x cheaper than normalising
        return (text or "").lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


_SEARCH_FIELDS = ("email", "first_name", "last_name", "company", "status", "source", "score")


LEAD_SORTS = ("oldest", "newest", "score")


def search_leads(
    store: Store, q: str = "", *, status: str | None = None, source: str | None = None,
    min_score: int | None = None, max_score: int | None = None, list_id: str | None = None,
    limit: int = 25, cursor: str | None = None, chunk: int = 500, budget_seconds: float = 0.02,
    sort: str = "oldest",
) -> dict[str, Any]:
    """Leads whose email, first name, last name, full name or company starts with ``q``
    (case- and accent-insensitive; empty: every lead) and that pass the filters (status,
    first ``source``, score range, membership of the lead list ``list_id``), in the order
    ``sort``: ``oldest`` or ``newest`` first (creation, or list order with ``list_id``), or
    ``score``, highest first (leads with a score only: the score index is walked, within
    the score range).

    A full address is one index lookup. Otherwise leads are read in that order, ``chunk``
    at a time, until ``limit`` match or ``budget_seconds`` is spent: a request never scans
    everything, and ``next_cursor`` continues where it stopped (``scanned`` and ``total``
    say how far that was). No search index: nothing to keep in step, no memory per lead.
    """
    keys = store.keys
    needle = fold(q.strip())
    if "@" in needle and not (source or min_score is not None or max_score is not None):
        exact = find_leads(store, email=q.strip(), status=status, list_id=list_id)
        if exact["items"]:
            return {**exact, "scanned": 0, "total": 0}
    by_score = sort == "score"
    members = None
    if list_id:
        meta = existing_hash(store, keys.list(list_id), "list", list_id)
        if meta.get("member_type") != "lead":
            return {"items": [], "next_cursor": None, "scanned": 0, "total": 0}
        members = keys.list_members(list_id)
    if by_score:
        zset = keys.lead_scores
    elif members:
        zset = members
    elif status in ("qualified", "disqualified"):
        zset = keys.leads_by_status(status)
    else:
        zset = keys.leads
    after = decode_cursor(cursor)  # a sequence number; with ``score``, an offset
    top = "+inf" if max_score is None else max_score
    bottom = "-inf" if min_score is None else min_score
    newest = sort == "newest"

    def rows_from(position: int, num: int) -> list[tuple[str, float]]:
        if by_score:
            found = store.r.zrevrangebyscore(zset, top, bottom, start=position, num=num)
            return [(lead_id, position + i + 1) for i, lead_id in enumerate(found)]
        if newest:
            return store.r.zrevrangebyscore(zset, f"({position}" if position else "+inf", "-inf",
                                            start=0, num=num, withscores=True)
        return store.r.zrangebyscore(zset, f"({position}", "+inf", start=0, num=num,
                                     withscores=True)

    if by_score:
        total = store.r.zcount(zset, bottom, top)
        scanned = after
    else:
        total = store.r.zcard(zset)
        scanned = (int(store.r.zcount(zset, f"({after}", "+inf") if newest
                       else store.r.zcount(zset, "-inf", after)) if after else 0)
    deadline = time.perf_counter() + budget_seconds
    found: list[str] = []
    while len(found) < limit:
        rows = rows_from(after, chunk)
        if not rows:
            after = 0
            break
        pipe = store.r.pipeline(transaction=False)
        for lead_id, _ in rows:
            pipe.hmget(keys.lead(lead_id), _SEARCH_FIELDS)
            if by_score and members:
                pipe.zscore(members, lead_id)
        answers = pipe.execute()
        step = 2 if by_score and members else 1
        for i, (lead_id, position) in enumerate(rows):
            email, first, last, company, lead_status, first_source, score = answers[i * step]
            after = int(position)
            scanned += 1
            points = int(score or 0)
            if (not email or (status and (lead_status or "new") != status)
                    or (source and (first_source or "web_form") != source)
                    or (min_score is not None and points < min_score)
                    or (max_score is not None and points > max_score)
                    or (step == 2 and answers[i * step + 1] is None)):
                continue
            names = (email, first, last, f"{first or ''} {last or ''}", company)
            if not needle or any(fold(value).startswith(needle) for value in names if value):
                found.append(lead_id)
                if len(found) == limit:
                    break
        if len(rows) < chunk and len(found) < limit:
            after = 0
            break
        if time.perf_counter() > deadline:
            break
    more = bool(after) and bool(rows_from(after, 1))
    rows = load_leads(store, found)
    slugs = asset_slugs(store, [h.get("regs") for h in rows if h])
    items = [lead_view(lead_id, h, slugs) for lead_id, h in zip(found, rows, strict=True) if h]
    return {"items": items, "next_cursor": encode_cursor(after) if more else None,
            "scanned": scanned, "total": total}


def browse_leads(
    store: Store, q: str = "", *, status: str | None = None, source: str | None = None,
    min_score: int | None = None, max_score: int | None = None, list_id: str | None = None,
    sort: str = "oldest", limit: int = 25, cursor: str | None = None,
) -> dict[str, Any]:
    """The console's leads page: a plain page of an index when that serves the request
    (no search or filter but the status; ``searched`` false), else ``search_leads`` within
    its time budget (``searched`` true: ``scanned`` and ``total`` say how far it got)."""
    if not (q or source or list_id or min_score is not None or max_score is not None):
        if sort == "score" and not status:
            return {**leads_by_score(store, limit=limit, cursor=cursor), "searched": False}
        if sort != "score":
            return {**find_leads(store, limit=limit, cursor=cursor, status=status,
                                 newest_first=sort == "newest"), "searched": False}
    return {**search_leads(store, q, status=status, source=source, min_score=min_score,
                           max_score=max_score, list_id=list_id, limit=limit, cursor=cursor,
                           sort=sort), "searched": True}


def leads_by_score(store: Store, *, limit: int = 25, cursor: str | None = None) -> dict[str, Any]:
    """Leads with an engagement score, highest first (ties newest first); the cursor is an
    offset (``?cursor=`` of the previous page)."""
    offset = decode_cursor(cursor)
    ids = store.r.zrevrange(store.keys.lead_scores, offset, offset + limit)
    rows = load_leads(store, ids[:limit])
    slugs = asset_slugs(store, [h.get("regs") for h in rows if h])
    items = [lead_view(lead_id, h, slugs) for lead_id, h in zip(ids[:limit], rows, strict=True) if h]
    return {"items": items, "next_cursor": encode_cursor(offset + limit) if len(ids) > limit else None}
