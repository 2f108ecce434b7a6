"""Records that sales works on (lead, contact, account, opportunity), their owners and the
assignment rule for opportunities made by the automatic conversion pass.

A record is named by a ``ref``, ``<kind>:<id>`` (``lead:ld1``); its system events (status,
stage and owner changes, who made them) are a capped JSON list per ref (``audit``).
An owner is a console user's email (``platform/users.py``) who is an active sales or
admin user; anything else is a 422 on ``owner``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from outreach.config import Config
from outreach.errors import Invalid, NotFound
from outreach.people.segments import dirty
from outreach.platform import refs, users
from outreach.store import Store

KINDS = ("lead", "contact", "account", "opportunity")
PLURALS = {"leads": "lead", "contacts": "contact", "accounts": "account",
           "opportunities": "opportunity"}
AUDIT_KEEP = 500


def record_key(store: Store, kind: str, record_id: str) -> str:
    keys = store.keys
    return {"lead": keys.lead, "contact": keys.contact, "account": keys.account,
            "opportunity": keys.opportunity}[kind](record_id)


def require_record(store: Store, kind: str, record_id: str) -> dict[str, str]:
    h = store.r.hgetall(record_key(store, kind, record_id))
    if not h:
        raise NotFound(f"No {kind} {record_id!r}.")
    return h


def checked_owner(store: Store, email: str | None, field: str = "owner") -> str:
    """The normalised email of an active sales or admin user; ``Invalid`` on ``field``."""
    if not email or not users.can_own(store, email):
        raise Invalid("Validation failed.", {field: [
            "Not an active sales or admin user."]})
    return users.get_user(store, email)["email"]


def normal_owner_query(owner: str | None, me: str | None) -> str | None:
    """``?owner=`` as an email to look up (``me``: the caller's user)."""
    if owner == "me":
        if not me:
            raise Invalid("Validation failed.", {"owner": [
                "This API key acts for no user; create it with --user EMAIL to use 'me'."]})
        return me
    return owner.strip().lower() if owner else None


def audit(pipe: Any, store: Store, ref: str, event_type: str, by: str | None,
          at: float | None = None, **detail: Any) -> None:
    """Queue a system event for ``ref``'s timeline on ``pipe``."""
    entry = {"type": event_type, "at": int(at if at is not None else time.time()), "by": by,
             **{k: v for k, v in detail.items() if v is not None}}
    key = store.keys.record_audit(ref)
    pipe.lpush(key, json.dumps(entry))
    pipe.ltrim(key, 0, AUDIT_KEEP - 1)


def audit_entries(store: Store, ref: str, limit: int = AUDIT_KEEP) -> list[dict[str, Any]]:
    out = []
    for raw in store.r.lrange(store.keys.record_audit(ref), 0, limit - 1):
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue
    return out


def set_owner(store: Store, kind: str, record_id: str, owner: str, by: str) -> None:
    """Assign a lead, contact or account (opportunities go through ``pipeline.update``)."""
    key = record_key(store, kind, record_id)
    current = require_record(store, kind, record_id)
    owner = checked_owner(store, owner)
    if current.get("owner") == owner:
        return
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(key, mapping={"owner": owner, "updated_at": str(int(time.time()))})
    audit(pipe, store, f"{kind}:{record_id}", "owner_changed", by,
          **{"from": current.get("owner"), "to": owner})
    ref = {"lead": refs.lead_ref, "contact": refs.contact_ref}.get(kind)
    if ref:
        dirty.mark(pipe, store, [ref(record_id)])
    pipe.execute()
    if ref:
        dirty.touch(store, ref(record_id), {"field:owner", "field:updated_at"})


def assignment_pool(store: Store, config: Config) -> list[str]:
    """Who the automatic pass assigns new opportunities to, in turn: the fixed owner
    (``OUTREACH_OPPORTUNITY_OWNER``) when it is set and may own, else every active sales
    user (in creation order); empty: nobody (unassigned)."""
    if config.opportunity_owner and users.can_own(store, config.opportunity_owner):
        return [users.get_user(store, config.opportunity_owner)["email"]]
    return [u["email"] for u in users.find_users(store, role="sales", active=True)]
