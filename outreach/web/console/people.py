"""People and deals: leads, contacts, accounts, opportunities."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from outreach.errors import Conflict, PossibleDuplicates, ServiceError
from outreach.journeys import person as journey_person
from outreach.people import lists, records, scoring, search, suppressions
from outreach.people.records import EDITABLE_FIELDS, LEAD_STATUSES
from outreach.platform import refs
from outreach.sales import accounts, opportunities
from outreach.sales import qualify as qualification
from outreach.schemas.crm import DisqualifyIn, OpportunityPatch, QualifyIn
from outreach.schemas.people import ContactPatch, LeadPatch
from outreach.vocabulary import DISQUALIFY_REASONS, SOURCES
from outreach.web.console.base import bp, config, render, requires, store
from outreach.zones import zone_names

_PAGE = 25


def _non_empty(*names: str) -> dict[str, str]:
    return {n: request.form[n].strip() for n in names if request.form.get(n, "").strip()}


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "").strip()
    return int(value) if value.lstrip("-").isdigit() and len(value) < 10 else None


# ?sort=: oldest / newest first by creation date, or highest score first ("created" and
# "date" as the page called them before)
_SORTS = {"oldest": "oldest", "created": "oldest", "newest": "newest", "date": "newest",
          "score": "score"}


@bp.route("/leads")
@requires("people")
def leads_page() -> Any:
    args = request.args
    q = args.get("q", "").strip()
    status = args.get("status", "") if args.get("status", "") in LEAD_STATUSES else ""
    source = args.get("source", "") if args.get("source", "") in SOURCES else ""
    list_id = args.get("list", "").strip()[:32]
    min_score, max_score = _int_arg("min_score"), _int_arg("max_score")
    sort = _SORTS.get(args.get("sort", ""), "oldest")
    cursor = args.get("cursor") or None
    filters = {"q": q, "status": status, "source": source, "list": list_id, "sort": sort,
               "min_score": "" if min_score is None else min_score,
               "max_score": "" if max_score is None else max_score}
    found = search.browse_leads(store(), q, status=status or None, source=source or None,
                                min_score=min_score, max_score=max_score, list_id=list_id or None,
                                sort=sort, limit=_PAGE, cursor=cursor)
    searched = found["searched"]
    lead_lists = [pair["lead"] for pair in lists.find_list_pairs(store(), limit=200,
                                                                 newest_first=True)["items"]
                  if pair.get("lead")]
    return render("leads.html", found=found, filters=filters, searched=searched, q=q,
                  status=status, statuses=LEAD_STATUSES, sources=SOURCES, lead_lists=lead_lists)


def _lead_page(lead_id: str, status: int = 200, errors: dict[str, Any] | None = None,
               **extra: Any) -> Any:
    s = store()
    lead = records.get_lead(s, lead_id)
    return render("lead.html", status, lead=lead, events=records.person_events(s, refs.lead_ref(lead_id)),
                  score=scoring.score_items(s, config(), lead_id),
                  suppression=suppressions.get_suppression(s, lead["email"]),
                  person_ref=refs.lead_ref(lead_id), fields=EDITABLE_FIELDS, reasons=DISQUALIFY_REASONS,
                  errors=errors or {}, zones=zone_names(),
                  default_zone=config().default_timezone,
                  journeys=journey_person.person_enrollments(
                      s, [refs.lead_ref(lead_id)] + ([refs.contact_ref(lead["contact_id"])]
                                                     if lead.get("contact_id") else [])),
                  **extra)


@bp.route("/leads/<lead_id>")
@requires("people")
def lead_page(lead_id: str) -> Any:
    return _lead_page(lead_id)


@bp.route("/leads/<lead_id>/edit", methods=["POST"])
@requires("people", "write")
def lead_edit(lead_id: str) -> Any:
    data: dict[str, Any] = {name: request.form.get(name, "") for name in EDITABLE_FIELDS
                            if name in request.form}
    if request.form.get("email"):
        data["email"] = request.form["email"]
    # the form always shows the box: only a box changed from what the page showed is a
    # consent change (a pending or withdrawn lead shows it unticked)
    ticked = request.form.get("consent") == "on"
    if ticked != records.get_lead(store(), lead_id)["consent"]:
        data["consent"] = ticked
    try:
        records.update_lead(store(), lead_id, LeadPatch().load(data), how="console",
                           ip=request.remote_addr, user_agent=request.headers.get("User-Agent"))
    except ValidationError as exc:
        return _lead_page(lead_id, 422, exc.messages)
    except Conflict as exc:
        return _lead_page(lead_id, 409, {"email": [exc.message]})
    flash("Lead saved.")
    return redirect(url_for("console.lead_page", lead_id=lead_id))


_QUALIFY_FIELDS = ("estimated_revenue", "estimated_close_date", "probability", "account_id",
                   "on_duplicate")


@bp.route("/leads/<lead_id>/qualify", methods=["POST"])
@requires("people", "write")
def lead_qualify(lead_id: str) -> Any:
    form = _non_empty(*_QUALIFY_FIELDS)
    try:
        body = QualifyIn().load(form)
        result = qualification.qualify(store(), config(), lead_id, **body, by=current_user.email)
    except ValidationError as exc:
        return _lead_page(lead_id, 422, exc.messages)
    except PossibleDuplicates as exc:  # the person picks: link to one of them, or a new account
        return _lead_page(lead_id, 409, duplicates=exc.extra["possible_duplicates"], qualify_form=form)
    except Conflict as exc:
        flash(f"Not qualified: {exc.message}", "error")
        return redirect(url_for("console.lead_page", lead_id=lead_id))
    flash("Lead qualified: contact, account and opportunity created.")
    return redirect(url_for("console.opportunity_page", opp_id=result["opportunity_id"]))


@bp.route("/leads/<lead_id>/disqualify", methods=["POST"])
@requires("people", "write")
def lead_disqualify(lead_id: str) -> Any:
    try:
        body = DisqualifyIn().load(_non_empty("reason", "note"))
        qualification.disqualify(store(), lead_id, body["reason"], body.get("note"), by=current_user.email)
    except ValidationError as exc:
        return _lead_page(lead_id, 422, exc.messages)
    except Conflict as exc:
        flash(f"Not disqualified: {exc.message}", "error")
    else:
        flash("Lead disqualified.")
    return redirect(url_for("console.lead_page", lead_id=lead_id))


@bp.route("/leads/<lead_id>/reactivate", methods=["POST"])
@requires("people", "write")
def lead_reactivate(lead_id: str) -> Any:
    try:
        qualification.reactivate(store(), lead_id, by=current_user.email)
    except Conflict as exc:
        flash(f"Not reactivated: {exc.message}", "error")
    else:
        flash("Lead reactivated.")
    return redirect(url_for("console.lead_page", lead_id=lead_id))


def _contact_page(contact_id: str, status: int = 200,
                  errors: dict[str, Any] | None = None) -> Any:
    s = store()
    contact = records.get_contact(s, contact_id)
    ref = refs.contact_ref(contact_id)
    return render("contact.html", status, contact=contact, events=records.person_events(s, ref),
                  suppression=suppressions.get_suppression(s, contact["email"]), person_ref=ref,
                  errors=errors or {}, zones=zone_names(),
                  default_zone=config().default_timezone,
                  journeys=journey_person.person_enrollments(
                      s, [ref] + ([refs.lead_ref(contact["lead_id"])] if contact.get("lead_id") else [])))


@bp.route("/contacts/<contact_id>")
@requires("people")
def contact_page(contact_id: str) -> Any:
    return _contact_page(contact_id)


@bp.route("/contacts/<contact_id>/edit", methods=["POST"])
@requires("people", "write")
def contact_edit(contact_id: str) -> Any:
    """The contact's time zone (the profile fields the form sends; empty clears)."""
    data = {name: request.form.get(name, "") for name in EDITABLE_FIELDS if name in request.form}
    try:
        records.update_contact(store(), contact_id, ContactPatch().load(data))
    except ValidationError as exc:
        return _contact_page(contact_id, 422, exc.messages)
    flash("Contact saved.")
    return redirect(url_for("console.contact_page", contact_id=contact_id))


@bp.route("/suppressions/lift", methods=["POST"])
@requires("campaigns", "write")
def suppression_lift() -> Any:
    """Lift a bounce or manual suppression from the person's page, then go back to it."""
    try:
        suppressions.lift_suppression(store(), request.form.get("email", ""))
    except ServiceError as exc:
        flash(f"Not lifted: {exc.message}", "error")
    else:
        flash("Suppression lifted: the address can be mailed again.")
    kind, person_id = refs.parse(request.form.get("person", ""))
    if kind == refs.LEAD:
        return redirect(url_for("console.lead_page", lead_id=person_id))
    if kind == refs.CONTACT:
        return redirect(url_for("console.contact_page", contact_id=person_id))
    return redirect(url_for("console.leads_page"))


@bp.route("/accounts/<account_id>")
@requires("people")
def account_page(account_id: str) -> Any:
    s = store()
    account = accounts.get_account(s, account_id)
    contacts = records.find_contacts(s, account_id=account_id, limit=_PAGE)
    opps = opportunities.find_opportunities(s, account_id=account_id, limit=_PAGE)
    return render("account.html", account=account, contacts=contacts, opps=opps)


@bp.route("/opportunities")
@requires("opportunities")
def opportunities_page() -> Any:
    cursors = {status: request.args.get(status) or None for status in opportunities.OPPORTUNITY_STATUSES}
    return render("opportunities.html", columns=opportunities.opportunity_board(store(), cursors, _PAGE),
                  cursors=cursors)


def _opportunity_page(opp_id: str, status: int = 200, errors: dict[str, Any] | None = None) -> Any:
    return render("opportunity.html", status, opp=opportunities.get_opportunity(store(), opp_id),
                  errors=errors or {})


@bp.route("/opportunities/<opp_id>")
@requires("opportunities")
def opportunity_page(opp_id: str) -> Any:
    return _opportunity_page(opp_id)


@bp.route("/opportunities/<opp_id>", methods=["POST"])
@requires("opportunities", "write")
def opportunity_edit(opp_id: str) -> Any:
    data = _non_empty("topic", "estimated_revenue", "estimated_close_date", "probability", "status",
                      "owner", "actual_revenue", "lost_reason", "competitor", "stage")
    try:
        opportunities.update_opportunity(store(), opp_id, OpportunityPatch().load(data),
                               by=current_user.email)
    except ValidationError as exc:
        return _opportunity_page(opp_id, 422, exc.messages)
    except ServiceError as exc:
        if exc.status != 422:
            raise
        return _opportunity_page(opp_id, 422, exc.fields)
    flash({"won": "Closed as won.", "lost": "Closed as lost."}.get(data.get("status", ""),
                                                                  "Opportunity saved."))
    return redirect(url_for("console.opportunity_page", opp_id=opp_id))
