"""Marketing: lists, templates, campaigns."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from markupsafe import escape
from marshmallow import ValidationError

from outreach.campaigns import (
    audience,
    follow_ups,
    lifecycle,
    model,
    recipients,
    reports,
    templates,
    test_send,
)
from outreach.errors import Conflict, Invalid, RateLimited
from outreach.people import lists
from outreach.schemas.campaigns import CampaignIn, FollowUpIn, TemplateIn
from outreach.web.console import campaign_form
from outreach.web.console import experiments as experiment_form
from outreach.web.console.base import bp, config, form_data, jobs, render, requires, store

_PAGE = 25


def _cursor() -> str | None:
    return request.args.get("cursor") or None


# ---------------------------------------------------------------- lists

@bp.route("/lists")
@requires("lists")
def lists_page() -> Any:
    return render("lists.html", pairs=lists.find_list_pairs(store(), limit=_PAGE, cursor=_cursor(),
                                                            newest_first=True))


@bp.route("/lists", methods=["POST"])
@requires("lists", "write")
def lists_create() -> Any:
    name = request.form.get("name", "").strip()
    member_type = request.form.get("member_type", "lead")
    if not name or len(name) > 200 or member_type not in lists.MEMBER_TYPES:
        flash("A list needs a name (up to 200 characters) and a member type.", "error")
        return redirect(url_for("console.lists_page"))
    created = lists.create_list_pair(store(), name, member_type)
    flash(f"Created the lists {created['name']!r} and its parallel list.")
    return redirect(url_for("console.list_page", list_id=created["id"]))


@bp.route("/lists/<list_id>")
@requires("lists")
def list_page(list_id: str) -> Any:
    found = lists.get_list(store(), list_id)
    q = request.args.get("q", "").strip()
    if q:
        members = lists.search_list_members(store(), list_id, q[:320], limit=_PAGE,
                                            cursor=_cursor())
    else:
        members = lists.list_members(store(), list_id, limit=_PAGE, cursor=_cursor())
    return render("list.html", found=found, members=members, q=q)


@bp.route("/lists/<list_id>/members", methods=["POST"])
@requires("lists", "write")
def list_add_members(list_id: str) -> Any:
    pasted = request.form.get("emails", "")
    emails = [part for part in pasted.replace(",", "\n").replace(";", "\n").split() if part]
    if not emails:
        flash("Paste one or more addresses.", "error")
        return redirect(url_for("console.list_page", list_id=list_id))
    try:
        result = lists.add_members(store(), list_id, emails[:5000])
    except Invalid as exc:
        flash("Not added: " + " ".join(exc.fields.get("emails", [exc.message]) if exc.fields
                                       else [exc.message]), "error")
        return redirect(url_for("console.list_page", list_id=list_id))
    message = f"Added {result['added']}; {result['already_members']} were already members."
    if result["unknown"]:
        message += f" Not known (register or import them first): {', '.join(result['unknown'][:20])}"
    flash(message)
    return redirect(url_for("console.list_page", list_id=list_id))


# ---------------------------------------------------------------- templates

@bp.route("/templates")
@requires("templates")
def templates_page() -> Any:
    return render("templates.html",
                  found=templates.find_templates(store(), limit=_PAGE, cursor=_cursor(),
                                                 newest_first=True),
                  builtins=templates.builtin_templates())


@bp.route("/templates/new")
@requires("templates", "write")
def template_new() -> Any:
    start, copy_of = request.args.get("builtin", ""), request.args.get("from", "")
    if copy_of:  # templates are kept as saved: editing one means saving a changed copy
        values = dict(templates.get_template(store(), copy_of))
        values["name"] = f"{values['name']} (edited)"
    else:
        values = next((b for b in templates.builtin_templates() if b["name"] == start),
                      {"name": "", "subject": "", "html": "", "text": ""})
    return render("template_form.html", values=values, errors={}, draft=None, email="")


def _template_values() -> dict[str, str]:
    return {name: request.form.get(name, "") for name in ("name", "subject", "html", "text")}


@bp.route("/templates", methods=["POST"])
@requires("templates", "write")
def template_create() -> Any:
    values, email = _template_values(), request.form.get("preview_email", "").strip()
    if request.form.get("action") == "preview":  # without JavaScript: preview, save nothing
        draft = templates.preview_draft(store(), config(), values, email or None)
        return render("template_form.html", 422 if draft["errors"] else 200, values=values,
                      errors={}, draft=draft, email=email)
    try:
        created = templates.create_template(store(), config(), TemplateIn().load(values))
    except ValidationError as exc:
        return render("template_form.html", 422, values=values, errors=exc.messages, draft=None,
                      email=email)
    except Invalid as exc:  # the sources do not compile: say where, line by line
        draft = templates.preview_draft(store(), config(), values, email or None)
        return render("template_form.html", 422, values=values,
                      errors=draft["errors"] or exc.fields or {}, draft=draft, email=email)
    flash(f"Template {created['name']!r} saved.")
    return redirect(url_for("console.template_page", template_id=created["id"]))


@bp.route("/templates/preview", methods=["POST"])
@requires("templates")
def template_draft_preview() -> Any:
    """The editor's live preview (htmx): the unsaved sources checked and rendered."""
    email = request.form.get("preview_email", "").strip()
    return render("_template_preview.html",
                  draft=templates.preview_draft(store(), config(), _template_values(), email or None),
                  email=email)


@bp.route("/templates/drafts/<token>/preview.html")
@requires("templates")
def template_draft_html(token: str) -> Any:
    """An unsaved template's rendered HTML, for the editor's sandboxed preview frame."""
    html = templates.draft_html(store(), token[:64])
    if html is None:
        return "<p>This preview has expired: preview again.</p>", 404, {
            "Content-Type": "text/html; charset=utf-8"}
    return html, 200, {"Content-Type": "text/html; charset=utf-8"}


@bp.route("/templates/<template_id>")
@requires("templates")
def template_page(template_id: str) -> Any:
    email = request.args.get("email", "").strip()
    return render("template.html", found=templates.get_template(store(), template_id),
                  preview=templates.preview(store(), config(), template_id, email or None),
                  email=email)


@bp.route("/templates/<template_id>/preview.html")
@requires("templates")
def template_preview_html(template_id: str) -> Any:
    """The rendered HTML alone, for the sandboxed preview frame (its own CSP: no scripts)."""
    shown = templates.preview(store(), config(), template_id, request.args.get("email") or None)
    return shown["html"] or f"<p>{escape(shown['error'] or '')}</p>", 200, {
        "Content-Type": "text/html; charset=utf-8"}


# ---------------------------------------------------------------- campaigns

@bp.route("/campaigns")
@requires("campaigns")
def campaigns_page() -> Any:
    return render("campaigns.html",
                  found=model.find_campaigns(store(), limit=_PAGE, cursor=_cursor(),
                                             newest_first=True))


def _new_form(values: dict[str, Any], errors: dict[str, Any], status: int = 200,
              count: bool = False) -> Any:
    q = (request.form.get("q") if request.method == "POST" else request.args.get("q")) or ""
    choices = campaign_form.form_choices(
        store(), q=q.strip()[:100], template_id=values.get("template_id") or "",
        list_ids=values["list_ids"], count=count, segment_ids=values.get("segment_ids"),
        exclude_list_ids=values.get("exclude_list_ids"),
        exclude_segment_ids=values.get("exclude_segment_ids"))
    return render("campaign_form.html", status, values=values, errors=errors, q=q.strip()[:100],
                  default_from=config().from_email, **choices)


@bp.route("/campaigns/audience")
@requires("campaigns")
def campaign_form_audience() -> Any:
    """The deduplicated audience of the lists and segments ticked on the new-campaign form,
    less the excluded ones (htmx)."""
    args = request.args
    counts = campaign_form.audience_counts(
        store(), args.getlist("list_ids")[:500], args.getlist("segment_ids"),
        args.getlist("exclude_list_ids"), args.getlist("exclude_segment_ids"))
    return render("audience.html", counts=counts)


@bp.route("/campaigns/new")
@requires("campaigns", "write")
def campaign_new() -> Any:
    return _new_form({"template_id": request.args.get("template_id", ""), "list_ids": [],
                      "segment_ids": [], "exclude_list_ids": [], "exclude_segment_ids": []}, {})


@bp.route("/campaigns", methods=["POST"])
@requires("campaigns", "write")
def campaign_create() -> Any:
    values: dict[str, Any] = form_data("name", "template_id", "from_email", "rate_per_second",
                                       *campaign_form.SCHEDULE_FIELDS)
    for name in ("list_ids", "segment_ids", "exclude_list_ids", "exclude_segment_ids"):
        values[name] = request.form.getlist(name)
    values["x"] = experiment_form.form_values(request.form)  # an A/B test, when filled in
    if request.form.get("action") in ("count", "find"):  # without JavaScript: save nothing
        return _new_form(values, {}, count=request.form["action"] == "count")
    body = {k: v for k, v in values.items()
            if k != "x" and k not in campaign_form.SCHEDULE_FIELDS}
    schedule, problems = campaign_form.schedule_body(values)
    body.update(schedule)
    body["experiment"] = experiment_form.from_form(values["x"])
    try:
        loaded = CampaignIn().load(body)
        if problems:  # the form's own (a local-time send without its date or time)
            return _new_form(values, problems, 422)
        created = model.create_campaign(store(), config(), loaded)
    except ValidationError as exc:
        return _new_form(values, {**campaign_form.schedule_errors(
            experiment_form.form_errors(exc.messages), values), **problems}, 422)
    except Invalid as exc:
        return _new_form(values, campaign_form.schedule_errors(
            experiment_form.form_errors(exc.fields or {}), values), 422)
    flash(f"Campaign {created['name']!r} created as a draft. Check it, then launch it.")
    return redirect(url_for("console.campaign_page", campaign_id=created["id"]))


@bp.route("/campaigns/<campaign_id>")
@requires("campaigns")
def campaign_page(campaign_id: str) -> Any:
    found = model.campaign_live(store(), campaign_id)
    if request.headers.get("HX-Request"):
        return render("campaign_live.html", found=found)
    report = (reports.campaign_report(store(), campaign_id)
              if found["status"] not in ("draft", "scheduled") else None)
    return render("campaign.html", found=found, report=report,
                  experiment=experiment_form.experiment_of(found))


@bp.route("/campaigns/<campaign_id>/follow-up", methods=["POST"])
@requires("campaigns", "write")
def campaign_follow_up(campaign_id: str) -> Any:
    values = form_data("to", "name", "subject")
    try:
        created = follow_ups.create_follow_up(store(), config(), campaign_id,
                                              FollowUpIn().load(values))
    except ValidationError as exc:
        problems = "; ".join(f"{name}: {' '.join(map(str, msgs))}"
                             for name, msgs in exc.messages.items())
        flash(f"No follow-up made: {problems}", "error")
    except (Invalid, Conflict) as exc:
        flash(f"No follow-up made: {exc.message}", "error")
    else:
        flash(f"Follow-up {created['name']!r} created as a draft. Check it, then launch it.")
        return redirect(url_for("console.campaign_page", campaign_id=created["id"]))
    return redirect(url_for("console.campaign_page", campaign_id=campaign_id))


@bp.route("/campaigns/<campaign_id>/audience")
@requires("campaigns")
def campaign_audience(campaign_id: str) -> Any:
    counts = audience.campaign_audience(store(), campaign_id)
    template = "audience.html" if request.headers.get("HX-Request") else "audience_page.html"
    return render(template, campaign_id=campaign_id, counts=counts)


@bp.route("/campaigns/<campaign_id>/send-test", methods=["POST"])
@requires("campaigns", "write")
def campaign_send_test(campaign_id: str) -> Any:
    pasted = request.form.get("emails", "")
    emails = [part for part in pasted.replace(",", " ").replace(";", " ").split() if part]
    try:
        results = test_send.send_test(store(), config(), current_app.extensions["outreach.messenger"],
                                      campaign_id, emails)
    except Invalid as exc:
        flash("Test not sent: " + " ".join((exc.fields or {}).get("emails", [exc.message])), "error")
    except RateLimited as exc:
        flash(f"Test not sent: {exc.message}", "error")
    else:
        failed = {a: r for a, r in results.items() if r != "sent"}
        sent = [a for a, r in results.items() if r == "sent"]
        if sent:
            flash(f"Test sent to {', '.join(sent)} (marked as a test; not counted).")
        for address, why in failed.items():
            flash(f"Test to {address} {why}", "error")
    return redirect(url_for("console.campaign_page", campaign_id=campaign_id))


RECIPIENT_STATUSES = ("sent", "failed", "unknown", "suppressed", "bounced", "complained",
                      "queued", "sending", "waiting")


@bp.route("/campaigns/<campaign_id>/recipients")
@requires("campaigns")
def campaign_recipients(campaign_id: str) -> Any:
    status = request.args.get("status", "")
    status = status if status in RECIPIENT_STATUSES else ""
    engagement = request.args.get("engagement", "")
    engagement = engagement if engagement in recipients.ENGAGEMENTS else ""
    found = recipients.recipients(store(), campaign_id, status=status or None, limit=_PAGE,
                                  cursor=_cursor(), engagement=engagement or None)
    return render("recipients.html", campaign_id=campaign_id, found=found, status=status,
                  statuses=RECIPIENT_STATUSES, engagement=engagement,
                  engagements=tuple(recipients.ENGAGEMENTS))


@bp.route("/campaigns/<campaign_id>/<action>", methods=["POST"])
@requires("campaigns", "write")
def campaign_action(campaign_id: str, action: str) -> Any:
    s = store()
    if action not in ("launch", "pause", "resume", "cancel", "retry-failed"):
        abort(404)
    if request.form.get("confirm") != "yes":
        return render("confirm.html", found=model.get_campaign(s, campaign_id), action=action)
    try:
        if action == "launch":
            lifecycle.launch(s, jobs(), campaign_id)
        elif action == "pause":
            lifecycle.pause(s, campaign_id)
        elif action == "resume":
            lifecycle.resume(s, jobs(), campaign_id)
        elif action == "retry-failed":
            lifecycle.retry_failed(s, jobs(), campaign_id, config().send_batch_size)
        else:
            lifecycle.cancel(s, campaign_id)
    except Conflict as exc:
        flash(f"Not done: {exc.message}", "error")
    else:
        flash({"launch": "Launched.", "pause": "Paused.", "resume": "Resumed.",
               "cancel": "Cancelled.", "retry-failed": "Failed recipients queued again."}[action])
    return redirect(url_for("console.campaign_page", campaign_id=campaign_id))
