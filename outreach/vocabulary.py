"""The domain's words, one place for both ``schemas/`` (what HTTP accepts) and the domain packages
(what the rules act on): asset kinds, lead sources, profile and form fields, reasons,
stages, activity types, webhook events, the slug pattern; and the one timestamp format.

Nothing here imports from the rest of outreach: schemas and services both import it."""

from __future__ import annotations

from datetime import UTC, datetime

KINDS = ("white_paper", "event")
SOURCES = ("web_form", "event", "trade_show", "business_card", "referral", "import", "api",
           "manual")
# what a registration without an API key may say it came from (the public door)
PUBLIC_SOURCES = ("web_form", "event", "referral")
ASSET_PATTERN = r"^[a-z0-9-]{1,80}$"

PROFILE_FIELDS = (
    "first_name", "last_name", "job_title", "company", "phone", "mobile_phone", "street",
    "city", "state", "postal_code", "country", "topic", "utm_source", "utm_medium",
    "utm_campaign", "timezone",
)
# the optional fields a form may ask for (email and consent are always there)
FORM_FIELDS = ("first_name", "last_name", "company", "job_title", "phone", "mobile_phone",
               "street", "city", "state", "postal_code", "country")

DISQUALIFY_REASONS = ("no_budget", "too_far", "not_target_market", "not_interested",
                      "bad_timing", "other")
STAGES = ("qualify", "develop", "propose", "close")  # the sales process Dynamics uses
LOST_REASONS = ("outsold", "cancelled", "no_decision", "price", "other")

ACTIVITY_TYPES = ("note", "call", "meeting", "email", "task")
WEBHOOK_EVENTS = ("lead.created", "lead.qualified", "lead.disqualified", "opportunity.created",
                  "opportunity.stage_changed", "opportunity.won", "opportunity.lost",
                  "task.due", "campaign.finished", "person.unsubscribed", "person.erased",
                  "segment.entered", "segment.exited",
                  "journey.entered", "journey.completed", "journey.exited")
SUPPRESSION_REASONS = ("unsubscribed", "hard_bounce", "complaint", "erased", "manual")


def iso(epoch: str | int | float | None) -> str | None:
    """Epoch seconds as stored -> ISO 8601 UTC, ``2026-11-22T10:00:00Z``."""
    if epoch in (None, ""):
        return None
    return datetime.fromtimestamp(float(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
