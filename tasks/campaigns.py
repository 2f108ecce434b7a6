"""Campaign tasks: dispatch pages, send batches, watch campaigns. Ids in, one service call."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

from celery import Celery, shared_task
from celery.signals import worker_process_init, worker_shutting_down
from flask import current_app

from outreach.campaigns import dispatch as dispatching
from outreach.campaigns import lifecycle
from outreach.campaigns import watch as watching
from outreach.campaigns.experiments import decision
from outreach.campaigns.sending import batch, heartbeats
from tasks.ingest import STORE_ERRORS


class CeleryJobs:
    """``outreach.platform.jobs.Jobs`` on Celery: countdowns stay far below the visibility timeout."""

    def __init__(self, celery_app: Celery) -> None:
        self.celery = celery_app

    def dispatch(self, campaign_id: str) -> None:
        self.celery.send_task("outreach.campaigns.dispatch", args=[campaign_id], queue="default")

    def send_batch(self, campaign_id: str, batch_no: int, countdown: float = 0,
                   attempt: int = 0) -> None:
        self.celery.send_task("outreach.send.batch", args=[campaign_id, batch_no, attempt],
                              queue="send", countdown=countdown or None)

    def watch(self, campaign_id: str, token: str, countdown: float = 0) -> None:
        self.celery.send_task("outreach.campaigns.watch", args=[campaign_id, token],
                              queue="default", countdown=countdown or None)

    def retry_failed(self, campaign_id: str) -> None:
        self.celery.send_task("outreach.campaigns.retry_failed", args=[campaign_id],
                              queue="default")

    def build_segment(self, segment_id: str) -> None:
        self.celery.send_task("outreach.segments.build", args=[segment_id], queue="default")


def _deps() -> tuple[Any, Any, Any]:
    ext = current_app.extensions
    return ext["outreach.store"], ext["outreach.config"], ext["outreach.jobs"]


MAX_COUNTDOWN_SECONDS = 600.0  # re-deferring after this is harmless (the batch re-checks)

@shared_task(name="outreach.campaigns.dispatch", acks_late=True, ignore_result=True)
def dispatch(campaign_id: str) -> int:
    store, config, jobs = _deps()
    return dispatching.dispatch(store, config, jobs, campaign_id)


# A batch of ``send_batch_size`` (100) waits at most 5 s for tokens per recipient and a
# render stops after ``render_timeout_seconds``: a batch still running after these limits is
# stuck. The soft limit fails the recipient in hand with the reason; the hard one ends the
# process, and its claim is resolved like any crashed worker's (never a blind resend).
SEND_SOFT_TIME_LIMIT = 900
SEND_TIME_LIMIT = 960


@shared_task(name="outreach.send.batch", acks_late=True, ignore_result=True,
             soft_time_limit=SEND_SOFT_TIME_LIMIT, time_limit=SEND_TIME_LIMIT,
             autoretry_for=STORE_ERRORS, retry_backoff=1, retry_backoff_max=30, max_retries=None)
def send_batch(campaign_id: str, batch_no: int, attempt: int = 0) -> int:
    _cooperative_stop_in_child()
    store, config, jobs = _deps()
    messenger = current_app.extensions["outreach.messenger"]
    result = batch.send_batch(store, config, messenger, jobs, campaign_id, batch_no, attempt)
    if result.retry_in is not None:
        # a countdown task is held unacknowledged by a worker until due: stay well below the
        # Redis visibility timeout and RabbitMQ's consumer_timeout (30 min by default)
        limit = min(config.visibility_timeout_seconds / 2, MAX_COUNTDOWN_SECONDS)
        jobs.send_batch(campaign_id, batch_no, countdown=min(result.retry_in, limit),
                        attempt=attempt + 1 if result.retry_in else attempt)
    return result.sent


@shared_task(name="outreach.campaigns.watch", acks_late=True, ignore_result=True,
             autoretry_for=STORE_ERRORS, retry_backoff=1, retry_backoff_max=30, max_retries=None)
def watch(campaign_id: str, token: str) -> None:
    store, config, jobs = _deps()
    next_look = watching.watch(store, config, jobs, campaign_id, token)
    if next_look is not None:
        jobs.watch(campaign_id, token, countdown=next_look)


@shared_task(name="outreach.campaigns.retry_failed", acks_late=True, ignore_result=True,
             autoretry_for=STORE_ERRORS, retry_backoff=1, retry_backoff_max=30, max_retries=None)
def retry_failed(campaign_id: str) -> int:
    store, config, jobs = _deps()
    return lifecycle.requeue_failed(store, jobs, campaign_id, config.send_batch_size)


@shared_task(name="outreach.campaigns.tick", acks_late=True, ignore_result=True)
def tick(force: bool = False) -> int:
    store, config, jobs = _deps()
    return watching.watch_all(store, config, jobs, force=force)


@shared_task(name="outreach.experiments.tick", acks_late=True, ignore_result=True)
def experiments_tick() -> int:
    store, config, jobs = _deps()
    return decision.drain(store, config, jobs)


# ---------------------------------------------------------------- rolling restarts
# SIGTERM (a deploy) reaches the main worker process, or with ``kill -- -pgid`` every
# process of the worker. Either way a send batch in hand stops before its next recipient
# and hands the rest back (batch.STOP); Celery's warm shutdown then waits only for that.


def _stop_sending(_signum: int = 0, _frame: Any = None) -> None:
    batch.STOP.set()


def _on_sigterm(signum: int, frame: Any) -> None:
    if heartbeats.busy():
        batch.STOP.set()  # finish the transaction in hand, then stop
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # nothing in hand: as Celery would
    os.kill(os.getpid(), signal.SIGTERM)


_child = {"pool": False, "installed": False}


@worker_process_init.connect
def _in_pool_child(**_kwargs: Any) -> None:
    _child["pool"] = True  # billiard resets the signals after this: install them later


def _cooperative_stop_in_child() -> None:
    """In a prefork pool process, at the first send batch (the main process keeps Celery's
    own handlers): SIGTERM or the main process's SIGUSR2 stops the batch in hand."""
    if _child["pool"] and not _child["installed"]:
        signal.signal(signal.SIGUSR2, _stop_sending)
        signal.signal(signal.SIGTERM, _on_sigterm)
        _child["installed"] = True


@worker_shutting_down.connect
def _stop_batches(**_kwargs: Any) -> None:
    batch.STOP.set()  # solo and thread pools run tasks in this process
    with contextlib.suppress(Exception):
        import billiard.process

        for child in billiard.process.active_children():
            with contextlib.suppress(OSError):
                os.kill(child.pid, signal.SIGUSR2)
