"""What the console's dashboard shows, read in a handful of round trips whatever the size.

Counts come from sorted-set cardinalities (never a scan), registrations per day from the
per-day results hashes that ingest writes (``HLEN`` of each day), campaigns in flight from
the active-campaigns set.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from outreach.campaigns.model import campaign_view
from outreach.config import Config
from outreach.people.records import asset_slugs, lead_view, load_leads
from outreach.people.scoring import decay_of
from outreach.platform.paging import load_hashes
from outreach.sales.qualify import funnel
from outreach.store import Store

IN_FLIGHT = ("scheduled", "sending", "paused")


def registrations_per_day(store: Store, days: int = 30, now: float | None = None
                          ) -> list[dict[str, Any]]:
    """``[{"day": "YYYY-MM-DD", "count": n}]`` for the last ``days`` UTC days, oldest first
    (registrations accepted that day and processed; kept ``registration_status_days``)."""
    today = int((now if now is not None else time.time()) // 86_400)
    day_numbers = list(range(today - days + 1, today + 1))
    pipe = store.r.pipeline(transaction=False)
    for day in day_numbers:
        pipe.hlen(store.keys.registrations_of_day(day))
    return [{"day": datetime.fromtimestamp(day * 86_400, UTC).date().isoformat(), "count": count}
            for day, count in zip(day_numbers, pipe.execute(), strict=True)]


def campaigns_in_flight(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    ids = sorted(store.r.smembers(store.keys.active_campaigns))[:limit]
    rows = load_hashes(store, store.keys.campaign, ids)
    return [campaign_view(cid, h) for cid, h in zip(ids, rows, strict=True)
            if h and h.get("status") in IN_FLIGHT]


def latest_qualified(store: Store, limit: int = 10) -> list[dict[str, Any]]:
    ids = store.r.zrevrange(store.keys.leads_by_status("qualified"), 0, limit - 1)
    rows = load_leads(store, ids)
    slugs = asset_slugs(store, [h.get("regs") for h in rows if h])
    decay = decay_of(store)
    return [lead_view(lid, h, slugs, decay) for lid, h in zip(ids, rows, strict=True) if h]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def dashboard(store: Store, config: Config, now: float | None = None) -> dict[str, Any]:
    """The funnel with the conversion rate of each step, registrations per day (30 days),
    campaigns in flight and the latest qualified leads."""
    counts = funnel(store, config)
    leads, opps = counts["leads"], counts["opportunities"]
    engaged = counts["engaged_leads"]
    all_opps = opps["open"] + opps["won"] + opps["lost"]
    steps = [
        {"name": "Leads", "count": leads["total"], "rate": None},
        {"name": "Engaged", "count": engaged, "rate": _rate(engaged, leads["total"])},
        {"name": "Qualified", "count": leads["qualified"], "rate": _rate(leads["qualified"], leads["total"])},
        {"name": "Contacts", "count": counts["contacts"], "rate": None},
        {"name": "Opportunities", "count": all_opps, "rate": _rate(all_opps, leads["qualified"])},
        {"name": "Won", "count": opps["won"], "rate": _rate(opps["won"], opps["won"] + opps["lost"])},
    ]
    return {
        "funnel": counts,
        "steps": steps,
        "lead_statuses": [
            {"name": "New", "count": leads["new"]},
            {"name": "Engaged", "count": engaged},
            {"name": "Qualified", "count": leads["qualified"]},
            {"name": "Disqualified", "count": leads["disqualified"]},
        ],
        "opportunity_statuses": [{"name": name.title(), "count": opps[name]}
                                 for name in ("open", "won", "lost")],
        "registrations": registrations_per_day(store, 30, now),
        "campaigns": campaigns_in_flight(store),
        "latest_qualified": latest_qualified(store),
    }
