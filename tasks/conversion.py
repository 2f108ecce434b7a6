"""Lead conversion: the periodic pass (beat) promoting engaged leads."""

from __future__ import annotations

from celery import shared_task
from flask import current_app

from outreach.sales.qualify import run_conversion


@shared_task(name="outreach.conversion.run", acks_late=True, ignore_result=True)
def run() -> int:
    ext = current_app.extensions
    return run_conversion(ext["outreach.store"], ext["outreach.config"])["promoted"]
