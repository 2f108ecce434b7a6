"""What the console's new-campaign form offers: the newest templates and lists (optionally
only those whose name contains a search), never losing the ones already chosen, and the
deduplicated audience of the ticked lists when asked."""

from __future__ import annotations

import contextlib
from typing import Any

from outreach.campaigns import audience, templates
from outreach.errors import NotFound
from outreach.people import lists
from outreach.people.segments import catalog
from outreach.store import Store

CHOICES = 200


def form_choices(store: Store, *, q: str = "", template_id: str = "",
                 list_ids: list[str] | None = None, count: bool = False,
                 limit: int = CHOICES, segment_ids: list[str] | None = None,
                 exclude_list_ids: list[str] | None = None,
                 exclude_segment_ids: list[str] | None = None) -> dict[str, Any]:
    """``{"templates", "pairs", "segments", "more_templates", "more_lists", "ticked",
    "ticked_out", "counts"}``: the newest ``limit`` templates and list pairs (names
    containing ``q`` when given), the saved segments, the chosen template added when it is
    not among them, ``ticked`` / ``ticked_out``: chosen (or excluded) lists not shown
    otherwise (kept on the form), ``counts``: the audience of the chosen lists and segments
    less the excluded ones (``count``), else None."""
    chosen = list(dict.fromkeys(list_ids or []))[:500]
    chosen_out = list(dict.fromkeys(exclude_list_ids or []))[:500]
    found_templates = templates.find_templates(store, limit=limit, newest_first=True, q=q)
    shown_templates = found_templates["items"]
    if template_id and all(t["id"] != template_id for t in shown_templates):
        with contextlib.suppress(NotFound):  # an unknown id is reported when the draft is saved
            shown_templates = [templates.get_template(store, template_id), *shown_templates]
    pairs = lists.find_list_pairs(store, limit=limit, newest_first=True, q=q)
    shown_ids = {side["id"] for pair in pairs["items"]
                 for side in (pair.get("lead"), pair.get("contact"), pair.get("other")) if side}
    ticked, ticked_out = [], []
    for list_id in chosen + chosen_out:
        if list_id not in shown_ids:
            try:
                found = lists.get_list(store, list_id)
            except NotFound:  # reported when the draft is saved
                continue
            (ticked if list_id in chosen else ticked_out).append(found)
    segments = catalog.find_segments(store, limit=limit)["items"]
    return {"templates": shown_templates, "pairs": pairs["items"], "segments": segments,
            "more_templates": bool(found_templates["next_cursor"]),
            "more_lists": bool(pairs["next_cursor"]), "ticked": ticked, "ticked_out": ticked_out,
            "counts": audience_counts(store, chosen, segment_ids, chosen_out, exclude_segment_ids)
            if count else None}


def audience_counts(store: Store, list_ids: list[str], segment_ids: list[str] | None,
                    exclude_list_ids: list[str] | None, exclude_segment_ids: list[str] | None
                    ) -> dict[str, int] | None:
    """The deduplicated audience of the chosen lists and segments less the excluded ones
    (``audience.audience_of``, as dispatch reads them); None when nothing is chosen."""
    segment_ids = list(dict.fromkeys(segment_ids or []))[:100]
    if not list_ids and not segment_ids:
        return None
    return audience.audience_of(store, list_ids[:500], segment_ids,
                                (exclude_list_ids or [])[:100], (exclude_segment_ids or [])[:100])


SCHEDULE_FIELDS = ("send_mode", "send_at", "send_date", "send_at_local")


def schedule_body(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The API fields of the form's schedule, and the form's own errors: ``send_mode``
    ``"local"`` sends ``send_date`` as ``send_at`` with ``send_at_local`` (both required;
    ``send_at`` of the other choice ignored), otherwise ``send_at`` alone (the local
    fields ignored)."""
    if values.get("send_mode") != "local":
        return ({"send_at": values["send_at"]} if values.get("send_at") else {}), {}
    errors: dict[str, list[str]] = {}
    if not values.get("send_date"):
        errors["send_date"] = ["Enter the date of the local-time send (YYYY-MM-DD)."]
    if not values.get("send_at_local"):
        errors["send_at_local"] = ["Enter the local time to send at (HH:MM)."]
    return {"send_at": values.get("send_date"), "send_at_local": values.get("send_at_local")}, errors


def schedule_errors(errors: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The service's errors with a local-time send's ``send_at`` (its date) put on the
    form's date field."""
    if values.get("send_mode") == "local" and "send_at" in errors:
        errors = dict(errors)
        errors["send_date"] = errors.pop("send_at")
    return errors
