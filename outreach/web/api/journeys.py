"""Marketer endpoints: journeys (nurture flows), their controls, enrollments and stats."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from outreach.journeys import catalog, enrollments
from outreach.schemas.common import PageQuery, page_of
from outreach.schemas.journeys import Enrolled, EnrollIn, Enrollment, EnrollmentQuery, Journey, JourneyIn
from outreach.web.api.auth import access, require_api_key
from outreach.web.common import load_body, load_query, store
from outreach.web.openapi import operation

bp = Blueprint("journeys", __name__)
require_api_key(bp)

_journey = Journey()
JourneyPage = page_of(Journey)
EnrollmentPage = page_of(Enrollment)


@bp.get("/api/v1/journeys")
@access("campaigns", "read")
@operation("Journeys", query=PageQuery, responses={200: JourneyPage}, tag="journeys")
def get_journeys() -> Any:
    q = load_query(PageQuery())
    return jsonify(JourneyPage().dump(catalog.find_journeys(store(), limit=q["limit"],
                                                            cursor=q["cursor"])))


@bp.post("/api/v1/journeys")
@access("campaigns", "write")
@operation("Create a journey (a draft, version 1)", body=JourneyIn, responses={201: Journey},
           tag="journeys")
def post_journey() -> Any:
    data = load_body(JourneyIn())
    return jsonify(_journey.dump(catalog.create_journey(store(), data))), 201


@bp.get("/api/v1/journeys/<journey_id>")
@access("campaigns", "read")
@operation("Read a journey with its stats", responses={200: Journey}, errors=(404,),
           tag="journeys")
def get_journey(journey_id: str) -> Any:
    return jsonify(_journey.dump(catalog.get_journey(store(), journey_id)))


@bp.put("/api/v1/journeys/<journey_id>")
@access("campaigns", "write")
@operation("Replace a draft; on an active journey, make the next version", body=JourneyIn,
           responses={200: Journey}, errors=(404, 409), tag="journeys")
def put_journey(journey_id: str) -> Any:
    data = load_body(JourneyIn())
    return jsonify(_journey.dump(catalog.replace_journey(store(), journey_id, data)))


def _control(name: str, doc: str) -> None:
    action = getattr(catalog, name)

    def view(journey_id: str) -> Any:
        return jsonify(_journey.dump(action(store(), journey_id)))

    view.__name__ = f"post_{name}"
    wrapped = operation(doc, responses={200: Journey}, errors=(404, 409, 422),
                        tag="journeys")(access("campaigns", "write")(view))
    bp.add_url_rule(f"/api/v1/journeys/<journey_id>/{name}", view_func=wrapped,
                    methods=["POST"])


_control("activate", "Activate a draft (the graph is checked)")
_control("pause", "Pause: every step is held")
_control("resume", "Resume a paused journey")
_control("stop", "Stop: every enrollment ends")


@bp.post("/api/v1/journeys/<journey_id>/enroll")
@access("campaigns", "write")
@operation("Enroll people in a manual journey", body=EnrollIn, responses={200: Enrolled},
           errors=(404, 422), tag="journeys")
def post_enroll(journey_id: str) -> Any:
    data = load_body(EnrollIn())
    config = current_app.extensions["outreach.config"]
    return jsonify(Enrolled().dump(enrollments.enroll_emails(store(), config, journey_id,
                                                             data["emails"])))


@bp.get("/api/v1/journeys/<journey_id>/enrollments")
@access("campaigns", "read")
@operation("The people in a journey", query=EnrollmentQuery, responses={200: EnrollmentPage},
           errors=(404,), tag="journeys")
def get_enrollments(journey_id: str) -> Any:
    q = load_query(EnrollmentQuery())
    return jsonify(EnrollmentPage().dump(enrollments.find_enrollments(
        store(), journey_id, email=q["email"], step=q["step"], status=q["status"],
        limit=q["limit"], cursor=q["cursor"])))
