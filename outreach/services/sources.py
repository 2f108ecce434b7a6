"""Where leads come from: the funnel broken down by each lead's first source."""

from __future__ import annotations

from typing import Any

from outreach.config import Config
from outreach.schemas.intake import SOURCES
from outreach.store import Store

_CHUNK = 1000


def funnel_by_source(store: Store, config: Config) -> dict[str, Any]:
    """Per first source: leads (counted by ingest as they are created), and how many of them
    are engaged, qualified and disqualified (read from those, usually much smaller, sets)."""
    keys = store.keys
    created = store.r.hgetall(keys.leads_by_source)
    rows = {source: {"source": source, "leads": int(created.get(source) or 0), "engaged": 0,
                     "qualified": 0, "disqualified": 0} for source in SOURCES}

    def count(ids: list[str], column: str) -> None:
        for start in range(0, len(ids), _CHUNK):
            pipe = store.r.pipeline(transaction=False)
            for lead_id in ids[start:start + _CHUNK]:
                pipe.hget(keys.lead(lead_id), "source")
            for source in pipe.execute():
                row = rows.get(source or "web_form")
                if row is not None:
                    row[column] += 1

    count(store.r.zrangebyscore(keys.lead_scores, config.promotion_threshold, "+inf"), "engaged")
    for status in ("qualified", "disqualified"):
        count(store.r.zrange(keys.leads_by_status(status), 0, -1), status)
    return {"by": "source", "items": list(rows.values())}
