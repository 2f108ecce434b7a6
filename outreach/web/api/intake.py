"""Public intake: website forms post registrations here."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, redirect, request
from marshmallow import ValidationError
from werkzeug.exceptions import BadRequest

from outreach.errors import Invalid, NotFound
from outreach.people.assets import check_form_rules, looks_like_a_bot, pow_solved
from outreach.people.confirmations import entry
from outreach.people.intake import (
    accept_registration,
    check_door,
    check_redirect,
    count_dropped,
)
from outreach.people.registration import RegistrationIn, load_registration
from outreach.platform.apikeys import api_key_identity
from outreach.schemas.intake import RegistrationAccepted
from outreach.web.api.auth import public
from outreach.web.common import config, error_response, raw_body, store
from outreach.web.openapi import operation

log = logging.getLogger(__name__)
bp = Blueprint("intake", __name__)


@bp.post("/api/v1/registrations")
@public
@operation(
    "Register a white-paper download or an event registration",
    body=RegistrationIn,
    form=True,
    responses={202: RegistrationAccepted, 303: "Form post: redirect to redirect_to"},
    errors=(401, 413, 429, 503),
    auth=False,
    tag="intake",
)
def post_registration() -> Any:
    data, from_form = raw_body(allow_forms=True)
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.")
    cfg = config()
    authenticated = False
    if "Authorization" in request.headers:  # a key holder: an authenticated write
        scheme, _, token = request.headers["Authorization"].partition(" ")
        if scheme.lower() != "bearer" or api_key_identity(store(), token.strip()) is None:
            response = error_response(401, "Unknown API key.")
            response.headers["WWW-Authenticate"] = 'Bearer realm="outreach"'
            return response
        authenticated = True
    if data.get("website"):
        # Honeypot: answer like a success whatever else a bot filled in (no 422 hints).
        return _dropped(cfg, data, from_form, "honeypot")
    try:
        registration = load_registration(data)
        rules = current_app.extensions["outreach.asset_rules"](registration["asset"])
        check_door(cfg, registration, rules.kind, authenticated)
        if not rules.trivial:
            if looks_like_a_bot(rules, data, time.time(), from_form):
                return _dropped(cfg, data, from_form, "too_fast")
            if rules.proof_of_work and not pow_solved(store(), cfg.secret_key,
                                                      data.get("altcha")):
                return _dropped(cfg, data, from_form, "proof_of_work")
            check_form_rules(rules, registration, data)
    except (ValidationError, Invalid) as exc:
        if from_form and "thanks" in data:  # our own form, posted without its script
            return _form_again(data, exc)
        raise
    if registration["consent"]:
        if rules.double_opt_in:
            registration["consent"] = "p"
        registration["evidence"] = {
            "how": "form" if from_form or "Origin" in request.headers else "api",
            "v": rules.consent_version, "ip": request.remote_addr,
            "ua": (request.headers.get("User-Agent") or "")[:200],
        }
    registration["authenticated"] = authenticated
    target = check_redirect(cfg, registration.get("redirect_to")) if from_form else None
    confirm = (entry(registration["email"], registration["asset"], rules.consent_version or 0)
               if rules.double_opt_in and registration["consent"] == "p" else None)
    accepted = accept_registration(
        store(),
        cfg,
        registration,
        client=request.remote_addr or "unknown",
        idempotency_key=request.headers.get("Idempotency-Key"),
        kick=current_app.extensions["outreach.kick_ingest"],
        confirmation=confirm,
    )
    if confirm and not accepted.duplicate:
        try:  # a nudge: the mail is in the confirmations schedule, which the beat drives
            current_app.extensions["outreach.consent_mail"](
                registration["email"], registration["asset"], rules.consent_version or 0)
        except Exception:  # noqa: BLE001
            log.warning("could not publish a confirmation mail; the beat will send it",
                        exc_info=True)
    if target:
        return redirect(target, code=303)
    if from_form and "thanks" in data:
        return redirect(f"/f/{registration['asset']}/thanks", code=303)
    return _accepted(accepted.id)


def _form_again(data: dict[str, Any], exc: ValidationError | Invalid) -> Any:
    """A plain post of an outreach form that failed validation: the form again, with the
    values and each field's message next to it (422)."""
    from outreach.people.assets import get_asset
    from outreach.web.common import flatten_messages
    from outreach.web.public.pages import render_form_page

    fields = flatten_messages(exc.messages) if isinstance(exc, ValidationError) else (exc.fields or {})
    slug = data.get("asset")
    try:
        asset = get_asset(store(), slug, config().base_url) if isinstance(slug, str) else None
    except NotFound:
        asset = None
    if asset is None:
        raise exc
    return render_form_page(asset, data, fields, 422)


def _dropped(cfg: Any, data: dict[str, Any], from_form: bool, reason: str) -> Response:
    """Answered like a success, stored nowhere, counted (``/metrics``)."""
    accepted = accept_registration(store(), cfg, {"website": "x"}, client="")
    count_dropped(store(), reason)
    target = _allowed_redirect(cfg, data.get("redirect_to")) if from_form else None
    if target:
        return redirect(target, code=303)
    if from_form and "thanks" in data and isinstance(data.get("asset"), str):
        return redirect(f"/f/{quote(data['asset'], safe='')}/thanks", code=303)
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
