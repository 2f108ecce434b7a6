"""What made a lead's engagement score: the points from opens, clicks and repeat
registrations, counted again from what the lead's record keeps.

The score itself is added up as things happen (``track_event.lua`` for the first open of
a campaign and each distinct link clicked, ``ingest.lua`` for a registration for an asset
the lead had not registered for before, plus a bonus when that is an event after a white
paper). This module replays the same rules over the lead's event history (the newest 200
entries) and its registrations with today's weights, and says how much of the stored score
that does not explain (history trimmed away, weights changed since).
"""

from __future__ import annotations

from typing import Any

from outreach.config import Config
from outreach.platform import refs
from outreach.store import Store

EVENT_HISTORY = 200  # track_event.lua keeps the newest 200 entries of a person's events


def score_breakdown(store: Store, config: Config, lead: dict[str, Any]) -> dict[str, Any]:
    """``lead`` as ``people.get_lead`` shows it. Returns ``{"score", "parts": [{"key",
    "label", "count", "each", "points"}], "explained", "other"}``: one part per rule with
    points, ``other`` what the recorded history does not account for (0 when it all adds up)."""
    entries = store.r.lrange(store.keys.person_events(refs.lead_ref(lead["id"])), 0, EVENT_HISTORY - 1)
    kinds = [entry.split("|", 1)[0] for entry in entries]
    opens, clicks = kinds.count("open"), kinds.count("click")
    repeats = after_white_paper = 0
    seen: set[tuple[str, str]] = set()
    white_paper = False
    for i, reg in enumerate(lead.get("registrations") or []):
        key = (reg["kind"], reg["asset"])
        if i and key not in seen:  # a later registration for another asset
            repeats += 1
            if reg["kind"] == "event" and white_paper:
                after_white_paper += 1
        seen.add(key)
        white_paper = white_paper or reg["kind"] == "white_paper"
    rules = (("opens", "Opened a campaign", opens, config.score_open),
             ("clicks", "Clicked a link", clicks, config.score_click),
             ("repeat_registrations", "Registered for another asset", repeats,
              config.score_repeat_registration),
             ("event_after_white_paper", "Event after a white paper", after_white_paper,
              config.score_event_after_white_paper))
    parts = [{"key": key, "label": label, "count": count, "each": each, "points": count * each}
             for key, label, count, each in rules if count]
    explained = sum(part["points"] for part in parts)
    score = int(lead.get("score") or 0)
    return {"score": score, "parts": parts, "explained": explained, "other": score - explained}
