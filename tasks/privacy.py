"""Erasure jobs: run off the request path; the beat drives whatever is due."""

from __future__ import annotations

import logging

from celery import Celery, shared_task
from flask import current_app

from outreach.privacy.erasure import run_due_erasures

log = logging.getLogger(__name__)


class CeleryErasureKick:
    """A nudge to run the erasures due now; a failed publish is logged, never raised (the
    job is in Redis already and the beat runs it)."""

    def __init__(self, celery_app: Celery) -> None:
        self.celery = celery_app

    def __call__(self) -> None:
        try:
            self.celery.send_task("outreach.erasure.run_due", queue="default",
                                  retry_policy={"max_retries": 1, "interval_start": 0})
        except Exception:  # noqa: BLE001 - stored already; the beat runs it
            log.warning("could not ask for an erasure run; the beat will", exc_info=True)


@shared_task(name="outreach.erasure.run_due", acks_late=True, ignore_result=True)
def run_due() -> int:
    ext = current_app.extensions
    return run_due_erasures(ext["outreach.store"], ext["outreach.config"])
