"""Suppressions: the addresses never mailed again, and why."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from outreach.schemas.common import PageQuery
from outreach.vocabulary import SUPPRESSION_REASONS as REASONS


class SuppressionQuery(PageQuery):
    reason = fields.String(validate=validate.OneOf(REASONS))


class Suppression(Schema):
    email = fields.String(allow_none=True, metadata={
        "description": "the address (null for an erased person: only its hash is kept)"})
    email_hash = fields.String(metadata={"description": "SHA-256 of the normalised address"})
    reason = fields.String(validate=validate.OneOf(REASONS))
    at = fields.String(allow_none=True)
    campaign_id = fields.String(allow_none=True)
    reply = fields.String(allow_none=True, metadata={"description": "the relay's reply"})


class LiftedSuppression(Suppression):
    lifted = fields.Boolean()
