"""Journeys as the marketer API accepts and shows them (API.md, "Journeys")."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from outreach.errors import Invalid
from outreach.inputs import InputSchema
from outreach.journeys import definition


class JourneyIn(InputSchema):
    """Shape checked here (a bad step: ``fields`` key ``steps.<i>``, the message names it);
    the graph and what it names are checked on activation (and on a new version)."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    trigger = fields.Raw(required=True)
    steps = fields.Raw(required=True)
    settings = fields.Raw(load_default=None)

    @validates_schema
    def _definition(self, data: dict[str, Any], **_kwargs: Any) -> None:
        try:
            definition.check_shape(data)
        except Invalid as exc:
            raise ValidationError(exc.fields or {"steps": [exc.message]}) from exc


class StepStats(Schema):
    entered = fields.Integer()
    waiting = fields.Integer()
    done = fields.Integer()
    sent = fields.Integer()
    opened = fields.Integer()
    clicked = fields.Integer()
    failed = fields.Integer()
    unknown = fields.Integer()


class JourneyStats(Schema):
    enrolled = fields.Integer()
    active = fields.Integer()
    completed = fields.Integer()
    exited = fields.Integer()
    stopped = fields.Integer()
    goal_reached = fields.Integer()
    steps = fields.Dict(keys=fields.String(), values=fields.Nested(StepStats))


class Journey(Schema):
    id = fields.String()
    name = fields.String()
    status = fields.String()
    version = fields.Integer()
    trigger = fields.Raw()
    steps = fields.Raw()
    settings = fields.Raw()
    created_at = fields.Float()
    updated_at = fields.Float()
    activated_at = fields.Float()
    status_reason = fields.String()
    send_campaigns = fields.List(fields.Dict())
    stats = fields.Nested(JourneyStats)


class EnrollIn(InputSchema):
    emails = fields.List(fields.String(), required=True, validate=validate.Length(min=1, max=1000))


class Skipped(Schema):
    email = fields.String()
    reason = fields.String()


class Enrolled(Schema):
    enrolled = fields.Integer()
    skipped = fields.List(fields.Nested(Skipped))


class HistoryEntry(Schema):
    step = fields.String(allow_none=True)
    at = fields.Float()
    outcome = fields.String()


class Enrollment(Schema):
    email = fields.String()
    person = fields.String()
    version = fields.Integer()
    step = fields.String(allow_none=True)
    status = fields.String()
    entered_at = fields.Float()
    next_at = fields.Float(allow_none=True)
    history = fields.List(fields.Dict())


class EnrollmentQuery(InputSchema):
    email = fields.String(load_default=None)
    step = fields.String(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(
        ("active", "done", "exited", "stopped")))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None)
