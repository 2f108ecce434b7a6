"""Qualification, accounts, opportunities, conversion and the funnel."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from outreach.inputs import InputSchema
from outreach.schemas.common import PageQuery
from outreach.vocabulary import DISQUALIFY_REASONS, LOST_REASONS, STAGES


class QualifyIn(InputSchema):
    estimated_revenue = fields.Float(allow_none=True, validate=validate.Range(min=0))
    estimated_close_date = fields.Date(allow_none=True)
    probability = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=100))
    create_account = fields.Boolean(load_default=True)
    create_contact = fields.Boolean(load_default=True)
    create_opportunity = fields.Boolean(load_default=True)
    account_id = fields.String(allow_none=True, validate=validate.Length(max=64))
    contact_id = fields.String(allow_none=True, validate=validate.Length(max=64))
    on_duplicate = fields.String(allow_none=True, validate=validate.OneOf(("link", "create")))
    owner = fields.String(allow_none=True, validate=validate.Length(max=320))


class QualifyResult(Schema):
    lead_id = fields.String()
    contact_id = fields.String(allow_none=True)
    account_id = fields.String(allow_none=True)
    opportunity_id = fields.String(allow_none=True)


class PossibleDuplicate(Schema):
    account_id = fields.String()
    name = fields.String()


class DisqualifyIn(InputSchema):
    reason = fields.String(required=True, validate=validate.OneOf(DISQUALIFY_REASONS))
    note = fields.String(allow_none=True, validate=validate.Length(max=2000))


class Account(Schema):
    id = fields.String(required=True)
    name = fields.String(allow_none=True)
    domain = fields.String(allow_none=True)
    owner = fields.String(allow_none=True)
    primary_contact_id = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)


class AccountPatch(InputSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    owner = fields.String(validate=validate.Length(max=320))
    primary_contact_id = fields.String(validate=validate.Length(max=64))


class StageEntry(Schema):
    stage = fields.String()
    at = fields.String()
    by = fields.String(allow_none=True)


class Opportunity(Schema):
    id = fields.String(required=True)
    topic = fields.String(allow_none=True)
    lead_id = fields.String(allow_none=True)
    contact_id = fields.String(allow_none=True)
    account_id = fields.String(allow_none=True)
    estimated_revenue = fields.Float(allow_none=True)
    estimated_close_date = fields.String(allow_none=True)
    probability = fields.Integer(allow_none=True)
    status = fields.String(validate=validate.OneOf(("open", "won", "lost")))
    owner = fields.String(allow_none=True)
    stage = fields.String(validate=validate.OneOf(STAGES))
    stage_history = fields.List(fields.Nested(StageEntry))
    actual_revenue = fields.Float(allow_none=True)
    actual_close_date = fields.String(allow_none=True)
    lost_reason = fields.String(allow_none=True)
    competitor = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)
    closed_at = fields.String(allow_none=True)


class OpportunityPatch(InputSchema):
    topic = fields.String(validate=validate.Length(min=1, max=200))
    contact_id = fields.String()
    account_id = fields.String()
    estimated_revenue = fields.Float(allow_none=True, validate=validate.Range(min=0))
    estimated_close_date = fields.Date(allow_none=True)
    probability = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=100))
    status = fields.String(validate=validate.OneOf(("open", "won", "lost")))
    stage = fields.String(validate=validate.OneOf(STAGES))
    owner = fields.String(validate=validate.Length(max=320))
    actual_revenue = fields.Float(allow_none=True, validate=validate.Range(min=0))
    lost_reason = fields.String(validate=validate.OneOf(LOST_REASONS))
    competitor = fields.String(allow_none=True, validate=validate.Length(max=200))


class OpportunityQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(("open", "won", "lost")))
    stage = fields.String(validate=validate.OneOf(STAGES))
    account_id = fields.String()
    owner = fields.String(validate=validate.Length(max=320))


class PipelineStage(Schema):
    stage = fields.String()
    count = fields.Integer()
    estimated_revenue = fields.Float()
    weighted_revenue = fields.Float()


class ForecastMonth(Schema):
    month = fields.String()
    count = fields.Integer()
    estimated_revenue = fields.Float()
    weighted_revenue = fields.Float()


class PipelineWon(Schema):
    count = fields.Integer()
    revenue = fields.Float()


class PipelineLost(Schema):
    count = fields.Integer()
    by_reason = fields.Dict(keys=fields.String(), values=fields.Integer())


class Pipeline(Schema):
    stages = fields.List(fields.Nested(PipelineStage))
    forecast = fields.List(fields.Nested(ForecastMonth))
    won = fields.Nested(PipelineWon)
    lost = fields.Nested(PipelineLost)


class ConversionResult(Schema):
    promoted = fields.Integer()
    opportunity_ids = fields.List(fields.String())


class ErasureJob(Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "queued | running | done"})
    status_url = fields.String()
    erased = fields.Boolean(metadata={"description": "once done"})
    lead_id = fields.String(allow_none=True)
    contact_id = fields.String(allow_none=True)
    campaigns_scrubbed = fields.Integer()
    queued_registrations_dropped = fields.Integer()


class Erased(Schema):
    erased = fields.Boolean()
    lead_id = fields.String(allow_none=True)
    contact_id = fields.String(allow_none=True)
    campaigns_scrubbed = fields.Integer()
    queued_registrations_dropped = fields.Integer()


class FunnelLeads(Schema):
    total = fields.Integer()
    new = fields.Integer()
    qualified = fields.Integer()
    disqualified = fields.Integer()


class FunnelOpportunities(Schema):
    open = fields.Integer()
    won = fields.Integer()
    lost = fields.Integer()


class FunnelRates(Schema):
    lead_to_qualified = fields.Float(allow_none=True)
    engaged_to_qualified = fields.Float(allow_none=True)
    opportunity_win = fields.Float(allow_none=True)


class Funnel(Schema):
    leads = fields.Nested(FunnelLeads)
    engaged_leads = fields.Integer()
    contacts = fields.Integer()
    accounts = fields.Integer()
    opportunities = fields.Nested(FunnelOpportunities)
    rates = fields.Nested(FunnelRates)
    promotion_threshold = fields.Integer()
