"""Activities, tasks, timelines and webhooks as the API shows and accepts them."""

from __future__ import annotations

from datetime import UTC

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from outreach.inputs import InputSchema
from outreach.schemas.common import PageQuery
from outreach.vocabulary import ACTIVITY_TYPES, WEBHOOK_EVENTS


def _when(**kwargs: object) -> fields.AwareDateTime:
    """ISO 8601; a time without a zone is UTC."""
    return fields.AwareDateTime(default_timezone=UTC, **kwargs)  # type: ignore[arg-type]


class ActivityIn(InputSchema):
    type = fields.String(required=True, validate=validate.OneOf(ACTIVITY_TYPES))
    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    body = fields.String(allow_none=True, validate=validate.Length(max=20_000))
    at = _when(allow_none=True)
    due_at = _when(allow_none=True)
    owner = fields.String(allow_none=True, validate=validate.Length(max=320))

    @validates_schema
    def _task_due(self, data: dict, **_kwargs: object) -> None:
        if data.get("type") == "task" and data.get("due_at") is None:
            raise ValidationError("A task needs a due time.", "due_at")


class ActivityPatch(InputSchema):
    type = fields.String(validate=validate.OneOf(ACTIVITY_TYPES))
    subject = fields.String(validate=validate.Length(min=1, max=200))
    body = fields.String(allow_none=True, validate=validate.Length(max=20_000))
    at = _when()
    due_at = _when()
    owner = fields.String(validate=validate.Length(max=320))


class RecordRef(Schema):
    kind = fields.String()
    id = fields.String()


class Activity(Schema):
    id = fields.String(required=True)
    type = fields.String()
    subject = fields.String()
    body = fields.String(allow_none=True)
    at = fields.String()
    by = fields.String(allow_none=True)
    record = fields.Nested(RecordRef)
    records = fields.List(fields.Nested(RecordRef))
    due_at = fields.String(allow_none=True)
    owner = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    done_at = fields.String(allow_none=True)
    done_by = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()


class ActivityQuery(PageQuery):
    type = fields.String(validate=validate.OneOf(ACTIVITY_TYPES))


class TimelineItem(Schema):
    """An activity (``kind: activity``, the fields of Activity) or a system event
    (``kind: event``: registration, open, click, unsubscribe, qualified, disqualified,
    created, stage_changed, status_changed, owner_changed, with ``from``/``to``)."""

    class Meta:
        unknown = "include"

    at = fields.String(allow_none=True)
    kind = fields.String()
    type = fields.String()
    subject = fields.String(allow_none=True)
    by = fields.String(allow_none=True)


class Timeline(Schema):
    items = fields.List(fields.Dict())


class TimelineQuery(InputSchema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class TaskQuery(PageQuery):
    owner = fields.String(validate=validate.Length(max=320))
    status = fields.String(load_default="open", validate=validate.OneOf(("open", "done")))
    due_before = _when()


class OwnerPatch(InputSchema):
    owner = fields.String(required=True, validate=validate.Length(min=1, max=320))


class WebhookIn(InputSchema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    events = fields.List(fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)), required=True,
                         validate=validate.Length(min=1))
    secret = fields.String(allow_none=True, validate=validate.Length(min=16, max=200))


class WebhookPatch(InputSchema):
    url = fields.String(validate=validate.Length(min=1, max=2000))
    events = fields.List(fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)),
                         validate=validate.Length(min=1))
    secret = fields.String(validate=validate.Length(min=16, max=200))
    active = fields.Boolean()


class Webhook(Schema):
    id = fields.String(required=True)
    url = fields.String()
    events = fields.List(fields.String())
    active = fields.Boolean()
    disabled_reason = fields.String(allow_none=True)
    consecutive_failures = fields.Integer()
    created_at = fields.String()
    created_by = fields.String(allow_none=True)
    secret = fields.String(metadata={"description": "only in the answer to POST"})


class Delivery(Schema):
    delivery_id = fields.String()
    event_id = fields.String()
    event = fields.String()
    attempt = fields.Integer()
    at = fields.String()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)


class Deliveries(Schema):
    items = fields.List(fields.Nested(Delivery))


class Redelivered(Schema):
    delivery_id = fields.String()
    event_id = fields.String()
    status = fields.String()


class WebhookEvent(Schema):
    """The body of every webhook request (signed; ``id`` is the ``Outreach-Event-Id``).

    ``data`` by ``type`` (records as the API's GET of that record answers them):

    - ``lead.created``: {lead}
    - ``lead.qualified``: {lead_id, contact_id, account_id, opportunity_id, by}
      (ids null for what the qualification did not create or link)
    - ``lead.disqualified``: {lead_id, reason, note, by}
    - ``opportunity.created``, ``opportunity.won``, ``opportunity.lost``: {opportunity, by}
    - ``opportunity.stage_changed``: {opportunity, from, to, by}
    - ``task.due``: {task (as GET /api/v1/activities/<id>)}
    - ``campaign.finished``: {campaign (as GET /api/v1/campaigns/<id>, with its stats)}
    - ``person.unsubscribed``: {email, lead_id, contact_id, campaign_id}
    - ``person.erased``: {email_sha256, lead_id, contact_id} (the address itself is gone)
    - ``segment.entered``, ``segment.exited``: {segment_id, person: {type, id, email}}
    """

    id = fields.String()
    type = fields.String(validate=validate.OneOf(WEBHOOK_EVENTS))
    created_at = fields.String()
    data = fields.Dict()
