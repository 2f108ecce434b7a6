"""Marketer endpoints: suppressions (list, read, lift a bounce)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from outreach.errors import NotFound
from outreach.people import suppressions
from outreach.schemas.common import page_of
from outreach.schemas.suppressions import LiftedSuppression, Suppression, SuppressionQuery
from outreach.web.api.auth import access, require_api_key
from outreach.web.common import load_query, store
from outreach.web.openapi import operation

bp = Blueprint("suppressions", __name__)
require_api_key(bp)

SuppressionPage = page_of(Suppression)


@bp.get("/api/v1/suppressions")
@access("campaigns", "read")
@operation("Suppressed addresses and why", query=SuppressionQuery,
           responses={200: SuppressionPage}, tag="people")
def list_suppressions() -> Any:
    q = load_query(SuppressionQuery())
    return jsonify(SuppressionPage().dump(suppressions.find_suppressions(
        store(), reason=q.get("reason"), limit=q["limit"], cursor=q["cursor"])))


@bp.get("/api/v1/suppressions/<path:email>")
@access("campaigns", "read")
@operation("Why one address is suppressed", responses={200: Suppression}, errors=(404, 422),
           tag="people")
def get_suppression(email: str) -> Any:
    found = suppressions.get_suppression(store(), email)
    if found is None:
        raise NotFound(f"{email} is not suppressed.")
    return jsonify(Suppression().dump(found))


@bp.delete("/api/v1/suppressions/<path:email>")
@access("campaigns", "write")
@operation("Lift a bounce suppression (never an unsubscribe, complaint or erasure)",
           responses={200: LiftedSuppression}, errors=(404, 409, 422), tag="people")
def delete_suppression(email: str) -> Any:
    return jsonify(LiftedSuppression().dump(suppressions.lift_suppression(store(), email)))
