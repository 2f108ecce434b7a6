"""API keys (admin): list them, revoke one by name. Keys are created with the CLI or the
console's settings page, where the key is shown once."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from outreach.platform import apikeys
from outreach.schemas.apikeys import ApiKeyList
from outreach.web.api.auth import access, require_api_key
from outreach.web.common import store
from outreach.web.openapi import operation

bp = Blueprint("apikeys", __name__)
require_api_key(bp)


@bp.get("/api/v1/api-keys")
@access("settings", "read")
@operation("Every API key: name, role, user, created_at, last_used_at (admin)",
           responses={200: ApiKeyList}, errors=(403,), tag="settings")
def list_keys() -> Any:
    return jsonify(ApiKeyList().dump({"items": apikeys.find_api_keys(store())}))


@bp.delete("/api/v1/api-keys/<name>")
@access("settings", "write")
@operation("Revoke the API key(s) of this name (admin); requests with it then get 401",
           responses={204: None}, errors=(403, 404), tag="settings")
def delete_key(name: str) -> Any:
    apikeys.revoke_api_key(store(), name)
    return Response(status=204)
