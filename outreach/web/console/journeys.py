"""Journeys (nurture flows): the list, a journey's page (its flow as a diagram with each
step's counts, the controls behind a confirmation, the people in it) and the editor."""

from __future__ import annotations

import datetime
from typing import Any

from flask import abort, flash, redirect, request, url_for
from marshmallow import ValidationError

from outreach.errors import Conflict, Invalid
from outreach.journeys import catalog, enrollments
from outreach.schemas.journeys import JourneyIn
from outreach.web.console import journey_form
from outreach.web.console.base import bp, config, render, requires, store

_PAGE = 25
ACTIONS = {"activate": ("draft",), "pause": ("active",), "resume": ("paused",),
           "stop": ("active", "paused")}
ENROLLMENT_STATUSES = ("active", "done", "exited", "stopped")


@bp.app_template_filter("epoch")
def _epoch(value: float | None) -> str:
    """Epoch seconds as 'YYYY-MM-DD HH:MM:SS UTC' ('–' for none)."""
    if not value:
        return "–"
    return datetime.datetime.fromtimestamp(float(value), datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.route("/journeys")
@requires("campaigns")
def journeys_page() -> Any:
    s = store()
    found = catalog.find_journeys(s, limit=_PAGE, cursor=request.args.get("cursor") or None)
    for item in found["items"]:
        item["stats"] = catalog.stats(s, item["id"], item["steps"])
        item["trigger_text"] = journey_form.trigger_text(item["trigger"])
    return render("journeys.html", found=found)


@bp.route("/journeys/<journey_id>")
@requires("campaigns")
def journey_page(journey_id: str) -> Any:
    s = store()
    found = catalog.get_journey(s, journey_id)
    status = request.args.get("status", "")
    status = status if status in ENROLLMENT_STATUSES else ""
    email = request.args.get("email", "").strip()[:320]
    people = enrollments.find_enrollments(s, journey_id, email=email or None, status=status or None,
                                          limit=_PAGE, cursor=request.args.get("cursor") or None)
    names = journey_form.names_of(s, found)
    return render("journey.html", found=found, people=people, status=status, email=email,
                  statuses=ENROLLMENT_STATUSES, names=names,
                  flow=journey_form.diagram(found, found["stats"], names),
                  trigger_text=journey_form.trigger_text(found["trigger"], names),
                  step_text=lambda step: journey_form.step_text(step, names),
                  rule_text=lambda rule: journey_form.rule_text(rule, names),
                  duration=journey_form.human_duration)


def _editor(values: dict[str, Any], *, journey: dict[str, Any] | None = None,
            errors: dict[str, Any] | None = None, status: int = 200, said: str = "") -> Any:
    choices = journey_form.choices(store())
    return render("journey_form.html", status, values=values, journey=journey, errors=errors or {},
                  said=said, step_names=journey_form.STEP_NAMES,
                  trigger_names=journey_form.TRIGGER_NAMES, units=tuple(journey_form.UNITS),
                  **choices)


@bp.route("/journeys/new")
@requires("campaigns", "write")
def journey_new() -> Any:
    return _editor(journey_form.editor_values(None))


@bp.route("/journeys/<journey_id>/edit")
@requires("campaigns", "write")
def journey_edit(journey_id: str) -> Any:
    found = catalog.get_journey(store(), journey_id)
    if found["status"] == "stopped":
        flash("A stopped journey is not edited: create a new one.", "error")
        return redirect(url_for("console.journey_page", journey_id=journey_id))
    return _editor(journey_form.editor_values(found), journey=found)


@bp.route("/journeys/new", methods=["POST"])
@requires("campaigns", "write")
def journey_create() -> Any:
    return _posted(None)


@bp.route("/journeys/<journey_id>/edit", methods=["POST"])
@requires("campaigns", "write")
def journey_save(journey_id: str) -> Any:
    return _posted(catalog.get_journey(store(), journey_id))


def _posted(journey: dict[str, Any] | None) -> Any:
    """An editor post: a step added, removed or moved (the editor again, nothing saved), or
    Save (a draft is replaced; an active or paused journey gets the next version)."""
    values = journey_form.posted_values(request.form)
    if request.form.get("action") != "save":
        said = journey_form.apply_action(values, request.form, journey_form.choices(store()))
        return _editor(values, journey=journey, said=said)
    data, errors = journey_form.definition_of(values)
    if errors:
        return _editor(values, journey=journey, errors=errors, status=422)
    try:
        body = JourneyIn().load(data)
        if journey is None:
            saved = catalog.create_journey(store(), body)
        else:
            saved = catalog.replace_journey(store(), journey["id"], body)
    except ValidationError as exc:
        return _editor(values, journey=journey, errors=exc.messages, status=422)
    except Invalid as exc:
        return _editor(values, journey=journey, errors=exc.fields or {"steps": [exc.message]},
                       status=422)
    except Conflict as exc:
        return _editor(values, journey=journey, errors={"journey": [exc.message]}, status=409)
    if journey is None:
        flash(f"Journey {saved['name']!r} saved as a draft. Check the flow, then activate it.")
    elif saved["version"] != journey["version"]:
        flash(f"Saved as version {saved['version']}: people who enter from now take it; "
              "people already in keep the version they entered.")
    else:
        flash("Draft saved.")
    return redirect(url_for("console.journey_page", journey_id=saved["id"]))


@bp.route("/journeys/<journey_id>/enroll", methods=["POST"])
@requires("campaigns", "write")
def journey_enroll(journey_id: str) -> Any:
    """A manual journey lets in the people whose addresses are pasted (known people only)."""
    pasted = request.form.get("emails", "")
    emails = [part for part in pasted.replace(",", " ").replace(";", " ").split() if part]
    if not emails:
        flash("Paste one or more addresses.", "error")
        return redirect(url_for("console.journey_page", journey_id=journey_id))
    try:
        result = enrollments.enroll_emails(store(), config(), journey_id, emails)
    except Invalid as exc:
        flash("Nobody enrolled: " + " ".join((exc.fields or {}).get("emails", [exc.message])),
              "error")
        return redirect(url_for("console.journey_page", journey_id=journey_id))
    message = f"Enrolled {result['enrolled']}."
    if result["skipped"]:
        message += " Not enrolled: " + ", ".join(
            f"{s['email']} ({s['reason'].replace('_', ' ')})" for s in result["skipped"][:20])
    flash(message)
    return redirect(url_for("console.journey_page", journey_id=journey_id))


@bp.route("/journeys/<journey_id>/<action>", methods=["POST"])
@requires("campaigns", "write")
def journey_action(journey_id: str, action: str) -> Any:
    if action not in ACTIONS:
        abort(404)
    s = store()
    found = catalog.get_journey(s, journey_id)
    if request.form.get("confirm") != "yes":
        return render("journey_confirm.html", found=found, action=action)
    try:
        getattr(catalog, action)(s, journey_id)
    except Invalid as exc:  # activation names the bad step: show it in the editor
        flash("Not activated: the flow has a problem, shown below.", "error")
        return _editor(journey_form.editor_values(found), journey=found,
                       errors=exc.fields or {"steps": [exc.message]}, status=422)
    except Conflict as exc:
        flash(f"Not done: {exc.message}", "error")
    else:
        flash({"activate": "Activated: people who meet the trigger enter from now.",
               "pause": "Paused: every step is held until you resume.",
               "resume": "Resumed: held steps carry on.",
               "stop": "Stopped: nothing more runs; everyone in it leaves."}[action])
    return redirect(url_for("console.journey_page", journey_id=journey_id))
