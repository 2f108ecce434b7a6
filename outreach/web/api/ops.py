"""Operations: liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from outreach.platform import health
from outreach.web.common import config, store
from outreach.web.openapi import build_spec

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Any:
    report = health.readiness(store(), config(), current_app.extensions.get("celery"))
    return jsonify(report), 200 if report["ready"] else 503


@bp.get("/metrics")
def metrics() -> Any:
    return Response(health.prometheus_text(store()), mimetype="text/plain; version=0.0.4")


@bp.get("/api/openapi.json")
def openapi() -> Any:
    spec = current_app.extensions.get("outreach.openapi")
    if spec is None:
        spec = current_app.extensions["outreach.openapi"] = build_spec(current_app)
    return jsonify(spec)
