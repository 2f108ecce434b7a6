"""Campaign lifecycle: the status transitions (launch, pause, resume, cancel, the automatic
pause) and sending again what is outstanding or failed (requeue, retry failed).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from typing import Any

import redis

from outreach.campaigns import model
from outreach.errors import Conflict, NotFound
from outreach.platform.jobs import Jobs
from outreach.platform.paging import existing_hash
from outreach.store import Store


def transition(
    store: Store, campaign_id: str, allowed: tuple[str, ...], target: str | None,
    extra: dict[str, str] | None = None, decide: Any = None,
) -> dict[str, str]:
    """Atomically move a campaign from one of ``allowed`` to ``target`` (or ``decide(h)``)."""
    key = store.keys.campaign(campaign_id)
    with store.r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                h = pipe.hgetall(key)
                if not h:
                    raise NotFound(f"No campaign {campaign_id!r}.")
                status = h.get("status")
                if status not in allowed:
                    raise Conflict(f"The campaign is {status}.")
                new_status = decide(h) if decide else target
                mapping = {"status": new_status, **(extra or {})}
                pipe.multi()
                pipe.hset(key, mapping=mapping)
                pipe.execute()
                h.update(mapping)
                return h
            except redis.WatchError:
                continue


def launch(store: Store, jobs: Jobs, campaign_id: str) -> dict[str, Any]:
    now = model.now()

    def decide(h: dict[str, str]) -> str:
        return "scheduled" if float(h.get("send_at") or 0) > now else "sending"

    token = secrets.token_hex(4)
    h = transition(store, campaign_id, ("draft",), None, {"watch_token": token}, decide)
    if h["status"] == "sending":
        record_start(store, campaign_id, h)
        jobs.dispatch(campaign_id)
    store.r.sadd(store.keys.active_campaigns, campaign_id)
    jobs.watch(campaign_id, token)
    return model.get_campaign(store, campaign_id)


def record_start(store: Store, campaign_id: str, h: dict[str, str]) -> None:
    """Record when sending started and how big the audience looks (for progress)."""
    keys = store.keys
    pipe = store.r.pipeline(transaction=False)
    for list_id in json.loads(h.get("list_ids") or "[]"):
        pipe.zcard(keys.list_members(list_id))
    if h.get("follow_up_of"):
        pipe.zcard(keys.campaign_audience(campaign_id))
    estimate = sum(pipe.execute())
    store.r.hset(keys.campaign(campaign_id),
                 mapping={"started_at": str(int(model.now())), "audience_estimate": str(estimate)})


def pause(store: Store, campaign_id: str, reason: str = "paused by a marketer") -> dict[str, Any]:
    transition(store, campaign_id, ("sending", "scheduled"), "paused", {"status_reason": reason})
    return model.get_campaign(store, campaign_id)


def resume(store: Store, jobs: Jobs, campaign_id: str) -> dict[str, Any]:
    now = model.now()
    token = secrets.token_hex(4)

    def decide(h: dict[str, str]) -> str:
        if not h.get("started_at") and float(h.get("send_at") or 0) > now:
            return "scheduled"
        return "sending"

    h = transition(store, campaign_id, ("paused",), None,
                   {"status_reason": "", "consecutive_failures": "0", "tripped_kind": "",
                    "watch_token": token}, decide)
    if h["status"] == "sending":
        if not h.get("started_at"):
            record_start(store, campaign_id, h)
        requeue_batches(store, jobs, campaign_id)
        jobs.dispatch(campaign_id)
    store.r.sadd(store.keys.active_campaigns, campaign_id)
    jobs.watch(campaign_id, token)
    return model.get_campaign(store, campaign_id)


def cancel(store: Store, campaign_id: str) -> dict[str, Any]:
    transition(store, campaign_id, ("draft", "scheduled", "sending", "paused"), "cancelled",
               {"finished_at": str(int(model.now()))})
    _drop_batches(store, campaign_id)
    store.r.srem(store.keys.active_campaigns, campaign_id)
    return model.get_campaign(store, campaign_id)


def auto_pause(store: Store, campaign_id: str, reason: str) -> None:
    """Pause a sending campaign because delivery keeps failing; the reason is shown in its status."""
    with contextlib.suppress(Conflict):
        transition(store, campaign_id, ("sending",), "paused", {"status_reason": reason})


def requeue_batches(store: Store, jobs: Jobs, campaign_id: str) -> int:
    keys = store.keys
    outstanding = store.r.hkeys(keys.campaign_batches(campaign_id))
    now = str(int(model.now()))
    for batch_no in outstanding:
        store.r.hset(keys.campaign_batches(campaign_id), batch_no, now)
        jobs.send_batch(campaign_id, int(batch_no))
    return len(outstanding)


def _drop_batches(store: Store, campaign_id: str) -> None:
    keys = store.keys
    outstanding = store.r.hkeys(keys.campaign_batches(campaign_id))
    pipe = store.r.pipeline(transaction=False)
    for batch_no in outstanding:
        pipe.delete(keys.campaign_batch(campaign_id, batch_no))
    pipe.delete(keys.campaign_batches(campaign_id))
    pipe.execute()


def retry_failed(store: Store, jobs: Jobs, campaign_id: str, batch_size: int) -> dict[str, Any]:
    """Queue again only the recipients whose delivery failed (bounce suppression by this
    campaign is lifted for them; unsubscribes are not)."""
    keys = store.keys
    h = existing_hash(store, keys.campaign(campaign_id), "campaign", campaign_id)
    if h.get("status") not in ("sending", "paused", "sent"):
        raise Conflict(f"The campaign is {h.get('status')}.")
    lock = keys.campaign_lock(campaign_id, "retry")
    if not store.r.set(lock, "1", nx=True, ex=60):
        raise Conflict("A retry of this campaign is already running.")
    try:
        failed = [email for email, value in store.r.hscan_iter(keys.campaign_ledger(campaign_id))
                  if value.startswith("f|") and not email.startswith("erased:")]
        bounce = f"bounced:{campaign_id}"
        queued = 0
        batch_no: int | None = None
        for email in failed:
            value = store.r.hget(keys.campaign_ledger(campaign_id), email)
            if not value or not value.startswith("f|"):
                continue
            ref = value.split("|")[1]
            if store.r.hget(keys.suppressed, email) == bounce:
                store.r.hdel(keys.suppressed, email)
                store.r.hdel(keys.suppression_info, email)
            if batch_no is None or queued % batch_size == 0:
                batch_no = int(store.r.hincrby(keys.campaign(campaign_id), "batch_seq", 1))
                store.r.hset(keys.campaign_batches(campaign_id), str(batch_no), str(int(model.now())))
            pipe = store.r.pipeline(transaction=True)
            pipe.hdel(keys.campaign_errors(campaign_id), email)
            pipe.hdel(keys.campaign_soft(campaign_id), email)
            pipe.hset(keys.campaign_ledger(campaign_id), email, f"q|{ref}|")
            pipe.hincrby(keys.campaign(campaign_id), "failed", -1)
            pipe.rpush(keys.campaign_batch(campaign_id, batch_no), email)
            pipe.execute()
            queued += 1
        token = secrets.token_hex(4)
        if queued:
            if h["status"] == "sent":
                store.r.hset(keys.campaign(campaign_id),
                             mapping={"status": "sending", "finished_at": ""})
            store.r.hset(keys.campaign(campaign_id), "watch_token", token)
            store.r.sadd(keys.active_campaigns, campaign_id)
            if store.r.hget(keys.campaign(campaign_id), "status") == "sending":
                requeue_batches(store, jobs, campaign_id)
            jobs.watch(campaign_id, token)
    finally:
        store.r.delete(lock)
    return {"requeued": queued, "campaign": model.get_campaign(store, campaign_id)}
