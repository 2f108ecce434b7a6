"""What the HTTP faces (api, public, console) share: the app's services, body and query
parsing, and the one place where errors become HTTP answers, always in the one error shape."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, current_app, jsonify, request
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import BadRequest, HTTPException, UnsupportedMediaType

from outreach.config import Config
from outreach.errors import RateLimited, ServiceError, Unavailable
from outreach.store import Store

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def store() -> Store:
    return current_app.extensions["outreach.store"]


def config() -> Config:
    return current_app.extensions["outreach.config"]


def raw_body(allow_forms: bool = False) -> tuple[Any, bool]:
    """The request body as data and whether it came from an HTML form."""
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        try:
            data = request.get_json(silent=True)
        except RecursionError:  # nesting deeper than the JSON parser goes
            data = None
        if data is None:
            raise BadRequest("The body is not valid JSON.")
        return data, False
    if allow_forms and mimetype in FORM_TYPES:
        return request.form.to_dict(), True
    if not mimetype and not request.content_length:
        return {}, False
    accepted = "application/json" + (", urlencoded or multipart forms" if allow_forms else "")
    raise UnsupportedMediaType(f"Send {accepted}.")


def load_body(
    schema: Schema, *, allow_forms: bool = False, partial: bool = False
) -> dict[str, Any]:
    data, _ = raw_body(allow_forms)
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.")
    return schema.load(data, partial=partial)


def load_query(schema: Schema) -> dict[str, Any]:
    return schema.load(request.args.to_dict())




log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    503: "unavailable",
}


def error_response(
    status: int, message: str, code: str | None = None, fields: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Any:
    body: dict[str, Any] = {"code": code or _CODES.get(status, "error"), "message": message}
    if fields is not None and status == 422:
        body["fields"] = fields
    if extra:
        body.update(extra)
    response = jsonify({"error": body})
    response.status_code = status
    return response


def flatten_messages(messages: Any) -> dict[str, list[str]]:
    """marshmallow's nested messages -> ``{"field": ["message", ...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, list):
        return {"_body": [str(m) for m in messages]}
    for name, value in messages.items():
        if isinstance(value, dict):
            for sub, texts in flatten_messages(value).items():
                out[f"{name}.{sub}"] = texts
        elif isinstance(value, list):
            out[str(name)] = [str(v) if not isinstance(v, dict) else str(v) for v in value]
        else:
            out[str(name)] = [str(value)]
    return out


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> Any:
        return error_response(422, "Validation failed.", fields=flatten_messages(exc.messages))

    @app.errorhandler(RateLimited)
    def _limited(exc: RateLimited) -> Any:
        response = error_response(429, exc.message)
        response.headers["Retry-After"] = str(max(1, exc.retry_after))
        return response

    @app.errorhandler(Unavailable)
    def _unavailable(exc: Unavailable) -> Any:
        response = error_response(503, exc.message)
        response.headers["Retry-After"] = str(max(1, exc.retry_after))
        return response

    @app.errorhandler(ServiceError)
    def _service(exc: ServiceError) -> Any:
        return error_response(exc.status, exc.message, exc.code, exc.fields or {}, exc.extra)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        status = exc.code or 500
        message = {
            413: "The request body is too large.",
            404: "Not found.",
            405: "Method not allowed.",
        }.get(status, exc.description or exc.name)
        response = error_response(status, message)
        if status == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(redis.ConnectionError)
    @app.errorhandler(redis.TimeoutError)
    def _store_unreachable(exc: Exception) -> Any:
        # not accepted: the client may retry (with the same Idempotency-Key) in a moment
        log.warning("store unreachable: %s", exc)
        response = error_response(503, "The service is briefly unavailable; try again shortly.")
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unhandled error")
        return error_response(500, "Internal error.", code="internal_error")
