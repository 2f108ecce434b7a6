"""Marketer endpoints: CSV import jobs and CSV exports."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from werkzeug.exceptions import BadRequest

from outreach.campaigns import recipients
from outreach.errors import Invalid
from outreach.people import exports
from outreach.people.imports import jobs
from outreach.people.imports.run import Options
from outreach.schemas.people import LeadQuery
from outreach.web.api.auth import access, require_api_key
from outreach.web.common import config, load_query, store
from outreach.web.openapi import operation

log = logging.getLogger(__name__)
bp = Blueprint("imports", __name__)
require_api_key(bp)


@bp.post("/api/v1/imports")
@access("imports", "write")
@operation("Import a CSV file (multipart: file, type leads|contacts, asset, kind, source, "
           "consent yes|no|column:NAME, map Header=field (repeatable), dry_run)",
           responses={202: "ImportQueued"}, errors=(400, 413, 415, 422, 503), tag="imports")
def post_import() -> Any:
    request.max_content_length = config().import_max_bytes
    if request.mimetype != "multipart/form-data":
        return _unsupported()
    upload = request.files.get("file")
    if upload is None:
        raise Invalid("Validation failed.", {"file": ["Missing data for required field."]})
    form = request.form
    mapping = {}
    for item in form.getlist("map"):
        header, sep, name = item.rpartition("=")
        if not sep or not header:
            raise Invalid("Validation failed.", {"map": [f"{item!r}: expected Header=field."]})
        mapping[header] = name.strip()
    options = Options(
        type=form.get("type", "leads"), asset=form.get("asset") or None,
        kind=form.get("kind") or "white_paper", source=form.get("source") or "import",
        consent=form.get("consent") or "no", mapping=mapping,
        dry_run=(form.get("dry_run") or "").lower() in ("1", "true", "yes", "on"))
    import_id = jobs.create_job(store(), config(), upload.read(), options)
    try:  # a nudge: the job is in the imports schedule, which the beat drives
        current_app.extensions["outreach.import_jobs"](import_id)
    except Exception:  # noqa: BLE001
        log.warning("could not publish import %s; the beat will run it", import_id,
                    exc_info=True)
    return jsonify({"id": import_id, "status": "queued"}), 202


def _unsupported() -> Any:
    from werkzeug.exceptions import UnsupportedMediaType

    raise UnsupportedMediaType("Send multipart/form-data with a file field.")


@bp.get("/api/v1/imports/<import_id>")
@access("imports", "read")
@operation("An import's progress and counts", responses={200: "Import"}, errors=(404,),
           tag="imports")
def get_import(import_id: str) -> Any:
    return jsonify(jobs.get_job(store(), import_id, config().base_url))


@bp.get("/api/v1/imports/<import_id>/errors.csv")
@access("imports", "read")
@operation("An import's error report: line,reason,field", responses={200: "text/csv"},
           errors=(404,), tag="imports")
def get_import_errors(import_id: str) -> Any:
    rows = jobs.job_errors(store(), import_id)
    first = next(rows, None)

    def lines() -> Any:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(["line", "reason", "field"])
        if first is not None:
            writer.writerow([first[0], exports.safe_cell(first[1]), first[2]])
            for line, reason, name in rows:
                writer.writerow([line, exports.safe_cell(reason), name])
                if buffer.tell() > 65536:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    return _csv(lines(), f"import-{import_id}-errors.csv")


def _csv(body: Any, filename: str) -> Response:
    response = Response(stream_with_context(body), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/api/v1/lists/<list_id>/members.csv")
@access("lists", "read")
@operation("A list's members as CSV (streamed)", responses={200: "text/csv"}, errors=(404,),
           tag="lists")
def members_csv(list_id: str) -> Any:
    return _csv(exports.list_members_csv(store(), list_id), f"list-{list_id}.csv")


@bp.get("/api/v1/leads.csv")
@access("people", "read")
@operation("Leads as CSV (the leads filters; streamed)", query=LeadQuery,
           responses={200: "text/csv"}, errors=(404,), tag="people")
def leads_csv() -> Any:
    q = load_query(LeadQuery())
    return _csv(exports.leads_csv(store(), list_id=q.get("list"), status=q.get("status"),
                                  email=q.get("email")), "leads.csv")


@bp.get("/api/v1/campaigns/<campaign_id>/recipients.csv")
@access("campaigns", "read")
@operation("A campaign's recipients as CSV (?status=; streamed)", responses={200: "text/csv"},
           errors=(404, 422), tag="campaigns")
def recipients_csv(campaign_id: str) -> Any:
    status = request.args.get("status") or None
    return _csv(recipients.recipients_csv(store(), campaign_id, status), f"recipients-{campaign_id}.csv")


__all__ = ["bp", "BadRequest"]
