"""Operations: liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from outreach.platform import health
from outreach.web.api.auth import public
from outreach.web.common import config, error_response, store
from outreach.web.openapi import build_spec

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
@public
def healthz() -> Any:
    return jsonify(status="ok")


def _token_refused() -> Any:
    """With ``OUTREACH_METRICS_TOKEN`` set, ``/metrics`` and ``/readyz`` (business counts,
    internal host names) need ``Authorization: Bearer <token>``: a 401 otherwise."""
    expected = config().metrics_token
    if not expected:
        return None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode()):
        return None
    response = error_response(401, "Send 'Authorization: Bearer <metrics token>'.")
    response.headers["WWW-Authenticate"] = 'Bearer realm="outreach-metrics"'
    return response


@bp.get("/readyz")
@public
def readyz() -> Any:
    refused = _token_refused()
    if refused is not None:
        return refused
    report = health.readiness(store(), config(), current_app.extensions.get("celery"))
    return jsonify(report), 200 if report["ready"] else 503


@bp.get("/metrics")
@public
def metrics() -> Any:
    refused = _token_refused()
    if refused is not None:
        return refused
    return Response(health.prometheus_text(store()), mimetype="text/plain; version=0.0.4")


@bp.get("/api/openapi.json")
@public
def openapi() -> Any:
    spec = current_app.extensions.get("outreach.openapi")
    if spec is None:
        spec = current_app.extensions["outreach.openapi"] = build_spec(current_app)
    return jsonify(spec)
