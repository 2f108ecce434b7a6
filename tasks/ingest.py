"""Ingest: drain the intake stream into leads, contacts and lists."""

from __future__ import annotations

import contextlib
import logging
import os
import socket

import redis
from celery import shared_task
from celery.signals import worker_ready
from flask import current_app

from outreach.people.ingest import drain as drain_stream
from outreach.people.ingest import settle_touched
from outreach.store import Store

log = logging.getLogger(__name__)


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


# a store that is briefly unreachable or slow (restart, failover, a stalled fsync): the
# drain runs again shortly instead of leaving registrations to the next kick or beat
STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError)


@shared_task(name="outreach.ingest.drain", bind=True, acks_late=True, ignore_result=True,
             autoretry_for=STORE_ERRORS, retry_backoff=1, retry_backoff_max=30, max_retries=None)
def drain(self) -> int:  # type: ignore[no-untyped-def]
    result = drain_stream(
        current_app.extensions["outreach.store"],
        current_app.extensions["outreach.config"],
        consumer_name(),
        settle=settle_elsewhere,
    )
    if result.more:
        self.apply_async()
    elif result.processed:
        # registrations may have arrived while API processes were throttling their kicks
        self.apply_async(countdown=current_app.extensions["outreach.config"].ingest_kick_ms / 1000)
    elif result.recheck_in:
        self.apply_async(countdown=min(result.recheck_in, 60))
    return result.processed


def settle_elsewhere(store: Store, reported: list[str]) -> None:
    """Hand people the drain's batches changed to ``settle`` (a chunk of them: the worker
    processes settle chunks side by side, and one settles while this one applies the next
    batches). The ingest script marked them dirty with the change: when the broker takes no
    message, they are settled here and now."""
    try:
        # bounded like the intake's kick: a hung broker cannot hold the drain
        settle.apply_async(args=[reported], queue="ingest",
                           retry_policy={"max_retries": 1, "interval_start": 0})
    except Exception:  # noqa: BLE001 - any failure to publish: do the work here instead
        log.warning("segments: settling %d people in the drain (broker refused the hand-over)",
                    len(reported), exc_info=True)
        settle_touched(store, reported)


@shared_task(name="outreach.ingest.settle", acks_late=True, ignore_result=True,
             autoretry_for=STORE_ERRORS, retry_backoff=1, retry_backoff_max=30, max_retries=None)
def settle(reported: list[str]) -> int:
    """Re-evaluate, for the saved segments, the people an ingest batch changed
    (``'<ref>\\t<what changed>'``, as the ingest script reported them); a message lost with a
    worker leaves their dirty marks to the beat."""
    return settle_touched(current_app.extensions["outreach.store"], reported)


@worker_ready.connect
def _recover_on_start(sender=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    """A worker that starts takes over what a dead one left behind: pending
    registrations, and campaigns whose watch died with it."""
    with contextlib.suppress(Exception):  # the beat safety net runs the same tasks
        sender.app.send_task("outreach.ingest.drain", queue="ingest")
        sender.app.send_task("outreach.campaigns.tick", kwargs={"force": True}, queue="default")
