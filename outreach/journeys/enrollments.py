"""Letting people into a journey and reading their enrollments.

An enrollment is one small hash per (journey, person): the version entered, the step, a
sequence number of the step visits (the ledger's compare-and-set), status, entered_at,
next_at, and a claim while a step acts; its history is a short list beside it. The due
index of the journey (``journey_due``) has the person when the step is due.
"""

from __future__ import annotations

import json
import time
from typing import Any

from outreach.config import Config
from outreach.errors import Invalid, NotFound
from outreach.journeys import catalog, definition, timing
from outreach.normalize import InvalidEmail, checked_email
from outreach.platform import refs, webhooks
from outreach.platform.paging import walk_by_rank
from outreach.store import Store
from outreach.zones import zone_of

HISTORY_KEPT = 100
ENROLL_MAX = 1000
WEBHOOK_EVENTS = ("journey.entered", "journey.completed", "journey.exited")


def webhook_subject(store: Store, event: str, data: dict[str, Any]) -> str:
    """The outbox entry of ``event`` that a journey script appends in its own transaction
    ('' when no webhook wants the event: nothing is appended)."""
    if not webhooks.subscribers(store, event):
        return ""
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def _render(_store: Store, subjects: list[str]) -> list[dict[str, Any] | None]:
    return [json.loads(subject) for subject in subjects]


def flush_webhooks(store: Store, events: tuple[str, ...] = WEBHOOK_EVENTS) -> int:
    """Turn the journey events the scripts put in their outboxes into deliveries, exactly
    once (right after the script; the beat's tick flushes what a dead worker left)."""
    return sum(webhooks.flush_outbox(store, event, _render) for event in events)


def history_entry(step: str | None, at: float, outcome: str, **extra: Any) -> str:
    return json.dumps({"step": step, "at": round(at, 3), "outcome": outcome, **extra})


def arrival(config: Config, step: dict[str, Any], person: dict[str, str], now: float) -> float:
    """When a step the person just reached is due: a wait's end (``until``: the next such
    local time in the person's zone), else now."""
    if step["type"] == "wait":
        if "duration" in step:
            return now + float(definition.duration(step["duration"]) or 0)
        hour, minute = definition.clock(step["until"]) or (0, 0)
        zone = zone_of(person.get("timezone"), config.default_timezone)
        return timing.next_local(now, hour, minute, zone)
    return now


def person_ref_of(store: Store, email: str) -> str | None:
    """The person an address names: the contact when there is one, else the lead."""
    keys = store.keys
    contact_id = store.r.hget(keys.contact_by_email, email)
    if contact_id:
        return refs.contact_ref(contact_id)
    lead_id = store.r.hget(keys.lead_by_email, email)
    return refs.lead_ref(lead_id) if lead_id else None


def enter(store: Store, config: Config, journey_id: str, ref: str, how: str,
          now: float | None = None) -> str:
    """Let ``ref`` in (the newest version): ``entered``, or why not (``active``,
    ``already``, ``inactive``, ``unknown_person``)."""
    keys = store.keys
    now = time.time() if now is None else now
    h = store.r.hmget(keys.journey(journey_id), "status", "version")
    if h[0] not in ("active", "paused"):
        return "inactive"
    version = h[1] or "1"
    body = catalog.cached_version(store, journey_id, version)
    person = store.r.hgetall(keys.person(ref))
    if not person or not person.get("email"):
        return "unknown_person"
    first = body["steps"][0]
    due = arrival(config, first, person, now)
    event = webhook_subject(store, "journey.entered", {
        "journey_id": journey_id, "email": person["email"], "person": ref,
        "version": int(version), "how": how})
    outcome = store.run("journey_enter", keys=[
        keys.journey(journey_id), keys.journey_enrollment(journey_id, ref),
        keys.journey_due(journey_id), keys.journey_enrollments(journey_id),
        keys.journey_stats(journey_id), keys.journey_history(journey_id, ref),
        keys.person_journeys(ref), keys.webhook_outbox("journey.entered"),
    ], args=[ref, person["email"], version, first["id"], repr(now), repr(due),
             body["settings"].get("re_entry", "never"),
             history_entry(None, now, "entered", version=int(version), how=how),
             journey_id, HISTORY_KEPT, event])
    if outcome == "entered" and event:
        flush_webhooks(store, ("journey.entered",))
    return str(outcome)


def enroll_emails(store: Store, config: Config, journey_id: str, emails: list[str]) -> dict[str, Any]:
    """``POST .../enroll``: a manual journey lets the known people in."""
    h = catalog.require(store, journey_id)
    body = catalog.load_version(store, journey_id, h.get("version") or 1)
    if body["trigger"]["type"] != "manual":
        raise Invalid("Validation failed.", {"emails": ["Only a manual journey enrolls by hand."]})
    if h["status"] not in ("active", "paused"):
        raise Invalid("Validation failed.", {"emails": [f"The journey is {h['status']}."]})
    if len(emails) > ENROLL_MAX:
        raise Invalid("Validation failed.", {"emails": [f"At most {ENROLL_MAX} at a time."]})
    enrolled, skipped = 0, []
    for raw in emails:
        try:
            email = checked_email(raw)
        except InvalidEmail:
            skipped.append({"email": raw, "reason": "invalid_email"})
            continue
        ref = person_ref_of(store, email)
        if ref is None:
            skipped.append({"email": raw, "reason": "unknown_person"})
            continue
        outcome = enter(store, config, journey_id, ref, "manual")
        if outcome == "entered":
            enrolled += 1
        else:
            skipped.append({"email": raw, "reason": {"active": "already_active",
                                                     "already": "already_enrolled"}.get(outcome, outcome)})
    return {"enrolled": enrolled, "skipped": skipped}


def enrollment_view(store: Store, journey_id: str, ref: str, h: dict[str, str],
                    journey_status: str, history: list[str]) -> dict[str, Any]:
    status = h.get("status") or ""
    if status == "active" and journey_status == "stopped":
        status = "stopped"
    next_at = h.get("next_at")
    return {"email": h.get("email"), "person": ref, "version": int(h.get("version") or 1),
            "step": h.get("step") if status == "active" else None, "status": status,
            "entered_at": float(h.get("entered_at") or 0),
            "next_at": float(next_at) if next_at and status == "active" else None,
            "history": [json.loads(e) for e in history]}


def find_enrollments(store: Store, journey_id: str, *, email: str | None = None,
                     step: str | None = None, status: str | None = None, limit: int = 50,
                     cursor: str | None = None) -> dict[str, Any]:
    """Enrollments by entry time, filtered (the walker's scan budget bounds each page)."""
    keys = store.keys
    journey_status = catalog.require(store, journey_id)["status"]
    if email:
        try:
            normal = checked_email(email)
        except InvalidEmail:
            return {"items": [], "next_cursor": None}
        wanted = [r for r in (person_ref_of(store, normal),) if r]
        lead_id = store.r.hget(keys.lead_by_email, normal)
        if lead_id and refs.lead_ref(lead_id) not in wanted:
            wanted.append(refs.lead_ref(lead_id))
    else:
        wanted = None

    def read(offset: int, count: int) -> list[str]:
        if wanted is not None:
            return wanted[offset:offset + count]
        return store.r.zrange(keys.journey_enrollments(journey_id), offset, offset + count - 1)

    def load(ids: list[str]) -> list[dict[str, Any] | None]:
        pipe = store.r.pipeline(transaction=False)
        for ref in ids:
            pipe.hgetall(keys.journey_enrollment(journey_id, ref))
            pipe.lrange(keys.journey_history(journey_id, ref), 0, -1)
        replies = pipe.execute()
        out: list[dict[str, Any] | None] = []
        for i, ref in enumerate(ids):
            h, history = replies[2 * i], replies[2 * i + 1]
            if not h:
                out.append(None)
                continue
            view = enrollment_view(store, journey_id, ref, h, journey_status, history)
            if (status and view["status"] != status) or (step and view["step"] != step):
                out.append(None)
                continue
            out.append(view)
        return out

    return walk_by_rank(read, load, limit=limit, cursor=cursor)


def get_enrollment(store: Store, journey_id: str, ref: str) -> dict[str, Any]:
    keys = store.keys
    h = store.r.hgetall(keys.journey_enrollment(journey_id, ref))
    if not h:
        raise NotFound(f"{ref!r} is not in journey {journey_id!r}.")
    history = store.r.lrange(keys.journey_history(journey_id, ref), 0, -1)
    return enrollment_view(store, journey_id, ref, h,
                           catalog.require(store, journey_id)["status"], history)


def forget_person(store: Store, person_refs: list[str]) -> list[str]:
    """Erasure: the people's enrollments and histories go (an active one counts as exited).
    Returns the hidden campaigns backing the sends of the journeys they were in, whose
    ledgers erasure scrubs like every campaign's."""
    keys = store.keys
    campaigns: list[str] = []
    for ref in person_refs:
        journey_ids = list(store.r.hkeys(keys.person_journeys(ref)))
        for journey_id in journey_ids:
            campaigns += store.r.hvals(keys.journey_campaigns(journey_id))
            was = store.r.hget(keys.journey_enrollment(journey_id, ref), "status")
            pipe = store.r.pipeline(transaction=True)
            pipe.delete(keys.journey_enrollment(journey_id, ref))
            pipe.delete(keys.journey_history(journey_id, ref))
            pipe.zrem(keys.journey_due(journey_id), ref)
            pipe.zrem(keys.journey_enrollments(journey_id), ref)
            if was == "active":
                pipe.hincrby(keys.journey_stats(journey_id), "active", -1)
                pipe.hincrby(keys.journey_stats(journey_id), "exited", 1)
            pipe.execute()
        store.r.delete(keys.person_journeys(ref))
    return sorted(set(campaigns))
