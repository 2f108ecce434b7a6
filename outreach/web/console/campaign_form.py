"""What the console's new-campaign form offers: the newest templates and lists (optionally
only those whose name contains a search), never losing the ones already chosen, and the
deduplicated audience of the ticked lists when asked."""

from __future__ import annotations

import contextlib
from typing import Any

from outreach.campaigns import audience, templates
from outreach.errors import NotFound
from outreach.people import lists
from outreach.store import Store

CHOICES = 200


def form_choices(store: Store, *, q: str = "", template_id: str = "",
                 list_ids: list[str] | None = None, count: bool = False,
                 limit: int = CHOICES) -> dict[str, Any]:
    """``{"templates", "pairs", "more_templates", "more_lists", "ticked", "counts"}``: the
    newest ``limit`` templates and list pairs (names containing ``q`` when given), the chosen
    template added when it is not among them, ``ticked``: chosen lists not shown otherwise
    (kept on the form), ``counts``: the audience of the chosen lists (``count``), else None."""
    chosen = list(dict.fromkeys(list_ids or []))[:500]
    found_templates = templates.find_templates(store, limit=limit, newest_first=True, q=q)
    shown_templates = found_templates["items"]
    if template_id and all(t["id"] != template_id for t in shown_templates):
        with contextlib.suppress(NotFound):  # an unknown id is reported when the draft is saved
            shown_templates = [templates.get_template(store, template_id), *shown_templates]
    pairs = lists.find_list_pairs(store, limit=limit, newest_first=True, q=q)
    shown_ids = {side["id"] for pair in pairs["items"]
                 for side in (pair.get("lead"), pair.get("contact"), pair.get("other")) if side}
    ticked = []
    for list_id in chosen:
        if list_id not in shown_ids:
            try:
                ticked.append(lists.get_list(store, list_id))
            except NotFound:  # reported when the draft is saved
                continue
    return {"templates": shown_templates, "pairs": pairs["items"],
            "more_templates": bool(found_templates["next_cursor"]),
            "more_lists": bool(pairs["next_cursor"]), "ticked": ticked,
            "counts": audience.audience_of_lists(store, chosen) if count and chosen else None}
