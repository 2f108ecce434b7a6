"""Campaign tasks: dispatch pages, send batches, watch campaigns. Ids in, one service call."""

from __future__ import annotations

from typing import Any

from celery import Celery, shared_task
from flask import current_app

from outreach.services import campaigns, sending
from tasks.ingest import STORE_ERRORS


class CeleryJobs:
    """``outreach.services.jobs.Jobs`` on Celery: countdowns stay far below the visibility timeout."""

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


def _deps() -> tuple[Any, Any, Any]:
    ext = current_app.extensions
    return ext["outreach.store"], ext["outreach.config"], ext["outreach.jobs"]


@shared_task(name="outreach.campaigns.dispatch", acks_late=True, ignore_result=True)
def dispatch(campaign_id: str) -> int:
    store, config, jobs = _deps()
    return campaigns.dispatch(store, config, jobs, campaign_id)


@shared_task(name="outreach.send.batch", acks_late=True, ignore_result=True)
def send_batch(campaign_id: str, batch_no: int, attempt: int = 0) -> int:
    store, config, jobs = _deps()
    messenger = current_app.extensions["outreach.messenger"]
    result = sending.send_batch(store, config, messenger, jobs, campaign_id, batch_no, attempt)
    if result.retry_in is not None:
        limit = config.visibility_timeout_seconds / 2
        jobs.send_batch(campaign_id, batch_no, countdown=min(result.retry_in, limit),
                        attempt=attempt + 1)
    return result.sent


@shared_task(name="outreach.campaigns.watch", acks_late=True, ignore_result=True,
             autoretry_for=STORE_ERRORS, retry_backoff=1, retry_backoff_max=30, max_retries=None)
def watch(campaign_id: str, token: str) -> None:
    store, config, jobs = _deps()
    next_look = campaigns.watch(store, config, jobs, campaign_id, token)
    if next_look is not None:
        jobs.watch(campaign_id, token, countdown=next_look)


@shared_task(name="outreach.campaigns.tick", acks_late=True, ignore_result=True)
def tick(force: bool = False) -> int:
    store, config, jobs = _deps()
    return campaigns.watch_all(store, config, jobs, force=force)
