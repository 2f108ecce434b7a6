"""API keys as the API shows them (never the key itself)."""

from __future__ import annotations

from marshmallow import Schema, fields


class ApiKey(Schema):
    name = fields.String(required=True)
    role = fields.String(allow_none=True, required=True,
                         metadata={"description": "admin, marketer or sales; a user's key has the "
                                                  "user's role (null: the user is gone)"})
    user = fields.String(allow_none=True, required=True)
    created_at = fields.String(allow_none=True, required=True)
    last_used_at = fields.String(allow_none=True, required=True,
                                 metadata={"description": "to the minute"})


class ApiKeyList(Schema):
    items = fields.List(fields.Nested(ApiKey), required=True)
