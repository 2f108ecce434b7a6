"""Schemas shared by every endpoint: errors, pagination, timestamps."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

SURROGATE = re.compile("[\ud800-\udfff]")


class InputSchema(Schema):
    """Unknown fields are ignored (API.md)."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _reject_lone_surrogates(self, data: Any, **_kwargs: Any) -> Any:
        """JSON may carry ``"\\ud800"``: such text can be neither stored nor encoded."""
        if not isinstance(data, dict):
            return data
        bad = {}
        for name, value in data.items():
            if name not in self.load_fields:
                continue
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and SURROGATE.search(v) for v in values):
                bad[name] = ["Not valid Unicode text."]
        if bad:
            raise ValidationError(bad)
        return data


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
