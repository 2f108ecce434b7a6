"""Schemas shared by every endpoint: errors, pagination, timestamps."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from outreach.inputs import InputSchema


class ErrorBody(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    fields = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBody, required=True)


class PageQuery(InputSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None)


def page_of(item_schema: type[Schema]) -> type[Schema]:
    """``{"items": [...], "next_cursor": ...}`` around ``item_schema``."""
    name = item_schema.__name__.removesuffix("Schema") + "Page"
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "next_cursor": fields.String(allow_none=True, required=True),
        },
        name=name,
    )
