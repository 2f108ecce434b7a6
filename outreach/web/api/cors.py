"""CORS for the public intake endpoint, from an allow-list of origins."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, request

from outreach.config import Config

_PUBLIC_PREFIXES = ("/api/v1/registrations", "/f/")
_INTAKE = "/api/v1/registrations"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def register_cors(app: Flask, config: Config) -> None:
    allowed = {origin.rstrip("/") for origin in config.cors_origins}
    allow_any = "*" in allowed
    if allowed and not allow_any:
        # a registration from a page on a site that is not allowed is refused (403); the
        # service's own pages (hosted forms) post same-origin
        own = {_origin(config.base_url)}
        accepted = {o.lower() for o in allowed} | own

        @app.before_request
        def _refuse_foreign_origin() -> Any:
            if request.method != "POST" or request.path != _INTAKE:
                return None
            origin = request.headers.get("Origin")
            if origin is None:
                return None  # not from a browser page (server-to-server, curl)
            origin = origin.rstrip("/").lower()
            if origin in accepted or origin == _origin(request.host_url):
                return None
            from outreach.web.common import error_response

            return error_response(403, "Registrations from this origin are not allowed.")

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
