"""Journeys and their versions: create, read, list, replace (a new version when active),
and the controls (activate, pause, resume, stop).

A journey's hash holds its name, status (draft | active | paused | stopped) and newest
version; each version's definition is kept (``journey_version``) because people keep the
version they entered. Active and paused journeys count in ``journey_triggers`` (what ingest
and qualification check to leave an entry in the inbox); only active ones are in
``journeys_running`` (the beat drains their due indexes), so a pause holds every step.
"""

from __future__ import annotations

import json
import time
from typing import Any

from outreach.errors import Conflict, Invalid
from outreach.journeys import definition
from outreach.people.segments import moves
from outreach.platform.paging import existing_hash, page_of_hashes
from outreach.store import Store

STATUSES = ("draft", "active", "paused", "stopped")


def _now() -> float:
    return time.time()


def load_version(store: Store, journey_id: str, version: int | str) -> dict[str, Any]:
    raw = store.r.get(store.keys.journey_version(journey_id, version))
    return json.loads(raw) if raw else {}


_VERSIONS: dict[tuple[int, str, str], dict[str, Any]] = {}


def cached_version(store: Store, journey_id: str, version: int | str) -> dict[str, Any]:
    """A version's definition, cached per process: a version people run never changes
    (a draft, whose version 1 a PUT replaces, runs nobody; its PUT clears the cache)."""
    key = (id(store), journey_id, str(version))
    found = _VERSIONS.get(key)
    if found is None:
        found = load_version(store, journey_id, version)
        if len(_VERSIONS) > 512:
            _VERSIONS.clear()
        _VERSIONS[key] = found
    return found


def forget_cached(journey_id: str) -> None:
    for key in [k for k in _VERSIONS if k[1] == journey_id]:
        _VERSIONS.pop(key, None)


def stats(store: Store, journey_id: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    raw = store.r.hgetall(store.keys.journey_stats(journey_id))

    def n(name: str) -> int:
        return int(raw.get(name) or 0)

    per_step = {}
    for step in steps:
        sid = step["id"]
        entered, done = n(f"{sid}|entered"), n(f"{sid}|done")
        left = n(f"{sid}|stopped")  # ended there by a stop
        per_step[sid] = {"entered": entered, "waiting": max(0, entered - done - left), "done": done,
                         "sent": n(f"{sid}|sent"), "opened": n(f"{sid}|opened"),
                         "clicked": n(f"{sid}|clicked"), "failed": n(f"{sid}|failed"),
                         "unknown": n(f"{sid}|unknown")}
    return {"enrolled": n("enrolled"), "active": max(0, n("active")), "completed": n("completed"),
            "exited": n("exited"), "stopped": n("stopped"), "goal_reached": n("goal_reached"),
            "steps": per_step}


def journey_view(store: Store, journey_id: str, h: dict[str, str], *,
                 with_stats: bool = False) -> dict[str, Any]:
    version = int(h.get("version") or 1)
    body = load_version(store, journey_id, version)
    view: dict[str, Any] = {
        "id": journey_id, "name": h.get("name"), "status": h.get("status"), "version": version,
        "trigger": body.get("trigger"), "steps": body.get("steps", []),
        "settings": body.get("settings", {}),
        "created_at": float(h.get("created_at") or 0), "updated_at": float(h.get("updated_at") or 0),
    }
    if h.get("activated_at"):
        view["activated_at"] = float(h["activated_at"])
    if h.get("status_reason"):
        view["status_reason"] = h["status_reason"]
    # the hidden campaigns behind the send steps (their reports: GET /campaigns/<id>/report)
    backing = store.r.hgetall(store.keys.journey_campaigns(journey_id))
    view["send_campaigns"] = [
        {"version": int(k.split("|")[0]), "step": k.split("|")[1], "entry": int(k.split("|")[2]),
         "campaign_id": v} for k, v in sorted(backing.items())]
    if with_stats:
        view["stats"] = stats(store, journey_id, view["steps"])
    return view


def require(store: Store, journey_id: str) -> dict[str, str]:
    return existing_hash(store, store.keys.journey(journey_id), "journey", journey_id)


def get_journey(store: Store, journey_id: str) -> dict[str, Any]:
    return journey_view(store, journey_id, require(store, journey_id), with_stats=True)


def find_journeys(store: Store, *, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    keys = store.keys
    return page_of_hashes(store, keys.journeys, keys.journey,
                          lambda i, h: journey_view(store, i, h), limit, cursor)


def create_journey(store: Store, data: dict[str, Any]) -> dict[str, Any]:
    """A draft, version 1 (shape checked now; the graph and references on activation)."""
    definition.check_shape(data)
    keys = store.keys
    journey_id, n = store.next_id("journey", "j")
    now = str(_now())
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(keys.journey(journey_id), mapping={"name": data["name"], "status": "draft",
                                                  "version": "1", "created_at": now,
                                                  "updated_at": now})
    pipe.set(keys.journey_version(journey_id, 1), json.dumps(definition.normalized(data)))
    pipe.zadd(keys.journeys, {journey_id: n})
    pipe.execute()
    return get_journey(store, journey_id)


def replace_journey(store: Store, journey_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """``PUT``: a draft is replaced; an active or paused journey gets the next version
    (checked as activation checks it: new entrants take it at once); people already in keep
    theirs. A stopped journey is not edited."""
    keys = store.keys
    h = require(store, journey_id)
    definition.check_shape(data)
    status = h["status"]
    if status == "stopped":
        raise Conflict("The journey is stopped; create a new one.")
    body = definition.normalized(data)
    version = int(h.get("version") or 1)
    now = str(_now())
    if status == "draft":
        pipe = store.r.pipeline(transaction=True)
        pipe.hset(keys.journey(journey_id), mapping={"name": data["name"], "updated_at": now})
        pipe.set(keys.journey_version(journey_id, version), json.dumps(body))
        pipe.execute()
        forget_cached(journey_id)
        return get_journey(store, journey_id)
    definition.check_graph(store, body)
    old = load_version(store, journey_id, version)
    old_field = definition.trigger_field(old["trigger"])
    new_field = definition.trigger_field(body["trigger"])
    with store.r.pipeline(transaction=True) as pipe:
        pipe.watch(keys.journey(journey_id))
        if pipe.hget(keys.journey(journey_id), "version") != str(version):
            raise Conflict("The journey changed meanwhile; read it again.")
        pipe.multi()
        pipe.set(keys.journey_version(journey_id, version + 1), json.dumps(body))
        pipe.hset(keys.journey(journey_id), mapping={"name": data["name"], "updated_at": now,
                                                      "version": str(version + 1)})
        if old_field != new_field:
            _count_trigger(pipe, store, old_field, -1)
            _count_trigger(pipe, store, new_field, 1)
        pipe.execute()
    _listen_to(store, body, 1)
    _listen_to(store, old, -1)
    return get_journey(store, journey_id)


def _listen_to(store: Store, body: dict[str, Any], how_many: int) -> None:
    segment_ids = definition.listened_segments(body)
    if segment_ids:
        moves.listen(store, segment_ids, how_many)


def _count_trigger(pipe: Any, store: Store, field: str, by: int) -> None:
    if field:
        pipe.hincrby(store.keys.journey_triggers, field, by)


def _set_status(store: Store, journey_id: str, allowed: tuple[str, ...], status: str,
                verb: str) -> tuple[dict[str, str], dict[str, Any]]:
    keys = store.keys
    with store.r.pipeline(transaction=True) as pipe:
        pipe.watch(keys.journey(journey_id))
        h = pipe.hgetall(keys.journey(journey_id))
        if not h:
            require(store, journey_id)
        if h["status"] not in allowed:
            pipe.unwatch()
            raise Conflict(f"A {h['status']} journey cannot be {verb}.")
        body = load_version(store, journey_id, h.get("version") or 1)
        field = definition.trigger_field(body["trigger"])
        pipe.multi()
        pipe.hset(keys.journey(journey_id), mapping={"status": status,
                                                      "updated_at": str(_now())})
        if status == "active":
            pipe.sadd(keys.journeys_running, journey_id)
        else:
            pipe.srem(keys.journeys_running, journey_id)
        if h["status"] == "draft" and status == "active":
            pipe.hset(keys.journey(journey_id), "activated_at", str(_now()))
            _count_trigger(pipe, store, field, 1)
        if status == "stopped":
            _count_trigger(pipe, store, field, -1)
            pipe.sadd(keys.journeys_stopping, journey_id)  # the beat ends the enrollments
        pipe.execute()
    if h["status"] == "draft" and status == "active":
        _listen_to(store, body, 1)
    if status == "stopped":
        _listen_to(store, body, -1)
    return h, body


def activate(store: Store, journey_id: str) -> dict[str, Any]:
    h = require(store, journey_id)
    if h["status"] != "draft":
        raise Conflict(f"A {h['status']} journey cannot be activated.")
    body = load_version(store, journey_id, h.get("version") or 1)
    try:
        definition.check_shape({"name": h.get("name"), **body})
        definition.check_graph(store, body)
    except Invalid:
        raise
    _set_status(store, journey_id, ("draft",), "active", "activated")
    return get_journey(store, journey_id)


def pause(store: Store, journey_id: str) -> dict[str, Any]:
    _set_status(store, journey_id, ("active",), "paused", "paused")
    return get_journey(store, journey_id)


def resume(store: Store, journey_id: str) -> dict[str, Any]:
    """Carry on; the journey's send campaigns that the relay's answers paused send again
    (with the campaigns' counters of failures reset, as a campaign's resume does)."""
    _set_status(store, journey_id, ("paused",), "active", "resumed")
    keys = store.keys
    store.r.hdel(keys.journey(journey_id), "status_reason")
    for campaign_id in store.r.hvals(keys.journey_campaigns(journey_id)):
        if store.r.hget(keys.campaign(campaign_id), "status") == "paused":
            store.r.hset(keys.campaign(campaign_id), mapping={
                "status": "sending", "status_reason": "", "consecutive_failures": "0",
                "tripped_kind": ""})
    return get_journey(store, journey_id)


def auto_pause(store: Store, journey_id: str, reason: str) -> None:
    """Pause because a send step's campaign was paused by the relay's answers (the circuit
    breaker, a run of failures): every step is held, the reason is shown; resume carries on."""
    keys = store.keys
    with store.r.pipeline(transaction=True) as pipe:
        pipe.watch(keys.journey(journey_id))
        if pipe.hget(keys.journey(journey_id), "status") != "active":
            pipe.unwatch()
            return
        pipe.multi()
        pipe.hset(keys.journey(journey_id), mapping={"status": "paused", "status_reason": reason,
                                                      "updated_at": str(_now())})
        pipe.srem(keys.journeys_running, journey_id)
        pipe.execute()


def stop(store: Store, journey_id: str) -> dict[str, Any]:
    """Stopped for good, at once: nothing runs for the journey any more (it leaves the
    running set; a claim finds it not active), and the journey is queued for the beat
    (``journeys_stopping``, same transaction), which ends every active enrollment as
    ``stopped`` in pages (``end_stopped``); meanwhile they read as ``stopped``."""
    _set_status(store, journey_id, ("active", "paused"), "stopped", "stopped")
    return get_journey(store, journey_id)


def end_stopped(store: Store, page_size: int = 500, budget_seconds: float = 5.0) -> int:
    """The beat's part of a stop: end the active enrollments of the stopped journeys, a page
    at a time, remembering how far it got (``stop_cursor``) so that the next tick carries on;
    a journey is done when a pass reaches the end with none active left. Returns how many
    enrollments were ended."""
    keys = store.keys
    deadline = time.monotonic() + budget_seconds
    ended = 0
    for journey_id in sorted(store.r.smembers(keys.journeys_stopping)):
        cursor = int(store.r.hget(keys.journey(journey_id), "stop_cursor") or 0)
        progress = 0
        while time.monotonic() < deadline:
            n, cursor = end_page(store, journey_id, cursor, page_size)
            ended += n
            progress += n
            if cursor:
                store.r.hset(keys.journey(journey_id), "stop_cursor", str(cursor))
                continue
            # a pass reached the end: done, unless an erasure shifted a page under it
            # (some left active: one more pass, as long as passes end some)
            if progress and int(store.r.hget(keys.journey_stats(journey_id), "active") or 0):
                progress = 0
                store.r.hset(keys.journey(journey_id), "stop_cursor", "0")
                continue
            pipe = store.r.pipeline(transaction=True)
            pipe.delete(keys.journey_due(journey_id))
            pipe.hdel(keys.journey(journey_id), "stop_cursor")
            pipe.srem(keys.journeys_stopping, journey_id)
            _finish_send_campaigns(store, pipe, journey_id)
            pipe.execute()
            break
        if time.monotonic() >= deadline:
            break
    return ended


def _finish_send_campaigns(store: Store, pipe: Any, journey_id: str) -> None:
    """Nobody reaches the journey's send steps any more: their hidden campaigns are
    finished (``sent``) and in retention's reach (``campaigns_hidden``), on ``pipe``."""
    keys = store.keys
    now = int(_now())
    for campaign_id in store.r.hvals(keys.journey_campaigns(journey_id)):
        pipe.hset(keys.campaign(campaign_id), mapping={"status": "sent",
                                                        "finished_at": str(now)})
        pipe.zadd(keys.campaigns_hidden, {campaign_id: now})


def end_page(store: Store, journey_id: str, start: int, page_size: int = 500) -> tuple[int, int]:
    """End the active enrollments of one page of the index from ``start``
    (``journey_stop.lua``): how many, and where the next page starts (0: at the end)."""
    keys = store.keys
    refs = store.r.zrange(keys.journey_enrollments(journey_id), start, start + page_size - 1)
    if not refs:
        return 0, 0
    entry = json.dumps({"step": None, "at": round(_now(), 3), "outcome": "stopped"})
    page_keys = [keys.journey_stats(journey_id)]
    for ref in refs:
        page_keys += [keys.journey_enrollment(journey_id, ref),
                      keys.journey_history(journey_id, ref)]
    ended = int(store.run("journey_stop", keys=page_keys, args=[repr(_now()), entry, 100]))
    return ended, (start + len(refs) if len(refs) == page_size else 0)
