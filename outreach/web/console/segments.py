"""Segments in the console: the list, the rule builder (new and edit, with a live count),
a segment's page (members, size over time, explain this person) and delete. The access
area is the API's: ``lists``."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from typing import Any

from flask import flash, redirect, request, url_for
from marshmallow import ValidationError

from outreach.errors import Conflict, Invalid, NotFound
from outreach.people import lists
from outreach.people.segments import catalog, history, reading
from outreach.people.segments import rules as rule_tree
from outreach.schemas.segments import SegmentIn, SegmentPatch
from outreach.web.console import segment_form
from outreach.web.console.base import bp, jobs, render, requires, store

_PAGE = 25
_CHOICES = 200


def _cursor() -> str | None:
    return request.args.get("cursor") or None


def _nudge(segment_id: str) -> None:
    with contextlib.suppress(Exception):  # only a nudge: the beat carries every build on
        jobs().build_segment(segment_id)


@bp.route("/segments")
@requires("lists")
def segments_page() -> Any:
    return render("segments.html", found=catalog.find_segments(store(), limit=_PAGE,
                                                               cursor=_cursor()))


# ---------------------------------------------------------------- the builder

def _choices(exclude: str | None = None) -> dict[str, Any]:
    s = store()
    found_lists = lists.find_lists(s, limit=_CHOICES)["items"]
    found_segments = [x for x in catalog.find_segments(s, limit=_CHOICES)["items"]
                      if x["id"] != exclude]
    return {"list_choices": found_lists, "segment_choices": found_segments,
            "fields": rule_tree.FIELDS, "ops": rule_tree.OPS, "kinds": segment_form.KIND_LABELS,
            "op_labels": segment_form.OP_LABELS, "groups": segment_form.GROUPS,
            "conditions": segment_form.CONDITIONS, "member_types": rule_tree.MEMBER_TYPES,
            "number_fields": rule_tree.NUMBER_FIELDS, "date_fields": rule_tree.DATE_FIELDS}


def _checked(root: segment_form.Node, member_type: str) -> tuple[dict[str, Any] | None,
                                                                  list[str]]:
    """The API tree when it passes ``rules.check`` (and its references), else None with the
    errors placed on their nodes; the list holds the errors no node took."""
    tree = segment_form.to_rules(root)
    try:
        rule_tree.check(tree)
        catalog.check_references(store(), None, tree)
    except Invalid as exc:
        return None, segment_form.attach_errors(root, exc.fields or {"rules": [exc.message]})
    if member_type not in rule_tree.MEMBER_TYPES:
        return None, ["Choose who the members are."]
    return tree, []


def _preview(root: segment_form.Node, member_type: str) -> dict[str, Any]:
    tree, left = _checked(root, member_type)
    if tree is None:
        return {"errors": left, "result": None}
    return {"errors": [], "result": reading.preview(store(), member_type, tree)}


def _builder(values: dict[str, Any], root: segment_form.Node, *, segment_id: str | None,
             preview: dict[str, Any] | None, errors: dict[str, Any], http_status: int = 200,
             template: str = "segment_form.html") -> Any:
    return render(template, http_status, values=values, root=root, segment_id=segment_id,
                  preview=preview, errors=errors, **_choices(segment_id))


@bp.route("/segments/new")
@requires("lists", "write")
def segment_new() -> Any:
    root = segment_form.empty()
    return _builder({"name": "", "member_type": "lead"}, root, segment_id=None,
                    preview=None, errors={})


@bp.route("/segments/<segment_id>/edit")
@requires("lists", "write")
def segment_edit(segment_id: str) -> Any:
    found = catalog.get_segment(store(), segment_id)
    root = segment_form.from_rules(found["rules"])
    return _builder({"name": found["name"], "member_type": found["member_type"]}, root,
                    segment_id=segment_id, preview=None, errors={})


def _posted() -> tuple[dict[str, Any], segment_form.Node]:
    values = {"name": request.form.get("name", "").strip(),
              "member_type": request.form.get("member_type", "lead")}
    return values, segment_form.parse(request.form)


def _save(segment_id: str | None) -> Any:
    values, root = _posted()
    action = request.form.get("action", "save")
    if action.startswith(("add:", "group:", "remove:")):
        root = segment_form.apply_action(root, action)
        return _builder(values, root, segment_id=segment_id, preview=None, errors={})
    if action != "save":  # "count" (no JavaScript) and anything else: save nothing
        preview = _preview(root, values["member_type"])
        return _builder(values, root, segment_id=segment_id, preview=preview, errors={},
                        http_status=422 if preview["result"] is None else 200)
    tree = segment_form.to_rules(root)
    data = {"name": values["name"], "member_type": values["member_type"], "rules": tree}
    try:
        loaded = (SegmentIn() if segment_id is None else SegmentPatch()).load(data)
        if segment_id is None:
            saved = catalog.create_segment(store(), loaded["name"], loaded["member_type"],
                                           loaded["rules"])
        else:
            saved = catalog.update_segment(store(), segment_id, loaded)
    except ValidationError as exc:
        return _invalid(values, root, segment_id, exc.messages)
    except Invalid as exc:
        return _invalid(values, root, segment_id, exc.fields or {"rules": [exc.message]})
    if saved["build"]["state"] == "building":
        _nudge(saved["id"])
    flash(f"Saved the segment {saved['name']!r}; it is being built.")
    return redirect(url_for("console.segment_page", segment_id=saved["id"]))


def _invalid(values: dict[str, Any], root: segment_form.Node, segment_id: str | None,
             fields: dict[str, Any]) -> Any:
    rules_fields = {k: v for k, v in fields.items() if k.startswith("rules")}
    other = {k: v for k, v in fields.items() if not k.startswith("rules")}
    left = segment_form.attach_errors(root, rules_fields) if rules_fields else []
    if left:
        other["rules"] = left
    return _builder(values, root, segment_id=segment_id, preview=None, errors=other,
                    http_status=422)


@bp.route("/segments/new", methods=["POST"])
@requires("lists", "write")
def segment_create() -> Any:
    return _save(None)


@bp.route("/segments/<segment_id>/edit", methods=["POST"])
@requires("lists", "write")
def segment_update(segment_id: str) -> Any:
    catalog.require(store(), segment_id)
    return _save(segment_id)


@bp.route("/segments/preview", methods=["POST"])
@requires("lists")
def segment_preview() -> Any:
    """The live count and sample of the builder's rules (htmx; the errors go next to the
    nodes out of band)."""
    values, root = _posted()
    preview = _preview(root, values["member_type"])
    return render("_segment_preview.html", preview=preview, root=root, oob=True)


@bp.route("/segments/builder", methods=["POST"])
@requires("lists")
def segment_builder() -> Any:
    """The builder again after a change of a node's kind or a structural button (htmx)."""
    values, root = _posted()
    action = request.form.get("action", "")
    if action.startswith(("add:", "group:", "remove:")):
        root = segment_form.apply_action(root, action)
    segment_id = request.form.get("segment_id") or None
    return _builder(values, root, segment_id=segment_id, preview=_preview(root, values["member_type"]),
                    errors={}, template="_segment_builder.html")


# ---------------------------------------------------------------- a segment

def _chart(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Coordinates in a 1000 x 200 box (the line is drawn with a non-scaling stroke)."""
    first, last = points[0]["at"], points[-1]["at"]
    span = max(1, last - first)
    top = max(p["size"] for p in points) or 1
    coords = [(round((p["at"] - first) / span * 1000, 1) if len(points) > 1 else 1000.0,
               round(190 - p["size"] / top * 180, 1)) for p in points]
    if len(coords) == 1:
        coords.insert(0, (0.0, coords[0][1]))
    line = " ".join(f"{x},{y}" for x, y in coords)

    def day(at: int) -> str:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")

    return {"line": line, "area": f"0,200 {line} 1000,200", "top": top,
            "low": min(p["size"] for p in points), "first": day(first), "last": day(last),
            "samples": len(points), "now": points[-1]["size"]}


@bp.route("/segments/<segment_id>")
@requires("lists")
def segment_page(segment_id: str) -> Any:
    s = store()
    found = catalog.get_segment(s, segment_id)
    members = reading.members(s, segment_id, limit=_PAGE, cursor=_cursor())
    email = request.args.get("email", "").strip()[:320]
    explanation, explain_error = None, None
    if email:
        try:
            explanation = reading.explain(s, segment_id, email.lower())
        except NotFound as exc:
            explain_error = exc.message
    explained = _explained(explanation)
    return render("segment.html", found=found,
                  members=members, chart=_chart(history.series(s, segment_id, time.time())),
                  email=email, explanation=explanation, explained=explained,
                  explain_error=explain_error, rules_text=describe(found["rules"]))


def _explained(explanation: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not explanation:
        return []
    return [dict(node, depth=_depth(node["path"])) for node in explanation["rules"]]


def _depth(path: str) -> int:
    """How deep ``rules.all.0.not`` is (2): a group step is ``all.<i>``, ``any.<i>`` or ``not``."""
    parts, depth, i = path.split(".")[1:], 0, 0
    while i < len(parts):
        i += 1 if parts[i] == "not" else 2
        depth += 1
    return depth


def describe(rules: dict[str, Any]) -> list[dict[str, Any]]:
    """The rules as indented lines of text for the segment page."""
    out: list[dict[str, Any]] = []

    def visit(rule: dict[str, Any], depth: int) -> None:
        if "field" in rule:
            out.append({"depth": depth, "text": f"{rule['field']} "
                        f"{segment_form.OP_LABELS.get(rule['op'], rule['op'])} "
                        f"{segment_form._show(rule['value'])}"})
            return
        (kind, body), = rule.items()
        if kind in ("all", "any", "not"):
            out.append({"depth": depth, "text": {"all": "all of:", "any": "any of:",
                                                 "not": "not:"}[kind]})
            for child in (body if kind != "not" else [body]):
                visit(child, depth + 1)
            return
        if isinstance(body, dict):
            detail = ", ".join(f"{k} {segment_form._show(v)}" for k, v in body.items())
        else:
            detail = str(body)
        out.append({"depth": depth, "text": f"{segment_form.KIND_LABELS.get(kind, kind).lower()}"
                                            f"{' ' + detail if detail else ''}"})

    visit(rules, 0)
    return out


@bp.route("/segments/<segment_id>/delete")
@requires("lists", "write")
def segment_delete_confirm(segment_id: str) -> Any:
    return render("segment_delete.html", found=catalog.get_segment(store(), segment_id),
                  conflict=None)


@bp.route("/segments/<segment_id>/delete", methods=["POST"])
@requires("lists", "write")
def segment_delete(segment_id: str) -> Any:
    s = store()
    found = catalog.get_segment(s, segment_id)
    try:
        catalog.delete_segment(s, segment_id)
    except Conflict as exc:
        return render("segment_delete.html", 409, found=found, conflict=exc.message)
    flash(f"Deleted the segment {found['name']!r}.")
    return redirect(url_for("console.segments_page"))
