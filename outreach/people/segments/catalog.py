"""Saved segments: create, read, edit, delete; what each reads is indexed on save, and a
new or edited segment is queued for its build (``build``) in the same transaction."""

from __future__ import annotations

import json
import time
from typing import Any

from outreach.errors import Conflict, Invalid, NotFound
from outreach.people.segments import members
from outreach.people.segments import rules as rule_tree
from outreach.platform.paging import existing_hash, page_of_hashes
from outreach.store import Store
from outreach.vocabulary import iso


def check_references(store: Store, segment_id: str | None, rules: dict[str, Any]) -> None:
    """Every ``in_segment`` names a saved segment, and none leads back to ``segment_id``."""
    for path, node in rule_tree.walk(rules):
        if "in_segment" not in node:
            continue
        start = node["in_segment"]
        here = f"{path}.in_segment"
        if start == segment_id:
            raise Invalid("Validation failed.", {here: ["A segment cannot contain itself."]})
        if not store.r.exists(store.keys.segment(start)):
            raise Invalid("Validation failed.", {here: [f"No segment {start!r}."]})
        seen: set[str] = set()
        todo = [start]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            stored = store.r.hget(store.keys.segment(current), "rules")
            named = rule_tree.named_segments(json.loads(stored)) if stored else set()
            if segment_id is not None and segment_id in named:
                raise Invalid("Validation failed.", {here: [
                    f"Segment {start!r} depends on this one: that would be a cycle."]})
            todo.extend(named)


def segment_view(store: Store, segment_id: str, h: dict[str, str], size: int | None = None,
                 lag: float | None = None) -> dict[str, Any]:
    return {
        "id": segment_id,
        "name": h["name"],
        "member_type": h["member_type"],
        "rules": json.loads(h["rules"]),
        "size": size if size is not None else members.size(store, segment_id),
        "lag_seconds": lag if lag is not None else lag_seconds(store),
        "build": {"state": h.get("build_state", "ready"), "done": int(h.get("build_done") or 0),
                  "total": int(h.get("build_total") or 0)},
        "created_at": iso(h.get("created_at")),
        "updated_at": iso(h.get("updated_at")),
    }


def lag_seconds(store: Store, now: float | None = None) -> float:
    """How late the oldest overdue time window is (0 when none is)."""
    now = time.time() if now is None else now
    oldest = store.r.zrange(store.keys.segment_due, 0, 0, withscores=True)
    return round(max(0.0, now - oldest[0][1]), 3) if oldest else 0.0


def get_segment(store: Store, segment_id: str) -> dict[str, Any]:
    h = existing_hash(store, store.keys.segment(segment_id), "segment", segment_id)
    return segment_view(store, segment_id, h)


def find_segments(store: Store, *, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    lag = lag_seconds(store)
    return page_of_hashes(store, store.keys.segments, store.keys.segment,
                          lambda i, h: segment_view(store, i, h, lag=lag), limit, cursor)


def _index(pipe: Any, store: Store, segment_id: str, old: set[str], new: set[str]) -> None:
    for what in old - new:
        pipe.srem(store.keys.segment_readers(what), segment_id)
    for what in new - old:
        pipe.sadd(store.keys.segment_readers(what), segment_id)


def _queue_build(pipe: Any, store: Store, segment_id: str, now: int) -> None:
    pipe.hset(store.keys.segment(segment_id), mapping={
        "build_state": "building", "build_position": "l:0", "build_done": 0,
        "build_total": 0})
    pipe.hincrby(store.keys.segment(segment_id), "build_generation", 1)
    pipe.hdel(store.keys.segment(segment_id), "build_again")
    pipe.zadd(store.keys.segment_builds, {segment_id: now})


def rebuild_readers(store: Store, what: str, only: list[str] | None = None) -> None:
    """Rebuild the segments that read ``what`` (a change that may move people no index names:
    a new or renamed account matches leads by company name or email domain), or ``only``
    those of them. A build under way is restarted once it ends, so nobody it already passed
    is left out."""
    segment_ids = sorted(only if only is not None
                         else store.r.smembers(store.keys.segment_readers(what)))
    if not segment_ids:
        return
    now = int(time.time())
    states = [store.r.hget(store.keys.segment(s), "build_state") for s in segment_ids]
    pipe = store.r.pipeline(transaction=True)
    for segment_id, state in zip(segment_ids, states, strict=True):
        if state == "building":
            pipe.hset(store.keys.segment(segment_id), "build_again", 1)
        elif state is not None:
            _queue_build(pipe, store, segment_id, now)
    pipe.execute()


def create_segment(store: Store, name: str, member_type: str, rules: dict[str, Any]) -> dict[str, Any]:
    """Save a checked segment (``rules`` already passed ``rules.check``) and queue its build."""
    check_references(store, None, rules)
    segment_id, n = store.next_id("segment", "sg")
    now = int(time.time())
    reads = rule_tree.reads(rules)
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(store.keys.segment(segment_id), mapping={
        "name": name, "member_type": member_type, "rules": json.dumps(rules),
        "reads": ",".join(sorted(reads)), "created_at": now, "updated_at": now})
    _index(pipe, store, segment_id, set(), reads)
    _queue_build(pipe, store, segment_id, now)
    pipe.zadd(store.keys.segments, {segment_id: n})
    pipe.execute()
    return get_segment(store, segment_id)


def update_segment(store: Store, segment_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Rename, or change the member type or the rules (then the segment is rebuilt)."""
    key = store.keys.segment(segment_id)
    h = existing_hash(store, key, "segment", segment_id)
    now = int(time.time())
    pipe = store.r.pipeline(transaction=True)
    fields: dict[str, Any] = {"updated_at": now}
    if "name" in changes:
        fields["name"] = changes["name"]
    rebuild = False
    if "member_type" in changes and changes["member_type"] != h["member_type"]:
        fields["member_type"] = changes["member_type"]
        rebuild = True
    if "rules" in changes:
        check_references(store, segment_id, changes["rules"])
        reads = rule_tree.reads(changes["rules"])
        fields.update(rules=json.dumps(changes["rules"]), reads=",".join(sorted(reads)))
        _index(pipe, store, segment_id, set(filter(None, h.get("reads", "").split(","))), reads)
        rebuild = True
    pipe.hset(key, mapping=fields)
    if rebuild:
        _queue_build(pipe, store, segment_id, now)
    pipe.execute()
    return get_segment(store, segment_id)


def delete_segment(store: Store, segment_id: str) -> None:
    """Forget a segment no other segment names (409 otherwise) and its memberships."""
    keys = store.keys
    h = existing_hash(store, keys.segment(segment_id), "segment", segment_id)
    users = store.r.smembers(keys.segment_readers(f"segment:{segment_id}"))
    if users:
        raise Conflict(f"Segment {segment_id!r} is used by segment {', '.join(sorted(users))}.")
    campaigns = busy_campaigns(store, segment_id)
    if campaigns:
        raise Conflict(f"Segment {segment_id!r} is used by campaign {', '.join(campaigns)} "
                       "(a draft, scheduled or sending).")
    pipe = store.r.pipeline(transaction=True)
    pipe.delete(keys.segment(segment_id), keys.segment_history(segment_id))
    pipe.zrem(keys.segments, segment_id)
    pipe.zrem(keys.segment_builds, segment_id)
    pipe.delete(keys.segment_campaigns(segment_id))
    _index(pipe, store, segment_id, set(filter(None, h.get("reads", "").split(","))), set())
    pipe.execute()
    members.delete(store, segment_id)  # the memberships, a page at a time


def busy_campaigns(store: Store, segment_id: str) -> list[str]:
    """The draft, scheduled or sending campaigns that include or exclude the segment (the
    index campaigns keep, ``Keys.segment_campaigns``; those past it are dropped from it)."""
    keys = store.keys
    ids = sorted(store.r.smembers(keys.segment_campaigns(segment_id)))
    if not ids:
        return []
    pipe = store.r.pipeline(transaction=False)
    for campaign_id in ids:
        pipe.hget(keys.campaign(campaign_id), "status")
    statuses = pipe.execute()
    done = [c for c, status in zip(ids, statuses, strict=True)
            if status not in ("draft", "scheduled", "sending", "paused")]
    if done:
        store.r.srem(keys.segment_campaigns(segment_id), *done)
    return [c for c, status in zip(ids, statuses, strict=True)
            if status in ("draft", "scheduled", "sending")]


def require(store: Store, segment_id: str) -> dict[str, str]:
    """The segment's hash; 404 when there is none."""
    h = store.r.hgetall(store.keys.segment(segment_id))
    if not h:
        raise NotFound(f"No segment {segment_id!r}.")
    return h
