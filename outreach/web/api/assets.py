"""Marketer endpoints: assets (white papers and events) and their form settings."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from flask import Blueprint, jsonify

from outreach.people import assets
from outreach.schemas.assets import Asset, AssetIn, AssetPatch
from outreach.schemas.common import PageQuery, page_of
from outreach.web.api.auth import access, require_api_key
from outreach.web.common import config, load_body, load_query, store
from outreach.web.openapi import operation

bp = Blueprint("assets", __name__)
require_api_key(bp)

_asset = Asset()


AssetPage = page_of(Asset)


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    starts = data.get("starts_at")
    if starts is not None:
        if starts.tzinfo is not None:
            starts = starts.astimezone(UTC)
        data["starts_at"] = starts.strftime("%Y-%m-%dT%H:%M:%SZ")
    return data


@bp.post("/api/v1/assets")
@access("forms", "write")
@operation("Create an asset and its form settings", body=AssetIn, responses={201: Asset},
           errors=(409,), tag="assets")
def post_asset() -> Any:
    data = _plain(load_body(AssetIn()))
    return jsonify(_asset.dump(assets.create_asset(store(), data, config().base_url))), 201


@bp.get("/api/v1/assets")
@access("forms", "read")
@operation("Assets", query=PageQuery, responses={200: AssetPage}, tag="assets")
def get_assets() -> Any:
    q = load_query(PageQuery())
    found = assets.find_assets(store(), limit=q["limit"], cursor=q["cursor"],
                               base_url=config().base_url)
    return jsonify(AssetPage().dump(found))


@bp.get("/api/v1/assets/<slug>")
@access("forms", "read")
@operation("Read an asset", responses={200: Asset}, errors=(404,), tag="assets")
def get_asset(slug: str) -> Any:
    return jsonify(_asset.dump(assets.get_asset(store(), slug, config().base_url)))


@bp.patch("/api/v1/assets/<slug>")
@access("forms", "write")
@operation("Edit an asset (new consent wording is a new version)", body=AssetPatch,
           responses={200: Asset}, errors=(404,), tag="assets")
def patch_asset(slug: str) -> Any:
    changes = _plain(load_body(AssetPatch(), partial=True))
    return jsonify(_asset.dump(assets.update_asset(store(), slug, changes, config().base_url)))


@bp.get("/api/v1/leads/<lead_id>/consent")
@access("people", "read")
@operation("A lead's consent evidence, oldest first", responses={200: "ConsentEvents"},
           errors=(404,), tag="people")
def get_lead_consent(lead_id: str) -> Any:
    from outreach.people.consent import lead_consent

    return jsonify(lead_consent(store(), lead_id))
