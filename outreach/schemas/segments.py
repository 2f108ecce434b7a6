"""Segments as the marketer API accepts and shows them (API.md, "Segments")."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from outreach.errors import Invalid
from outreach.inputs import Email, InputSchema
from outreach.people.segments.rules import MEMBER_TYPES, check
from outreach.schemas.people import Member

_RULES_HELP = ('A tree: {"all": [...]}, {"any": [...]}, {"not": rule} or one condition '
               '(field/op/value, registered, sent, opened, clicked, in_list, in_segment, account).')


class _RulesChecked(InputSchema):
    """A 422 on a bad rule names the path of the bad node (``rules.all.2.op``)."""

    @validates_schema
    def _rules(self, data: dict[str, Any], partial: Any = None, **_kwargs: Any) -> None:
        if "rules" not in data:
            return
        try:
            check(data["rules"])
        except Invalid as exc:
            raise ValidationError(exc.fields or {"rules": [exc.message]}) from exc


class SegmentIn(_RulesChecked):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    member_type = fields.String(required=True, validate=validate.OneOf(MEMBER_TYPES))
    rules = fields.Raw(required=True, metadata={"description": _RULES_HELP})


class SegmentPatch(_RulesChecked):
    name = fields.String(validate=validate.Length(min=1, max=200))
    member_type = fields.String(validate=validate.OneOf(MEMBER_TYPES))
    rules = fields.Raw(metadata={"description": _RULES_HELP})


class PreviewIn(_RulesChecked):
    member_type = fields.String(required=True, validate=validate.OneOf(MEMBER_TYPES))
    rules = fields.Raw(required=True, metadata={"description": _RULES_HELP})


class BuildProgress(Schema):
    state = fields.String(metadata={"description": "building | ready"})
    done = fields.Integer(metadata={"description": "people evaluated so far"})
    total = fields.Integer(metadata={"description": "people to evaluate"})


class Segment(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    member_type = fields.String(required=True)
    rules = fields.Raw(required=True)
    size = fields.Integer(required=True)
    lag_seconds = fields.Float(required=True)
    build = fields.Nested(BuildProgress)
    created_at = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)


class SegmentMember(Member):
    """A segment member: a lead or a contact, with ``type`` saying which."""


class Preview(Schema):
    count = fields.Integer(required=True)
    sample = fields.List(fields.Nested(SegmentMember), required=True)
    complete = fields.Boolean(metadata={"description": "false: the time budget ended the scan "
                                                      "first and count is a lower bound"})


class ExplainQuery(InputSchema):
    email = Email(required=True)


class ExplainNode(Schema):
    path = fields.String(required=True)
    value = fields.Boolean(required=True)
    because = fields.String(required=True)


class Explanation(Schema):
    member = fields.Boolean(required=True)
    since = fields.String(allow_none=True, required=True)
    rules = fields.List(fields.Nested(ExplainNode), required=True)
