"""Journey tasks: the beat's tick (inbox, segment moves, due steps of running journeys) and
a batch of due steps. Ids in, one service call; every step is claimed, acted, marked."""

from __future__ import annotations

import time

from celery import shared_task
from flask import current_app

from outreach.journeys import catalog, engine, enrollments, inbox
from tasks.ingest import STORE_ERRORS

TICK_SECONDS = 10.0  # stays far below the visibility timeout


def _submit(journey_id: str, person_refs: list[str]) -> None:
    current_app.extensions["celery"].send_task("outreach.journeys.steps",
                                               args=[journey_id, person_refs], queue="default")


@shared_task(name="outreach.journeys.tick", acks_late=True, ignore_result=True)
def tick() -> int:
    """Entries and wake-ups first, then the due steps of every running journey, in batches
    (each member taken on a lease: a lost task's people are due again after it)."""
    store = current_app.extensions["outreach.store"]
    config = current_app.extensions["outreach.config"]
    lock = store.keys.journey_lock("tick")
    if not store.r.set(lock, "1", nx=True, px=int(TICK_SECONDS * 1000) + 30_000):
        return 0
    try:
        catalog.end_stopped(store, budget_seconds=TICK_SECONDS / 4)  # stopped journeys' people
        enrollments.flush_webhooks(store)  # what a worker that died after a script left
        inbox.drain(store, config, budget_seconds=TICK_SECONDS / 2)
        inbox.consume_moves(store, config)
        taken = 0
        deadline = time.monotonic() + TICK_SECONDS / 2
        for journey_id in sorted(store.r.smembers(store.keys.journeys_running)):
            if time.monotonic() > deadline:
                break
            taken += engine.drain_due(store, journey_id, _submit)
        return taken
    finally:
        store.r.delete(lock)


@shared_task(name="outreach.journeys.steps", acks_late=True, ignore_result=True,
             autoretry_for=STORE_ERRORS, retry_backoff=1, retry_backoff_max=30, max_retries=None)
def steps(journey_id: str, person_refs: list[str]) -> int:
    store = current_app.extensions["outreach.store"]
    config = current_app.extensions["outreach.config"]
    messenger = current_app.extensions["outreach.messenger"]
    return engine.run_steps(store, config, messenger, journey_id, person_refs)
