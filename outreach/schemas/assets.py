"""Assets and their form settings, as the marketer API shows and accepts them."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, validate, validates_schema
from marshmallow import fields as f

from outreach.inputs import ASSET_ERROR, InputSchema, no_trailing_newline
from outreach.vocabulary import ASSET_PATTERN, FORM_FIELDS, KINDS

_REQUIRABLE = (*FORM_FIELDS, "consent")


class FormSettingsIn(InputSchema):
    fields = f.List(f.String(validate=validate.OneOf(FORM_FIELDS)),
                         metadata={"description": "Optional fields the form asks for."})
    required = f.List(f.String(validate=validate.OneOf(_REQUIRABLE)),
                           metadata={"description": "Fields every registration must fill (422)."})
    consent_text = f.String(validate=validate.Length(min=1, max=2000),
                                 metadata={"description": "Consent wording; a change is a new version."})
    double_opt_in = f.Boolean()
    thank_you_message = f.String(allow_none=True, validate=validate.Length(max=2000))
    redirect_to = f.Url(allow_none=True, schemes={"http", "https"}, require_tld=False)
    proof_of_work = f.Boolean(metadata={"description": "ALTCHA proof of work (needs JavaScript)."})
    min_fill_seconds = f.Integer(validate=validate.Range(min=0, max=600),
                                      metadata={"description": "Bot check: faster form posts are dropped."})


class AssetIn(InputSchema):
    slug = f.String(required=True, validate=[validate.Regexp(ASSET_PATTERN, error=ASSET_ERROR),
                                                  no_trailing_newline])
    kind = f.String(required=True, validate=validate.OneOf(KINDS))
    title = f.String(validate=validate.Length(max=300))
    description = f.String(allow_none=True, validate=validate.Length(max=5000))
    starts_at = f.DateTime(allow_none=True, format="iso")
    location = f.String(allow_none=True, validate=validate.Length(max=300))
    form = f.Nested(FormSettingsIn)

    @validates_schema
    def _event_only(self, data: dict[str, Any], partial: Any = None, **_kwargs: Any) -> None:
        if data.get("kind") == "white_paper":
            for name in ("starts_at", "location"):
                if data.get(name):
                    raise ValidationError("Only events have this.", name)


class AssetPatch(AssetIn):
    class Meta:
        exclude = ("slug",)


class FormSettings(Schema):
    fields = f.List(f.String())
    required = f.List(f.String())
    consent_text = f.String()
    consent_version = f.Integer(allow_none=True)
    double_opt_in = f.Boolean()
    thank_you_message = f.String(allow_none=True)
    redirect_to = f.String(allow_none=True)
    min_fill_seconds = f.Integer()
    proof_of_work = f.Boolean()


class Asset(Schema):
    slug = f.String(required=True)
    kind = f.String()
    title = f.String()
    description = f.String(allow_none=True)
    starts_at = f.String(allow_none=True)
    location = f.String(allow_none=True)
    form = f.Nested(FormSettings)
    lead_list_id = f.String(allow_none=True)
    contact_list_id = f.String(allow_none=True)
    form_url = f.String()
    embed_snippet = f.String()
    created_at = f.String(allow_none=True)
    updated_at = f.String(allow_none=True)
