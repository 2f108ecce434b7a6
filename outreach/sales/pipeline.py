"""The pipeline report: counts and sums per stage, per expected close month, won, and lost
by reason. ``opp_write.lua`` keeps them in one hash with every opportunity change, so the
report reads one hash whatever the number of opportunities."""

from __future__ import annotations

from typing import Any

from outreach.store import Store
from outreach.vocabulary import LOST_REASONS, STAGES

PIPELINE_VERSION = "2"  # of the aggregates and the stage index (_prelude.lua's PIPELINE_VERSION)
REBUILD_CHUNK = 500  # opportunities per pipeline_rebuild.lua call (~10-40 ms each)


def pipeline(store: Store) -> dict[str, Any]:
    """The pipeline report from the aggregates (built once from the opportunities when an
    installation's opportunities predate them)."""
    keys = store.keys
    h = store.r.hgetall(keys.pipeline)
    if h.get("v") != PIPELINE_VERSION:
        while not store.run("pipeline_rebuild", args=[keys.tag, REBUILD_CHUNK]):
            pass
        h = store.r.hgetall(keys.pipeline)

    def money(value: str | None) -> float:
        return round(float(value or 0), 2)

    stages = [{"stage": stage, "count": int(h.get(f"s|{stage}|n") or 0),
               "estimated_revenue": money(h.get(f"s|{stage}|e")),
               "weighted_revenue": money(h.get(f"s|{stage}|w"))} for stage in STAGES]
    months = sorted({name.split("|")[1] for name in h if name.startswith("m|")})
    forecast = [{"month": month, "count": int(h.get(f"m|{month}|n") or 0),
                 "estimated_revenue": money(h.get(f"m|{month}|e")),
                 "weighted_revenue": money(h.get(f"m|{month}|w"))} for month in months]
    forecast = [row for row in forecast if row["count"] > 0]
    by_reason = {reason: int(h.get(f"lost|r|{reason}") or 0) for reason in LOST_REASONS}
    return {"stages": stages, "forecast": forecast,
            "won": {"count": int(h.get("won|n") or 0), "revenue": money(h.get("won|r"))},
            "lost": {"count": int(h.get("lost|n") or 0),
                     "by_reason": {r: n for r, n in by_reason.items() if n}}}
