"""Campaigns: lifecycle, audience dispatch by pages, and the watch that finishes them.

The audience is the union of the campaign's lists, each address once (the ledger
is keyed by normalised address), minus suppressed addresses, people without
consent and disqualified leads. It is read page by page and queued into small
batches, at most ``send_window_batches`` ahead of the senders, so memory stays
flat whatever the audience size. No chords: completion is counted in Redis.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis

from outreach.config import Config
from outreach.errors import Conflict, Invalid, NotFound
from outreach.normalize import email_hash
from outreach.platform.jobs import Jobs
from outreach.platform.paging import existing_hash, page_of_hashes
from outreach.store import Store
from outreach.vocabulary import iso

STATUSES = ("draft", "scheduled", "sending", "paused", "sent", "cancelled")
STAT_FIELDS = ("targeted", "sent", "failed", "suppressed", "unknown", "opened", "clicked",
               "unsubscribed", "bounced", "soft_bounced", "blocked", "complained")
LEDGER_STATES = {"q": "queued", "s": "sending", "d": "sending", "S": "sent", "f": "failed",
                 "u": "unknown", "x": "suppressed", "B": "bounced", "C": "complained"}
STATE_CODES = {v: k for k, v in LEDGER_STATES.items() if k != "d"}


def _now() -> float:
    return time.time()


# ---------------------------------------------------------------- create and read

def create_campaign(store: Store, config: Config, data: dict[str, Any]) -> dict[str, Any]:
    keys = store.keys
    errors: dict[str, list[str]] = {}
    if not store.r.exists(keys.template(data["template_id"])):
        errors["template_id"] = ["No such template."]
    missing = [lid for lid in data["list_ids"] if not store.r.exists(keys.list(lid))]
    if missing:
        errors["list_ids"] = [f"No such list: {', '.join(missing)}."]
    if errors:
        raise Invalid("Validation failed.", errors)
    campaign_id, n = store.next_id("campaign", "cp")
    send_at = data.get("send_at")
    record = {
        "name": data["name"],
        "template_id": data["template_id"],
        "list_ids": json.dumps(list(dict.fromkeys(data["list_ids"]))),
        "from_email": data.get("from_email") or config.from_email,
        "rate": str(data.get("rate_per_second") or config.default_rate_per_second or 0),
        "status": "draft",
        "created_at": str(int(_now())),
    }
    if send_at is not None:
        record["send_at"] = str(send_at.timestamp() if isinstance(send_at, datetime) else send_at)
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(keys.campaign(campaign_id), mapping=record)
    pipe.zadd(keys.campaigns, {campaign_id: n})
    pipe.execute()
    return get_campaign(store, campaign_id)


def campaign_view(campaign_id: str, h: dict[str, str]) -> dict[str, Any]:
    stats = {name: int(h.get(name) or 0) for name in STAT_FIELDS}
    done = stats["sent"] + stats["failed"] + stats["suppressed"] + stats["unknown"]
    status = h.get("status", "draft")
    if status == "sent":
        progress = 1.0
    else:
        total = stats["targeted"] if h.get("dispatched") else max(
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
    }


def get_campaign(store: Store, campaign_id: str) -> dict[str, Any]:
    h = existing_hash(store, store.keys.campaign(campaign_id), "campaign", campaign_id)
    return campaign_view(campaign_id, h)


def find_campaigns(store: Store, *, limit: int = 50, cursor: str | None = None,
                   newest_first: bool = False) -> dict[str, Any]:
    return page_of_hashes(store, store.keys.campaigns, store.keys.campaign, campaign_view, limit,
                          cursor, newest_first)


RATE_BUCKET_SECONDS = 10


def send_rate(store: Store, campaign_id: str, *, bars: int = 60, now: float | None = None
              ) -> dict[str, Any]:
    """Messages sent over the campaign's sending time, for the live page's chart: the
    10-second counts ``finish_send.lua`` keeps, merged into at most ``bars`` equal steps
    (10 s, 20 s, 1 min, ...) from the first message sent to the last (to now while the
    campaign is sending). ``{"step_seconds", "points": [{"at", "count", "per_minute"}],
    "peak_per_minute", "average_per_minute", "sent"}``; no points before the first send."""
    keys = store.keys
    raw = store.r.hgetall(keys.campaign_sent_per_10s(campaign_id))
    counts = {int(at): int(n) for at, n in raw.items()}
    if not counts:
        return {"step_seconds": RATE_BUCKET_SECONDS, "points": [], "peak_per_minute": 0.0,
                "average_per_minute": 0.0, "sent": 0}
    first, last = min(counts), max(counts)
    if store.r.hget(keys.campaign(campaign_id), "status") == "sending":
        moment = int(_now() if now is None else now)
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


# ---------------------------------------------------------------- lifecycle

def _transition(
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
    now = _now()

    def decide(h: dict[str, str]) -> str:
        return "scheduled" if float(h.get("send_at") or 0) > now else "sending"

    token = secrets.token_hex(4)
    h = _transition(store, campaign_id, ("draft",), None, {"watch_token": token}, decide)
    if h["status"] == "sending":
        _start(store, campaign_id, h)
        jobs.dispatch(campaign_id)
    store.r.sadd(store.keys.active_campaigns, campaign_id)
    jobs.watch(campaign_id, token)
    return get_campaign(store, campaign_id)


def _start(store: Store, campaign_id: str, h: dict[str, str]) -> None:
    """Record when sending started and how big the audience looks (for progress)."""
    keys = store.keys
    pipe = store.r.pipeline(transaction=False)
    for list_id in json.loads(h.get("list_ids") or "[]"):
        pipe.zcard(keys.list_members(list_id))
    estimate = sum(pipe.execute())
    store.r.hset(keys.campaign(campaign_id),
                 mapping={"started_at": str(int(_now())), "audience_estimate": str(estimate)})


def pause(store: Store, campaign_id: str, reason: str = "paused by a marketer") -> dict[str, Any]:
    _transition(store, campaign_id, ("sending", "scheduled"), "paused", {"status_reason": reason})
    return get_campaign(store, campaign_id)


def resume(store: Store, jobs: Jobs, campaign_id: str) -> dict[str, Any]:
    now = _now()
    token = secrets.token_hex(4)

    def decide(h: dict[str, str]) -> str:
        if not h.get("started_at") and float(h.get("send_at") or 0) > now:
            return "scheduled"
        return "sending"

    h = _transition(store, campaign_id, ("paused",), None,
                    {"status_reason": "", "consecutive_failures": "0", "tripped_kind": "",
                     "watch_token": token}, decide)
    if h["status"] == "sending":
        if not h.get("started_at"):
            _start(store, campaign_id, h)
        requeue_batches(store, jobs, campaign_id)
        jobs.dispatch(campaign_id)
    store.r.sadd(store.keys.active_campaigns, campaign_id)
    jobs.watch(campaign_id, token)
    return get_campaign(store, campaign_id)


def cancel(store: Store, campaign_id: str) -> dict[str, Any]:
    _transition(store, campaign_id, ("draft", "scheduled", "sending", "paused"), "cancelled",
                {"finished_at": str(int(_now()))})
    _drop_batches(store, campaign_id)
    store.r.srem(store.keys.active_campaigns, campaign_id)
    return get_campaign(store, campaign_id)


def auto_pause(store: Store, campaign_id: str, reason: str) -> None:
    """Pause a sending campaign because delivery keeps failing; the reason is shown in its status."""
    with contextlib.suppress(Conflict):
        _transition(store, campaign_id, ("sending",), "paused", {"status_reason": reason})


def requeue_batches(store: Store, jobs: Jobs, campaign_id: str) -> int:
    keys = store.keys
    outstanding = store.r.hkeys(keys.campaign_batches(campaign_id))
    now = str(int(_now()))
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
                store.r.hset(keys.campaign_batches(campaign_id), str(batch_no), str(int(_now())))
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
    return {"requeued": queued, "campaign": get_campaign(store, campaign_id)}


# ---------------------------------------------------------------- dispatch

def dispatch(store: Store, config: Config, jobs: Jobs, campaign_id: str) -> int:
    """Queue audience pages until ``send_window_batches`` batches are outstanding.

    Returns the number of batches created. Safe to run twice (the ledger's HSETNX
    lets each address into one batch only) and serialised by a short lock.
    """
    keys = store.keys
    lock = keys.campaign_lock(campaign_id, "dispatch")
    if not store.r.set(lock, "1", nx=True, px=30_000):
        return 0
    created = 0
    try:
        page_size = config.send_batch_size * 4
        while store.r.hlen(keys.campaign_batches(campaign_id)) < config.send_window_batches:
            h = store.r.hgetall(keys.campaign(campaign_id))
            if h.get("status") != "sending" or h.get("dispatched"):
                break
            new_batches = _queue_next_page(store, config, campaign_id, h, page_size)
            if new_batches is None:
                break
            for batch_no in new_batches:
                jobs.send_batch(campaign_id, int(batch_no))
            created += len(new_batches)
    finally:
        store.r.delete(lock)
    return created


def _queue_next_page(
    store: Store, config: Config, campaign_id: str, h: dict[str, str], page_size: int
) -> list[int] | None:
    keys = store.keys
    list_ids = json.loads(h.get("list_ids") or "[]")
    index = int(h.get("d_list") or 0)
    after = int(h.get("d_after") or 0)
    candidates: list[str] = []
    exhausted = False
    if index >= len(list_ids):
        exhausted = True
    else:
        list_id = list_ids[index]
        member_type = store.r.hget(keys.list(list_id), "member_type") or "lead"
        rows = store.r.zrangebyscore(keys.list_members(list_id), f"({after}", "+inf",
                                     start=0, num=page_size, withscores=True)
        if rows:
            after = int(rows[-1][1])
            members = [member for member, _ in rows]
            if member_type == "account":  # an account list mails its accounts' contacts
                from outreach.people.affiliation import contacts_of_accounts

                members, member_type = contacts_of_accounts(store, list_id, members), "contact"
            candidates = _verdicts(store, member_type, members)
        if len(rows) < page_size:
            index, after = index + 1, 0
            exhausted = index >= len(list_ids)
    args: list[Any] = [keys.campaign_batch(campaign_id, ""), config.send_batch_size,
                       str(int(_now())), index, after, "1" if exhausted else "0",
                       len(candidates) // 3, *candidates]
    result = store.run("queue_page", keys=[keys.campaign(campaign_id),
                                           keys.campaign_ledger(campaign_id),
                                           keys.campaign_batches(campaign_id)], args=args)
    if result == -1:
        return None
    return [int(n) for n in result]


def _verdicts(store: Store, member_type: str, person_ids: list[str]) -> list[str]:
    """Flat (email, ref, verdict) triples: '1' send, 'x' suppressed, 'n' no consent,
    'd' disqualified lead, '-' gone."""
    keys = store.keys
    pipe = store.r.pipeline(transaction=False)
    for person_id in person_ids:
        key = keys.lead(person_id) if member_type == "lead" else keys.contact(person_id)
        pipe.hmget(key, "email", "consent", "status")
    people = pipe.execute()
    emails = [p[0] for p in people if p[0]]
    suppressed = dict(zip(emails, store.r.hmget(keys.suppressed, emails), strict=True)) if emails else {}
    if emails:
        erased = store.r.smismember(keys.erased, [email_hash(e) for e in emails])
        suppressed.update({e: "erased" for e, gone in zip(emails, erased, strict=True) if gone})
    prefix = "l:" if member_type == "lead" else "c:"
    out: list[str] = []
    for person_id, (email, consent, status) in zip(person_ids, people, strict=True):
        if not email:
            continue
        if suppressed.get(email):
            verdict = "x"
        elif consent != "1":
            verdict = "n"
        elif status == "disqualified":
            verdict = "d"
        else:
            verdict = "1"
        out += [email, prefix + person_id, verdict]
    return out


# ---------------------------------------------------------------- watch

def watch(store: Store, config: Config, jobs: Jobs, campaign_id: str,
          token: str | None = None) -> float | None:
    """One look after a campaign. Returns seconds until the next look, or ``None`` to stop."""
    keys = store.keys
    h = store.r.hgetall(keys.campaign(campaign_id))
    if not h or (token is not None and h.get("watch_token") != token):
        return None
    status = h.get("status")
    now = _now()
    store.r.hset(keys.campaign(campaign_id), "watched_at", repr(now))
    if status == "scheduled":
        send_at = float(h.get("send_at") or 0)
        if send_at > now:
            return min(send_at - now, 60.0)
        try:
            h = _transition(store, campaign_id, ("scheduled",), "sending")
        except Conflict:
            return None
        _start(store, campaign_id, h)
        jobs.dispatch(campaign_id)
        return config.campaign_watch_seconds
    if status != "sending":
        if status != "paused":
            store.r.srem(keys.active_campaigns, campaign_id)
        return None
    live = _restart_dead_batches(store, jobs, campaign_id, now)
    requeued = _expire_stale_claims(store, config, campaign_id, now)
    batches = store.r.hgetall(keys.campaign_batches(campaign_id))
    if requeued:
        live |= _restart_batches_of(store, jobs, campaign_id, requeued, batches, live, now)
    for batch_no, since in batches.items():
        if batch_no not in live and now - float(since) > config.send_batch_stale_seconds:
            store.r.hset(keys.campaign_batches(campaign_id), batch_no, str(int(now)))
            jobs.send_batch(campaign_id, int(batch_no))
    if not h.get("dispatched"):
        if len(batches) < config.send_window_batches:
            jobs.dispatch(campaign_id)
        return config.campaign_watch_seconds
    if not batches and store.r.zcard(keys.campaign_sending(campaign_id)) == 0:
        try:
            _transition(store, campaign_id, ("sending",), "sent", {"finished_at": str(int(now))})
        except Conflict:
            pass
        else:  # the one watcher that made it "sent" tells the webhooks
            from outreach.platform import webhooks

            webhooks.emit(store, "campaign.finished", {"campaign": get_campaign(store, campaign_id)})
        store.r.srem(keys.active_campaigns, campaign_id)
        return None
    return config.campaign_watch_seconds


def finish_keys(store: Store, campaign_id: str) -> list[str]:
    """The keys of ``finish_send.lua``, which records a claimed recipient's outcome."""
    keys = store.keys
    return [keys.campaign(campaign_id), keys.campaign_ledger(campaign_id),
            keys.campaign_sending(campaign_id), keys.suppressed,
            keys.campaign_errors(campaign_id), keys.campaign_soft(campaign_id),
            keys.campaign_streak(campaign_id), keys.suppression_info,
            keys.campaign_batches(campaign_id), keys.campaign_claims(campaign_id),
            keys.campaign_sent_per_10s(campaign_id)]


def _expire_stale_claims(store: Store, config: Config, campaign_id: str, now: float) -> set[str]:
    """Claims of a dead worker. A claim held by a send run whose heartbeat is gone: back to
    the queue when it never reached DATA (provably not delivered), ``unknown`` when it did.
    A claim from before heartbeats (no run recorded): ``unknown`` after the claim timeout.
    Returns the addresses put back in the queue."""
    keys = store.keys
    requeued: set[str] = set()
    claimed = store.r.zrange(keys.campaign_sending(campaign_id), 0, -1, withscores=True)
    if not claimed:
        return requeued
    emails = [email for email, _ in claimed]
    owners = store.r.hmget(keys.campaign_claims(campaign_id), emails)
    runs = sorted({o for o in owners if o})
    alive = dict(zip(runs, [bool(n) for n in _exist_each(store, runs)], strict=True))
    states = store.r.hmget(keys.campaign_ledger(campaign_id), emails)
    for (email, since), owner, state in zip(claimed, owners, states, strict=True):
        if owner and alive[owner]:
            continue
        if owner is None and now - since <= config.send_claim_timeout_seconds:
            continue
        if owner and (state or "")[:1] == "s":
            outcome, error = "requeue", ""
        else:
            outcome = "unknown"
            error = ("the worker sending it stopped after the content went out and never "
                     "reported: may or may not be delivered" if owner else
                     f"claimed more than {config.send_claim_timeout_seconds:g} s ago by a "
                     "worker that never reported: may or may not be delivered")
        recorded = store.run("finish_send", keys=finish_keys(store, campaign_id),
                             args=[email, outcome, str(int(now)), "", error, "", 0, 0, "",
                                   keys.campaign_batch(campaign_id, ""), "", "", owner or ""])
        if recorded and outcome == "requeue":
            requeued.add(email)
    return requeued


def _restart_batches_of(store: Store, jobs: Jobs, campaign_id: str, emails: set[str],
                        batches: dict[str, str], live: set[str], now: float) -> set[str]:
    """Sends again, at once, the batches holding addresses a dead worker's claim gave back.
    Its batch may already have run again meanwhile (RabbitMQ redelivers a killed worker's
    task at once) and ended with those claims still held: nothing else would look before
    the stale timer. Returns the batches sent again."""
    keys = store.keys
    restarted = set()
    for batch_no in batches:
        if batch_no in live:
            continue
        if emails & set(store.r.lrange(keys.campaign_batch(campaign_id, int(batch_no)), 0, -1)):
            store.r.hset(keys.campaign_batches(campaign_id), batch_no, str(int(now)))
            jobs.send_batch(campaign_id, int(batch_no))
            restarted.add(batch_no)
    return restarted


def _exist_each(store: Store, runs: list[str]) -> list[int]:
    pipe = store.r.pipeline(transaction=False)
    for run in runs:
        pipe.exists(store.keys.send_run(run))
    return pipe.execute()


def _restart_dead_batches(store: Store, jobs: Jobs, campaign_id: str, now: float) -> set[str]:
    """Batches whose send run's heartbeat is gone (its worker was killed) are sent again at
    once, not after ``send_batch_stale_seconds``. Returns the batches with a live run."""
    keys = store.keys
    working = store.r.hgetall(keys.campaign_batch_runs(campaign_id))
    if not working:
        return set()
    items = sorted(working.items())
    live: set[str] = set()
    for (batch_no, run), exists in zip(items, _exist_each(store, [r for _, r in items]),
                                       strict=True):
        if exists:
            live.add(batch_no)
            continue
        store.run("forget_run", keys=[keys.campaign_batch_runs(campaign_id)],
                  args=[batch_no, run])
        if store.r.hexists(keys.campaign_batches(campaign_id), batch_no):
            store.r.hset(keys.campaign_batches(campaign_id), batch_no, str(int(now)))
            jobs.send_batch(campaign_id, int(batch_no))
    return live


def watch_all(store: Store, config: Config, jobs: Jobs, force: bool = False) -> int:
    """The safety net (beat, and every worker start): a campaign whose watch stopped
    (its task died with a worker) gets a new one. Returns how many were restarted.

    ``force`` (a worker starting) restarts every active campaign's watch: the watch's
    next look may be a countdown task held by a worker that just died, which looks
    fresh for a while. The new token stops the old chain if it ever runs again."""
    keys = store.keys
    restarted = 0
    now = _now()
    for campaign_id in store.r.smembers(keys.active_campaigns):
        watched_at = float(store.r.hget(keys.campaign(campaign_id), "watched_at") or 0)
        if force or now - watched_at > max(10.0, 5 * config.campaign_watch_seconds):
            token = secrets.token_hex(4)
            store.r.hset(keys.campaign(campaign_id), mapping={"watch_token": token,
                                                              "watched_at": repr(now)})
            jobs.watch(campaign_id, token)
            restarted += 1
    return restarted


# ---------------------------------------------------------------- recipients

# what a recipient did with the message: the field track_event.lua sets once per person in
# the campaign's 'seen' hash ('o|<ref>' opened, 'C|<ref>' clicked some link, 'u|<ref>'
# unsubscribed; '<ref>' is l:<lead id> or c:<contact id>)
ENGAGEMENTS = {"opened": "o", "clicked": "C", "unsubscribed": "u"}


def recipients(
    store: Store, campaign_id: str, *, status: str | None = None, limit: int = 50,
    cursor: str | None = None, engagement: str | None = None,
) -> dict[str, Any]:
    """Per-recipient outcomes, optionally of one status, paged with HSCAN; ``engagement``
    (one of ``ENGAGEMENTS``): only the recipients who opened, clicked or unsubscribed.

    The cursor is ``<scan cursor>.<matches of that scan step already returned>``, so a
    page never holds more than ``limit`` items even when one HSCAN step returns many
    (a small hash comes back whole)."""
    keys = store.keys
    if not store.r.exists(keys.campaign(campaign_id)):
        raise NotFound(f"No campaign {campaign_id!r}.")
    if engagement:
        return _engaged_recipients(store, campaign_id, ENGAGEMENTS[engagement], status, limit,
                                   cursor)
    code = STATE_CODES.get(status) if status else None

    def step(scan: int) -> tuple[int, list[tuple[str, str]]]:
        next_scan, rows = store.r.hscan(keys.campaign_ledger(campaign_id), scan,
                                        count=max(limit, 100))
        return next_scan, [(email, value) for email, value in rows.items()
                           if _in_state(value[:1], code)]

    def build(page: list[tuple[str, str]]) -> list[dict[str, Any]]:
        undelivered = [email for email, value in page if value[:1] in "fu"]
        errors = dict(zip(undelivered, store.r.hmget(keys.campaign_errors(campaign_id),
                                                     undelivered), strict=True)) if undelivered else {}
        items = []
        for email, value in page:
            state, ref, at = (value.split("|") + ["", ""])[:3]
            items.append(_recipient_item(email, ref, state, at, errors.get(email)))
        return items

    return _scan_pages(step, build, limit, cursor)


def _engaged_recipients(store: Store, campaign_id: str, mark: str, status: str | None,
                        limit: int, cursor: str | None) -> dict[str, Any]:
    """``recipients`` of those the 'seen' hash marks with ``mark``: HSCAN with MATCH over
    that hash (it holds only people who did something), each one's address from their
    record and their outcome from the ledger under it, in one round trip per scan step."""
    keys = store.keys
    code = STATE_CODES.get(status) if status else None
    ledger = keys.campaign_ledger(campaign_id)

    def step(scan: int) -> tuple[int, list[dict[str, Any]]]:
        next_scan, fields = store.r.hscan(keys.campaign_seen(campaign_id), scan,
                                          match=f"{mark}|*", count=max(limit, 100))
        refs = sorted(field.split("|", 2)[1] for field in fields)
        pipe = store.r.pipeline(transaction=False)
        for ref in refs:
            kind, _, person_id = ref.partition(":")
            pipe.hget(keys.lead(person_id) if kind == "l" else keys.contact(person_id), "email")
        emails = pipe.execute()
        outcomes = store.r.hmget(ledger, [e for e in emails if e]) if any(emails) else []
        by_email = dict(zip([e for e in emails if e], outcomes, strict=True))
        items = []
        for ref, email in zip(refs, emails, strict=True):
            value = by_email.get(email) if email else None
            state, _, at = ((value or "").split("|") + ["", ""])[:3]
            if _in_state(state, code):
                items.append(_recipient_item(email or "", ref, state, at, None))
        return next_scan, items

    return _scan_pages(step, lambda page: page, limit, cursor)


def _in_state(state: str, code: str | None) -> bool:
    """A ledger state matches a wanted one (``sent`` includes ``d``, data sent)."""
    return not code or state == code or (code == "s" and state == "d")


def _scan_pages(step: Callable[[int], tuple[int, list[Any]]],
                build: Callable[[list[Any]], list[dict[str, Any]]], limit: int,
                cursor: str | None) -> dict[str, Any]:
    """One page of an HSCAN walk: ``step(scan)`` gives the next scan cursor and the matches
    of that step, ``build(page)`` the items of the matches kept. The cursor is
    ``<scan cursor>.<matches of that scan step already returned>``."""
    scan, skip = _recipients_cursor(cursor)
    items: list[dict[str, Any]] = []
    while True:
        next_scan, matches = step(scan)
        matches = matches[skip:]
        room = limit - len(items)
        items.extend(build(matches[:room]))
        if len(matches) > room:
            return {"items": items, "next_cursor": f"{scan}.{skip + room}"}
        scan, skip = int(next_scan), 0
        if scan == 0:
            return {"items": items, "next_cursor": None}
        if len(items) >= limit:
            return {"items": items, "next_cursor": f"{scan}.0"}


def _recipient_item(email: str, ref: str, state: str, at: str, error: str | None
                    ) -> dict[str, Any]:
    """One item of ``recipients``: ``ref`` is the ledger's ``l:<id>``/``c:<id>``."""
    kind, _, person_id = ref.partition(":")
    return {"email": email,
            "person": {"type": "lead" if kind == "l" else "contact", "id": person_id},
            "status": LEDGER_STATES.get(state, state) if state else None,
            "at": iso(at) if at else None,
            "error": error or None}


def _recipients_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return 0, 0
    if not re.fullmatch(r"[0-9]{1,20}(\.[0-9]{1,9})?", cursor):
        raise Invalid("Validation failed.", {"cursor": ["Not a valid cursor."]})
    scan, _, skip = cursor.partition(".")
    return int(scan), int(skip or 0)


def utc_from_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
