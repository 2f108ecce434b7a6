"""Bearer API keys for the marketer endpoints."""

from __future__ import annotations

from flask import Blueprint, request

from outreach.api.errors import error_response
from outreach.api.http import store
from outreach.services.apikeys import check_api_key


def require_api_key(blueprint: Blueprint) -> None:
    @blueprint.before_request
    def _check():  # type: ignore[no-untyped-def]
        if request.method == "OPTIONS":
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("Send 'Authorization: Bearer <api key>'.")
        if not check_api_key(store(), token.strip()):
            return _unauthorized("Unknown API key.")
        return None


def _unauthorized(message: str):  # type: ignore[no-untyped-def]
    response = error_response(401, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="outreach"'
    return response
