"""Activities (notes, calls, meetings, emails logged by hand, tasks) and record timelines.

An activity is a hash ``act:<id>`` with the refs of every record it belongs to (``refs``:
``lead:ld1`` first; qualification adds the new contact and opportunity, see
``qualify.lua``), and is in each record's activity set (``acts:<ref>``, scored by ``at``).
A task also has a due time, an owner, ``status`` open|done and is in the task indexes
(``sales/tasks.py``). Only its author (``by``), its owner (tasks) or an admin user
may edit or delete an activity.

A timeline merges a record's activities with the system's events: its audit trail
(status, stage and owner changes, qualification, with who made them), registrations and
tracking events (opens, clicks, unsubscribes) of the person behind it, carried over from
the lead when it was qualified.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from outreach.errors import Forbidden, Invalid, NotFound
from outreach.people.records import asset_slugs, person_events, registrations_of
from outreach.platform import users
from outreach.platform.paging import load_hashes, walk_by_rank
from outreach.sales.owners import audit_entries, checked_owner, require_record
from outreach.sales.proposals import accepted_ids
from outreach.store import Store
from outreach.vocabulary import ACTIVITY_TYPES, iso

TYPES = ACTIVITY_TYPES


def _epoch(value: datetime | float | int | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


def _from_iso(text: str | None) -> float:
    if not text:
        return 0.0
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _num(value: str | None) -> str:
    return repr(round(float(value), 3)) if value not in (None, "") else ""


def activity_view(activity_id: str, h: dict[str, str]) -> dict[str, Any]:
    refs = [r for r in (h.get("refs") or "").split(",") if r]
    kind, _, record_id = (refs[0] if refs else ":").partition(":")
    view: dict[str, Any] = {
        "id": activity_id, "type": h.get("type"), "subject": h.get("subject"),
        "body": h.get("body") or None, "at": iso(h.get("at")), "by": h.get("by") or None,
        "record": {"kind": kind, "id": record_id},
        "records": [{"kind": r.partition(":")[0], "id": r.partition(":")[2]} for r in refs],
        "created_at": iso(h.get("created_at")), "updated_at": iso(h.get("updated_at")),
    }
    if h.get("type") == "task":
        view.update(due_at=iso(h.get("due_at")), owner=h.get("owner") or None,
                    status=h.get("status", "open"), done_at=iso(h.get("done_at")),
                    done_by=h.get("done_by") or None)
    return view


def get_activity(store: Store, activity_id: str) -> dict[str, Any]:
    h = store.r.hgetall(store.keys.activity(activity_id))
    if not h:
        raise NotFound(f"No activity {activity_id!r}.")
    return activity_view(activity_id, h)


def _index_task(pipe: Any, store: Store, task_id: str, h: dict[str, str]) -> None:
    """Put an open task in the open-task indexes and the reminder schedule."""
    keys = store.keys
    due = float(h["due_at"])
    pipe.zadd(keys.tasks_open(), {task_id: due})
    pipe.zadd(keys.tasks_open(h["owner"]), {task_id: due})
    pipe.zadd(keys.task_reminders, {task_id: due})


def _unindex_task(pipe: Any, store: Store, task_id: str, h: dict[str, str]) -> None:
    keys = store.keys
    pipe.zrem(keys.tasks_open(), task_id)
    pipe.zrem(keys.task_reminders, task_id)
    pipe.zrem(keys.tasks_done(), task_id)
    if h.get("owner"):
        pipe.zrem(keys.tasks_open(h["owner"]), task_id)
        pipe.zrem(keys.tasks_done(h["owner"]), task_id)


def create_activity(store: Store, kind: str, record_id: str, data: dict[str, Any], by: str,
                    me: str | None) -> dict[str, Any]:
    """Log an activity on a record; a task's owner defaults to the record's, else ``me``."""
    record = require_record(store, kind, record_id)
    now = time.time()
    at = _epoch(data.get("at")) or now
    h: dict[str, str] = {"type": data["type"], "subject": data["subject"],
                         "body": data.get("body") or "", "at": _num(at), "by": by,
                         "refs": f"{kind}:{record_id}", "created_at": str(int(now)),
                         "updated_at": str(int(now))}
    if data["type"] == "task":
        if data.get("due_at") is None:
            raise Invalid("Validation failed.", {"due_at": ["A task needs a due time."]})
        h["due_at"] = _num(_epoch(data["due_at"]))
        h["owner"] = checked_owner(store, data.get("owner") or record.get("owner") or me)
        h["status"] = "open"
    activity_id, _ = store.next_id("activity", "av")
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(store.keys.activity(activity_id), mapping=h)
    pipe.zadd(store.keys.record_activities(f"{kind}:{record_id}"), {activity_id: at})
    if data["type"] == "task":
        _index_task(pipe, store, activity_id, h)
    pipe.execute()
    return activity_view(activity_id, h)


def record_activities(store: Store, kind: str, record_id: str, *, limit: int = 50,
                      type_: str | None = None, cursor: str | None = None) -> dict[str, Any]:
    """A record's activities, newest first, a page at a time (read in chunks)."""
    require_record(store, kind, record_id)
    source = store.keys.record_activities(f"{kind}:{record_id}")

    def load(ids: list[str]) -> list[dict[str, Any] | None]:
        rows = load_hashes(store, store.keys.activity, ids)
        return [activity_view(i, h) if h and (type_ is None or h.get("type") == type_) else None
                for i, h in zip(ids, rows, strict=True)]

    return walk_by_rank(lambda offset, count: store.r.zrevrange(source, offset, offset + count - 1),
                        load, limit=limit, cursor=cursor, size=max(limit, 50))


def _may_change(store: Store, h: dict[str, str], by: str, me: str | None) -> None:
    if h.get("by") == by or (me and h.get("owner") == me):
        return
    if me:
        try:
            if users.get_user(store, me)["role"] == "admin":
                return
        except NotFound:
            pass
    raise Forbidden("Only its author, its owner or an admin may change this activity.")


def update_activity(store: Store, activity_id: str, changes: dict[str, Any], by: str,
                    me: str | None) -> dict[str, Any]:
    keys = store.keys
    key = keys.activity(activity_id)
    h = store.r.hgetall(key)
    if not h:
        raise NotFound(f"No activity {activity_id!r}.")
    _may_change(store, h, by, me)
    is_task = h.get("type") == "task"
    new_type = changes.get("type")
    if new_type and (new_type == "task") != is_task:
        raise Invalid("Validation failed.", {"type": [
            "A task stays a task and an activity cannot become one; log a new one."]})
    mapping: dict[str, str] = {}
    for name in ("type", "subject"):
        if changes.get(name):
            mapping[name] = changes[name]
    if "body" in changes:
        mapping["body"] = changes["body"] or ""
    if changes.get("at") is not None:
        mapping["at"] = _num(_epoch(changes["at"]))
    if is_task:
        if changes.get("due_at") is not None:
            mapping["due_at"] = _num(_epoch(changes["due_at"]))
        if changes.get("owner"):
            mapping["owner"] = checked_owner(store, changes["owner"])
    mapping["updated_at"] = str(int(time.time()))
    new = {**h, **mapping}
    refs = [r for r in h.get("refs", "").split(",") if r]
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(key, mapping=mapping)
    if "at" in mapping:
        for ref in refs:
            pipe.zadd(keys.record_activities(ref), {activity_id: float(mapping["at"])})
    if is_task and new.get("status", "open") == "open":
        _unindex_task(pipe, store, activity_id, h)
        _index_task(pipe, store, activity_id, new)
    elif is_task and "owner" in mapping:
        _unindex_task(pipe, store, activity_id, h)
        pipe.zadd(keys.tasks_done(), {activity_id: float(new["done_at"])})
        pipe.zadd(keys.tasks_done(new["owner"]), {activity_id: float(new["done_at"])})
    pipe.execute()
    return activity_view(activity_id, new)


def delete_activity(store: Store, activity_id: str, by: str, me: str | None) -> None:
    keys = store.keys
    key = keys.activity(activity_id)
    h = store.r.hgetall(key)
    if not h:
        raise NotFound(f"No activity {activity_id!r}.")
    _may_change(store, h, by, me)
    pipe = store.r.pipeline(transaction=True)
    for ref in (r for r in h.get("refs", "").split(",") if r):
        pipe.zrem(keys.record_activities(ref), activity_id)
    if h.get("type") == "task":
        _unindex_task(pipe, store, activity_id, h)
    pipe.delete(key)
    pipe.execute()


# ------------------------------------------------------------------ timeline

_AUDIT_SUBJECTS = {
    "qualified": "Qualified",
    "disqualified": "Disqualified",
    "reactivated": "Reactivated",
    "created": "Created",
    "owner_changed": "Owner changed",
    "stage_changed": "Stage changed",
    "status_changed": "Status changed",
    "proposed_update": "Proposed update (a registration without an API key)",
    "proposed_update_accepted": "Proposed update accepted",
}


def _audit_item(entry: dict[str, Any], ref: str) -> dict[str, Any]:
    kind = entry.get("type", "event")
    subject = _AUDIT_SUBJECTS.get(kind, kind)
    if "from" in entry or "to" in entry:
        subject += f": {entry.get('from') or '-'} -> {entry.get('to') or '-'}"
    item = {**entry, "at": iso(entry.get("at")), "kind": "event", "type": kind,
            "subject": subject, "by": entry.get("by"), "record": ref}
    return item


def timeline(store: Store, kind: str, record_id: str, limit: int = 100) -> dict[str, Any]:
    """Newest first: activities and system events of the record and of the lead it came
    from (registrations, opens, clicks, unsubscribes, status/stage/owner changes)."""
    keys = store.keys
    h = require_record(store, kind, record_id)
    ref = f"{kind}:{record_id}"
    rows: list[tuple[float, dict[str, Any]]] = []

    ids = store.r.zrevrange(keys.record_activities(ref), 0, limit - 1)
    for activity_id, ah in zip(ids, load_hashes(store, keys.activity, ids), strict=True):
        if ah:
            item = activity_view(activity_id, ah)
            rows.append((float(ah.get("at") or 0), {**item, "kind": "activity"}))

    audit_refs = [ref]
    person_refs: list[tuple[str, str]] = []  # (events ref, email)
    regs_from: dict[str, str] | None = None
    if kind == "lead":
        person_refs.append((f"l:{record_id}", h.get("email", "")))
        regs_from = h
    elif kind == "contact":
        person_refs.append((f"c:{record_id}", h.get("email", "")))
        regs_from = h
        if h.get("lead_id"):
            audit_refs.append(f"lead:{h['lead_id']}")
            person_refs.append((f"l:{h['lead_id']}", h.get("email", "")))
    elif kind == "opportunity":
        lead = store.r.hgetall(keys.lead(h["lead_id"])) if h.get("lead_id") else {}
        contact = store.r.hgetall(keys.contact(h["contact_id"])) if h.get("contact_id") else {}
        if lead:
            audit_refs.append(f"lead:{h['lead_id']}")
            person_refs.append((f"l:{h['lead_id']}", lead.get("email", "")))
            regs_from = lead
        if contact:
            person_refs.append((f"c:{h['contact_id']}", contact.get("email", "")))
            regs_from = regs_from or contact
    for audit_ref in audit_refs:
        entries = audit_entries(store, audit_ref)
        accepted = accepted_ids(entries)
        for entry in entries[:limit]:
            item = _audit_item(entry, audit_ref)
            if item["type"] == "proposed_update":
                item["accepted"] = str(entry.get("id")) in accepted
            rows.append((float(entry.get("at") or 0), item))
    if regs_from and regs_from.get("regs"):
        email = regs_from.get("email")
        for reg in registrations_of(regs_from["regs"], asset_slugs(store, [regs_from["regs"]])):
            at = _from_iso(reg["at"])
            rows.append((at, {"at": reg["at"], "kind": "event", "type": "registration",
                              "subject": f"{reg['kind']}: {reg['asset']}", "by": email,
                              "asset": reg["asset"], "registration_kind": reg["kind"]}))
    seen: set[tuple[str, str | None, str | None]] = set()
    for events_ref, email in person_refs:
        for event in person_events(store, events_ref, limit):
            mark = (event["type"], event["campaign_id"], event["at"])
            if mark in seen:
                continue
            seen.add(mark)
            at = _from_iso(event["at"])
            rows.append((at, {"at": event["at"], "kind": "event", "type": event["type"],
                              "subject": f"{event['type']} (campaign {event['campaign_id']})",
                              "by": email, "campaign_id": event["campaign_id"],
                              "detail": event["detail"]}))
    emails = sorted({email for _, email in person_refs if email})
    rows += _messages(store, emails)
    for events_ref, _ in person_refs:
        rows += _journey_rows(store, events_ref, limit)
    rows.sort(key=lambda row: row[0], reverse=True)
    return {"items": [item for _, item in rows[:limit]]}


def _journey_rows(store: Store, ref: str, limit: int) -> list[tuple[float, dict[str, Any]]]:
    """The person's journeys (entered, each step, branch taken, exit), read from the keys
    the journeys keep per (person, journey): journeys sit above sales."""
    keys = store.keys
    journey_ids = list(store.r.hkeys(keys.person_journeys(ref)))[:20]
    pipe = store.r.pipeline(transaction=False)
    for journey_id in journey_ids:
        pipe.hget(keys.journey(journey_id), "name")
        pipe.lrange(keys.journey_history(journey_id, ref), -limit, -1)
    replies = pipe.execute()
    rows: list[tuple[float, dict[str, Any]]] = []
    for i, journey_id in enumerate(journey_ids):
        name = replies[2 * i] or journey_id
        for raw in replies[2 * i + 1]:
            entry = json.loads(raw)
            at = float(entry.get("at") or 0)
            step = entry.get("step")
            outcome = entry.get("outcome") or ""
            subject = f"journey {name}: " + (f"{step} {outcome}" if step else outcome)
            rows.append((at, {"at": iso(at), "kind": "event", "type": "journey",
                              "subject": subject, "journey_id": journey_id, "step": step,
                              "outcome": outcome}))
    return rows


_MESSAGE_STATES = {"S": "message", "f": "message_failed", "u": "message_unknown"}


def _messages(store: Store, emails: list[str], campaigns: int = 500
              ) -> list[tuple[float, dict[str, Any]]]:
    """Campaign messages to these addresses, from the ledgers of the latest ``campaigns``
    campaigns (one round trip): sent, failed, or of unknown outcome."""
    keys = store.keys
    if not emails:
        return []
    campaign_ids = store.r.zrevrange(keys.campaigns, 0, campaigns - 1)
    if not campaign_ids:
        return []
    pipe = store.r.pipeline(transaction=False)
    for campaign_id in campaign_ids:
        pipe.hmget(keys.campaign_ledger(campaign_id), emails)
        pipe.hget(keys.campaign(campaign_id), "name")
    replies = pipe.execute()
    out: list[tuple[float, dict[str, Any]]] = []
    for n, campaign_id in enumerate(campaign_ids):
        values, name = replies[2 * n], replies[2 * n + 1]
        for email, value in zip(emails, values, strict=True):
            parts = (value or "").split("|")
            kind = _MESSAGE_STATES.get(parts[0]) if parts else None
            if not kind or len(parts) < 3 or not parts[-1].replace(".", "", 1).isdigit():
                continue
            at = float(parts[-1])
            out.append((at, {"at": iso(at), "kind": "event", "type": kind,
                             "subject": f"Campaign {name or campaign_id}", "by": "system",
                             "campaign_id": campaign_id, "to": email}))
    return out


def erase_person_activities(store: Store, lead_id: str | None, contact_id: str | None) -> int:
    """Right to erasure: every activity logged on the person's lead or contact goes, from
    every record it was carried to (the opportunity stays, without them), and so do the
    lead's and contact's audit trails. How many activities went."""
    keys = store.keys
    refs = [ref for ref in (f"lead:{lead_id}" if lead_id else "",
                            f"contact:{contact_id}" if contact_id else "") if ref]
    erased = 0
    for ref in refs:
        for activity_id in store.r.zrange(keys.record_activities(ref), 0, -1):
            h = store.r.hgetall(keys.activity(activity_id))
            pipe = store.r.pipeline(transaction=True)
            for other in (r for r in (h.get("refs") or "").split(",") if r):
                pipe.zrem(keys.record_activities(other), activity_id)
            if h.get("type") == "task":
                _unindex_task(pipe, store, activity_id, h)
            pipe.delete(keys.activity(activity_id))
            pipe.execute()
            erased += 1 if h else 0
        store.r.delete(keys.record_activities(ref), keys.record_audit(ref))
    return erased
