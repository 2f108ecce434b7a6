"""What a person's details may be when they come in, and their loading: a registration
(website form, ``POST /api/v1/registrations``, a row of a lead import) and a contact
(``POST /api/v1/contacts``, a row of a contact import).

The loaders live here, below ``schemas/``, because intake and the CSV import share them:
one validation path, whoever brings the person in. The API documents and calls these
same classes.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from outreach.inputs import ASSET_ERROR, SURROGATE, Email, InputSchema, no_trailing_newline
from outreach.normalize import InvalidEmail, checked_email
from outreach.vocabulary import ASSET_PATTERN, KINDS, SOURCES
from outreach.zones import iana_zone


def _zone(value: str) -> None:
    if not iana_zone(value):
        raise ValidationError("Not an IANA time zone name (e.g. Europe/Paris).")


def _zone_or_clear(value: str) -> None:
    """An edit's time zone: an IANA name, or empty to clear it (null clears it too)."""
    if value != "":
        _zone(value)


def _text(limit: int) -> fields.String:
    return fields.String(validate=validate.Length(max=limit))


class RegistrationIn(InputSchema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    asset = fields.String(
        required=True,
        validate=[validate.Regexp(ASSET_PATTERN, error=ASSET_ERROR), no_trailing_newline],
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
    timezone = fields.String(validate=_zone,
                             metadata={"description": "IANA time zone name, e.g. Europe/Paris."})
    source = fields.String(validate=validate.OneOf(SOURCES),
                           metadata={"description": "Where the lead came from (default web_form)."})
    referred_by = Email(metadata={"description": "Who recommended them (source referral)."})
    website = fields.String(metadata={"description": "Honeypot: leave empty."})
    redirect_to = fields.String(
        validate=validate.Length(max=2000),
        metadata={"description": "Form posts only: where to send the browser (allow-listed)."},
    )

    @validates_schema
    def _referral(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("referred_by") and data.get("source", "referral") != "referral":
            raise ValidationError("Only with source referral.", "referred_by")

    @post_load(pass_original=True)
    def _spelling(self, data: dict[str, Any], original: Any, **_kwargs: Any) -> dict[str, Any]:
        if isinstance(original, dict):
            given = email_as_given(original.get("email"), data["email"])
            if given:
                data["email_given"] = given
        return data


def email_as_given(raw: Any, email: str) -> str | None:
    """The address as the person wrote it (trimmed), when that differs from its normal
    form: mail shows it in ``To:`` (dedup, lists and the envelope use the normal form)."""
    if type(raw) is not str:
        return None
    given = raw.strip()
    return given if given != email else None


_ASSET = re.compile(ASSET_PATTERN.removeprefix("^").removesuffix("$"))
_SPECIAL_FIELDS = ("kind", "asset", "email", "consent", "source", "referred_by", "timezone")


def _plain_text_limits(schema: type[Schema]) -> dict[str, int | None]:
    """Every plain ``fields.String`` of ``schema`` with its ``Length`` maximum (None: no limit).

    Derived from the schema so that the fast path below cannot drift from it; a field
    with any other validator would need its own branch there, so it fails loudly here.
    """
    limits: dict[str, int | None] = {}
    for name, field in schema._declared_fields.items():
        if name in _SPECIAL_FIELDS:
            continue
        if type(field) is not fields.String or field.allow_none or field.required:
            raise TypeError(f"{schema.__name__}.{name}: teach load_registration about this field")
        maxima = []
        for validator in field.validators:
            if type(validator) is not validate.Length or validator.min or validator.equal:
                raise TypeError(f"{schema.__name__}.{name}: teach load_registration this validator")
            maxima.append(validator.max)
        limits[name] = min(maxima) if maxima else None
    return limits


_TEXT_LIMITS = tuple(_plain_text_limits(RegistrationIn).items())
_TRUTHY = fields.Boolean.truthy
_FALSY = fields.Boolean.falsy
_schema = RegistrationIn()


def load_registration(data: dict[str, Any]) -> dict[str, Any]:
    """``RegistrationIn().load(data)``, with a hand-written path for the usual valid post.

    Intake is the hottest endpoint and marshmallow's generic machinery costs about as
    much as the Redis write. The fast path accepts only what it can decide exactly as the
    schema would and returns the same dict; anything else (an error, a null, an odd type)
    goes through the schema, which produces the 422 and its messages.
    """
    loaded = _load_plain(data)
    return loaded if loaded is not None else _schema.load(data)


def _load_plain(data: dict[str, Any]) -> dict[str, Any] | None:
    kind, asset, email = data.get("kind"), data.get("asset"), data.get("email")
    if (
        type(kind) is not str or kind not in KINDS
        or type(asset) is not str or not _ASSET.fullmatch(asset)
        or type(email) is not str
    ):
        return None
    out: dict[str, Any] = {"kind": kind, "asset": asset, "consent": False}
    source, referred_by = data.get("source"), data.get("referred_by")
    if (source is None and "source" in data) or (referred_by is None and "referred_by" in data):
        return None  # null: the schema says "Field may not be null."
    if source is not None:
        if type(source) is not str or source not in SOURCES:
            return None
        out["source"] = source
    if referred_by is not None:
        if type(referred_by) is not str or source not in (None, "referral"):
            return None
        try:
            out["referred_by"] = checked_email(referred_by)
        except InvalidEmail:
            return None
    if "timezone" in data:
        if not iana_zone(data["timezone"]):
            return None
        out["timezone"] = data["timezone"]
    texts = [email]
    for name, limit in _TEXT_LIMITS:
        value = data.get(name)
        if value is None:
            if name in data:
                return None  # null: the schema says "Field may not be null."
            continue
        if type(value) is not str or (limit is not None and len(value) > limit):
            return None
        out[name] = value
        texts.append(value)
    if "consent" in data:
        consent = data["consent"]
        if consent is True or consent is False:
            out["consent"] = consent
        elif type(consent) is str and consent in _TRUTHY:
            out["consent"] = True
        elif type(consent) is str and consent in _FALSY:
            out["consent"] = False
        else:
            return None
    if SURROGATE.search("".join(texts)):
        return None
    try:
        out["email"] = checked_email(email)
    except InvalidEmail:
        return None
    given = email_as_given(email, out["email"])
    if given:
        out["email_given"] = given
    return out


def profile_in(limit_phone: int = 40) -> dict[str, fields.Field]:
    """The editable profile fields as a contact or a lead edit takes them."""
    out: dict[str, fields.Field] = {}
    for name in ("first_name", "last_name", "job_title", "company", "street", "city", "state",
                 "country", "topic"):
        out[name] = fields.String(allow_none=True, validate=validate.Length(max=200))
    for name in ("phone", "mobile_phone", "postal_code"):
        out[name] = fields.String(allow_none=True, validate=validate.Length(max=limit_phone))
    out["timezone"] = fields.String(allow_none=True, validate=_zone_or_clear, metadata={
        "description": "IANA time zone name, e.g. Europe/Paris (null or empty: none, so "
                       "OUTREACH_DEFAULT_TIMEZONE)"})
    return out


class ContactIn(InputSchema):
    email = Email(required=True)
    consent = fields.Boolean(allow_none=True)
    account_id = fields.String(allow_none=True)
    locals().update(profile_in())
