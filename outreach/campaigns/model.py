"""Campaigns: the record and how it reads. Statuses, stat fields and ledger states, create,
view, find, the live page's send rate, and ``now()``, the one clock the campaign modules
read (as ``model.now()``, so a test moves time in one place).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from outreach.campaigns.experiments import setup as experiment_setup
from outreach.config import Config
from outreach.errors import Invalid
from outreach.platform.paging import existing_hash, page_of_hashes
from outreach.store import Store
from outreach.vocabulary import iso

STATUSES = ("draft", "scheduled", "sending", "paused", "sent", "cancelled")
STAT_FIELDS = ("targeted", "sent", "failed", "suppressed", "unknown", "opened", "opened_machine",
               "clicked", "unsubscribed", "bounced", "soft_bounced", "blocked", "complained",
               "waiting_local")
LEDGER_STATES = {"w": "waiting", "q": "queued", "s": "sending", "d": "sending", "S": "sent", "f": "failed",
                 "u": "unknown", "x": "suppressed", "B": "bounced", "C": "complained"}
STATE_CODES = {v: k for k, v in LEDGER_STATES.items() if k != "d"}


def now() -> float:
    return time.time()


def create_campaign(store: Store, config: Config, data: dict[str, Any]) -> dict[str, Any]:
    keys = store.keys
    errors: dict[str, list[str]] = {}
    if not store.r.exists(keys.template(data["template_id"])):
        errors["template_id"] = ["No such template."]
    missing = [lid for lid in data["list_ids"] if not store.r.exists(keys.list(lid))]
    if missing:
        errors["list_ids"] = [f"No such list: {', '.join(missing)}."]
    errors.update(experiment_setup.check(store, data.get("experiment")))
    if errors:
        raise Invalid("Validation failed.", errors)
    campaign_id, n = store.next_id("campaign", "cp")
    send_at = data.get("send_at")
    record = draft_record(config, data, list(dict.fromkeys(data["list_ids"])))
    record.update(experiment_setup.fields_of(store, config, data.get("experiment"),
                                             data["template_id"], data["name"]))
    if send_at is not None:
        record["send_at"] = str(send_at.timestamp() if isinstance(send_at, datetime) else send_at)
    from outreach.campaigns import local_time  # it reads model.now()

    record.update(local_time.draft_fields(data))
    save_draft(store, campaign_id, n, record)
    return get_campaign(store, campaign_id)


def draft_record(config: Config, data: dict[str, Any], list_ids: list[str]) -> dict[str, str]:
    """A new draft's hash: ``data`` (name, template_id, from_email?, rate_per_second?)."""
    return {
        "name": data["name"],
        "template_id": data["template_id"],
        "list_ids": json.dumps(list_ids),
        "from_email": data.get("from_email") or config.from_email,
        "rate": str(data.get("rate_per_second") or config.default_rate_per_second or 0),
        "status": "draft",
        "created_at": str(int(now())),
    }


def save_draft(store: Store, campaign_id: str, n: int, record: dict[str, str]) -> None:
    """Write a new campaign (``store.next_id("campaign", "cp")`` gave ``campaign_id``, ``n``)
    and index it, in one transaction."""
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(store.keys.campaign(campaign_id), mapping=record)
    pipe.zadd(store.keys.campaigns, {campaign_id: n})
    pipe.execute()


def campaign_view(campaign_id: str, h: dict[str, str]) -> dict[str, Any]:
    stats = {name: int(h.get(name) or 0) for name in STAT_FIELDS}
    done = stats["sent"] + stats["failed"] + stats["suppressed"] + stats["unknown"]
    status = h.get("status", "draft")
    if status == "sent":
        progress = 1.0
    else:
        # an A/B test's test phase has dispatched its share only: the audience is the whole
        total = stats["targeted"] if h.get("dispatched") and h.get("x_phase") != "test" else max(
            stats["targeted"], int(h.get("audience_estimate") or 0))
        progress = round(min(1.0, done / total), 4) if total else 0.0
    return {
        "id": campaign_id,
        "name": h.get("name"),
        "template_id": h.get("template_id"),
        "list_ids": json.loads(h.get("list_ids") or "[]"),
        "from_email": h.get("from_email"),
        "send_at": iso(h.get("send_at")),
        "rate_per_second": float(h.get("rate") or 0) or None,
        "status": status,
        "status_reason": h.get("status_reason") or None,
        "last_error": h.get("last_error") or None,
        "stats": stats,
        "progress": progress,
        "created_at": iso(h.get("created_at")),
        "started_at": iso(h.get("started_at")),
        "finished_at": iso(h.get("finished_at")),
        "follow_up_of": h.get("follow_up_of") or None,
        "follow_up_to": h.get("follow_up_to") or None,
        **local_fields(h),
        "experiment": experiment_setup.public_view(h),
    }


def local_fields(h: dict[str, str]) -> dict[str, Any]:
    """A local-time send's fields (``local_time``): ``send_at`` is the date as given."""
    if not h.get("send_at_local"):
        return {"send_at_local": None}
    return {"send_at_local": h["send_at_local"], "send_at": h.get("send_date")}


def get_campaign(store: Store, campaign_id: str) -> dict[str, Any]:
    h = existing_hash(store, store.keys.campaign(campaign_id), "campaign", campaign_id)
    return campaign_view(campaign_id, h)


def find_campaigns(store: Store, *, limit: int = 50, cursor: str | None = None,
                   newest_first: bool = False) -> dict[str, Any]:
    return page_of_hashes(store, store.keys.campaigns, store.keys.campaign, campaign_view, limit,
                          cursor, newest_first)


RATE_BUCKET_SECONDS = 10


def send_rate(store: Store, campaign_id: str, *, bars: int = 60, until: float | None = None
              ) -> dict[str, Any]:
    """Messages sent over the campaign's sending time, for the live page's chart: the
    10-second counts ``finish_send.lua`` keeps, merged into at most ``bars`` equal steps
    (10 s, 20 s, 1 min, ...) from the first message sent to the last (to ``until``, by
    default now, while the campaign is sending). ``{"step_seconds", "points": [{"at",
    "count", "per_minute"}], "peak_per_minute", "average_per_minute", "sent"}``; no points
    before the first send."""
    keys = store.keys
    raw = store.r.hgetall(keys.campaign_sent_per_10s(campaign_id))
    counts = {int(at): int(n) for at, n in raw.items()}
    if not counts:
        return {"step_seconds": RATE_BUCKET_SECONDS, "points": [], "peak_per_minute": 0.0,
                "average_per_minute": 0.0, "sent": 0}
    first, last = min(counts), max(counts)
    if store.r.hget(keys.campaign(campaign_id), "status") == "sending":
        moment = int(now() if until is None else until)
        last = max(last, moment - moment % RATE_BUCKET_SECONDS)
    buckets = (last - first) // RATE_BUCKET_SECONDS + 1
    step = RATE_BUCKET_SECONDS * -(-buckets // bars)
    merged = [0] * (-(-(last - first + RATE_BUCKET_SECONDS) // step))
    for at, n in counts.items():
        merged[(at - first) // step] += n
    points = [{"at": iso(first + i * step), "count": n, "per_minute": round(n * 60 / step, 1)}
              for i, n in enumerate(merged)]
    sent = sum(merged)
    span = last - first + RATE_BUCKET_SECONDS
    return {"step_seconds": step, "points": points,
            "peak_per_minute": max(p["per_minute"] for p in points),
            "average_per_minute": round(sent * 60 / span, 1), "sent": sent}


def campaign_live(store: Store, campaign_id: str) -> dict[str, Any]:
    """The campaign as the live page shows it: its view plus ``send_rate``."""
    return {**get_campaign(store, campaign_id), "send_rate": send_rate(store, campaign_id)}


def utc_from_iso(value: str) -> datetime:
    """An ISO 8601 time (``Z`` or an offset) as an aware UTC datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
