"""What lower layers leave for journeys, turned into entries and wake-ups.

People, campaigns and sales sit below journeys and cannot call them: they write to Redis in
the same transaction as their change. Ingest (``ingest.lua``) and qualification leave
``reg|<slug>|<ref>`` / ``qual|<ref>`` in ``journey_inbox`` when an active journey listens
(``journey_triggers``); tracking (``track_event.lua``) leaves ``open|<campaign>|<ref>`` and
``click|<campaign>|<ref>`` for a journey send's campaign. Segment moves come from the
segment machinery's stream, read with a consumer group of our own. Every entry is handled
idempotently (entering twice is refused by the enrollment; flags are set once), so a drain
that dies halfway is simply run again.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from outreach.config import Config
from outreach.journeys import engine, enrollments
from outreach.people.segments import moves
from outreach.store import Store

log = logging.getLogger(__name__)

PAGE = 500


def drain(store: Store, config: Config, budget_seconds: float = 5.0) -> int:
    """Handle the inbox's entries, a page at a time (one drainer at a time)."""
    keys = store.keys
    lock = keys.journey_lock("inbox")
    if not store.r.set(lock, "1", nx=True, px=int(budget_seconds * 1000) + 30_000):
        return 0
    handled = 0
    deadline = time.monotonic() + budget_seconds
    try:
        while time.monotonic() < deadline:
            entries = store.r.lrange(keys.journey_inbox, 0, PAGE - 1)
            if not entries:
                break
            listening: dict[str, list[str]] = {}  # trigger -> journeys, once per page
            for entry in entries:
                try:
                    handle(store, config, entry, listening)
                except Exception:  # noqa: BLE001 - one bad entry never blocks the inbox
                    log.exception("journeys: inbox entry %r failed", entry)
            store.r.ltrim(keys.journey_inbox, len(entries), -1)
            handled += len(entries)
    finally:
        store.r.delete(lock)
    return handled


def handle(store: Store, config: Config, entry: str,
           listening: dict[str, list[str]] | None = None) -> None:
    listening = {} if listening is None else listening

    def journeys_for(field: str) -> list[str]:
        if field not in listening:
            listening[field] = engine.triggers_of(store, field)
        return listening[field]

    kind, _, rest = entry.partition("|")
    if kind == "reg":
        slug, _, ref = rest.rpartition("|")
        for journey_id in journeys_for(f"registration:{slug}"):
            enrollments.enter(store, config, journey_id, ref, "registration")
    elif kind == "qual":
        for journey_id in journeys_for("qualified"):
            enrollments.enter(store, config, journey_id, rest, "qualified")
    elif kind in ("open", "click"):
        campaign_id, _, ref = rest.partition("|")
        engaged(store, campaign_id, ref, kind)


def engaged(store: Store, campaign_id: str, ref: str, kind: str) -> None:
    """A journey send was opened or clicked: the step's counter (people, once per entry),
    the enrollment's flag its branches read, and a wake-up for a branch that waits on it."""
    keys = store.keys
    journey_id, step_id, gen = store.r.hmget(keys.campaign(campaign_id), "journey_id",
                                             "journey_step", "journey_gen")
    if not journey_id or not step_id:
        return
    enrollment_key = keys.journey_enrollment(journey_id, ref)
    h = store.r.hmget(enrollment_key, "gen", "status", "await")
    if (h[0] or "1") != (gen or "1"):
        return  # a message of an earlier entry
    flags = [("o", "opened")] + ([("c", "clicked")] if kind == "click" else [])
    for flag, counter in flags:
        if store.r.hsetnx(enrollment_key, f"{flag}:{step_id}", "1"):
            store.r.hincrby(keys.journey_stats(journey_id), f"{step_id}|{counter}", 1)
    awaited = h[2] or ""
    if h[1] == "active" and awaited in (f"open:{step_id}", f"{kind}:{step_id}"):
        engine.wake(store, journey_id, ref)


# ------------------------------------------------------------------ segment moves

def consume_moves(store: Store, config: Config, count: int = 500,
                  consumer: str | None = None) -> int:
    """Read the segment moves stream with the journeys' own consumer group
    (``segments.moves``: claim, done): a person who entered a segment enters the journeys
    it triggers; any move of a segment a journey listens to wakes the person's active
    enrollments, so that the exit rule (and a branch on a segment rule) is checked now.
    Acknowledged once handled; what a dead consumer held is claimed again."""
    group = store.keys.journey_moves_group
    consumer = consumer or f"{socket.gethostname()}:{os.getpid()}"
    entries = moves.claim(store, group, consumer, count)
    if not entries:
        return 0
    running = list(store.r.smembers(store.keys.journeys_running))
    for entry_id, move in entries:
        try:
            _move(store, config, move, running)
        except Exception:  # noqa: BLE001
            log.exception("journeys: segment move %s failed", entry_id)
    moves.done(store, group, [entry_id for entry_id, _ in entries])
    return len(entries)


def _move(store: Store, config: Config, move: dict[str, str], running: list[str]) -> None:
    ref = move.get("ref") or ""
    if not ref:
        return
    if move.get("move") == "in" and move.get("segment_id"):
        for journey_id in engine.triggers_of(store, f"segment:{move['segment_id']}"):
            enrollments.enter(store, config, journey_id, ref, "segment_entered")
    for journey_id in running:  # the exit rule is checked when the person changes
        engine.wake(store, journey_id, ref)
