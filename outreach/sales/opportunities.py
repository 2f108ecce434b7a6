"""Opportunities: reading, listing, the board, and every change.

An opportunity moves through stages (``qualify -> develop -> propose -> close``, with the
history of who moved it when) while its status is open; it closes as won (actual revenue,
close date) or lost (a reason from ``LOST_REASONS``, a competitor) and can be reopened.
Every change goes through ``opp_write.lua``, which also keeps the status and owner indexes,
the record's timeline and the pipeline aggregates (``pipeline``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from outreach.errors import Invalid, NotFound
from outreach.people.segments import catalog, membership
from outreach.people.segments.rules import ACCOUNT_OPEN
from outreach.platform import refs, webhooks
from outreach.platform.paging import existing_hash, load_hashes, page
from outreach.sales.owners import checked_owner
from outreach.sales.pipeline import pipeline
from outreach.store import Store
from outreach.vocabulary import LOST_REASONS, iso

OPPORTUNITY_STATUSES = ("open", "won", "lost")


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def stage_history(h: dict[str, str]) -> list[dict[str, Any]]:
    try:
        entries = json.loads(h.get("stages") or "[]")
    except ValueError:
        entries = []
    if not isinstance(entries, list):  # cjson writes an empty table as {}
        entries = []
    return [{"stage": e.get("stage"), "at": iso(e.get("at")), "by": e.get("by")} for e in entries]


def opportunity_view(opp_id: str, h: dict[str, str]) -> dict[str, Any]:
    return {
        "id": opp_id,
        "topic": h.get("topic"),
        "lead_id": h.get("lead_id") or None,
        "contact_id": h.get("contact_id") or None,
        "account_id": h.get("account_id") or None,
        "owner": h.get("owner") or None,
        "estimated_revenue": _float(h.get("estimated_revenue")),
        "estimated_close_date": h.get("estimated_close_date") or None,
        "probability": int(h["probability"]) if h.get("probability") else None,
        "status": h.get("status", "open"),
        "stage": h.get("stage") or "qualify",
        "stage_history": stage_history(h),
        "actual_revenue": _float(h.get("actual_revenue")),
        "actual_close_date": (iso(h.get("closed_at")) or "")[:10] or None,
        "lost_reason": h.get("lost_reason") or None,
        "competitor": h.get("competitor") or None,
        "created_at": iso(h.get("created_at")),
        "updated_at": iso(h.get("updated_at")),
        "closed_at": iso(h.get("closed_at")),
    }


def get_opportunity(store: Store, opp_id: str) -> dict[str, Any]:
    h = existing_hash(store, store.keys.opportunity(opp_id), "opportunity", opp_id)
    return opportunity_view(opp_id, h)


def find_opportunities(
    store: Store, *, limit: int = 50, cursor: str | None = None, status: str | None = None,
    account_id: str | None = None, owner: str | None = None, stage: str | None = None,
    newest_first: bool = False,
) -> dict[str, Any]:
    """``owner``: one owner's (their index, filtered by ``status``); else by ``status``.
    Oldest first, or ``newest_first``."""
    keys = store.keys
    if owner:
        source = keys.opportunities_by_owner(owner)
    elif stage and status == "open":
        pipeline(store)  # the stage index is built with the aggregates
        source = keys.open_opportunities_by_stage(stage)
    else:
        source = keys.opportunities_by_status(status) if status else keys.opportunities

    def load(ids: list[str]) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        for opp_id, h in zip(ids, load_hashes(store, keys.opportunity, ids), strict=True):
            keep = (h and (not account_id or h.get("account_id") == account_id)
                    and (not status or h.get("status", "open") == status)
                    and (not stage or (h.get("stage") or "qualify") == stage))
            out.append(opportunity_view(opp_id, h) if keep else None)
        return out

    return page(store, source, limit, cursor, load, newest_first)


def opportunity_board(store: Store, cursors: dict[str, str | None], limit: int = 25
                      ) -> dict[str, dict[str, Any]]:
    """The board's columns by status, newest first, each a page (``cursors[status]``) with
    the column's totals from the pipeline aggregates (every opportunity, not the page):
    ``count``, ``estimated_revenue`` and ``weighted_revenue`` (open), ``revenue`` (won)."""
    report = pipeline(store)
    totals: dict[str, dict[str, Any]] = {
        "open": {"count": sum(s["count"] for s in report["stages"]),
                 "estimated_revenue": round(sum(s["estimated_revenue"] for s in report["stages"]), 2),
                 "weighted_revenue": round(sum(s["weighted_revenue"] for s in report["stages"]), 2)},
        "won": {"count": report["won"]["count"], "revenue": report["won"]["revenue"]},
        "lost": {"count": report["lost"]["count"], "by_reason": report["lost"]["by_reason"]},
    }
    return {status: {**find_opportunities(store, status=status, limit=limit,
                                           cursor=cursors.get(status), newest_first=True),
                     **totals[status]}
            for status in OPPORTUNITY_STATUSES}


def update_opportunity(store: Store, opp_id: str, changes: dict[str, Any],
                       by: str | None = None) -> dict[str, Any]:
    """Edit; move the stage; close as won (probability 100, actual revenue: given, else the
    estimate) or lost (probability 0; ``lost_reason`` required); reopen (``status: open``).
    Webhook events: ``opportunity.stage_changed``, ``opportunity.won``, ``opportunity.lost``."""
    keys = store.keys
    errors: dict[str, list[str]] = {}
    if changes.get("contact_id") and not store.r.exists(keys.contact(changes["contact_id"])):
        errors["contact_id"] = ["No such contact."]
    if changes.get("account_id") and not store.r.exists(keys.account(changes["account_id"])):
        errors["account_id"] = ["No such account."]
    if changes.get("owner"):
        try:
            changes = {**changes, "owner": checked_owner(store, changes["owner"])}
        except Invalid as exc:
            errors.update(exc.fields or {})
    if errors:
        raise Invalid("Validation failed.", errors)
    mapping: dict[str, str] = {}
    for name in ("topic", "contact_id", "account_id", "owner", "stage", "status", "lost_reason",
                 "competitor"):
        if name in changes and changes[name] is not None:
            mapping[name] = changes[name]
    for name in ("estimated_revenue", "actual_revenue"):
        if changes.get(name) is not None:
            mapping[name] = repr(float(changes[name]))
    if changes.get("estimated_close_date") is not None:
        mapping["estimated_close_date"] = changes["estimated_close_date"].isoformat()
    if changes.get("probability") is not None:
        mapping["probability"] = str(int(changes["probability"]))
    deletes = [name for name in ("competitor",) if name in changes and changes[name] is None]
    now = _now()
    args: list[Any] = [keys.tag, opp_id, now, by or "", len(mapping)]
    for name, value in mapping.items():
        args += [name, value]
    args += [len(deletes), *deletes]
    outcome = store.run("opp_write", args=args)
    if outcome[0] == "not_found":
        raise NotFound(f"No opportunity {opp_id!r}.")
    if outcome[0] == "needs_lost_reason":
        raise Invalid("Validation failed.", {"lost_reason": [
            f"Closing as lost needs a reason: one of {', '.join(LOST_REASONS)}."]})
    _, old_stage, new_stage, old_status, new_status, _, _, old_account, new_account = outcome
    if (old_status == "open") != (new_status == "open") or old_account != new_account:
        open_opportunities_changed(store, {a for a in (old_account, new_account) if a})
    view = get_opportunity(store, opp_id)
    if new_stage != old_stage:
        webhooks.emit(store, "opportunity.stage_changed",
                      {"opportunity": view, "from": old_stage, "to": new_stage, "by": by or None})
    if new_status != old_status and new_status in ("won", "lost"):
        webhooks.emit(store, f"opportunity.{new_status}", {"opportunity": view, "by": by or None})
    return view


def open_opportunities_changed(store: Store, account_ids: set[str]) -> None:
    """Whether these accounts have an open opportunity may have changed: their contacts are
    re-evaluated for the segments that read it, and the segments that may hold leads (a lead
    matches an account by company name or email domain, and no index names those leads) are
    rebuilt in the background."""
    if not account_ids:
        return
    token = ACCOUNT_OPEN
    contacts = [refs.contact_ref(c) for account_id in sorted(account_ids)
                for c in store.r.zrange(store.keys.account_contacts(account_id), 0, -1)]
    membership.touch_many(store, contacts, [token])
    readers = membership.definitions(store, store.r.smembers(store.keys.segment_readers(token)))
    if any(d["member_type"] != "contact" for d in readers.values()):
        catalog.rebuild_readers(store, token, only=[s for s, d in readers.items()
                                                    if d["member_type"] != "contact"])


def _now() -> int:
    return int(time.time())
