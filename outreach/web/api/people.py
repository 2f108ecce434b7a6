"""Marketer endpoints: registrations, leads and contacts."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from outreach.people import records, scoring
from outreach.people.intake import registration_status
from outreach.people.registration import ContactIn
from outreach.sales.owners import checked_owner, set_owner
from outreach.schemas.common import page_of
from outreach.schemas.intake import RegistrationStatus
from outreach.schemas.people import Contact, ContactQuery, Lead, LeadPatch, LeadQuery, LeadScore
from outreach.web.api.auth import access, caller, require_api_key
from outreach.web.common import config, load_body, load_query, store
from outreach.web.openapi import operation

bp = Blueprint("people", __name__)
require_api_key(bp)

_lead = Lead()
_contact = Contact()
LeadPage = page_of(Lead)
ContactPage = page_of(Contact)


@bp.get("/api/v1/registrations/<registration_id>")
@access("people", "read")
@operation("Where a registration is", responses={200: RegistrationStatus}, errors=(404,),
           tag="intake")
def get_registration(registration_id: str) -> Any:
    return jsonify(RegistrationStatus().dump(registration_status(store(), registration_id)))


@bp.get("/api/v1/leads")
@access("people", "read")
@operation("Find leads", query=LeadQuery, responses={200: LeadPage}, errors=(404,), tag="people")
def list_leads() -> Any:
    q = load_query(LeadQuery())
    result = records.find_leads(
        store(), limit=q["limit"], cursor=q["cursor"], list_id=q.get("list"),
        status=q.get("status"), email=q.get("email"),
    )
    return jsonify(LeadPage().dump(result))


@bp.get("/api/v1/leads/<lead_id>")
@access("people", "read")
@operation("Read a lead", responses={200: Lead}, errors=(404,), tag="people")
def get_lead(lead_id: str) -> Any:
    return jsonify(_lead.dump(records.get_lead(store(), lead_id)))


@bp.get("/api/v1/leads/<lead_id>/score")
@access("people", "read")
@operation("A lead's score: each scored event with its original and current points",
           responses={200: LeadScore}, errors=(404,), tag="people")
def get_lead_score(lead_id: str) -> Any:
    s = store()
    records.get_lead(s, lead_id)  # 404 for an unknown lead
    return jsonify(LeadScore().dump(scoring.score_items(s, config(), lead_id)))


@bp.patch("/api/v1/leads/<lead_id>")
@access("people", "write")
@operation("Edit a lead", body=LeadPatch, responses={200: Lead}, errors=(404, 409), tag="people")
def patch_lead(lead_id: str) -> Any:
    changes = load_body(LeadPatch())
    owner = changes.pop("owner", None)
    if owner:  # checked first: a bad owner changes nothing
        checked_owner(store(), owner)
    lead = records.update_lead(store(), lead_id, changes, how="api", **_client())
    if owner:
        set_owner(store(), "lead", lead_id, owner, caller())
        lead = records.get_lead(store(), lead_id)
    return jsonify(_lead.dump(lead))


def _client() -> dict[str, str | None]:
    """Who made a consent change, for its evidence."""
    return {"ip": request.remote_addr, "user_agent": request.headers.get("User-Agent")}


@bp.post("/api/v1/contacts")
@access("people", "write")
@operation("Create or update a contact by email", body=ContactIn,
           responses={201: Contact, 200: Contact}, tag="people")
def post_contact() -> Any:
    contact, created = records.upsert_contact(store(), load_body(ContactIn()), how="api",
                                             **_client())
    return jsonify(_contact.dump(contact)), 201 if created else 200


@bp.get("/api/v1/contacts")
@access("people", "read")
@operation("Find contacts", query=ContactQuery, responses={200: ContactPage}, tag="people")
def list_contacts() -> Any:
    q = load_query(ContactQuery())
    result = records.find_contacts(store(), limit=q["limit"], cursor=q["cursor"],
                                  email=q.get("email"), account_id=q.get("account_id"))
    return jsonify(ContactPage().dump(result))


@bp.get("/api/v1/contacts/<contact_id>")
@access("people", "read")
@operation("Read a contact", responses={200: Contact}, errors=(404,), tag="people")
def get_contact(contact_id: str) -> Any:
    return jsonify(_contact.dump(records.get_contact(store(), contact_id)))
