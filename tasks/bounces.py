"""The bounce mailbox poll (``OUTREACH_BOUNCE_MAILBOX``), a beat task."""

from __future__ import annotations

from celery import shared_task
from flask import current_app


@shared_task(name="outreach.bounces.poll_mailbox", ignore_result=True)
def poll_mailbox() -> dict[str, int] | None:
    from outreach.campaigns.bounces.mailbox import poll

    ext = current_app.extensions
    config = ext["outreach.config"]
    if not config.bounce_mailbox:
        return None
    return poll(ext["outreach.store"], config)
