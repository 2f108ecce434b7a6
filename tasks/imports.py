"""CSV imports uploaded through the API, run on a worker.

The job waits in a Redis schedule (``imports_due``) written with it: the API's publish is
only a nudge, and the beat's tick queues every due job (a new one whose nudge was lost, or
one whose run stopped renewing its lease), so no import stays ``queued`` or ``running``.
"""

from __future__ import annotations

import logging

from celery import Celery, Task, shared_task
from flask import current_app

from outreach.people.imports.jobs import claim_due_jobs, lease_left, run_job
from tasks.ingest import STORE_ERRORS

log = logging.getLogger(__name__)


class CeleryImportJobs:
    def __init__(self, celery_app: Celery) -> None:
        self.celery = celery_app

    def __call__(self, import_id: str) -> None:
        self.celery.send_task("outreach.imports.run", args=[import_id], queue="default")


@shared_task(name="outreach.imports.run", bind=True, acks_late=True, ignore_result=True,
             autoretry_for=STORE_ERRORS, retry_backoff=1, retry_backoff_max=30, max_retries=None)
def run(self: Task, import_id: str) -> str:
    ext = current_app.extensions
    store, config = ext["outreach.store"], ext["outreach.config"]
    status = run_job(store, config, import_id)["status"]
    left = lease_left(store, import_id) if status == "running" else 0.0
    if left > 0:
        # held by another worker (e.g. redelivered while its first worker still runs it, or
        # is dead and its lease not yet expired): look again when the lease would expire
        raise self.retry(countdown=min(left + 1, config.import_lease_seconds + 1))
    return status


@shared_task(name="outreach.imports.tick", acks_late=True, ignore_result=True)
def tick() -> int:
    """The beat's look at the imports schedule: queue a run of every due job."""
    ext = current_app.extensions
    store, config = ext["outreach.store"], ext["outreach.config"]
    due = claim_due_jobs(store, config)
    for import_id in due:
        # a lost publish is taken again when its lease lapses (claim_due keeps it scheduled)
        run.apply_async(args=[import_id], queue="default")
    return len(due)
