"""Public pages: hosted forms, the embed script and its form definitions, double opt-in
confirmation. No session, no CSRF (nothing here acts for a signed-in user): a form posts
to the public intake endpoint, and the confirm button posts a signed, expiring token."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from flask import Blueprint, Response, abort, render_template, request

from outreach.errors import NotFound
from outreach.paths import STATIC_DIR
from outreach.people import assets, consent
from outreach.web.api.auth import public
from outreach.web.common import config, store
from outreach.web.openapi import operation

bp = Blueprint("public", __name__)

_AUTOCOMPLETE = assets.FIELD_AUTOCOMPLETE
_EMBED = STATIC_DIR / "embed" / "v1" / "form.js"


def _asset_or_404(slug: str) -> dict[str, Any]:
    try:
        return assets.get_asset(store(), slug, config().base_url)
    except NotFound:
        abort(404)


def form_context(asset: dict[str, Any], values: dict[str, Any] | None = None,
                 errors: dict[str, list[str]] | None = None, action: str | None = None
                 ) -> dict[str, Any]:
    return {"asset": asset, "values": values or {}, "errors": errors or {},
            "labels": assets.FIELD_LABELS, "autocomplete": _AUTOCOMPLETE,
            "started": int(time.time()),
            "action": action or f"{config().base_url.rstrip('/')}/api/v1/registrations",
            "title": asset["title"]}


def render_form_page(asset: dict[str, Any], values: dict[str, Any],
                     errors: dict[str, list[str]], status: int) -> tuple[str, int]:
    """The hosted page again, with the values posted and an error next to each field."""
    return render_template("forms/hosted.html", **form_context(
        asset, values, errors, action="/api/v1/registrations")), status


def snippet(asset: dict[str, Any]) -> str:
    """The copy-paste embed for another site: the asset view's ``embed_snippet`` (made by
    ``assets.embed_snippet``, the one source, with the base URL the view was read with)."""
    return str(asset["embed_snippet"])


@bp.get("/f/<slug>")
@public
@operation("Hosted form page", responses={200: "HTML page"}, errors=(404,), auth=False,
           tag="forms")
def hosted_form(slug: str) -> Any:
    asset = _asset_or_404(slug)
    # same origin, whatever name the service is reached by
    response = Response(render_template("forms/hosted.html",
                                        **form_context(asset, action="/api/v1/registrations")))
    response.headers["Cache-Control"] = "no-store"  # carries its render time (_t)
    return response


@bp.get("/f/<slug>/thanks")
@public
@operation("Thank-you page after a form post", responses={200: "HTML page"}, errors=(404,),
           auth=False, tag="forms")
def thanks(slug: str) -> Any:
    return render_template("forms/thanks.html", **form_context(_asset_or_404(slug)))


@bp.get("/f/<slug>.json")
@public
@operation("A form's definition for the embed script", responses={200: "FormDefinition"},
           errors=(404,), auth=False, tag="forms")
def form_definition(slug: str) -> Any:
    asset = _asset_or_404(slug)
    form = asset["form"]
    body = {
        "slug": asset["slug"], "kind": asset["kind"], "title": asset["title"],
        "action": f"{config().base_url.rstrip('/')}/api/v1/registrations",
        "fields": [{"name": "email", "label": assets.FIELD_LABELS["email"], "type": "email",
                    "required": True, "autocomplete": "email"}]
        + [{"name": name, "label": assets.FIELD_LABELS[name],
            "type": "tel" if "phone" in name else "text", "required": name in form["required"],
            "autocomplete": _AUTOCOMPLETE.get(name, "on")} for name in form["fields"]],
        "consent": {"text": form["consent_text"], "version": form["consent_version"],
                    "required": "consent" in form["required"]},
        "thank_you_message": form["thank_you_message"] or "Thank you! We have your registration.",
        "double_opt_in": form["double_opt_in"], "redirect_to": form["redirect_to"],
        "submit": "Register" if asset["kind"] == "event" else "Download",
        "proof_of_work": bool(form.get("proof_of_work")),
        "started": int(time.time()),
    }
    from flask import jsonify

    response = jsonify(body)
    # short: a changed form shows within a minute; ``started`` is the fill-time clock's start
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.get("/f/<slug>/challenge")
@public
@operation("A proof-of-work challenge (ALTCHA v1) for the asset's form", responses={200: "Challenge"},
           errors=(404,), auth=False, tag="forms")
def pow_challenge(slug: str) -> Any:
    from flask import jsonify

    _asset_or_404(slug)
    response = jsonify(assets.pow_challenge(config().secret_key))
    response.headers["Cache-Control"] = "no-store"
    return response


_EMBED_CACHE: dict[str, Any] = {}


@bp.get("/embed/v1/form.js")
@public
@operation("The embed script", responses={200: "application/javascript"}, auth=False,
           tag="forms")
def embed_script() -> Any:
    if "body" not in _EMBED_CACHE:
        body = _EMBED.read_bytes()
        _EMBED_CACHE["body"] = body
        _EMBED_CACHE["etag"] = hashlib.sha256(body).hexdigest()[:20]
    response = Response(_EMBED_CACHE["body"], mimetype="application/javascript")
    response.set_etag(_EMBED_CACHE["etag"])
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response.make_conditional(request)


@bp.get("/c/<token>")
@public
@operation("Double opt-in: the confirm page (a GET never confirms)", responses={200: "HTML"},
           errors=(400, 404), auth=False, tag="forms", html=True)
def confirm_page(token: str) -> Any:
    found, state = consent.read_confirmation(config(), token)
    return _confirm_answer(found, state, "ask")


@bp.post("/c/<token>")
@public
@operation("Double opt-in: confirm", responses={200: "HTML"}, errors=(400, 404), auth=False,
           tag="forms", html=True)
def confirm(token: str) -> Any:
    if request.form.get("confirm") != "yes":
        # only the page's own button confirms: a mail client's RFC 8058 one-click POST
        # (``List-Unsubscribe=One-Click``) or any other POST shows the question again
        found, state = consent.read_confirmation(config(), token)
        return _confirm_answer(found, state, "ask")
    found, state = consent.confirm(store(), config(), token, request.remote_addr,
                                   request.headers.get("User-Agent"))
    return _confirm_answer(found, state, "done")


def _confirm_answer(found: dict[str, Any] | None, state: str, ok: str) -> Any:
    status = {"ok": 200, "expired": 410, "invalid": 400, "unknown": 404}[state]
    page = render_template("pages/confirm.html", state=ok if state == "ok" else state,
                           email=(found or {}).get("email"), asset=(found or {}).get("asset"),
                           days=config().consent_token_days, title="Confirm your subscription")
    return page, status

