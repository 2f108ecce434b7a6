"""Bearer API keys for the marketer endpoints."""

from __future__ import annotations

from flask import Blueprint, g, request

from outreach.platform.apikeys import api_key_identity
from outreach.web.common import error_response, store


def require_api_key(blueprint: Blueprint) -> None:
    @blueprint.before_request
    def _check():  # type: ignore[no-untyped-def]
        if request.method == "OPTIONS":
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("Send 'Authorization: Bearer <api key>'.")
        identity = api_key_identity(store(), token.strip())
        if identity is None:
            return _unauthorized("Unknown API key.")
        g.api_key = identity
        return None


def caller_user() -> str | None:
    """The console user the request's API key acts for (None: the key has no user)."""
    identity = getattr(g, "api_key", None) or {}
    return identity.get("user")


def caller() -> str:
    """Who the request is, as recorded in ``by`` fields: the key's user, else ``api-key:<name>``."""
    identity = getattr(g, "api_key", None) or {}
    return identity.get("user") or f"api-key:{identity.get('name', 'unknown')}"


def _unauthorized(message: str):  # type: ignore[no-untyped-def]
    response = error_response(401, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="outreach"'
    return response
