"""Leads, contacts and lists as the marketer API shows and accepts them."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_load, validate

from outreach.inputs import Email, InputSchema
from outreach.people.registration import email_as_given, profile_in
from outreach.schemas.common import PageQuery

LEAD_STATUSES = ("new", "qualified", "disqualified")


class RegistrationEntry(Schema):
    kind = fields.String()
    asset = fields.String()
    at = fields.String()


def _profile() -> dict[str, fields.Field]:
    return {
        name: fields.String(allow_none=True)
        for name in (
            "first_name", "last_name", "job_title", "company", "phone", "mobile_phone",
            "street", "city", "state", "postal_code", "country", "topic", "timezone",
        )
    }


Lead = Schema.from_dict(
    {
        "id": fields.String(required=True),
        "email": fields.String(required=True),
        **_profile(),
        "consent": fields.Boolean(),
        "consent_status": fields.String(
            validate=validate.OneOf(("none", "pending", "given", "withdrawn"))),
        "source": fields.String(),
        "latest_source": fields.String(),
        "referred_by": fields.String(allow_none=True),
        "status": fields.String(validate=validate.OneOf(LEAD_STATUSES)),
        "disqualify_reason": fields.String(allow_none=True),
        "disqualify_note": fields.String(allow_none=True),
        "score": fields.Integer(),
        "registrations": fields.List(fields.Nested(RegistrationEntry)),
        "contact_id": fields.String(allow_none=True),
        "opportunity_id": fields.String(allow_none=True),
        "owner": fields.String(allow_none=True),
        "created_at": fields.String(),
        "updated_at": fields.String(),
    },
    name="Lead",
)

Contact = Schema.from_dict(
    {
        "id": fields.String(required=True),
        "email": fields.String(required=True),
        **_profile(),
        "consent": fields.Boolean(),
        "consent_status": fields.String(),
        "account_id": fields.String(allow_none=True),
        "lead_id": fields.String(allow_none=True),
        "owner": fields.String(allow_none=True),
        "registrations": fields.List(fields.Nested(RegistrationEntry)),
        "created_at": fields.String(),
        "updated_at": fields.String(),
    },
    name="Contact",
)


class LeadPatch(InputSchema):
    email = Email()
    consent = fields.Boolean()
    owner = fields.String(validate=validate.Length(min=1, max=320))
    locals().update(profile_in())

    @post_load(pass_original=True)
    def _spelling(self, data: dict[str, Any], original: Any, **_kwargs: Any) -> dict[str, Any]:
        """The new address as written (``To:``); the old spelling never outlives an edit."""
        if data.get("email") and isinstance(original, dict):
            data["email_given"] = email_as_given(original.get("email"), data["email"])
        return data


class ContactPatch(InputSchema):
    """``PATCH /api/v1/contacts/<id>``: the owner, and the profile (an empty value clears)."""

    owner = fields.String(validate=validate.Length(min=1, max=320))
    locals().update(profile_in())


class LeadQuery(PageQuery):
    list = fields.String()
    status = fields.String(validate=validate.OneOf(LEAD_STATUSES))
    email = fields.String()


class ContactQuery(PageQuery):
    email = fields.String()
    account_id = fields.String()


class AssetRef(Schema):
    kind = fields.String()
    slug = fields.String()


class MarketingList(Schema):
    id = fields.String(required=True)
    name = fields.String()
    member_type = fields.String(validate=validate.OneOf(("lead", "contact", "account")))
    asset = fields.Nested(AssetRef, allow_none=True)
    parallel_list_id = fields.String(allow_none=True)
    size = fields.Integer()
    account_contacts = fields.String(metadata={
        "description": "account lists: 'all' consenting contacts of each account, or 'primary'"})


class ListIn(InputSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    member_type = fields.String(required=True,
                                validate=validate.OneOf(("lead", "contact", "account")))
    account_contacts = fields.String(load_default=None, allow_none=True,
                                     validate=validate.OneOf(("all", "primary")))


class MembersIn(InputSchema):
    emails = fields.List(fields.String(), load_default=list, validate=validate.Length(max=10000))
    account_ids = fields.List(fields.String(), load_default=list,
                              validate=validate.Length(max=10000))


class MembersAdded(Schema):
    added = fields.Integer()
    already_members = fields.Integer()
    unknown = fields.List(fields.String())


class Member(Schema):
    """A list member: a lead or a contact, with ``type`` saying which."""

    id = fields.String(required=True)
    type = fields.String()
    email = fields.String()
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    company = fields.String(allow_none=True)
    job_title = fields.String(allow_none=True)
    consent = fields.Boolean()
    status = fields.String(allow_none=True)
    score = fields.Integer(allow_none=True)
    account_id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    domain = fields.String(allow_none=True)
    primary_contact_id = fields.String(allow_none=True)
