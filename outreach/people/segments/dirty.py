"""Crash-safe re-evaluation after a change made outside the ingest script.

A change that can move a person in or out of a segment marks the person in
``Keys.segment_dirty`` in the same transaction or script as the change (``mark`` on the
change's pipeline; ``segment_dirty`` in the Lua prelude; ``track_event.lua``); the caller then
re-evaluates them (``touch``/``touch_many`` here) and clears the mark. A worker killed between
the change and the re-evaluation leaves the mark, and the beat's ``membership.tick`` settles
it: no segment stays wrong once the work is redelivered (or not at all)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from outreach.people.segments import membership
from outreach.store import Store


def mark(pipe: Any, store: Store, person_refs: Iterable[str]) -> None:
    """Queue the marks of ``person_refs`` on ``pipe`` (the transaction of the change)."""
    marks = [ref for ref in person_refs if ref]
    if marks:
        pipe.sadd(store.keys.segment_dirty, *marks)


def clear(store: Store, person_refs: Iterable[str]) -> None:
    marks = [ref for ref in person_refs if ref]
    if marks:
        store.r.srem(store.keys.segment_dirty, *marks)


def touch(store: Store, ref: str, what_changed: Iterable[str], now: float | None = None) -> int:
    """``membership.touch``, then the person's mark cleared (left for the beat on a crash)."""
    moved = membership.touch(store, ref, what_changed, now)
    clear(store, [ref])
    return moved


def touch_many(store: Store, person_refs: Iterable[str], what_changed: Iterable[str],
               now: float | None = None) -> int:
    """``membership.touch_many``, then the marks cleared."""
    people = [ref for ref in dict.fromkeys(person_refs) if ref]
    moved = membership.touch_many(store, people, what_changed, now)
    clear(store, people)
    return moved
