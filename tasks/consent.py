"""Double opt-in: the confirmation email, sent off the request path.

The mail waits in a Redis schedule written with the registration
(``outreach.people.confirmations``): the API's publish is only a nudge, and the beat's
tick sends whatever is due, so a broker outage loses no confirmation.
"""

from __future__ import annotations

from celery import Celery, shared_task
from flask import current_app

from outreach.people import confirmations
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
    """Send one confirmation; it leaves the schedule once sent or not needed (a permanent
    refusal, 5.x.x, returns False from the service, logged once there). A transient failure
    is retried by the task and stays scheduled: the beat tries again after the retries."""
    ext = current_app.extensions
    store = ext["outreach.store"]
    member = confirmations.entry(email, asset, version)
    sent = send_confirmation(store, ext["outreach.config"], ext["outreach.messenger"],
                             email, asset, version)
    confirmations.done(store, member)
    return sent


@shared_task(name="outreach.consent.tick", acks_late=True, ignore_result=True)
def tick() -> int:
    """The beat's look at the confirmations schedule: a task per due mail."""
    store = current_app.extensions["outreach.store"]
    due = confirmations.claim_due(store)
    for member in due:
        confirm.apply_async(args=list(confirmations.read(member)), queue="default")
    return len(due)
