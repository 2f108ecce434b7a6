"""Marketer endpoints: qualify/disqualify, accounts, opportunities, conversion, funnel, erase."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

from outreach.errors import Invalid
from outreach.people import records
from outreach.privacy import erasure
from outreach.sales import accounts, opportunities
from outreach.sales import qualify as qualification
from outreach.sales.owners import normal_owner_query
from outreach.schemas.common import PageQuery, page_of
from outreach.schemas.crm import (
    Account,
    ConversionResult,
    DisqualifyIn,
    ErasureJob,
    Funnel,
    Opportunity,
    OpportunityPatch,
    OpportunityQuery,
    QualifyIn,
    QualifyResult,
)
from outreach.schemas.people import Lead
from outreach.web.api.auth import access, caller, caller_user, require_api_key
from outreach.web.common import config, load_body, load_query, store
from outreach.web.openapi import operation

bp = Blueprint("crm", __name__)
require_api_key(bp)

AccountPage = page_of(Account)
OpportunityPage = page_of(Opportunity)


@bp.post("/api/v1/leads/<lead_id>/qualify")
@access("people", "write")
@operation("Qualify: account + contact + opportunity (repeating returns the same ids); 409 "
           "possible_duplicates with error.possible_duplicates [{account_id, name}] when a new "
           "account would be made while similar ones exist and on_duplicate is absent",
           body=QualifyIn, responses={200: QualifyResult}, errors=(404, 409, 422), tag="conversion")
def qualify(lead_id: str) -> Any:
    data = load_body(QualifyIn())
    result = qualification.qualify(store(), config(), lead_id, **data, by=caller(), me=caller_user())
    return jsonify(QualifyResult().dump(result))


@bp.post("/api/v1/leads/<lead_id>/disqualify")
@access("people", "write")
@operation("Disqualify with a reason", body=DisqualifyIn, responses={200: Lead},
           errors=(404, 409), tag="conversion")
def disqualify(lead_id: str) -> Any:
    data = load_body(DisqualifyIn())
    qualification.disqualify(store(), lead_id, data["reason"], data.get("note"), by=caller())
    return jsonify(Lead().dump(records.get_lead(store(), lead_id)))


@bp.post("/api/v1/leads/<lead_id>/reactivate")
@access("people", "write")
@operation("Reactivate a disqualified lead", responses={200: Lead}, errors=(404, 409),
           tag="conversion")
def reactivate(lead_id: str) -> Any:
    qualification.reactivate(store(), lead_id, by=caller())
    return jsonify(Lead().dump(records.get_lead(store(), lead_id)))


@bp.get("/api/v1/accounts")
@access("people", "read")
@operation("Accounts", query=PageQuery, responses={200: AccountPage}, tag="conversion")
def get_accounts() -> Any:
    q = load_query(PageQuery())
    return jsonify(AccountPage().dump(accounts.find_accounts(store(), limit=q["limit"], cursor=q["cursor"])))


@bp.get("/api/v1/accounts/<account_id>")
@access("people", "read")
@operation("Read an account", responses={200: Account}, errors=(404,), tag="conversion")
def get_account(account_id: str) -> Any:
    return jsonify(Account().dump(accounts.get_account(store(), account_id)))


@bp.get("/api/v1/opportunities")
@access("opportunities", "read")
@operation("Opportunities", query=OpportunityQuery, responses={200: OpportunityPage},
           tag="conversion")
def get_opportunities() -> Any:
    q = load_query(OpportunityQuery())
    owner = normal_owner_query(q.get("owner"), caller_user())
    result = opportunities.find_opportunities(store(), limit=q["limit"], cursor=q["cursor"],
                                    status=q.get("status"), account_id=q.get("account_id"),
                                    owner=owner, stage=q.get("stage"))
    return jsonify(OpportunityPage().dump(result))


@bp.get("/api/v1/opportunities/<opp_id>")
@access("opportunities", "read")
@operation("Read an opportunity", responses={200: Opportunity}, errors=(404,), tag="conversion")
def get_opportunity(opp_id: str) -> Any:
    return jsonify(Opportunity().dump(opportunities.get_opportunity(store(), opp_id)))


@bp.patch("/api/v1/opportunities/<opp_id>")
@access("opportunities", "write")
@operation("Edit an opportunity; move its stage; reassign it; close it as won (actual_revenue) "
           "or lost (lost_reason required, competitor); reopen it (status open)",
           body=OpportunityPatch, responses={200: Opportunity}, errors=(404, 422), tag="conversion")
def patch_opportunity(opp_id: str) -> Any:
    changes = load_body(OpportunityPatch())
    return jsonify(Opportunity().dump(opportunities.update_opportunity(store(), opp_id, changes,
                                                             by=caller())))


@bp.post("/api/v1/conversions/run")
@access("opportunities", "write")
@operation("Promote now every lead whose engagement reached the threshold",
           responses={200: ConversionResult}, tag="conversion")
def run_conversion() -> Any:
    return jsonify(ConversionResult().dump(qualification.run_conversion(store(), config())))


@bp.get("/api/v1/funnel")
@access("dashboard", "read")
@operation("Funnel counts and conversion rates", responses={200: Funnel}, tag="conversion")
def get_funnel() -> Any:
    by = request.args.get("by")
    if by == "source":
        from outreach.people.funnel import funnel_by_source

        return jsonify(funnel_by_source(store(), config()))
    if by:
        raise Invalid("Validation failed.", {"by": ["Must be one of: source."]})
    return jsonify(Funnel().dump(qualification.funnel(store(), config())))


@bp.delete("/api/v1/people/<path:email>")
@access("privacy", "write")
@operation("Erase everything held about an address; keep only a hashed suppression. 202: "
           "nothing mails the address from now on; the erasure runs as a job "
           "(status_url)", responses={202: ErasureJob}, errors=(422,), tag="people")
def erase(email: str) -> Any:
    job = erasure.start_erasure(store(), email, config().base_url)
    current_app.extensions["outreach.erasure_kick"]()
    return jsonify(ErasureJob().dump(job)), 202, {"Location": job["status_url"]}


@bp.get("/api/v1/erasures/<job_id>")
@access("privacy", "read")
@operation("An erasure job: its status, and its result once done", responses={200: ErasureJob},
           errors=(404,), tag="people")
def get_erasure(job_id: str) -> Any:
    return jsonify(ErasureJob().dump(erasure.erasure_status(store(), job_id, config().base_url)))
