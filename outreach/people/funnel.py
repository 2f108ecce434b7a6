"""Where leads come from: the funnel broken down by each lead's first source."""

from __future__ import annotations

import time
from typing import Any

from outreach.config import Config
from outreach.store import Store
from outreach.vocabulary import SOURCES

_CHUNK = 1000


def funnel_by_source(store: Store, config: Config) -> dict[str, Any]:
    """Per first source: leads (counted by ingest as they are created, less those erased),
    how many of them are engaged, qualified and disqualified, and the opportunities made
    from them, open, won and lost (read from those, usually much smaller, sets), with the
    same rates as the funnel."""
    keys = store.keys
    created = store.r.hgetall(keys.leads_by_source)
    rows = {source: {"source": source, "leads": int(created.get(source) or 0),
                     "engaged": 0, "qualified": 0, "disqualified": 0,
                     "opportunities": {"open": 0, "won": 0, "lost": 0}} for source in SOURCES}

    def sources_of(lead_ids: list[str | None]) -> list[str | None]:
        pipe = store.r.pipeline(transaction=False)
        for lead_id in lead_ids:
            pipe.hget(keys.lead(lead_id or "-"), "source")
        return [(source or "web_form") if lead_id else None
                for lead_id, source in zip(lead_ids, pipe.execute(), strict=True)]

    def count(ids: list[str], column: str) -> None:
        for start in range(0, len(ids), _CHUNK):
            for source in sources_of(list(ids[start:start + _CHUNK])):
                row = rows.get(source or "")
                if row is not None:
                    row[column] += 1

    def count_opportunities(status: str) -> None:
        ids = store.r.zrange(keys.opportunities_by_status(status), 0, -1)
        for start in range(0, len(ids), _CHUNK):
            pipe = store.r.pipeline(transaction=False)
            for opp_id in ids[start:start + _CHUNK]:
                pipe.hget(keys.opportunity(opp_id), "lead_id")
            for source in sources_of(pipe.execute()):
                row = rows.get(source or "")
                if row is not None:
                    row["opportunities"][status] += 1

    from outreach.people.scoring import decay_of

    engaged_from = decay_of(store).scaled_bound(config.promotion_threshold, time.time())
    count(store.r.zrangebyscore(keys.lead_scores, repr(engaged_from), "+inf"), "engaged")
    for status in ("qualified", "disqualified"):
        count(store.r.zrange(keys.leads_by_status(status), 0, -1), status)
    for status in ("open", "won", "lost"):
        count_opportunities(status)

    def rate(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    for row in rows.values():
        opps = row["opportunities"]
        row["rates"] = {"lead_to_qualified": rate(row["qualified"], row["leads"]),
                        "engaged_to_qualified": rate(row["qualified"], row["engaged"]),
                        "opportunity_win": rate(opps["won"], opps["won"] + opps["lost"])}
    return {"by": "source", "items": list(rows.values())}
