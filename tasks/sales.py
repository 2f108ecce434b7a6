"""Sales tasks: task reminders and digests, webhook deliveries. Ids in, one service call.

Webhook retries wait in a Redis schedule (``platform/webhooks.py``), not in the broker:
the beat's tick queues each due delivery, so no countdown approaches the visibility timeout.
"""

from __future__ import annotations

import logging

from celery import shared_task
from flask import current_app

from outreach.people import ingest
from outreach.platform import webhooks
from outreach.sales import tasks as sales_tasks

log = logging.getLogger(__name__)


@shared_task(name="outreach.sales.remind", acks_late=True, ignore_result=True)
def remind() -> int:
    ext = current_app.extensions
    store, config, messenger = ext["outreach.store"], ext["outreach.config"], ext["outreach.messenger"]
    sent = sales_tasks.send_due_reminders(store, config, messenger)
    return sent + sales_tasks.send_digests(store, config, messenger)


@shared_task(name="outreach.webhooks.tick", acks_late=True, ignore_result=True)
def tick() -> int:
    store, config = current_app.extensions["outreach.store"], current_app.extensions["outreach.config"]
    # events a script recorded whose deliveries a dead drain never wrote
    ingest.announce_created(store)
    due = webhooks.claim_due(store, lease=config.webhook_lease_seconds)
    for n, delivery_id in enumerate(due):
        try:
            deliver.apply_async(args=[delivery_id], queue="default")
        except Exception:  # noqa: BLE001 - put the rest back; the next tick queues them
            log.warning("could not queue webhook deliveries; rescheduled", exc_info=True)
            webhooks.schedule_again(store, due[n:])
            raise
    return len(due)


@shared_task(name="outreach.webhooks.deliver", acks_late=True, ignore_result=True)
def deliver(delivery_id: str) -> str:
    ext = current_app.extensions
    return webhooks.deliver(ext["outreach.store"], ext["outreach.config"], delivery_id)
