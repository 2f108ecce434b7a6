"""CSV imports uploaded through the API, run on a worker."""

from __future__ import annotations

from celery import Celery, shared_task
from flask import current_app

from outreach.services.imports import run_job


class CeleryImportJobs:
    def __init__(self, celery_app: Celery) -> None:
        self.celery = celery_app

    def __call__(self, import_id: str) -> None:
        self.celery.send_task("outreach.imports.run", args=[import_id], queue="default")


@shared_task(name="outreach.imports.run", acks_late=True, ignore_result=True)
def run(import_id: str) -> str:
    ext = current_app.extensions
    return run_job(ext["outreach.store"], ext["outreach.config"], import_id)["status"]
