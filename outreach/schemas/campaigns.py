"""Templates and campaigns as the marketer API shows and accepts them."""

from __future__ import annotations

from datetime import UTC

from marshmallow import Schema, fields, validate

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


class CampaignIn(InputSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    template_id = fields.String(required=True)
    list_ids = fields.List(fields.String(), load_default=list, validate=validate.Length(max=100))
    segment_ids = fields.List(fields.String(), load_default=list, validate=validate.Length(max=100))
    exclude_list_ids = fields.List(fields.String(), load_default=list,
                                   validate=validate.Length(max=100))
    exclude_segment_ids = fields.List(fields.String(), load_default=list,
                                      validate=validate.Length(max=100))
    from_email = Email()
    send_at = fields.AwareDateTime(allow_none=True, default_timezone=UTC)
    rate_per_second = fields.Float(allow_none=True, validate=validate.Range(min=0, max=100_000))


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


class Campaign(Schema):
    id = fields.String(required=True)
    name = fields.String()
    template_id = fields.String()
    list_ids = fields.List(fields.String())
    segment_ids = fields.List(fields.String())
    exclude_list_ids = fields.List(fields.String())
    exclude_segment_ids = fields.List(fields.String())
    from_email = fields.String()
    send_at = fields.String(allow_none=True)
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


class RecipientQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(
        ("queued", "sending", "sent", "failed", "unknown", "suppressed", "bounced",
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
    variants = fields.List(fields.Dict(), metadata={"description": "empty until experiments"})


class FollowUpIn(InputSchema):
    to = fields.String(required=True, validate=validate.OneOf(("non_openers", "non_clickers")))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    template_id = fields.String()
    subject = fields.String(validate=validate.Length(min=1, max=2000))
