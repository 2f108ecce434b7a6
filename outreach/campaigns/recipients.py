"""A campaign's recipients: each one's outcome from the ledger, paged (all of them, those of
one status, or those who opened, clicked or unsubscribed), and the same as CSV.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from outreach.campaigns import model
from outreach.errors import Gone, NotFound
from outreach.people.exports import PAGE, stream_csv
from outreach.platform import refs
from outreach.platform.paging import int_position, walk
from outreach.store import Store
from outreach.vocabulary import iso

RECIPIENT_COLUMNS = ("email", "person", "status", "at", "error")

# what a recipient did with the message: the field track_event.lua sets once per person in
# the campaign's 'seen' hash ('o|<ref>' opened, 'C|<ref>' clicked some link, 'u|<ref>'
# unsubscribed; '<ref>' is l:<lead id> or c:<contact id>)
ENGAGEMENTS = {"opened": "o", "clicked": "C", "unsubscribed": "u"}


def recipients(
    store: Store, campaign_id: str, *, status: str | None = None, limit: int = 50,
    cursor: str | None = None, engagement: str | None = None,
) -> dict[str, Any]:
    """Per-recipient outcomes, optionally of one status, paged with HSCAN; ``engagement``
    (one of ``ENGAGEMENTS``): only the recipients who opened, clicked or unsubscribed.

    Paged by ``paging.walk`` over HSCAN steps, so a page never holds more than ``limit``
    items even when one step returns many (a small hash comes back whole)."""
    keys = store.keys
    compacted_at = store.r.hget(keys.campaign(campaign_id), "compacted_at")
    if compacted_at is None and not store.r.exists(keys.campaign(campaign_id)):
        raise NotFound(f"No campaign {campaign_id!r}.")
    if compacted_at:
        raise Gone(f"Campaign {campaign_id!r} finished over the retention period ago "
                   "(OUTREACH_CAMPAIGN_DETAIL_DAYS): its per-recipient detail was dropped; its "
                   "stats and report are kept.")
    if engagement:
        return _engaged_recipients(store, campaign_id, ENGAGEMENTS[engagement], status, limit,
                                   cursor)
    code = model.STATE_CODES.get(status) if status else None

    def step(position: str, size: int) -> tuple[list[tuple[tuple[str, str], None]], str | None, int]:
        next_scan, rows = store.r.hscan(keys.campaign_ledger(campaign_id), int_position(position),
                                        count=size)
        matches = [((email, value), None) for email, value in rows.items()
                   if _in_state(value[:1], code)]
        return matches, (str(next_scan) if int(next_scan) else None), len(rows)

    def build(page: list[tuple[str, str]]) -> list[dict[str, Any]]:
        undelivered = [email for email, value in page if value[:1] in "fu"]
        errors = dict(zip(undelivered, store.r.hmget(keys.campaign_errors(campaign_id),
                                                     undelivered), strict=True)) if undelivered else {}
        items = []
        for email, value in page:
            state, ref, at = (value.split("|") + ["", ""])[:3]
            items.append(_recipient_item(email, ref, state, at, errors.get(email)))
        return items

    return walk(step, limit=limit, cursor=cursor, build=build)


def _engaged_recipients(store: Store, campaign_id: str, mark: str, status: str | None,
                        limit: int, cursor: str | None) -> dict[str, Any]:
    """``recipients`` of those the 'seen' hash marks with ``mark``: HSCAN with MATCH over
    that hash (it holds only people who did something), each one's address from their
    record and their outcome from the ledger under it, in one round trip per scan step."""
    keys = store.keys
    code = model.STATE_CODES.get(status) if status else None
    ledger = keys.campaign_ledger(campaign_id)

    def step(position: str, size: int) -> tuple[list[tuple[dict[str, Any], None]], str | None, int]:
        next_scan, fields = store.r.hscan(keys.campaign_seen(campaign_id), int_position(position),
                                          match=f"{mark}|*", count=size)
        seen = sorted(field.split("|", 2)[1] for field in fields)
        pipe = store.r.pipeline(transaction=False)
        for ref in seen:
            pipe.hget(keys.person(ref), "email")
        emails = pipe.execute()
        outcomes = store.r.hmget(ledger, [e for e in emails if e]) if any(emails) else []
        by_email = dict(zip([e for e in emails if e], outcomes, strict=True))
        items = []
        for ref, email in zip(seen, emails, strict=True):
            value = by_email.get(email) if email else None
            state, _, at = ((value or "").split("|") + ["", ""])[:3]
            if _in_state(state, code):
                items.append(_recipient_item(email or "", ref, state, at, None))
        return [(item, None) for item in items], (str(next_scan) if int(next_scan) else None), len(fields)

    return walk(step, limit=limit, cursor=cursor)


def _in_state(state: str, code: str | None) -> bool:
    """A ledger state matches a wanted one (``sent`` includes ``d``, data sent)."""
    return not code or state == code or (code == "s" and state == "d")


def _recipient_item(email: str, ref: str, state: str, at: str, error: str | None
                    ) -> dict[str, Any]:
    """One item of ``recipients``: ``ref`` is the ledger's ``l:<id>``/``c:<id>``."""
    kind, person_id = refs.parse(ref)
    return {"email": email,
            "person": {"type": refs.TYPES.get(kind, "contact"), "id": person_id},
            "status": model.LEDGER_STATES.get(state, state) if state else None,
            "at": iso(at) if at else None,
            "error": error or None}


def recipients_csv(store: Store, campaign_id: str, status: str | None = None) -> Iterator[str]:
    """``recipients`` (optionally of one status) as CSV lines, streamed page by page."""
    recipients(store, campaign_id, status=status, limit=1)  # 404 / 422 up front

    def pages(cursor: str | None) -> dict[str, Any]:
        result = recipients(store, campaign_id, status=status, limit=PAGE, cursor=cursor)
        for item in result["items"]:
            person = item.get("person")
            if isinstance(person, dict):
                item["person"] = f"{person.get('type')}:{person.get('id')}"
        return result

    return stream_csv(RECIPIENT_COLUMNS, pages)
