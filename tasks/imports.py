"""CSV imports uploaded through the API, run on a worker."""

from __future__ import annotations

from celery import Celery, Task, shared_task
from flask import current_app

from outreach.people.imports.jobs import lease_left, run_job


class CeleryImportJobs:
    def __init__(self, celery_app: Celery) -> None:
        self.celery = celery_app

    def __call__(self, import_id: str) -> None:
        self.celery.send_task("outreach.imports.run", args=[import_id], queue="default")


@shared_task(name="outreach.imports.run", bind=True, acks_late=True, ignore_result=True,
             max_retries=None)
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
