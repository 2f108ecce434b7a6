"""Campaign lifecycle: the status transitions (launch, pause, resume, cancel, the automatic
pause) and sending again what is outstanding or failed (requeue, retry failed).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import redis

from outreach.campaigns import local_time, model
from outreach.errors import Conflict, NotFound
from outreach.people.segments import members
from outreach.platform.jobs import Jobs
from outreach.store import Store

log = logging.getLogger(__name__)


def nudge(what: Callable[..., None], *args: Any, **kwargs: Any) -> bool:
    """Publish a job as a nudge only: the work it asks for is in Redis already (the active
    set, a schedule), and the beat drives it when the publish is lost or the broker is down.
    A failure is logged, never raised. True when published."""
    try:
        what(*args, **kwargs)
    except Exception:  # noqa: BLE001 - the beat drives what is due (DESIGN: Redis is the outbox)
        log.warning("could not publish %s; the beat will drive it", getattr(what, "__name__", what),
                    exc_info=True)
        return False
    return True


def transition(
    store: Store, campaign_id: str, allowed: tuple[str, ...], target: str | None,
    extra: dict[str, str] | Callable[[dict[str, str], str], dict[str, str]] | None = None,
    decide: Any = None, active: bool | None = None,
    also: Callable[[Any, dict[str, str]], None] | None = None,
) -> dict[str, str]:
    """Atomically move a campaign from one of ``allowed`` to ``target`` (or ``decide(h)``).

    ``extra`` (a mapping, or a function of the hash and the new status giving one) is
    written with the status; ``active`` True adds the campaign to the active set (which the
    beat's tick watches) and False removes it, in the same transaction; ``also(pipe, h)``
    queues more writes into that transaction (``h``: the hash as it was)."""
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
                more = extra(h, new_status) if callable(extra) else (extra or {})
                mapping = {"status": new_status, **more}
                pipe.multi()
                pipe.hset(key, mapping=mapping)
                if active is True:
                    pipe.sadd(store.keys.active_campaigns, campaign_id)
                elif active is False:
                    pipe.srem(store.keys.active_campaigns, campaign_id)
                if also is not None:
                    also(pipe, h)
                pipe.execute()
                h.update(mapping)
                return h
            except redis.WatchError:
                continue


def launch(store: Store, jobs: Jobs, campaign_id: str) -> dict[str, Any]:
    """``draft`` -> ``sending`` (or ``scheduled``): the status, the start time and the
    campaign's place in the active set are written in one transaction; the dispatch and
    the watch are then only nudged (the beat's tick watches every active campaign, and the
    watch dispatches), so a broker outage strands nothing."""
    now = model.now()

    def decide(h: dict[str, str]) -> str:
        return "scheduled" if float(h.get("send_at") or 0) > now else "sending"

    def extra(h: dict[str, str], status: str) -> dict[str, str]:
        return {"watch_token": token, **({"started_at": str(int(now))} if status == "sending"
                                         else {})}

    token = secrets.token_hex(4)
    h = transition(store, campaign_id, ("draft",), None, extra, decide, active=True)
    if h["status"] == "sending":
        record_estimate(store, campaign_id, h)
        nudge(jobs.dispatch, campaign_id)
    nudge(jobs.watch, campaign_id, token)
    return model.get_campaign(store, campaign_id)


def record_start(store: Store, campaign_id: str, h: dict[str, str]) -> None:
    """Record when sending started and how big the audience looks (for progress)."""
    store.r.hset(store.keys.campaign(campaign_id), "started_at", str(int(model.now())))
    record_estimate(store, campaign_id, h)


def record_estimate(store: Store, campaign_id: str, h: dict[str, str]) -> None:
    """How big the audience looks (for progress): the sizes of its lists."""
    keys = store.keys
    pipe = store.r.pipeline(transaction=False)
    for list_id in json.loads(h.get("list_ids") or "[]"):
        pipe.zcard(keys.list_members(list_id))
    if h.get("follow_up_of"):
        pipe.zcard(keys.campaign_audience(campaign_id))
    estimate = sum(pipe.execute()) + sum(members.sizes(store, json.loads(h.get("segment_ids")
                                                                        or "[]")))
    store.r.hset(keys.campaign(campaign_id), "audience_estimate", str(estimate))


def pause(store: Store, campaign_id: str, reason: str = "paused by a marketer") -> dict[str, Any]:
    transition(store, campaign_id, ("sending", "scheduled"), "paused", {"status_reason": reason})
    return model.get_campaign(store, campaign_id)


def resume(store: Store, jobs: Jobs, campaign_id: str) -> dict[str, Any]:
    """``paused`` -> ``sending`` (or ``scheduled``), in the active set in the same
    transaction; sending the outstanding batches and dispatching more are nudges (the watch
    sends again any batch whose task was lost, and dispatches)."""
    now = model.now()
    token = secrets.token_hex(4)

    def decide(h: dict[str, str]) -> str:
        if not h.get("started_at") and float(h.get("send_at") or 0) > now:
            return "scheduled"
        return "sending"

    def extra(h: dict[str, str], status: str) -> dict[str, str]:
        started = {"started_at": str(int(now))} if (status == "sending"
                                                   and not h.get("started_at")) else {}
        return {"status_reason": "", "consecutive_failures": "0", "tripped_kind": "",
                "watch_token": token, **started}

    before = store.r.hget(store.keys.campaign(campaign_id), "started_at")
    h = transition(store, campaign_id, ("paused",), None, extra, decide, active=True)
    if h["status"] == "sending":
        if not before:
            record_estimate(store, campaign_id, h)
        requeue_batches(store, jobs, campaign_id)
        nudge(jobs.dispatch, campaign_id)
    nudge(jobs.watch, campaign_id, token)
    return model.get_campaign(store, campaign_id)


def cancel(store: Store, campaign_id: str) -> dict[str, Any]:
    transition(store, campaign_id, ("draft", "scheduled", "sending", "paused"), "cancelled",
               {"finished_at": str(int(model.now()))}, active=False)
    _drop_batches(store, campaign_id)
    local_time.drop(store, campaign_id)
    store.r.zrem(store.keys.campaigns_retry_due, campaign_id)
    return model.get_campaign(store, campaign_id)


def auto_pause(store: Store, campaign_id: str, reason: str) -> None:
    """Pause a sending campaign because delivery keeps failing; the reason is shown in its status."""
    with contextlib.suppress(Conflict):
        transition(store, campaign_id, ("sending",), "paused", {"status_reason": reason})


def requeue_batches(store: Store, jobs: Jobs, campaign_id: str) -> int:
    """Nudge a send of every outstanding batch. A batch whose publish failed is marked as
    long stale ("0"), so the watch sends it again at its next look."""
    keys = store.keys
    outstanding = store.r.hkeys(keys.campaign_batches(campaign_id))
    for batch_no in outstanding:
        published = nudge(jobs.send_batch, campaign_id, int(batch_no))
        store.r.hset(keys.campaign_batches(campaign_id), batch_no,
                     str(int(model.now())) if published else "0")
    return len(outstanding)


def _drop_batches(store: Store, campaign_id: str) -> None:
    keys = store.keys
    outstanding = store.r.hkeys(keys.campaign_batches(campaign_id))
    pipe = store.r.pipeline(transaction=False)
    for batch_no in outstanding:
        pipe.delete(keys.campaign_batch(campaign_id, batch_no))
    pipe.delete(keys.campaign_batches(campaign_id))
    pipe.execute()


def retry_failed(store: Store, jobs: Jobs, campaign_id: str,
                 batch_size: int = 0) -> dict[str, Any]:
    """Ask for the recipients whose delivery failed to be queued again (bounce suppression
    by this campaign is lifted for them; unsubscribes are not). The request does bounded
    work: in one transaction a ``sent`` campaign is ``sending`` again, in the active set,
    and in the retry schedule; the job (``requeue_failed``) walks the ledger, nudged now
    and driven by the watch until it is done. ``requeued`` is how many failed when asked."""
    keys = store.keys
    token = secrets.token_hex(4)

    def failed_of(h: dict[str, str]) -> int:
        return max(0, int(h.get("failed") or 0))

    def decide(h: dict[str, str]) -> str:
        return "sending" if failed_of(h) and h["status"] == "sent" else h["status"]

    def extra(h: dict[str, str], status: str) -> dict[str, str]:
        if not failed_of(h):
            return {}
        return {"watch_token": token, **({"finished_at": ""} if h["status"] == "sent" else {})}

    def also(pipe: Any, h: dict[str, str]) -> None:
        if failed_of(h):
            pipe.sadd(keys.active_campaigns, campaign_id)
            pipe.zadd(keys.campaigns_retry_due, {campaign_id: model.now()})

    h = transition(store, campaign_id, ("sending", "paused", "sent"), None, extra, decide,
                   also=also)
    failed = failed_of(h)
    if failed:
        nudge(jobs.retry_failed, campaign_id)
        nudge(jobs.watch, campaign_id, token)
    return {"requeued": failed, "campaign": model.get_campaign(store, campaign_id)}


def requeue_failed(store: Store, jobs: Jobs, campaign_id: str, batch_size: int,
                   scan_count: int = 1000) -> int:
    """The retry-failed job: walk the ledger once, queue every failed recipient again in new
    batches, one script per batch (``requeue_failed.lua``: the ledger, the campaign's
    counters and error detail, the bounce suppression by this campaign, the batch, at once),
    then leave the retry schedule unless asked again meanwhile. Idempotent: a recipient is
    queued again only while its ledger says failed. Returns how many were queued."""
    keys = store.keys
    asked = store.r.zscore(keys.campaigns_retry_due, campaign_id)
    if asked is None:
        return 0
    lock = keys.campaign_lock(campaign_id, "retry")
    if not store.r.set(lock, "1", nx=True, ex=300):
        return 0  # another worker runs it now; the watch asks again if it dies
    queued = 0
    new_batches: list[int] = []
    try:
        status = store.r.hget(keys.campaign(campaign_id), "status")
        if status in ("sending", "paused"):
            script_keys = [keys.campaign(campaign_id), keys.campaign_ledger(campaign_id),
                           keys.campaign_errors(campaign_id), keys.campaign_soft(campaign_id),
                           keys.suppressed, keys.suppression_info,
                           keys.campaign_batches(campaign_id), keys.campaign_batch(campaign_id, "")]
            cursor = 0
            while True:
                cursor, chunk = store.r.hscan(keys.campaign_ledger(campaign_id), cursor,
                                              count=scan_count)
                failed = [email for email, value in chunk.items()
                          if value.startswith("f|") and not email.startswith("erased:")]
                for start in range(0, len(failed), max(1, batch_size)):
                    n, batch_no = store.run("requeue_failed", keys=script_keys, args=[
                        f"bounced:{campaign_id}", str(int(model.now())),
                        *failed[start:start + max(1, batch_size)]])
                    if int(n):
                        queued += int(n)
                        new_batches.append(int(batch_no))
                if cursor == 0:
                    break
        _done_asking(store, campaign_id, asked)
    finally:
        store.r.delete(lock)
    if store.r.hget(keys.campaign(campaign_id), "status") == "sending":
        for batch_no in new_batches:
            nudge(jobs.send_batch, campaign_id, batch_no)
    return queued


def _done_asking(store: Store, campaign_id: str, asked: float) -> None:
    """Leave the retry schedule, unless retry-failed was asked again since ``asked``."""
    key = store.keys.campaigns_retry_due
    with store.r.pipeline() as pipe:
        try:
            pipe.watch(key)
            if pipe.zscore(key, campaign_id) != asked:
                pipe.unwatch()
                return
            pipe.multi()
            pipe.zrem(key, campaign_id)
            pipe.execute()
        except redis.WatchError:
            return  # asked again meanwhile: the watch runs the job again
