"""OpenAPI 3 generated from the marshmallow schemas that the handlers really use.

Handlers declare what they take and give with ``@operation``; ``build_spec``
walks the URL map, so a route without ``@operation`` is simply not documented.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema

from outreach.platform.users import ROLES, allowed
from outreach.schemas.common import ErrorSchema

_ERRORS = {
    400: "Malformed body",
    401: "Missing or bad API key",
    403: "Not allowed: the key's role does not allow this (or e.g. another user's activity)",
    404: "Unknown id",
    409: "State conflict",
    410: "Gone: dropped by retention",
    413: "Body too large",
    415: "Unsupported content type",
    422: "Validation failed",
    429: "Rate limited",
    503: "Store briefly unreachable; retry with the same Idempotency-Key",
}


def operation(
    summary: str,
    *,
    body: type[Schema] | Schema | None = None,
    query: type[Schema] | None = None,
    responses: dict[int, type[Schema] | Schema | str | None] | None = None,
    errors: tuple[int, ...] = (),
    auth: bool = True,
    tag: str | None = None,
    form: bool = False,
    extra: dict[str, Any] | None = None,
    html: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``extra``: more members of the operation object (e.g. ``callbacks``); ``html``: a page
    for people, whose answers (errors included) are ``text/html``."""

    def mark(view: Callable[..., Any]) -> Callable[..., Any]:
        view._openapi = dict(  # type: ignore[attr-defined]
            summary=summary, body=body, query=query, responses=responses or {200: None},
            errors=errors, auth=auth, tag=tag, form=form, extra=extra or {}, html=html,
        )
        return view

    return mark


_HTML = {"text/html": {"schema": {"type": "string"}}}
_RULE_ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def build_spec(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title="outreach",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Intake, marketing lists, campaigns and lead conversion."},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=ErrorSchema)
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        meta = getattr(view, "_openapi", None)
        if meta is None:
            continue
        path = _RULE_ARG.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                meta, _path_params(rule), getattr(view, "api_access", None))
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _path_params(rule: Any) -> dict[str, dict[str, Any]]:
    """Each path argument's schema: a string, with its ``enum`` when the route accepts a
    fixed set of values (``<any(a,b):name>``), so generated clients can call it."""
    out: dict[str, dict[str, Any]] = {}
    converters = getattr(rule, "_converters", {})
    for name in rule.arguments:
        schema: dict[str, Any] = {"type": "string"}
        items = getattr(converters.get(name), "items", None)
        if items:
            schema["enum"] = sorted(items)
        out[name] = schema
    return out


def _operation(meta: dict[str, Any], arguments: dict[str, dict[str, Any]],
               access: Any = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": meta["summary"], "responses": {}}
    if isinstance(access, tuple):  # web/api/auth.access: which roles the table lets in
        area, action = access
        op["x-access"] = {"area": area, "action": action,
                          "roles": [role for role in ROLES if allowed(role, area, action)]}
    if meta["tag"]:
        op["tags"] = [meta["tag"]]
    params: list[dict[str, Any]] = [
        {"in": "path", "name": name, "required": True, "schema": arguments[name]}
        for name in sorted(arguments)
    ]
    if meta["query"] is not None:
        params.append({"in": "query", "schema": meta["query"]})
    if params:
        op["parameters"] = params
    if meta["body"] is not None:
        content = {"application/json": {"schema": meta["body"]}}
        if meta["form"]:
            content["application/x-www-form-urlencoded"] = {"schema": meta["body"]}
            content["multipart/form-data"] = {"schema": meta["body"]}
        op["requestBody"] = {"required": True, "content": content}
    for status, schema in meta["responses"].items():
        if isinstance(schema, str) and meta.get("html"):
            op["responses"][str(status)] = {"description": schema, "content": _HTML}
        elif isinstance(schema, str):
            op["responses"][str(status)] = {"description": schema}
        elif schema is None:
            op["responses"][str(status)] = {"description": "OK"}
        else:
            op["responses"][str(status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": schema}},
            }
    codes = set(meta["errors"])
    if arguments:  # a path that names nothing (or that the router cannot match) is a 404
        codes.add(404)
    if isinstance(access, tuple):
        codes.add(403)
    if meta["auth"]:
        codes.add(401)
        op["security"] = [{"bearer": []}]
    if meta["body"] is not None:
        codes.update((400, 413, 415, 422))  # 413: over OUTREACH_MAX_CONTENT_LENGTH
    if meta["query"] is not None:
        codes.add(422)
    for status in sorted(codes):
        op["responses"][str(status)] = {
            "description": _ERRORS[status],
            "content": _HTML if meta.get("html") else {"application/json": {"schema": "Error"}},
        }
    op.update(meta.get("extra") or {})
    return op
