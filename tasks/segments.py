"""Segment tasks: the beat's tick (time windows that are due, builds under way) and a build
nudged by a save. Ids in, one service call; every step is an idempotent re-evaluation."""

from __future__ import annotations

import time

from celery import shared_task
from flask import current_app

from outreach.people.segments import build as building
from outreach.people.segments import history, membership

TICK_SECONDS = 20.0  # stays far below the visibility timeout


@shared_task(name="outreach.segments.tick", acks_late=True, ignore_result=True)
def tick() -> int:
    """Move the people whose time windows flipped; carry every build under way a step;
    once an hour, sample every segment's size (the console's chart)."""
    store = current_app.extensions["outreach.store"]
    history.sample(store)
    deadline = time.monotonic() + TICK_SECONDS
    moved = 0
    while time.monotonic() < deadline:
        due = membership.tick(store)
        moved += due
        if due < membership.TICK_BATCH:
            break
    for segment_id in building.pending_builds(store):
        if time.monotonic() > deadline:
            break
        building.build(store, segment_id, time_budget=max(0.0, deadline - time.monotonic()))
    return moved


@shared_task(name="outreach.segments.build", acks_late=True, ignore_result=True)
def build(segment_id: str) -> bool:
    """Build a new or edited segment; a build left unfinished is carried on by the tick."""
    store = current_app.extensions["outreach.store"]
    return building.build(store, segment_id, time_budget=TICK_SECONDS)
