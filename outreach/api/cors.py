"""CORS for the public intake endpoint, from an allow-list of origins."""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from outreach.config import Config

_PUBLIC_PREFIXES = ("/api/v1/registrations",)


def register_cors(app: Flask, config: Config) -> None:
    allowed = {origin.rstrip("/") for origin in config.cors_origins}
    allow_any = "*" in allowed

    @app.before_request
    def _preflight() -> Any:
        if request.method == "OPTIONS" and request.path.startswith(_PUBLIC_PREFIXES):
            response = app.make_default_options_response()
            response.status_code = 204
            return response
        return None

    @app.after_request
    def _headers(response: Any) -> Any:
        origin = request.headers.get("Origin")
        if not origin or not request.path.startswith(_PUBLIC_PREFIXES):
            return response
        if allow_any or origin.rstrip("/") in allowed:
            response.headers["Access-Control-Allow-Origin"] = "*" if allow_any else origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Idempotency-Key"
            response.headers["Access-Control-Max-Age"] = "600"
        return response
