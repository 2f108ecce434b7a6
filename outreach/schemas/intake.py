"""Registration intake: what a website form may post, and what it gets back."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from outreach.normalize import InvalidEmail, checked_email
from outreach.schemas.common import InputSchema

KINDS = ("white_paper", "event")
ASSET_PATTERN = r"^[a-z0-9-]{1,80}$"
_ASSET_ERROR = "Must match [a-z0-9-]{{1,80}}."


def _no_trailing_newline(value: str) -> None:
    # ``$`` also matches before a final newline: "guide\n" must not pass the slug rule
    if value.endswith("\n"):
        raise ValidationError(_ASSET_ERROR.format())


PROFILE_FIELDS = (
    "first_name", "last_name", "job_title", "company", "phone", "mobile_phone", "street",
    "city", "state", "postal_code", "country", "topic", "utm_source", "utm_medium",
    "utm_campaign",
)


class Email(fields.String):
    """A syntactically valid address, normalised (trimmed, NFC, case-folded)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return checked_email(text)
        except InvalidEmail as exc:
            raise ValidationError(str(exc)) from exc


def _text(limit: int) -> fields.String:
    return fields.String(validate=validate.Length(max=limit))


class RegistrationIn(InputSchema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    asset = fields.String(
        required=True,
        validate=[validate.Regexp(ASSET_PATTERN, error=_ASSET_ERROR), _no_trailing_newline],
    )
    email = Email(required=True)
    first_name = _text(200)
    last_name = _text(200)
    job_title = _text(200)
    company = _text(200)
    phone = _text(40)
    mobile_phone = _text(40)
    street = _text(200)
    city = _text(200)
    state = _text(200)
    postal_code = _text(40)
    country = _text(200)
    consent = fields.Boolean(load_default=False)
    topic = _text(200)
    utm_source = _text(200)
    utm_medium = _text(200)
    utm_campaign = _text(200)
    website = fields.String(metadata={"description": "Honeypot: leave empty."})
    redirect_to = fields.String(
        validate=validate.Length(max=2000),
        metadata={"description": "Form posts only: where to send the browser (allow-listed)."},
    )


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
