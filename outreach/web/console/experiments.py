"""The console's A/B experiments: the new-campaign form's variants (a no-JS form: subject and
template per variant, test share in %, metric, decide after N minutes/hours/days,
confidence) read into the API's ``experiment`` shape, and "Decide now" on the campaign page
(a confirmation step, then ``decision.decide_by_hand`` as the signed-in user)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_login import current_user

from outreach.campaigns import model
from outreach.campaigns.experiments import decision
from outreach.campaigns.experiments.setup import NAMES
from outreach.errors import Conflict, Invalid, NotFound
from outreach.web.console.base import bp, jobs, render, requires, store

UNITS = {"minutes": "PT{}M", "hours": "PT{}H", "days": "P{}D"}
CONFIDENCES = ("0.9", "0.95", "0.99")
FIELDS = ([f"x_subject_{n}" for n in NAMES] + [f"x_template_{n}" for n in NAMES]
          + ["x_share", "x_metric", "x_after", "x_unit", "x_confidence"])


def form_values(form: Any) -> dict[str, str]:
    """The experiment part of the new-campaign form, as typed (to show it again)."""
    return {name: (form.get(name) or "").strip()[:2000] for name in FIELDS}


def from_form(raw: dict[str, str]) -> dict[str, Any] | None:
    """The API's ``experiment`` from the form's fields; None when no variant beyond A is
    filled in (no test). Variants left empty between filled ones are dropped; A is kept."""
    variants = []
    for n in NAMES:
        variant = {key: raw[f"x_{field}_{n}"] for key, field in (("subject", "subject"),
                                                                  ("template_id", "template"))
                   if raw[f"x_{field}_{n}"]}
        if n == "A" or variant:
            variants.append(variant)
    if len(variants) == 1 and not variants[0]:
        return None
    out: dict[str, Any] = {"variants": variants, "metric": raw["x_metric"] or "clicks"}
    if raw["x_share"]:
        try:
            out["test_share"] = float(raw["x_share"]) / 100
        except ValueError:
            out["test_share"] = raw["x_share"]  # the schema says what is wrong
    if raw["x_after"]:
        unit = UNITS.get(raw["x_unit"], UNITS["hours"])
        out["decide_after"] = unit.format(raw["x_after"]) if raw["x_after"].isdigit() else raw["x_after"]
    if raw["x_confidence"]:
        out["confidence"] = raw["x_confidence"]
    return out


def _label(path: list[str]) -> str:
    if len(path) >= 3 and path[0] == "variants" and path[1].isdigit():
        return f"Variant {NAMES[int(path[1])]} {path[2].replace('_id', '').replace('_', ' ')}"
    return {"test_share": "Test share", "decide_after": "Decide after", "metric": "Metric",
            "confidence": "Confidence", "variants": "Variants"}.get(path[0], path[0])


def form_errors(errors: dict[str, Any]) -> dict[str, Any]:
    """Errors for the form: the experiment's (nested from the schema, dotted from the
    service) as one list of sentences under ``experiment``; the rest as they are."""
    out: dict[str, Any] = {}
    found: list[str] = []

    def walk(value: Any, path: list[str]) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(sub, [*path, str(key)])
        else:
            texts = value if isinstance(value, list) else [value]
            found.append(f"{_label(path)}: {' '.join(map(str, texts))}")

    for name, value in errors.items():
        if name == "experiment":
            walk(value, [])
        elif name.startswith("experiment."):
            walk(value, name.split(".")[1:])
        else:
            out[name] = value
    if found:
        out["experiment"] = found
    return out


def experiment_of(campaign: dict[str, Any]) -> dict[str, Any] | None:
    """The campaign page's experiment (None without one)."""
    if not campaign.get("experiment"):
        return None
    try:
        return decision.experiment_view(store(), campaign["id"])
    except NotFound:
        return None


@bp.route("/campaigns/<campaign_id>/experiment/decide", methods=["POST"])
@requires("campaigns", "write")
def campaign_decide(campaign_id: str) -> Any:
    variant = (request.form.get("variant") or "")[:5]
    if request.form.get("confirm") != "yes":
        found = model.get_campaign(store(), campaign_id)
        return render("experiment_confirm.html", found=found, variant=variant,
                      experiment=experiment_of(found))
    try:
        decision.decide_by_hand(store(), jobs(), campaign_id, variant, current_user.email)
    except (Conflict, Invalid) as exc:
        flash(f"Not decided: {exc.message}", "error")
    else:
        flash(f"Variant {variant} chosen: the rest of the audience gets it.")
    return redirect(url_for("console.campaign_page", campaign_id=campaign_id))
