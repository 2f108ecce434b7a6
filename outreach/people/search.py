"""Finding leads: search by name, address or company with filters and a time budget, the
console's leads page (a plain index page when no search is needed), leads by score, and
``fold``, the case- and accent-insensitive form searches compare."""

from __future__ import annotations

import time
import unicodedata
from typing import Any

from outreach.people.records import asset_slugs, find_leads, lead_view, load_leads
from outreach.people.scoring import decay_of
from outreach.platform.paging import (
    cursor_position,
    existing_hash,
    int_position,
    walk,
    walk_by_rank,
)
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
    at a time (``paging.walk``), until ``limit`` match, ``budget_seconds`` is spent or the
    walk's scan budget is read: a request never scans everything, and ``next_cursor``
    continues where it stopped (``scanned`` and ``total`` say how far that was). No search
    index: nothing to keep in step, no memory per lead.
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
    # the index holds scores scaled to the decay epoch: the range of current, rounded scores
    # [min, max] is the scaled range [(min - 0.5) x factor, (max + 0.5) x factor)
    decay, now = decay_of(store), time.time()
    top = "+inf" if max_score is None else f"({decay.scaled_bound(max_score + 1, now)!r}"
    bottom = "-inf" if min_score is None else repr(decay.scaled_bound(min_score, now))
    newest = sort == "newest"

    def rows_from(position: int, num: int) -> list[tuple[str, float]]:
        """``num`` leads after ``position``: a sequence number (with ``score``, an offset)."""
        if by_score:
            found = store.r.zrevrangebyscore(zset, top, bottom, start=position, num=num)
            return [(lead_id, position + i + 1) for i, lead_id in enumerate(found)]
        if newest:
            return store.r.zrevrangebyscore(zset, f"({position}" if position else "+inf", "-inf",
                                            start=0, num=num, withscores=True)
        return store.r.zrangebyscore(zset, f"({position}", "+inf", start=0, num=num,
                                     withscores=True)

    def step(position: str, size: int) -> tuple[list[tuple[str, str]], str | None, int]:
        rows = rows_from(int_position(position), size)
        pipe = store.r.pipeline(transaction=False)
        for lead_id, _ in rows:
            pipe.hmget(keys.lead(lead_id), _SEARCH_FIELDS)
            if by_score and members:
                pipe.zscore(members, lead_id)
        answers = pipe.execute()
        width = 2 if by_score and members else 1
        matches = []
        for i, (lead_id, at) in enumerate(rows):
            email, first, last, company, lead_status, first_source, score = answers[i * width]
            points = decay.rounded(float(score or 0), now)
            if (not email or (status and (lead_status or "new") != status)
                    or (source and (first_source or "web_form") != source)
                    or (min_score is not None and points < min_score)
                    or (max_score is not None and points > max_score)
                    or (width == 2 and answers[i * width + 1] is None)):
                continue
            names = (email, first, last, f"{first or ''} {last or ''}", company)
            if not needle or any(fold(value).startswith(needle) for value in names if value):
                matches.append((lead_id, str(int(at))))
        following = str(int(rows[-1][1])) if rows and len(rows) == size else None
        return matches, following, len(rows)

    def build(found: list[str]) -> list[dict[str, Any]]:
        rows = load_leads(store, found)
        slugs = asset_slugs(store, [h.get("regs") for h in rows if h])
        decay = decay_of(store)
        return [lead_view(lead_id, h, slugs, decay) for lead_id, h in zip(found, rows, strict=True)
                if h]

    total = int(store.r.zcount(zset, bottom, top) if by_score else store.r.zcard(zset))
    page = walk(step, limit=limit, cursor=cursor, size=chunk, build=build,
                deadline=time.perf_counter() + budget_seconds,
                any_left=lambda position: bool(rows_from(int_position(position), 1)))
    if page["next_cursor"] is None:
        scanned = total
    else:  # every lead before the position the cursor continues from was read
        at = int(cursor_position(page["next_cursor"]))
        scanned = (at if by_score else int(store.r.zcount(zset, f"({at}", "+inf") if newest
                                           else store.r.zcount(zset, "-inf", at)))
    return {**page, "scanned": scanned, "total": total}


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
    def load(ids: list[str]) -> list[dict[str, Any] | None]:
        rows = load_leads(store, ids)
        slugs = asset_slugs(store, [h.get("regs") for h in rows if h])
        decay = decay_of(store)
        return [lead_view(lead_id, h, slugs, decay) if h else None
                for lead_id, h in zip(ids, rows, strict=True)]

    scores = store.keys.lead_scores
    return walk_by_rank(lambda offset, count: store.r.zrevrange(scores, offset, offset + count - 1),
                        load, limit=limit, cursor=cursor, size=limit)
