"""Periodic passes (beat): lead conversion promoting engaged leads; retention."""

from __future__ import annotations

from celery import shared_task
from flask import current_app

from outreach.sales.qualify import run_conversion


@shared_task(name="outreach.conversion.run", acks_late=True, ignore_result=True)
def run() -> int:
    ext = current_app.extensions
    return run_conversion(ext["outreach.store"], ext["outreach.config"])["promoted"]


@shared_task(name="outreach.retention.run", acks_late=True, ignore_result=True)
def retention() -> int:
    """Daily: finished campaigns past OUTREACH_CAMPAIGN_DETAIL_DAYS keep only their stats."""
    from outreach.campaigns.retention import run_retention

    ext = current_app.extensions
    return len(run_retention(ext["outreach.store"], ext["outreach.config"]))
