"""Accounts and opportunities (the CRM side that qualification feeds)."""

from __future__ import annotations

import time
from typing import Any

from outreach.errors import Invalid
from outreach.schemas.common import iso
from outreach.services.paging import existing_hash, load_hashes, page, page_of_hashes
from outreach.store import Store

OPPORTUNITY_STATUSES = ("open", "won", "lost")


def account_view(account_id: str, h: dict[str, str]) -> dict[str, Any]:
    return {"id": account_id, "name": h.get("name"), "domain": h.get("domain"),
            "created_at": iso(h.get("created_at"))}


def get_account(store: Store, account_id: str) -> dict[str, Any]:
    h = existing_hash(store, store.keys.account(account_id), "account", account_id)
    return account_view(account_id, h)


def find_accounts(store: Store, *, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    return page_of_hashes(store, store.keys.accounts, store.keys.account, account_view, limit, cursor)


def opportunity_view(opp_id: str, h: dict[str, str]) -> dict[str, Any]:
    revenue = h.get("estimated_revenue")
    return {
        "id": opp_id,
        "topic": h.get("topic"),
        "lead_id": h.get("lead_id") or None,
        "contact_id": h.get("contact_id") or None,
        "account_id": h.get("account_id") or None,
        "estimated_revenue": float(revenue) if revenue else None,
        "estimated_close_date": h.get("estimated_close_date") or None,
        "probability": int(h["probability"]) if h.get("probability") else None,
        "status": h.get("status", "open"),
        "created_at": iso(h.get("created_at")),
        "updated_at": iso(h.get("updated_at")),
        "closed_at": iso(h.get("closed_at")),
    }


def get_opportunity(store: Store, opp_id: str) -> dict[str, Any]:
    h = existing_hash(store, store.keys.opportunity(opp_id), "opportunity", opp_id)
    return opportunity_view(opp_id, h)


def find_opportunities(
    store: Store, *, limit: int = 50, cursor: str | None = None, status: str | None = None,
    account_id: str | None = None,
) -> dict[str, Any]:
    keys = store.keys
    source = keys.opportunities_by_status(status) if status else keys.opportunities

    def load(ids: list[str]) -> list[dict[str, Any] | None]:
        out: list[dict[str, Any] | None] = []
        for opp_id, h in zip(ids, load_hashes(store, keys.opportunity, ids), strict=True):
            keep = h and (not account_id or h.get("account_id") == account_id)
            out.append(opportunity_view(opp_id, h) if keep else None)
        return out

    return page(store, source, limit, cursor, load)


def update_opportunity(store: Store, opp_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Edit; ``status`` won sets probability 100 and lost sets 0 (Dynamics' close as won/lost)."""
    keys = store.keys
    key = keys.opportunity(opp_id)
    current = existing_hash(store, key, "opportunity", opp_id)
    errors: dict[str, list[str]] = {}
    if changes.get("contact_id") and not store.r.exists(keys.contact(changes["contact_id"])):
        errors["contact_id"] = ["No such contact."]
    if changes.get("account_id") and not store.r.exists(keys.account(changes["account_id"])):
        errors["account_id"] = ["No such account."]
    if errors:
        raise Invalid("Validation failed.", errors)
    mapping: dict[str, str] = {}
    for name in ("topic", "contact_id", "account_id"):
        if name in changes and changes[name] is not None:
            mapping[name] = changes[name]
    if changes.get("estimated_revenue") is not None:
        mapping["estimated_revenue"] = repr(float(changes["estimated_revenue"]))
    if changes.get("estimated_close_date") is not None:
        mapping["estimated_close_date"] = changes["estimated_close_date"].isoformat()
    if changes.get("probability") is not None:
        mapping["probability"] = str(int(changes["probability"]))
    now = str(int(time.time()))
    old_status = current.get("status", "open")
    new_status = changes.get("status") or old_status
    if new_status == "won":
        mapping["probability"] = "100"
    elif new_status == "lost":
        mapping["probability"] = "0"
    mapping["status"] = new_status
    mapping["updated_at"] = now
    pipe = store.r.pipeline(transaction=True)
    if new_status != old_status:
        seq = store.r.zscore(keys.opportunities, opp_id) or 0
        pipe.zrem(keys.opportunities_by_status(old_status), opp_id)
        pipe.zadd(keys.opportunities_by_status(new_status), {opp_id: seq})
        if new_status in ("won", "lost"):
            mapping["closed_at"] = now
        else:
            pipe.hdel(key, "closed_at")
    pipe.hset(key, mapping=mapping)
    pipe.execute()
    return get_opportunity(store, opp_id)
