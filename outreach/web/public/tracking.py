"""Public tracking and unsubscribe links (signed tokens)."""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, redirect, render_template_string, request

from outreach.campaigns import tracking
from outreach.errors import NotFound
from outreach.paths import PAGE_TEMPLATES_DIR
from outreach.web.api.auth import public
from outreach.web.common import config, store
from outreach.web.openapi import operation

bp = Blueprint("tracking", __name__)

_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_UNSUBSCRIBE_PAGE = (PAGE_TEMPLATES_DIR / "unsubscribe.html").read_text()


@bp.get("/t/o/<token>")
@public
@operation("Open pixel (1x1 GIF)", responses={200: "image/gif"}, errors=(404,), auth=False,
           tag="tracking")
def open_pixel(token: str) -> Any:
    tracking.record_open(store(), config(), token, request.headers.get("User-Agent"))
    return Response(_GIF, mimetype="image/gif",
                    headers={"Cache-Control": "no-store, max-age=0"})


@bp.get("/t/c/<token>")
@public
@operation("Click: 302 to the stored link", responses={302: "Redirect"}, errors=(404,),
           auth=False, tag="tracking")
def click(token: str) -> Any:
    return redirect(tracking.record_click(store(), config(), token,
                                             request.headers.get("User-Agent")), code=302)


@bp.get("/u/<token>")
@public
@operation("Unsubscribe confirm page", responses={200: "HTML page"}, errors=(404,), auth=False,
           tag="tracking", html=True)
def unsubscribe_page(token: str) -> Any:
    try:
        target = tracking.unsubscribe_target(store(), config(), token)
    except NotFound:
        return render_template_string(_UNSUBSCRIBE_PAGE, invalid=True), 404
    return render_template_string(_UNSUBSCRIBE_PAGE, email=target["email"], done=False)


@bp.post("/u/<token>")
@public
@operation("Unsubscribe at once (RFC 8058 one-click)", responses={200: "Unsubscribed"},
           errors=(404,), auth=False, tag="tracking", html=True)
def unsubscribe(token: str) -> Any:
    try:
        target = tracking.unsubscribe(store(), config(), token)
    except NotFound:
        return render_template_string(_UNSUBSCRIBE_PAGE, invalid=True), 404
    if request.form.get("List-Unsubscribe") == "One-Click" and "text/html" not in request.headers.get(
        "Accept", ""
    ):
        return Response("Unsubscribed.\n", mimetype="text/plain")
    return render_template_string(_UNSUBSCRIBE_PAGE, email=target["email"], done=True)
