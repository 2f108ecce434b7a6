"""Public intake: website forms post registrations here."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, redirect, request
from werkzeug.exceptions import BadRequest

from outreach.api.http import config, raw_body, store
from outreach.api.openapi import operation
from outreach.errors import Invalid
from outreach.schemas.intake import RegistrationAccepted, RegistrationIn, load_registration
from outreach.services.intake import accept_registration, check_redirect

bp = Blueprint("intake", __name__)


@bp.post("/api/v1/registrations")
@operation(
    "Register a white-paper download or an event registration",
    body=RegistrationIn,
    form=True,
    responses={202: RegistrationAccepted, 303: "Form post: redirect to redirect_to"},
    errors=(413, 429, 503),
    auth=False,
    tag="intake",
)
def post_registration() -> Any:
    data, from_form = raw_body(allow_forms=True)
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.")
    cfg = config()
    if data.get("website"):
        # Honeypot: answer like a success whatever else a bot filled in (no 422 hints).
        accepted = accept_registration(store(), cfg, {"website": data["website"]}, client="")
        target = _allowed_redirect(cfg, data.get("redirect_to")) if from_form else None
        if target:
            return redirect(target, code=303)
        return _accepted(accepted.id)
    registration = load_registration(data)
    target = check_redirect(cfg, registration.get("redirect_to")) if from_form else None
    accepted = accept_registration(
        store(),
        cfg,
        registration,
        client=request.remote_addr or "unknown",
        idempotency_key=request.headers.get("Idempotency-Key"),
        kick=current_app.extensions["outreach.kick_ingest"],
    )
    if target:
        return redirect(target, code=303)
    return _accepted(accepted.id)


def _accepted(registration_id: str) -> Response:
    """``202 {"id", "status": "accepted"}``, written directly: ids are stream ids
    (digits and a dash), and this is the hottest response of the service."""
    body = '{"id":"%s","status":"accepted"}\n' % registration_id  # noqa: UP031
    return Response(body, status=202, mimetype="application/json")


def _allowed_redirect(cfg: Any, url: Any) -> str | None:
    try:
        return check_redirect(cfg, url) if isinstance(url, str) else None
    except Invalid:
        return None
