"""Marketer endpoints: templates and campaigns."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

from outreach.campaigns import follow_ups, lifecycle, model, recipients, reports, templates
from outreach.campaigns.experiments import decision
from outreach.schemas.campaigns import (
    BuiltinTemplate,
    Campaign,
    CampaignIn,
    DecideIn,
    Experiment,
    FollowUpIn,
    Recipient,
    RecipientQuery,
    Report,
    RetryResult,
    Template,
    TemplateIn,
)
from outreach.schemas.common import PageQuery, page_of
from outreach.web.api.auth import access, caller, require_api_key
from outreach.web.common import config, load_body, load_query, store
from outreach.web.openapi import operation

bp = Blueprint("campaigns", __name__)
require_api_key(bp)

_campaign = Campaign()
TemplatePage = page_of(Template)
CampaignPage = page_of(Campaign)
RecipientPage = page_of(Recipient)


def jobs() -> Any:
    return current_app.extensions["outreach.jobs"]


@bp.before_request
def _room_for_templates() -> None:
    """MAX_CONTENT_LENGTH is sized for the public intake; a template body carries three
    sources of up to ``template_max_source_bytes`` each (JSON-escaped), so allow that."""
    cfg = config()
    request.max_content_length = max(cfg.max_content_length,
                                     6 * cfg.template_max_source_bytes + 64 * 1024)


@bp.post("/api/v1/templates")
@access("templates", "write")
@operation("Create an email template (Jinja2, sandboxed)", body=TemplateIn,
           responses={201: Template}, tag="campaigns")
def post_template() -> Any:
    created = templates.create_template(store(), config(), load_body(TemplateIn()))
    return jsonify(Template().dump(created)), 201


@bp.get("/api/v1/templates")
@access("templates", "read")
@operation("Templates", query=PageQuery, responses={200: TemplatePage}, tag="campaigns")
def get_templates() -> Any:
    q = load_query(PageQuery())
    return jsonify(TemplatePage().dump(
        templates.find_templates(store(), limit=q["limit"], cursor=q["cursor"])))


@bp.get("/api/v1/templates/builtin")
@access("templates", "read")
@operation("Built-in templates to start from", responses={200: BuiltinTemplate(many=True)},
           tag="campaigns")
def get_builtin_templates() -> Any:
    return jsonify(BuiltinTemplate(many=True).dump(templates.builtin_templates()))


@bp.get("/api/v1/templates/<template_id>")
@access("templates", "read")
@operation("Read a template", responses={200: Template}, errors=(404,), tag="campaigns")
def get_template(template_id: str) -> Any:
    return jsonify(Template().dump(templates.get_template(store(), template_id)))


@bp.post("/api/v1/campaigns")
@access("campaigns", "write")
@operation("Create a campaign", body=CampaignIn, responses={201: Campaign}, tag="campaigns")
def post_campaign() -> Any:
    created = model.create_campaign(store(), config(), load_body(CampaignIn()))
    return jsonify(_campaign.dump(created)), 201


@bp.get("/api/v1/campaigns")
@access("campaigns", "read")
@operation("Campaigns", query=PageQuery, responses={200: CampaignPage}, tag="campaigns")
def get_campaigns() -> Any:
    q = load_query(PageQuery())
    return jsonify(CampaignPage().dump(
        model.find_campaigns(store(), limit=q["limit"], cursor=q["cursor"])))


@bp.get("/api/v1/campaigns/<campaign_id>")
@access("campaigns", "read")
@operation("Read a campaign with stats and progress", responses={200: Campaign}, errors=(404,),
           tag="campaigns")
def get_campaign(campaign_id: str) -> Any:
    return jsonify(_campaign.dump(model.get_campaign(store(), campaign_id)))


@bp.post("/api/v1/campaigns/<campaign_id>/launch")
@access("campaigns", "write")
@operation("Launch now, or at send_at", responses={200: Campaign}, errors=(404, 409),
           tag="campaigns")
def launch(campaign_id: str) -> Any:
    return jsonify(_campaign.dump(lifecycle.launch(store(), jobs(), campaign_id)))


@bp.post("/api/v1/campaigns/<campaign_id>/pause")
@access("campaigns", "write")
@operation("Pause sending", responses={200: Campaign}, errors=(404, 409), tag="campaigns")
def pause(campaign_id: str) -> Any:
    return jsonify(_campaign.dump(lifecycle.pause(store(), campaign_id)))


@bp.post("/api/v1/campaigns/<campaign_id>/resume")
@access("campaigns", "write")
@operation("Resume a paused campaign (never resends)", responses={200: Campaign},
           errors=(404, 409), tag="campaigns")
def resume(campaign_id: str) -> Any:
    return jsonify(_campaign.dump(lifecycle.resume(store(), jobs(), campaign_id)))


@bp.post("/api/v1/campaigns/<campaign_id>/cancel")
@access("campaigns", "write")
@operation("Cancel", responses={200: Campaign}, errors=(404, 409), tag="campaigns")
def cancel(campaign_id: str) -> Any:
    return jsonify(_campaign.dump(lifecycle.cancel(store(), campaign_id)))


@bp.get("/api/v1/campaigns/<campaign_id>/recipients")
@access("campaigns", "read")
@operation("Per-recipient outcomes", query=RecipientQuery, responses={200: RecipientPage},
           errors=(404, 410), tag="campaigns")
def get_recipients(campaign_id: str) -> Any:
    q = load_query(RecipientQuery())
    return jsonify(RecipientPage().dump(recipients.recipients(
        store(), campaign_id, status=q.get("status"), limit=q["limit"], cursor=q["cursor"])))


@bp.post("/api/v1/campaigns/<campaign_id>/retry-failed")
@access("campaigns", "write")
@operation("Send again only to failed recipients", responses={200: RetryResult},
           errors=(404, 409), tag="campaigns")
def retry_failed(campaign_id: str) -> Any:
    result = lifecycle.retry_failed(store(), jobs(), campaign_id, config().send_batch_size)
    return jsonify(RetryResult().dump(result))


@bp.get("/api/v1/campaigns/<campaign_id>/report")
@access("campaigns", "read")
@operation("The campaign's report: rates, links, hours, receiving domains",
           responses={200: Report}, errors=(404,), tag="campaigns")
def get_report(campaign_id: str) -> Any:
    return jsonify(Report().dump(reports.campaign_report(store(), campaign_id)))


@bp.post("/api/v1/campaigns/<campaign_id>/follow-up")
@access("campaigns", "write")
@operation("A draft campaign to the recipients who did not open (or click)", body=FollowUpIn,
           responses={201: Campaign}, errors=(404, 409), tag="campaigns")
def post_follow_up(campaign_id: str) -> Any:
    created = follow_ups.create_follow_up(store(), config(), campaign_id, load_body(FollowUpIn()))
    return jsonify(_campaign.dump(created)), 201


@bp.get("/api/v1/campaigns/<campaign_id>/experiment")
@access("campaigns", "read")
@operation("The campaign's A/B experiment: per variant sent, opened, clicked, rate and its "
           "interval; the decision and its method", responses={200: Experiment}, errors=(404,),
           tag="campaigns")
def get_experiment(campaign_id: str) -> Any:
    return jsonify(Experiment().dump(decision.experiment_view(store(), campaign_id)))


@bp.post("/api/v1/campaigns/<campaign_id>/experiment/decide")
@access("campaigns", "write")
@operation("Decide the experiment by hand: the rest of the audience gets this variant",
           body=DecideIn, responses={200: Experiment}, errors=(404, 409, 422), tag="campaigns")
def decide_experiment(campaign_id: str) -> Any:
    body = load_body(DecideIn())
    return jsonify(Experiment().dump(decision.decide_by_hand(
        store(), jobs(), campaign_id, body["variant"], caller())))
