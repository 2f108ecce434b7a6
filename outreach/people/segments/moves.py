"""Announcing membership moves: ``segment.entered`` / ``segment.exited`` webhooks and the
``segment_moves`` stream that higher layers (journeys triggered by a segment) consume.

Both are written on the pipeline of the move itself (``membership._round``'s MULTI), so a
move and its announcement commit together or not at all: a re-evaluation that finds the
person already in (or out) announces nothing, and a redelivered task never announces twice.
A segment's first build announces nothing (``definitions``' ``announced``); the stream only
carries the moves of segments that something listens to (``listen``), so it stays empty
when no journey waits on a segment. Each listener reads the stream with its own consumer
group (``claim``, ``done``): an entry a dead consumer held is claimed again after
``CLAIM_IDLE_MS``, and the stream is trimmed below the oldest entry any group still needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from redis.exceptions import ResponseError

from outreach.platform import refs, webhooks
from outreach.store import Store

ENTERED, EXITED = "segment.entered", "segment.exited"
CLAIM_IDLE_MS = 60_000


Moved = tuple[str, str, list[tuple[str, bool]], set[str]]
"""One person's moves to announce: (ref, email, [(segment id, entered?)], the segments of
them whose moves go in the stream)."""


def announce(store: Store, pipe: Any, moved: list[Moved], now: float,
             subscribers: Callable[[str], list[str]] | None = None) -> None:
    """Queue on ``pipe`` (in MULTI) the events of several people's moves (``Moved``):
    webhook deliveries for subscribers (one ``queue_events`` an event kind for all of them),
    stream entries for the segments listened to. ``subscribers``: the webhooks that want an
    event, when the caller keeps them for a batch of people (else looked up here)."""
    moved = [one for one in moved if one[2]]
    if not moved:
        return
    for event, entered in ((ENTERED, True), (EXITED, False)):
        wanted = subscribers(event) if subscribers else webhooks.subscribers(store, event)
        if not wanted:
            continue
        items = []
        for ref, email, went, _ in moved:
            kind, person_id = refs.parse(ref)
            person = {"type": refs.TYPES.get(kind, ""), "id": person_id, "email": email}
            items += [{"segment_id": segment_id, "person": person}
                      for segment_id, went_in in went if went_in is entered]
        if items:
            webhooks.queue_events(store, pipe, event, items, when=now, wanted=wanted)
    for ref, _, went, listened in moved:
        for segment_id, entered in went:
            if segment_id in listened:
                pipe.xadd(store.keys.segment_moves, {
                    "segment_id": segment_id, "ref": ref, "move": "in" if entered else "out",
                    "at": str(int(now))})


def listen(store: Store, segment_ids: Iterable[str], how_many: int = 1) -> None:
    """Start (``how_many`` > 0) or stop (< 0) wanting the moves of ``segment_ids`` in the
    stream (journeys call it on activation and stop)."""
    pipe = store.r.pipeline(transaction=True)
    for segment_id in set(segment_ids):
        pipe.hincrby(store.keys.segment_move_listeners, segment_id, how_many)
    pipe.execute()
    for segment_id, count in store.r.hgetall(store.keys.segment_move_listeners).items():
        if int(count) <= 0:
            store.r.hdel(store.keys.segment_move_listeners, segment_id)


def claim(store: Store, group: str, consumer: str, count: int = 200
          ) -> list[tuple[str, dict[str, str]]]:
    """The next moves for ``group``: entries a dead consumer of the group held longer than
    ``CLAIM_IDLE_MS`` first, then new ones. Each must be ``done`` once acted on (acting must
    be idempotent: an entry is redelivered when its consumer dies before ``done``)."""
    key = store.keys.segment_moves
    try:
        store.r.xgroup_create(key, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    stale = store.r.xautoclaim(key, group, consumer, CLAIM_IDLE_MS, "0-0", count=count)
    entries = list(stale[1]) if len(stale) > 1 else []
    if len(entries) < count:
        for _, rows in store.r.xreadgroup(group, consumer, {key: ">"}, count=count - len(entries)):
            entries += rows
    return [(entry_id, fields) for entry_id, fields in entries if fields]


def done(store: Store, group: str, entry_ids: list[str]) -> None:
    """Acknowledge ``entry_ids`` for ``group`` and trim what every group has read."""
    key = store.keys.segment_moves
    if entry_ids:
        store.r.xack(key, group, *entry_ids)
    oldest = None
    for info in store.r.xinfo_groups(key):
        needed = info.get("last-delivered-id") or "0-0"
        if info.get("pending"):
            first = store.r.xpending(key, info["name"]).get("min")
            needed = first or needed
        else:  # everything delivered was acked: the next entry is still needed
            needed = _after(needed)
        if oldest is None or _order(needed) < _order(oldest):
            oldest = needed
    if oldest:
        store.r.xtrim(key, minid=oldest, approximate=False)


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _after(entry_id: str) -> str:
    ms, seq = _order(entry_id)
    return f"{ms}-{seq + 1}"
