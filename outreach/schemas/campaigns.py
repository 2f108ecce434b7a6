"""Templates and campaigns as the marketer API shows and accepts them."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from outreach.campaigns.local_time import DATE, HHMM
from outreach.inputs import Email, InputSchema
from outreach.schemas.common import PageQuery


class TemplateIn(InputSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    subject = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    html = fields.String(required=True)
    text = fields.String(required=True)


class Template(Schema):
    id = fields.String(required=True)
    name = fields.String()
    subject = fields.String()
    html = fields.String()
    text = fields.String()
    created_at = fields.String(allow_none=True)


class BuiltinTemplate(Schema):
    name = fields.String()
    subject = fields.String()
    html = fields.String()
    text = fields.String()


class VariantIn(InputSchema):
    template_id = fields.String(validate=validate.Length(min=1, max=200), metadata={
        "description": "default: the campaign's template"})
    subject = fields.String(validate=validate.Length(min=1, max=2000), metadata={
        "description": "this variant's subject (the template's body under it)"})


class ExperimentIn(InputSchema):
    variants = fields.List(fields.Nested(VariantIn), required=True,
                           validate=validate.Length(
                               min=2, max=5, error="Give 2 to 5 variants: A and at least B."),
                           metadata={"description": "2-5 variants, named A, B, ... in order"})
    test_share = fields.Float(load_default=0.2, validate=validate.Range(
        min=0, max=1, min_inclusive=False, max_inclusive=False))
    metric = fields.String(load_default="clicks", validate=validate.OneOf(("clicks", "opens")))
    decide_after = fields.String(load_default="PT4H", validate=validate.Length(min=2, max=40),
                                 metadata={"description": "ISO 8601 duration from launch"})
    confidence = fields.Float(load_default=0.95, validate=validate.Range(
        min=0.5, max=1, max_inclusive=False))


class CampaignIn(InputSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    template_id = fields.String(required=True)
    list_ids = fields.List(fields.String(), required=True, validate=validate.Length(min=1, max=100))
    from_email = Email()
    send_at = fields.AwareDateTime(allow_none=True, default_timezone=UTC, metadata={
        "description": "when to send (ISO 8601, UTC unless it says); with send_at_local, a "
                       "date (YYYY-MM-DD)"})
    rate_per_second = fields.Float(allow_none=True, validate=validate.Range(min=0, max=100_000))
    experiment = fields.Nested(ExperimentIn, allow_none=True)
    send_at_local = fields.String(allow_none=True, validate=validate.Regexp(
        HHMM, error="Must be a time of day as HH:MM (00:00 to 23:59)."), metadata={
        "description": "HH:MM: each recipient gets the message at that time of the send_at date "
                       "in their own time zone (at once if it has passed at launch)"})

    @validates_schema(pass_original=True)
    def _local_send(self, data: dict[str, Any], original: Any, **_kwargs: Any) -> None:
        """A local-time send needs the date it happens on, as a date."""
        if not data.get("send_at_local"):
            return
        raw = original.get("send_at") if isinstance(original, dict) else None
        if not (isinstance(raw, str) and DATE.fullmatch(raw.strip())):
            raise ValidationError("With send_at_local, send_at is required and is a date "
                                  "(YYYY-MM-DD).", "send_at")


class CampaignStats(Schema):
    targeted = fields.Integer()
    sent = fields.Integer()
    failed = fields.Integer()
    suppressed = fields.Integer()
    unknown = fields.Integer()
    opened = fields.Integer(metadata={"description": "people who opened (human opens only)"})
    opened_machine = fields.Integer(metadata={
        "description": "people whose only opens were a machine's: within "
                       "OUTREACH_MACHINE_OPEN_SECONDS of delivery, a privacy proxy or a link scanner"})
    clicked = fields.Integer()
    unsubscribed = fields.Integer()
    bounced = fields.Integer()  # deliverability: hard bounces reported after delivery
    soft_bounced = fields.Integer()
    blocked = fields.Integer()  # 5.7.x policy refusals reported by DSN
    complained = fields.Integer()
    waiting_local = fields.Integer(metadata={
        "description": "recipients of a send_at_local campaign waiting for their local time"})


class Campaign(Schema):
    id = fields.String(required=True)
    name = fields.String()
    template_id = fields.String()
    list_ids = fields.List(fields.String())
    from_email = fields.String()
    send_at = fields.String(allow_none=True, metadata={
        "description": "ISO 8601 UTC; the date (YYYY-MM-DD) of a send_at_local campaign"})
    send_at_local = fields.String(allow_none=True, metadata={
        "description": "HH:MM in each recipient's own time zone, or null"})
    rate_per_second = fields.Float(allow_none=True)
    status = fields.String(validate=validate.OneOf(
        ("draft", "scheduled", "sending", "paused", "sent", "cancelled")))
    status_reason = fields.String(allow_none=True)
    last_error = fields.String(allow_none=True)
    stats = fields.Nested(CampaignStats)
    progress = fields.Float()
    created_at = fields.String(allow_none=True)
    started_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)
    experiment = fields.Dict(allow_none=True, metadata={
        "description": "variants [{name, template_id, subject}], test_share, metric, "
                       "decide_after, confidence"})


class RecipientQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(
        ("waiting", "queued", "sending", "sent", "failed", "unknown", "suppressed", "bounced",
         "complained")))


class RecipientPerson(Schema):
    type = fields.String()
    id = fields.String()


class Recipient(Schema):
    email = fields.String()
    person = fields.Nested(RecipientPerson)
    status = fields.String()
    at = fields.String(allow_none=True)
    error = fields.String(allow_none=True, metadata={
        "description": "the last SMTP reply or the reason, for failed and unknown recipients"})


class RetryResult(Schema):
    requeued = fields.Integer()
    campaign = fields.Nested(Campaign)


class ReportRates(Schema):
    delivered = fields.Float()
    opened = fields.Float()
    clicked = fields.Float()
    click_to_open = fields.Float(metadata={"description": "clicked / opened"})
    unsubscribed = fields.Float()
    bounced = fields.Float()
    complained = fields.Float()


class ReportLink(Schema):
    url = fields.String()
    clicks = fields.Integer()
    unique_clicks = fields.Integer()


class ReportHour(Schema):
    hour = fields.String(metadata={"description": "start of the hour (UTC)"})
    opened = fields.Integer(metadata={"description": "first human opens in that hour"})
    clicked = fields.Integer(metadata={"description": "human clicks in that hour"})


class ReportDomain(Schema):
    domain = fields.String()
    sent = fields.Integer()
    bounced = fields.Integer()
    opened = fields.Integer()
    clicked = fields.Integer()


class Report(Schema):
    rates = fields.Nested(ReportRates)
    links = fields.List(fields.Nested(ReportLink))
    timeline = fields.List(fields.Nested(ReportHour))
    domains = fields.List(fields.Nested(ReportDomain))
    variants = fields.List(fields.Nested(lambda: ExperimentVariant()), metadata={
        "description": "an experiment's variants (empty without one), as GET .../experiment"})


class FollowUpIn(InputSchema):
    to = fields.String(required=True, validate=validate.OneOf(("non_openers", "non_clickers")))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    template_id = fields.String()
    subject = fields.String(validate=validate.Length(min=1, max=2000))


class ExperimentVariant(Schema):
    name = fields.String()
    subject = fields.String(allow_none=True)
    template_id = fields.String(allow_none=True)
    sent = fields.Integer(metadata={"description": "people sent this variant (test and rest)"})
    opened = fields.Integer(metadata={"description": "people who opened (human opens)"})
    clicked = fields.Integer(metadata={"description": "people who clicked"})
    rate = fields.Float(metadata={"description": "the metric's count / sent"})
    ci_low = fields.Float(metadata={"description": "Wilson score interval at the confidence"})
    ci_high = fields.Float()


class Experiment(Schema):
    status = fields.String(validate=validate.OneOf(("testing", "decided", "inconclusive")))
    metric = fields.String()
    method = fields.String()
    confidence = fields.Float()
    test_share = fields.Float()
    decide_after = fields.String()
    decide_at = fields.String(allow_none=True)
    phase = fields.String(metadata={"description": "test (the test share) or rest"})
    variants = fields.List(fields.Nested(ExperimentVariant))
    winner = fields.String(allow_none=True)
    rest_variant = fields.String(allow_none=True)
    decided_at = fields.String(allow_none=True)
    decided_by = fields.String(allow_none=True, metadata={
        "description": "test, or the user or API key that decided by hand"})


class DecideIn(InputSchema):
    variant = fields.String(required=True, validate=validate.Length(min=1, max=5))
