"""Registration intake: what a website form gets back (what it may post is
``people.registration.RegistrationIn``, the loader intake and the CSV import share)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class RegistrationAccepted(Schema):
    id = fields.String(required=True)
    status = fields.String(required=True)


class PersonRef(Schema):
    type = fields.String(required=True, validate=validate.OneOf(("lead", "contact")))
    id = fields.String(required=True)


class RegistrationStatus(Schema):
    id = fields.String(required=True)
    status = fields.String(
        required=True, validate=validate.OneOf(("accepted", "processed", "rejected"))
    )
    person = fields.Nested(PersonRef, allow_none=True)
    lists = fields.List(fields.String())
