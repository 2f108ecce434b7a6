"""An experiment's settings as a campaign stores them: checked, with subject variants
turned into templates of their own (the chosen template's body under the new subject)."""

from __future__ import annotations

import json
import re
from typing import Any

from outreach.campaigns import templates
from outreach.config import Config
from outreach.store import Store

NAMES = "ABCDE"
_DURATION = re.compile(r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
                       r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")
MAX_SECONDS = 90 * 86400


def duration_seconds(value: str) -> float | None:
    """Seconds of an ISO 8601 duration of weeks, days, hours, minutes and seconds (``PT4H``,
    ``P1DT30M``, ``PT3S``); None when it is not one, or is zero."""
    match = _DURATION.match(value or "")
    if not match or value in ("P", "PT") or value.endswith("T"):
        return None
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    seconds = (parts.get("w", 0) * 7 * 86400 + parts.get("d", 0) * 86400
               + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0))
    return seconds or None


def check(store: Store, experiment: dict[str, Any] | None) -> dict[str, list[str]]:
    """Field errors (paths under ``experiment``) the schema cannot see: unknown templates,
    a duration that is not one."""
    errors: dict[str, list[str]] = {}
    if not experiment:
        return errors
    for i, variant in enumerate(experiment["variants"]):
        template_id = variant.get("template_id")
        if template_id and not store.r.exists(store.keys.template(template_id)):
            errors[f"experiment.variants.{i}.template_id"] = ["No such template."]
    seconds = duration_seconds(experiment.get("decide_after", ""))
    if seconds is None:
        errors["experiment.decide_after"] = ["An ISO 8601 duration such as PT4H or P1DT12H."]
    elif seconds > MAX_SECONDS:
        errors["experiment.decide_after"] = ["At most 90 days."]
    return errors


def fields_of(store: Store, config: Config, experiment: dict[str, Any] | None,
              campaign_template_id: str, campaign_name: str) -> dict[str, str]:
    """The campaign hash fields of a checked experiment (none without one)."""
    if not experiment:
        return {}
    variants = []
    for i, variant in enumerate(experiment["variants"]):
        base = variant.get("template_id") or campaign_template_id
        template_id = base
        if variant.get("subject"):
            h = store.r.hgetall(store.keys.template(base))
            template_id = templates.create_template(store, config, {
                "name": f"{h.get('name', base)} ({campaign_name}, variant {NAMES[i]})",
                "subject": variant["subject"], "html": h["html"], "text": h["text"]})["id"]
        variants.append({"name": NAMES[i], "template_id": base, "subject": variant.get("subject"),
                         "send_template_id": template_id})
    settings = {"variants": variants, "test_share": experiment["test_share"],
                "metric": experiment["metric"], "decide_after": experiment["decide_after"],
                "decide_after_seconds": duration_seconds(experiment["decide_after"]),
                "confidence": experiment["confidence"]}
    return {"experiment": json.dumps(settings), "x_status": "testing", "x_phase": "test"}


def settings_of(h: dict[str, str]) -> dict[str, Any] | None:
    """A campaign's experiment settings (None without one)."""
    raw = h.get("experiment")
    return json.loads(raw) if raw else None


def public_view(h: dict[str, str]) -> dict[str, Any] | None:
    """The settings as the campaign's ``experiment`` field shows them."""
    settings = settings_of(h)
    if settings is None:
        return None
    return {"variants": [{"name": v["name"], "template_id": v["template_id"],
                          "subject": v["subject"]} for v in settings["variants"]],
            "test_share": settings["test_share"], "metric": settings["metric"],
            "decide_after": settings["decide_after"], "confidence": settings["confidence"]}
