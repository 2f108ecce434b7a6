"""Console pages for sales: the activity box and timeline on record pages, my tasks,
the pipeline board by stage (stage change buttons) with my opportunities; the webhooks
page for admins."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from outreach.errors import ServiceError
from outreach.platform import webhooks
from outreach.sales import activities, opportunities
from outreach.sales import tasks as sales_tasks
from outreach.sales.owners import PLURALS, require_record, set_owner
from outreach.sales.pipeline import pipeline
from outreach.schemas.sales import ActivityIn, WebhookIn
from outreach.vocabulary import ACTIVITY_TYPES, LOST_REASONS, STAGES, WEBHOOK_EVENTS
from outreach.web.console.base import bp, can, config, render, requires, store

_PAGES = {"lead": ("console.lead_page", "lead_id"), "contact": ("console.contact_page", "contact_id"),
          "account": ("console.account_page", "account_id"),
          "opportunity": ("console.opportunity_page", "opp_id")}


def _record_url(kind: str, record_id: str) -> str:
    endpoint, arg = _PAGES[kind]
    return url_for(endpoint, **{arg: record_id})


def _back(default: str) -> Any:
    target = request.form.get("next", "")
    return redirect(target if target.startswith("/console/") and "//" not in target else default)


@bp.context_processor
def _sales_helpers() -> dict[str, Any]:
    def timeline_of(kind: str, record_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return activities.timeline(store(), kind, record_id, limit)["items"]

    def owner_of(kind: str, record_id: str) -> str | None:
        return require_record(store(), kind, record_id).get("owner") or None

    return {"timeline_of": timeline_of, "owner_of": owner_of, "activity_types": ACTIVITY_TYPES,
            "stages": STAGES, "lost_reasons": LOST_REASONS}


@bp.route("/<any(leads,contacts,accounts,opportunities):plural>/<record_id>/activities",
          methods=["POST"])
@requires("people", "write")
def activity_add(plural: str, record_id: str) -> Any:
    kind = PLURALS[plural]
    if kind == "opportunity" and not can("opportunities", "write"):
        abort(403)
    data = {name: request.form[name].strip() for name in ("type", "subject", "body", "due_at", "owner")
            if request.form.get(name, "").strip()}
    try:
        body = ActivityIn().load(data)
        activities.create_activity(store(), kind, record_id, body, current_user.email,
                                   current_user.email)
    except ValidationError as exc:
        flash("Not saved: " + "; ".join(f"{k}: {' '.join(map(str, v))}"
                                        for k, v in exc.messages.items()), "error")
    except ServiceError as exc:
        if exc.status == 404:
            raise
        detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in (exc.fields or {}).items())
        flash(f"Not saved: {exc.message} {detail}".strip(), "error")
    else:
        flash({"task": "Task added.", "note": "Note added."}.get(body["type"], "Activity logged."))
    return redirect(_record_url(kind, record_id) + "#timeline")


@bp.route("/tasks")
@requires("people")
def tasks_page() -> Any:
    found = sales_tasks.tasks_of(store(), current_user.email)
    return render("tasks.html", open_tasks=found["open"], done_tasks=found["done"])


@bp.route("/tasks/<task_id>/done", methods=["POST"])
@requires("people", "write")
def task_done(task_id: str) -> Any:
    sales_tasks.complete_task(store(), task_id, current_user.email)
    flash("Task done.")
    return _back(url_for("console.tasks_page"))


@bp.route("/pipeline")
@requires("opportunities")
def pipeline_page() -> Any:
    s = store()
    columns = {stage: opportunities.find_opportunities(s, status="open", stage=stage, limit=25)
               for stage in STAGES}
    mine = opportunities.find_opportunities(s, owner=current_user.email, status="open", limit=50)
    return render("pipeline.html", report=pipeline(s), columns=columns, mine=mine)


@bp.route("/opportunities/<opp_id>/stage", methods=["POST"])
@requires("opportunities", "write")
def opportunity_stage(opp_id: str) -> Any:
    stage = request.form.get("stage", "")
    if stage not in STAGES:
        flash("Unknown stage.", "error")
    else:
        opportunities.update_opportunity(store(), opp_id, {"stage": stage}, by=current_user.email)
        flash(f"Moved to {stage}.")
    return _back(url_for("console.opportunity_page", opp_id=opp_id))


# ------------------------------------------------------------------ webhooks (admins)

@bp.route("/webhooks")
@requires("settings")
def webhooks_page() -> Any:
    s = store()
    hooks = webhooks.find_webhooks(s, limit=100)["items"]
    logs = {h["id"]: webhooks.deliveries(s, h["id"], 10)["items"] for h in hooks}
    backlog = webhooks.backlog(s, [h["id"] for h in hooks])
    return render("webhooks.html", hooks=hooks, logs=logs, backlog=backlog, events=WEBHOOK_EVENTS,
                  created=None)


@bp.route("/webhooks", methods=["POST"])
@requires("settings", "write")
def webhook_create() -> Any:
    data: dict[str, Any] = {"url": request.form.get("url", "").strip(),
                            "events": request.form.getlist("events")}
    if request.form.get("secret", "").strip():
        data["secret"] = request.form["secret"].strip()
    try:
        made = webhooks.create_webhook(store(), config(), WebhookIn().load(data), current_user.email)
    except ValidationError as exc:
        flash("Not created: " + "; ".join(f"{k}: {' '.join(map(str, v))}"
                                          for k, v in exc.messages.items()), "error")
        return redirect(url_for("console.webhooks_page"))
    except ServiceError as exc:
        detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in (exc.fields or {}).items())
        flash(f"Not created: {detail or exc.message}", "error")
        return redirect(url_for("console.webhooks_page"))
    flash(f"Webhook created. Its signing secret (shown once): {made['secret']}")
    return redirect(url_for("console.webhooks_page"))


@bp.route("/webhooks/<webhook_id>/<any(enable,disable,delete):verb>", methods=["POST"])
@requires("settings", "write")
def webhook_action(webhook_id: str, verb: str) -> Any:
    if verb == "delete":
        webhooks.delete_webhook(store(), webhook_id)
        flash("Webhook deleted.")
    else:
        webhooks.update_webhook(store(), config(), webhook_id, {"active": verb == "enable"})
        flash(f"Webhook {verb}d.")
    return redirect(url_for("console.webhooks_page"))


@bp.route("/webhooks/<webhook_id>/deliveries/<delivery_id>/redeliver", methods=["POST"])
@requires("settings", "write")
def webhook_redeliver(webhook_id: str, delivery_id: str) -> Any:
    webhooks.redeliver(store(), webhook_id, delivery_id)
    flash("Delivery queued again.")
    return redirect(url_for("console.webhooks_page"))


@bp.route("/<any(leads,contacts,accounts,opportunities):plural>/<record_id>/owner",
          methods=["POST"])
@requires("people", "write")
def owner_set(plural: str, record_id: str) -> Any:
    kind = PLURALS[plural]
    if kind == "opportunity" and not can("opportunities", "write"):
        abort(403)
    owner = request.form.get("owner", "").strip()
    try:
        if kind == "opportunity":
            opportunities.update_opportunity(store(), record_id, {"owner": owner}, by=current_user.email)
        else:
            set_owner(store(), kind, record_id, owner, current_user.email)
    except ServiceError as exc:
        if exc.status == 404:
            raise
        flash(f"Not reassigned: {' '.join((exc.fields or {}).get('owner', [exc.message]))}",
              "error")
    else:
        flash(f"Owner: {owner}.")
    return redirect(_record_url(kind, record_id))
