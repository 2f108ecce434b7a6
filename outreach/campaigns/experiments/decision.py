"""Deciding an experiment (by its stated test at ``started_at + decide_after``, or by hand)
and reading it (``experiment_view``, the report's ``variants``).

Per-variant counts are counters the scripts keep as sends and events are recorded
(``finish_send.lua``: ``v|<name>|s`` people sent; ``track_event.lua``: ``v|<name>|o`` human
opens and ``v|<name>|c`` clicks, people) in the campaign's report hash: no scans at read time.

The decision is one transaction on the campaign hash (compare-and-set on ``x_status``
``testing``, so a beat, a watch and a marketer deciding at once decide once), taken while
holding the dispatch lock: the dispatch cursor goes back to the start of the audience and
``dispatched`` is cleared, so the next dispatch walks the audience again and queues the rest
with ``x_rest`` (the ledger keeps out everyone already mailed).
"""

from __future__ import annotations

import time
from typing import Any

import redis

from outreach.campaigns import lifecycle, model
from outreach.campaigns.experiments import stats
from outreach.campaigns.experiments.setup import settings_of
from outreach.config import Config
from outreach.errors import Conflict, Invalid, NotFound
from outreach.platform.jobs import Jobs
from outreach.platform.paging import existing_hash
from outreach.store import Store
from outreach.vocabulary import iso

METRIC_PART = {"clicks": "c", "opens": "o"}
LOCK_MS = 30_000


def decide_at(h: dict[str, str]) -> float | None:
    """When the test decides (None: not started, or no experiment)."""
    settings = settings_of(h)
    if settings is None or not h.get("started_at"):
        return None
    return float(h["started_at"]) + float(settings["decide_after_seconds"])


def counts(store: Store, campaign_id: str, settings: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Per variant: ``sent``, ``opened`` (human), ``clicked`` (people), from the counters."""
    names = [v["name"] for v in settings["variants"]]
    fields = [f"v|{name}|{part}" for name in names for part in "soc"]
    values = store.r.hmget(store.keys.campaign_report(campaign_id), fields)
    n = [max(0, int(v or 0)) for v in values]
    return {name: {"sent": n[3 * i], "opened": n[3 * i + 1], "clicked": n[3 * i + 2]}
            for i, name in enumerate(names)}


def variant_rows(store: Store, campaign_id: str, h: dict[str, str]) -> list[dict[str, Any]]:
    """``[{name, sent, opened, clicked, rate, ci_low, ci_high}]`` (empty without an experiment):
    ``rate`` is the metric's count over ``sent`` with its Wilson interval."""
    settings = settings_of(h)
    if settings is None:
        return []
    metric = "clicked" if settings["metric"] == "clicks" else "opened"
    confidence = float(settings["confidence"])
    per = counts(store, campaign_id, settings)
    out = []
    for variant in settings["variants"]:
        row = per[variant["name"]]
        row[metric] = min(row[metric], row["sent"])  # an event counted before its send
        low, high = stats.wilson(row[metric], row["sent"], confidence)
        out.append({"name": variant["name"], "subject": variant.get("subject"),
                    "template_id": variant.get("template_id"), **row,
                    "rate": round(row[metric] / row["sent"], 4) if row["sent"] else 0.0,
                    "ci_low": round(low, 4), "ci_high": round(high, 4)})
    return out


def experiment_view(store: Store, campaign_id: str) -> dict[str, Any]:
    """``GET .../experiment`` (API.md). 404 for an unknown campaign or one without an experiment."""
    h = existing_hash(store, store.keys.campaign(campaign_id), "campaign", campaign_id)
    settings = settings_of(h)
    if settings is None:
        raise NotFound(f"Campaign {campaign_id!r} has no experiment.")
    due = decide_at(h)
    return {
        "status": h.get("x_status") or "testing",
        "metric": settings["metric"],
        "method": f"{stats.METHOD}; confidence {settings['confidence']:g}",
        "confidence": settings["confidence"],
        "test_share": settings["test_share"],
        "decide_after": settings["decide_after"],
        "decide_at": iso(due) if due else None,
        "phase": h.get("x_phase") or "test",
        "variants": variant_rows(store, campaign_id, h),
        "winner": h.get("x_winner") or None,
        "rest_variant": h.get("x_rest") or None,
        "decided_at": iso(h.get("x_decided_at")),
        "decided_by": h.get("x_decided_by") or None,
    }


def _apply(store: Store, jobs: Jobs, campaign_id: str, winner: str | None, by: str,
           note: str = "") -> bool:
    """Record the decision and start the rest phase. False when another dispatch holds the
    lock (try again later); Conflict when already decided."""
    keys = store.keys
    lock = keys.campaign_lock(campaign_id, "dispatch")
    if not store.r.set(lock, "decision", nx=True, px=LOCK_MS):
        return False
    key = keys.campaign(campaign_id)
    try:
        with store.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    h = pipe.hgetall(key)
                    settings = settings_of(h)
                    if settings is None:
                        raise NotFound(f"Campaign {campaign_id!r} has no experiment.")
                    if (h.get("x_status") or "testing") != "testing":
                        raise Conflict(f"The experiment is already {h.get('x_status')}.")
                    first = settings["variants"][0]["name"]
                    pipe.multi()
                    pipe.hset(key, mapping={
                        "x_status": "decided" if winner else "inconclusive",
                        "x_winner": winner or "", "x_rest": winner or first,
                        "x_decided_at": str(int(model.now())), "x_decided_by": by,
                        "x_note": note, "x_phase": "rest", "d_list": "0", "d_after": "0"})
                    pipe.hdel(key, "dispatched")
                    pipe.zrem(keys.experiments_due, campaign_id)
                    pipe.execute()
                    status = h.get("status")
                    break
                except redis.WatchError:
                    continue
    finally:
        store.r.delete(lock)
    if status == "sending":
        lifecycle.nudge(jobs.dispatch, campaign_id)
    return True


def decide_by_test(store: Store, jobs: Jobs, campaign_id: str) -> bool:
    """Apply the stated test to a sending campaign whose decision is due. True when decided
    (or nothing is left to decide); False to try again later (paused: the decision waits)."""
    h = store.r.hgetall(store.keys.campaign(campaign_id))
    settings = settings_of(h)
    if settings is None or (h.get("x_status") or "testing") != "testing" or h.get(
            "status") in ("sent", "cancelled"):
        store.r.zrem(store.keys.experiments_due, campaign_id)
        return True
    due = decide_at(h)
    if h.get("status") != "sending" or due is None or due > model.now():
        return False
    part = METRIC_PART[settings["metric"]]
    per = counts(store, campaign_id, settings)
    key = "clicked" if part == "c" else "opened"
    outcome = stats.decide({n: (c[key], c["sent"]) for n, c in per.items()},
                           float(settings["confidence"]))
    note = ", ".join(f"{outcome.best} vs {n}: p={p:.4g}" for n, p in outcome.p_values.items())
    try:
        return _apply(store, jobs, campaign_id, outcome.winner, "test", f"Holm-adjusted {note}")
    except Conflict:
        return True


def decide_by_hand(store: Store, jobs: Jobs, campaign_id: str, variant: str, by: str,
                   wait_seconds: float = 10.0) -> dict[str, Any]:
    """A marketer's decision: ``variant`` wins and the rest gets it. 409 before launch or
    when already decided, 422 for an unknown variant."""
    h = existing_hash(store, store.keys.campaign(campaign_id), "campaign", campaign_id)
    settings = settings_of(h)
    if settings is None:
        raise NotFound(f"Campaign {campaign_id!r} has no experiment.")
    names = [v["name"] for v in settings["variants"]]
    if variant not in names:
        raise Invalid("Validation failed.", {"variant": [f"One of {', '.join(names)}."]})
    if (h.get("x_status") or "testing") != "testing":
        raise Conflict(f"The experiment is already {h.get('x_status')}.")
    if not h.get("started_at") or h.get("status") not in ("sending", "paused"):
        raise Conflict(f"The campaign is {h.get('status')}: the test has not run.")
    deadline = time.monotonic() + wait_seconds
    while not _apply(store, jobs, campaign_id, variant, by, "decided by hand"):
        if time.monotonic() > deadline:
            raise Conflict("The campaign is being dispatched; try again in a moment.")
        time.sleep(0.05)
    return experiment_view(store, campaign_id)


def look(store: Store, jobs: Jobs, campaign_id: str, h: dict[str, str]) -> bool:
    """The watch's look at a sending campaign with an experiment in its test phase: put it in
    the due index, decide when due. True while the test phase held (the watch must not
    finish the campaign on this look: the rest phase has yet to be walked)."""
    if not h.get("experiment") or h.get("x_phase") == "rest":
        return False
    due = decide_at(h)
    if due is not None:
        store.r.zadd(store.keys.experiments_due, {campaign_id: due}, nx=True)
        if due <= model.now():
            decide_by_test(store, jobs, campaign_id)
    return True


def drain(store: Store, config: Config, jobs: Jobs, limit: int = 1000) -> int:
    """The beat: decide every experiment that is due. Paused ones stay in the index (the
    decision waits for resume). Returns how many were decided."""
    due = store.r.zrangebyscore(store.keys.experiments_due, "-inf", model.now(), start=0,
                                num=limit)
    decided = 0
    for campaign_id in due:
        if decide_by_test(store, jobs, campaign_id):
            decided += 1
    return decided
