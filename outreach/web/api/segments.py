"""Marketer endpoints: segments (dynamic audiences), their members, preview and explain."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, stream_with_context

from outreach.people.exports import MEMBER_COLUMNS, stream_csv
from outreach.people.segments import catalog, reading
from outreach.schemas.common import PageQuery, page_of
from outreach.schemas.segments import (
    ExplainQuery,
    Explanation,
    Preview,
    PreviewIn,
    Segment,
    SegmentIn,
    SegmentMember,
    SegmentPatch,
)
from outreach.web.api.auth import access, require_api_key
from outreach.web.common import load_body, load_query, store
from outreach.web.openapi import operation

log = logging.getLogger(__name__)
bp = Blueprint("segments", __name__)
require_api_key(bp)

_segment = Segment()
SegmentPage = page_of(Segment)
MemberPage = page_of(SegmentMember)


def _nudge_build(segment_id: str) -> None:
    """Only a nudge: the build is queued in Redis with the save and the beat carries it on."""
    try:
        current_app.extensions["outreach.jobs"].build_segment(segment_id)
    except Exception:  # noqa: BLE001 - the broker may be down; nothing depends on the publish
        log.warning("could not queue the build of segment %s; the beat will", segment_id,
                    exc_info=True)


@bp.get("/api/v1/segments")
@access("lists", "read")
@operation("Segments", query=PageQuery, responses={200: SegmentPage}, tag="segments")
def get_segments() -> Any:
    q = load_query(PageQuery())
    return jsonify(SegmentPage().dump(catalog.find_segments(store(), limit=q["limit"],
                                                            cursor=q["cursor"])))


@bp.post("/api/v1/segments")
@access("lists", "write")
@operation("Save a segment (built in the background)", body=SegmentIn,
           responses={201: Segment}, tag="segments")
def post_segment() -> Any:
    data = load_body(SegmentIn())
    created = catalog.create_segment(store(), data["name"], data["member_type"], data["rules"])
    _nudge_build(created["id"])
    return jsonify(_segment.dump(created)), 201


@bp.post("/api/v1/segments/preview")
@access("lists", "read")
@operation("Count and sample the members of unsaved rules", body=PreviewIn,
           responses={200: Preview}, tag="segments")
def post_preview() -> Any:
    data = load_body(PreviewIn())
    return jsonify(Preview().dump(reading.preview(store(), data["member_type"], data["rules"])))


@bp.get("/api/v1/segments/<segment_id>")
@access("lists", "read")
@operation("Read a segment", responses={200: Segment}, errors=(404,), tag="segments")
def get_segment(segment_id: str) -> Any:
    return jsonify(_segment.dump(catalog.get_segment(store(), segment_id)))


@bp.patch("/api/v1/segments/<segment_id>")
@access("lists", "write")
@operation("Rename a segment or change its rules (then it is rebuilt)", body=SegmentPatch,
           responses={200: Segment}, errors=(404,), tag="segments")
def patch_segment(segment_id: str) -> Any:
    data = load_body(SegmentPatch())
    updated = catalog.update_segment(store(), segment_id, data)
    if updated["build"]["state"] == "building":
        _nudge_build(segment_id)
    return jsonify(_segment.dump(updated))


@bp.delete("/api/v1/segments/<segment_id>")
@access("lists", "write")
@operation("Delete a segment no other segment names", responses={204: None},
           errors=(404, 409), tag="segments")
def delete_segment(segment_id: str) -> Any:
    catalog.delete_segment(store(), segment_id)
    return "", 204


@bp.get("/api/v1/segments/<segment_id>/members")
@access("lists", "read")
@operation("Members of a segment", query=PageQuery, responses={200: MemberPage}, errors=(404,),
           tag="segments")
def get_members(segment_id: str) -> Any:
    q = load_query(PageQuery())
    return jsonify(MemberPage().dump(reading.members(store(), segment_id, limit=q["limit"],
                                                     cursor=q["cursor"])))


@bp.get("/api/v1/segments/<segment_id>/members.csv")
@access("lists", "read")
@operation("A segment's members as CSV (streamed)", responses={200: "text/csv"}, errors=(404,),
           tag="segments")
def members_csv(segment_id: str) -> Any:
    s = store()
    catalog.require(s, segment_id)  # 404 before the first byte
    body = stream_csv(MEMBER_COLUMNS, lambda cursor: reading.members(s, segment_id, limit=500,
                                                                     cursor=cursor))
    response = Response(stream_with_context(body), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="segment-{segment_id}.csv"'
    return response


@bp.get("/api/v1/segments/<segment_id>/explain")
@access("lists", "read")
@operation("Why a person is or is not a member", query=ExplainQuery,
           responses={200: Explanation}, errors=(404,), tag="segments")
def get_explain(segment_id: str) -> Any:
    q = load_query(ExplainQuery())
    return jsonify(Explanation().dump(reading.explain(store(), segment_id, q["email"])))
