"""Operations: liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from outreach.journeys import engine as journey_engine
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
    s = store()
    text = health.prometheus_text(s) + _journey_metrics(s)
    return Response(text, mimetype="text/plain; version=0.0.4")


def _journey_metrics(s: Any) -> str:
    lines = [("outreach_journey_step_lag_seconds", "How late the most overdue journey step is",
              journey_engine.lag_seconds(s)),
             ("outreach_journey_steps_per_second", "Journey steps done per second (last minute)",
              journey_engine.steps_per_second(s))]
    out: list[str] = []
    for name, help_text, value in lines:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
    return "\n".join(out) + "\n"


@bp.get("/api/openapi.json")
@public
def openapi() -> Any:
    spec = current_app.extensions.get("outreach.openapi")
    if spec is None:
        spec = current_app.extensions["outreach.openapi"] = build_spec(current_app)
    return jsonify(spec)
