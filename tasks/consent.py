"""Double opt-in: the confirmation email, sent off the request path."""

from __future__ import annotations

from celery import Celery, shared_task
from flask import current_app

from outreach.people.consent import send_confirmation


class CeleryConsentMail:
    """Asks a worker to mail a confirmation link (``outreach.consent.confirm``)."""

    def __init__(self, celery_app: Celery) -> None:
        self.celery = celery_app

    def __call__(self, email: str, asset: str, version: int) -> None:
        self.celery.send_task("outreach.consent.confirm", args=[email, asset, version],
                              queue="default")


@shared_task(name="outreach.consent.confirm", acks_late=True, ignore_result=True,
             autoretry_for=(Exception,), retry_backoff=30, max_retries=5)
def confirm(email: str, asset: str, version: int) -> bool:
    """Retried on transient failures only: a permanent refusal (5.x.x, an address the relay
    cannot carry) returns False from the service, logged once there."""
    ext = current_app.extensions
    return send_confirmation(ext["outreach.store"], ext["outreach.config"],
                             ext["outreach.messenger"], email, asset, version)
