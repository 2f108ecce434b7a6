"""The journey engine: the beat drains each running journey's due index in batches into
tasks; a task runs each (enrollment, step) under a claim: claim (``journey_claim.lua``),
act (``steps``), mark (``journey_mark.lua``, compare-and-set on the step's visit number and
the claim's run). A redelivered task, a second beat or a lease that ran out finds the step
marked (nothing to do) or claimed by a live run (left to it); a dead run's claim is taken
over as ``stale`` and the step resolves what that run may have done instead of acting
blindly (a send asks its campaign ledger: sent, in flight after DATA = ``unknown``, never
resent; a task looks for the task it made).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from outreach.campaigns.sending.heartbeats import HEARTBEATS
from outreach.config import Config
from outreach.journeys import catalog, definition, enrollments, steps
from outreach.store import Store

log = logging.getLogger(__name__)

LEASE_SECONDS = 60  # a taken member is due again after this unless its task marks it
BATCH = 50  # enrollments per task
ERROR_RETRY_SECONDS = 30


def new_run() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def drain_due(store: Store, journey_id: str, submit: Callable[[str, list[str]], None],
              now: float | None = None, limit: int = 2000) -> int:
    """Take up to ``limit`` due enrollments of a running journey (leased, ``claim_due``) and
    hand them to ``submit`` in batches. Returns how many were taken."""
    now = time.time() if now is None else now
    taken = store.run("claim_due", keys=[store.keys.journey_due(journey_id), ""],
                      args=[repr(now), limit, repr(now), LEASE_SECONDS])
    for start in range(0, len(taken), BATCH):
        submit(journey_id, list(taken[start:start + BATCH]))
    return len(taken)


def lag_seconds(store: Store, now: float | None = None) -> float:
    """How late the most overdue step of a running journey is (0 when none is)."""
    now = time.time() if now is None else now
    worst = 0.0
    for journey_id in store.r.smembers(store.keys.journeys_running):
        oldest = store.r.zrange(store.keys.journey_due(journey_id), 0, 0, withscores=True)
        if oldest:
            worst = max(worst, now - float(oldest[0][1]))
    return round(worst, 3)


def steps_per_second(store: Store, now: float | None = None) -> float:
    """Steps done per second over the last full 10 s buckets (a minute)."""
    now = time.time() if now is None else now
    bucket = int(now) - int(now) % 10
    names = [store.keys.journey_steps_per_10s(bucket - 10 * i) for i in range(1, 7)]
    done = sum(int(v or 0) for v in store.r.mget(names))
    return round(done / 60.0, 3)


def run_steps(store: Store, config: Config, messenger: Any, journey_id: str,
              person_refs: list[str], now: Callable[[], float] = time.time) -> int:
    """Run the due step of each enrollment; returns how many steps were marked."""
    run = new_run()
    HEARTBEATS.add(store, run, config.send_heartbeat_seconds)
    contexts: dict[str, Any] = {}
    done = 0
    try:
        for ref in person_refs:
            try:
                done += run_one(store, config, messenger, journey_id, ref, run, now(), contexts)
            except Exception:  # noqa: BLE001 - one person's step fails alone; retried later
                log.exception("journey %s: the step of %s failed", journey_id, ref)
                _release(store, journey_id, ref, run, now() + ERROR_RETRY_SECONDS)
    finally:
        HEARTBEATS.remove(store, run)
    return done


def _release(store: Store, journey_id: str, ref: str, run: str, at: float) -> None:
    keys = store.keys
    seq = store.r.hget(keys.journey_enrollment(journey_id, ref), "seq") or ""
    _mark(store, journey_id, ref, seq, run, time.time(), "", steps.Act("defer", at=at,
                                                                   history=False))


def run_one(store: Store, config: Config, messenger: Any, journey_id: str, ref: str, run: str,
            now: float, contexts: dict[str, Any]) -> int:
    keys = store.keys
    outcome, seq, _old = store.run("journey_claim", keys=[
        keys.journey(journey_id), keys.journey_enrollment(journey_id, ref),
        keys.journey_due(journey_id)], args=[ref, run, repr(now),
                                             config.send_heartbeat_seconds, keys.send_run("")])
    if outcome == "held":  # paused: due again at once when the journey resumes
        store.r.zadd(keys.journey_due(journey_id), {ref: now}, xx=True)
        return 0
    if outcome not in ("claimed", "stale"):
        return 0
    enrollment = store.r.hgetall(keys.journey_enrollment(journey_id, ref))
    body = catalog.cached_version(store, journey_id, enrollment.get("version") or "1")
    index = {s["id"]: i for i, s in enumerate(body.get("steps", []))}
    step_id = enrollment.get("step") or ""
    person = store.r.hgetall(keys.person(ref))
    settings = body.get("settings") or {}
    if not person or step_id not in index:
        act = steps.Act("end", "exited", end="exited", detail={"reason": "the person is gone"
                                                                if not person else "no such step"})
    elif settings.get("exit_when") and steps.rule_holds(store, ref, settings["exit_when"], now):
        act = steps.Act("end", "exited", end="exited", detail={"reason": "exit_when"})
    else:
        name = store.r.hget(keys.journey(journey_id), "name") or journey_id
        ctx = steps.Step(store, config, messenger, journey_id, name, ref, enrollment, body,
                         index[step_id], seq, run, now, outcome == "stale", person, contexts)
        act = steps.run(ctx)
        if act is None:  # the claim was taken over meanwhile: the other run marks it
            return 0
        if act.mode == "advance" and not act.next_step:
            act = steps.Act("end", act.outcome, end="done", detail=act.detail)
        if act.mode == "advance":
            next_step = body["steps"][index[act.next_step]]
            act.at = enrollments.arrival(config, next_step, person, now)
    event = ""
    if act.mode == "end":
        event = enrollments.webhook_subject(store, _end_event(act), {
            "journey_id": journey_id, "person": ref, "email": enrollment.get("email"),
            "version": int(enrollment.get("version") or 1), "reason": act.detail.get("reason")})
    marked = _mark(store, journey_id, ref, seq, run, now, step_id, act, event)
    if not marked:
        return 0
    if event:
        enrollments.flush_webhooks(store, (_end_event(act),))
    if act.mode != "defer":
        _after(store, journey_id, ref, person, settings, now)
    return 1


def _end_event(act: steps.Act) -> str:
    return "journey.completed" if act.end == "done" else "journey.exited"


def _mark(store: Store, journey_id: str, ref: str, seq: str, run: str, now: float,
          step_id: str, act: steps.Act, event: str = "") -> int:
    """Record the step (``journey_mark.lua``); an ending's webhook event (``event``, its
    data as JSON) goes to the outbox in the same script."""
    keys = store.keys
    history = ""
    if act.history and act.mode != "defer":
        history = enrollments.history_entry(step_id or None, now, act.outcome or act.end,
                                            **act.detail)
    counter = act.outcome if act.outcome in steps.COUNTED else ""
    bucket = int(now) - int(now) % 10
    extra: list[str] = []
    for name, value in act.fields.items():
        extra += [name, value]
    return int(store.run("journey_mark", keys=[
        keys.journey_enrollment(journey_id, ref), keys.journey_due(journey_id),
        keys.journey_stats(journey_id), keys.journey_history(journey_id, ref),
        keys.journey_steps_per_10s(bucket), keys.webhook_outbox(_end_event(act))],
        args=[ref, seq, run, repr(now), act.mode, step_id or "-", counter, act.next_step,
              repr(act.at), act.end, history, enrollments.HISTORY_KEPT, event, *extra]))


def _after(store: Store, journey_id: str, ref: str, person: dict[str, str],
           settings: dict[str, Any], now: float) -> None:
    """The goal (counted once per entry)."""
    keys = store.keys
    goal = settings.get("goal")
    if (goal and person and steps.rule_holds(store, ref, goal, now)
            and store.r.hsetnx(keys.journey_enrollment(journey_id, ref), "goal", repr(now))):
        store.r.hincrby(keys.journey_stats(journey_id), "goal_reached", 1)


def wake(store: Store, journey_id: str, ref: str, now: float | None = None) -> bool:
    """Make an active enrollment due now (an awaited open or click, a person who changed
    and may match the exit rule): the step re-checks; a wait that is not over sleeps on."""
    now = time.time() if now is None else now
    return bool(store.r.zadd(store.keys.journey_due(journey_id), {ref: now}, xx=True, lt=True,
                             ch=True))


def triggers_of(store: Store, field: str) -> list[str]:
    """The running-or-paused journeys whose trigger is ``field`` (few: read each)."""
    keys = store.keys
    if not int(store.r.hget(keys.journey_triggers, field) or 0):
        return []
    out = []
    for journey_id in store.r.zrange(keys.journeys, 0, -1):
        h = store.r.hmget(keys.journey(journey_id), "status", "version")
        if h[0] not in ("active", "paused"):
            continue
        body = catalog.cached_version(store, journey_id, h[1] or "1")
        if definition.trigger_field(body.get("trigger") or {"type": "manual"}) == field:
            out.append(journey_id)
    return out
