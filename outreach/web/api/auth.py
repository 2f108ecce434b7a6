"""Who may call which API route: bearer API keys with roles, checked against the one role
table (``users.ROLE_ACCESS``) that also decides for console views.

Every API route declares itself: ``@access(area, action)`` (a key whose role allows it) or
``@public`` (no key: intake, tracking, forms, provider hooks, health). A route of a keyed
blueprint that declares nothing is refused (403) — and ``tests/unit/test_route_access.py``
fails on it first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, current_app, g, request

from outreach.platform.apikeys import api_key_identity
from outreach.platform.users import ROLE_ACCESS, allowed
from outreach.web.common import error_response, store

F = TypeVar("F", bound=Callable[..., Any])
PUBLIC = "public"


def access(area: str, action: str = "read") -> Callable[[F], F]:
    """Declares that the route needs a key whose role may ``action`` ("read"/"write") in
    ``area`` of ``ROLE_ACCESS``."""
    if action not in ("read", "write") or not any(area in t for t in ROLE_ACCESS.values()):
        raise ValueError(f"unknown area or action: {area!r}, {action!r}")

    def mark(view: F) -> F:
        view.api_access = (area, action)  # type: ignore[attr-defined]
        return view

    return mark


def public(view: F) -> F:
    """Declares that the route answers without an API key (it checks what it needs itself)."""
    view.api_access = PUBLIC  # type: ignore[attr-defined]
    return view


def declared_access(view: Callable[..., Any] | None) -> Any:
    """``(area, action)``, ``"public"``, or None when the view declares nothing."""
    return getattr(view, "api_access", None)


def require_api_key(blueprint: Blueprint) -> None:
    @blueprint.before_request
    def _check():  # type: ignore[no-untyped-def]
        if request.method == "OPTIONS":
            return None
        declared = declared_access(current_app.view_functions.get(request.endpoint or ""))
        if declared == PUBLIC:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("Send 'Authorization: Bearer <api key>'.")
        identity = api_key_identity(store(), token.strip())
        if identity is None:
            return _unauthorized("Unknown API key, or its user is disabled.")
        g.api_key = identity
        if declared is None or not allowed(identity["role"], *declared):
            return error_response(403, f"The key's role ({identity['role']}) does not allow this.")
        return None


def caller_user() -> str | None:
    """The console user the request's API key acts for (None: the key has no user)."""
    identity = getattr(g, "api_key", None) or {}
    return identity.get("user")


def caller_role() -> str | None:
    """The role of the request's API key."""
    identity = getattr(g, "api_key", None) or {}
    return identity.get("role")


def caller() -> str:
    """Who the request is, as recorded in ``by`` fields: the key's user, else ``api-key:<name>``."""
    identity = getattr(g, "api_key", None) or {}
    return identity.get("user") or f"api-key:{identity.get('name', 'unknown')}"


def _unauthorized(message: str):  # type: ignore[no-untyped-def]
    response = error_response(401, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="outreach"'
    return response
