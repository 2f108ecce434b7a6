"""Small request helpers shared by the handlers: body/query parsing, app services."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from marshmallow import Schema
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from outreach.config import Config
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
