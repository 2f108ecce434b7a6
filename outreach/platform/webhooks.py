"""Signed outbound webhooks: subscriptions, events, deliveries with retries.

``emit`` records an event once (its id is the receiver's idempotency key) and a delivery
per subscribed webhook, due at once, in a schedule (a sorted set). The beat's tick takes
the due deliveries atomically (``claim_due.lua``) and queues one Celery task each; a
failed attempt is put back in the schedule 5 s, 30 s, 2 min, 10 min, then hourly later,
so no task ever waits in the broker (no countdown near the visibility timeout). A claim
is a lease: the delivery stays scheduled ``LEASE_SECONDS`` later until its attempt ends, so
a worker killed mid-delivery delays it by the lease, not by the visibility timeout.
A webhook is disabled (with the reason) only after failing continuously for
``webhook_disable_after_hours`` with no success in between, never by a count of failures:
every pending delivery keeps its schedule until it succeeds, the webhook is disabled or
``webhook_max_attempts`` is reached. Each webhook's pending deliveries are kept in a set
(its backlog, shown by the console). Events a Lua script records (``lead.created`` from
``ingest.lua``) wait in an outbox list written in the script's own transaction, and
``flush_outbox`` turns them into deliveries exactly once.

Each request carries ``Outreach-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
"<t>.<body>")>`` and ``Outreach-Event-Id``. URLs must be http(s) and must not resolve to
loopback, private, link-local or otherwise reserved addresses (unless
``webhook_allow_private``); the check is repeated at delivery time and the connection is
made to the address that was checked (no DNS rebinding between check and connect).
"""

from __future__ import annotations

import http.client
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from outreach.config import Config
from outreach.errors import Invalid, NotFound
from outreach.platform.outbound import post, resolve, sign
from outreach.platform.paging import existing_hash, page_of_hashes
from outreach.store import Store
from outreach.vocabulary import WEBHOOK_EVENTS, iso

EVENTS = WEBHOOK_EVENTS
RETRY_DELAYS = (5, 30, 120, 600)  # then hourly
HOURLY = 3600
LOG_KEEP = 1000
DELIVERY_TTL = 14 * 86_400


def retry_delay(attempt: int) -> int:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return RETRY_DELAYS[attempt - 1] if attempt <= len(RETRY_DELAYS) else HOURLY


# ------------------------------------------------------------------ subscriptions

def webhook_view(webhook_id: str, h: dict[str, str], secret: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": webhook_id, "url": h.get("url"),
        "events": [e for e in (h.get("events") or "").split(",") if e],
        "active": h.get("active") == "1",
        "disabled_reason": h.get("disabled_reason") or None,
        "consecutive_failures": int(h.get("failures") or 0),
        "created_at": iso(h.get("created_at")), "created_by": h.get("created_by") or None,
    }
    if secret is not None:
        view["secret"] = secret
    return view


def create_webhook(store: Store, config: Config, data: dict[str, Any], by: str) -> dict[str, Any]:
    resolve(data["url"], config.webhook_allow_private)
    secret = data.get("secret") or secrets.token_urlsafe(32)
    webhook_id, n = store.next_id("webhook", "wh")
    record = {"url": data["url"], "events": ",".join(dict.fromkeys(data["events"])),
              "secret": secret, "active": "1", "failures": "0",
              "created_at": str(int(time.time())), "created_by": by}
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(store.keys.webhook(webhook_id), mapping=record)
    pipe.zadd(store.keys.webhooks, {webhook_id: n})
    pipe.execute()
    return webhook_view(webhook_id, record, secret)


def get_webhook(store: Store, webhook_id: str) -> dict[str, Any]:
    return webhook_view(webhook_id, existing_hash(store, store.keys.webhook(webhook_id), "webhook",
                                                  webhook_id))


def find_webhooks(store: Store, *, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    return page_of_hashes(store, store.keys.webhooks, store.keys.webhook, webhook_view, limit,
                          cursor)


def update_webhook(store: Store, config: Config, webhook_id: str, changes: dict[str, Any]
                   ) -> dict[str, Any]:
    key = store.keys.webhook(webhook_id)
    existing_hash(store, key, "webhook", webhook_id)
    mapping: dict[str, str] = {}
    if changes.get("url"):
        resolve(changes["url"], config.webhook_allow_private)
        mapping["url"] = changes["url"]
    if changes.get("events"):
        mapping["events"] = ",".join(dict.fromkeys(changes["events"]))
    if changes.get("secret"):
        mapping["secret"] = changes["secret"]
    if "active" in changes and changes["active"] is not None:
        mapping["active"] = "1" if changes["active"] else "0"
        if changes["active"]:  # re-enabled: a fresh start
            mapping["failures"] = "0"
            mapping["disabled_reason"] = ""
            store.r.hdel(key, "failing_since")
    if mapping:
        store.r.hset(key, mapping=mapping)
    return get_webhook(store, webhook_id)


def delete_webhook(store: Store, webhook_id: str) -> None:
    key = store.keys.webhook(webhook_id)
    existing_hash(store, key, "webhook", webhook_id)
    pipe = store.r.pipeline(transaction=True)
    pipe.delete(key, store.keys.webhook_deliveries(webhook_id),
                store.keys.webhook_backlog(webhook_id))
    pipe.zrem(store.keys.webhooks, webhook_id)
    pipe.execute()


def deliveries(store: Store, webhook_id: str, limit: int = 50) -> dict[str, Any]:
    existing_hash(store, store.keys.webhook(webhook_id), "webhook", webhook_id)
    items = []
    for raw in store.r.lrange(store.keys.webhook_deliveries(webhook_id), 0, limit - 1):
        entry = json.loads(raw)
        entry["at"] = iso(entry.get("at"))
        items.append(entry)
    return {"items": items}


def redeliver(store: Store, webhook_id: str, delivery_id: str) -> dict[str, Any]:
    """Queue one more attempt of a delivery now (whatever happened to it before)."""
    existing_hash(store, store.keys.webhook(webhook_id), "webhook", webhook_id)
    key = store.keys.webhook_delivery(delivery_id)
    h = existing_hash(store, key, "delivery", delivery_id)
    if h.get("webhook_id") != webhook_id:
        raise NotFound(f"No delivery {delivery_id!r} of webhook {webhook_id!r}.")
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(key, "status", "pending")
    pipe.persist(key)
    pipe.zadd(store.keys.webhook_due, {delivery_id: time.time()})
    pipe.sadd(store.keys.webhook_backlog(webhook_id), delivery_id)
    pipe.execute()
    return {"delivery_id": delivery_id, "event_id": h.get("event_id"), "status": "pending"}


# ------------------------------------------------------------------ events and deliveries

def subscribers(store: Store, event: str) -> list[str]:
    """The active webhooks that want ``event``: one round trip when there are none (the
    check hot paths make before building any event, e.g. ``lead.created`` from ingest)."""
    keys = store.keys
    ids = store.r.zrange(keys.webhooks, 0, -1)
    if not ids:
        return []
    pipe = store.r.pipeline(transaction=False)
    for webhook_id in ids:
        pipe.hmget(keys.webhook(webhook_id), "events", "active")
    return [webhook_id for webhook_id, (events, active) in zip(ids, pipe.execute(), strict=True)
            if active == "1" and event in (events or "").split(",")]


def emit(store: Store, event: str, data: dict[str, Any], when: float | None = None) -> str | None:
    """Record ``event`` for every active webhook that wants it; its event id (None: nobody)."""
    ids = emit_many(store, event, [data], when)
    return ids[0] if ids else None


def emit_many(store: Store, event: str, items: list[dict[str, Any]], when: float | None = None,
              wanted: list[str] | None = None) -> list[str]:
    """Record one ``event`` per item of ``items`` (its ``data``) for every active webhook
    that wants it (``wanted``: as ``subscribers`` gave them), ids reserved in one round trip
    and written in one transaction per chunk; the event ids (empty: nobody listens)."""
    if wanted is None:
        wanted = subscribers(store, event)
    if not wanted or not items:
        return []
    event_ids: list[str] = []
    for start in range(0, len(items), 500):
        chunk = items[start:start + 500]
        pipe = store.r.pipeline(transaction=True)
        event_ids += _write_events(store, pipe, event, chunk, wanted, when)
        pipe.execute()
    return event_ids


def queue_events(store: Store, pipe: Any, event: str, items: list[dict[str, Any]],
                 when: float | None = None, wanted: list[str] | None = None) -> list[str]:
    """Queue on ``pipe`` (in MULTI, the transaction of the change the events tell of) one
    ``event`` per item for every active webhook that wants it; their ids (empty: nobody
    listens, and nothing was queued). ``wanted``: ``subscribers(store, event)`` when the
    caller already looked (one look for a batch of people)."""
    wanted = subscribers(store, event) if wanted is None else wanted
    if not wanted or not items:
        return []
    return _write_events(store, pipe, event, items, wanted, when)


def _write_events(store: Store, pipe: Any, event: str, chunk: list[dict[str, Any]],
                  wanted: list[str], when: float | None = None) -> list[str]:
    """Queue on ``pipe`` (in MULTI) the events of ``chunk`` and a delivery each per webhook
    of ``wanted``, due at once and in its webhook's backlog; their ids (reserved now)."""
    from outreach.store import to_base36

    keys = store.keys
    now = time.time() if when is None else when
    ids = store.r.pipeline(transaction=False)
    ids.hincrby(keys.sequences, "webhook_event", len(chunk))
    ids.hincrby(keys.sequences, "webhook_delivery", len(chunk) * len(wanted))
    last_event, last_delivery = (int(n) for n in ids.execute())
    event_n, delivery_n = last_event - len(chunk), last_delivery - len(chunk) * len(wanted)
    event_ids = []
    for data in chunk:
        event_n += 1
        event_id = "evt_" + to_base36(event_n) + secrets.token_hex(4)
        event_ids.append(event_id)
        body = json.dumps({"id": event_id, "type": event, "created_at": iso(now),
                           "data": data}, separators=(",", ":"), sort_keys=True)
        for webhook_id in wanted:
            delivery_n += 1
            delivery_id = "d" + to_base36(delivery_n)
            pipe.hset(keys.webhook_delivery(delivery_id), mapping={
                "webhook_id": webhook_id, "event_id": event_id, "event": event,
                "body": body, "attempt": "0", "status": "pending",
                "created_at": str(int(now))})
            pipe.zadd(keys.webhook_due, {delivery_id: now})
            pipe.sadd(keys.webhook_backlog(webhook_id), delivery_id)
    return event_ids


def flush_outbox(store: Store, event: str,
                 render: Callable[[Store, list[str]], list[dict[str, Any] | None]],
                 chunk: int = 500) -> int:
    """Turn the subjects a script recorded in ``event``'s outbox into events and deliveries,
    each exactly once: the deliveries are written and the subjects taken off the outbox in
    one transaction, watched so that two flushes never both write one. ``render`` gives
    each subject's ``data`` (None: gone, no event). Returns how many events were written."""
    import redis

    key = store.keys.webhook_outbox(event)
    written = 0
    for _ in range(1000):  # bounded: each pass takes a chunk off, or finds the outbox empty
        with store.r.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)
                subjects = pipe.lrange(key, 0, chunk - 1)
                if not subjects:
                    pipe.unwatch()
                    return written
                wanted = subscribers(store, event)
                items = [d for d in render(store, subjects) if d is not None] if wanted else []
                pipe.multi()
                if items:
                    _write_events(store, pipe, event, items, wanted)
                pipe.ltrim(key, len(subjects), -1)
                pipe.execute()
                written += len(items)
            except redis.WatchError:
                continue  # appended to or flushed meanwhile: look again
    return written


def backlog(store: Store, webhook_ids: list[str]) -> dict[str, int]:
    """Each webhook's pending deliveries (in its schedule, not yet delivered or given up)."""
    pipe = store.r.pipeline(transaction=False)
    for webhook_id in webhook_ids:
        pipe.scard(store.keys.webhook_backlog(webhook_id))
    return dict(zip(webhook_ids, (int(n) for n in pipe.execute()), strict=True))


LEASE_SECONDS = Config.webhook_lease_seconds


def claim_due(store: Store, now: float | None = None, limit: int = 200,
              lease: float = LEASE_SECONDS) -> list[str]:
    """The deliveries due now, each returned to one caller only; each stays in the schedule
    ``lease`` seconds later (``OUTREACH_WEBHOOK_LEASE_SECONDS``, above the request timeout)
    until its attempt reschedules or finishes it, so a delivery
    whose worker died (its broker message waits for the visibility timeout) is attempted
    again after the lease (the receiver deduplicates on the event id)."""
    now = time.time() if now is None else now
    return store.run("claim_due", keys=[store.keys.webhook_due, ""],
                     args=[now, limit, int(now), lease])


def schedule_again(store: Store, delivery_ids: list[str], now: float | None = None) -> None:
    """Put claimed deliveries back (their task could not be queued)."""
    if delivery_ids:
        now = time.time() if now is None else now
        store.r.zadd(store.keys.webhook_due, dict.fromkeys(delivery_ids, now))


Poster = Callable[[str, bytes, dict[str, str], float, bool], int]


def deliver(store: Store, config: Config, delivery_id: str, post: Poster = post,
            now: float | None = None) -> str:
    """One attempt of a delivery; its status afterwards (delivered | retrying | failed |
    skipped). Idempotent for a delivery already delivered or given up."""
    keys = store.keys
    key = keys.webhook_delivery(delivery_id)
    h = store.r.hgetall(key)
    if not h or h.get("status") in ("delivered", "failed", "skipped"):
        store.r.zrem(keys.webhook_due, delivery_id)
        if h:
            store.r.srem(keys.webhook_backlog(h["webhook_id"]), delivery_id)
        return h.get("status", "missing") if h else "missing"
    webhook_id = h["webhook_id"]
    hook = store.r.hgetall(keys.webhook(webhook_id))
    if not hook or hook.get("active") != "1":
        pipe = store.r.pipeline(transaction=True)
        pipe.hset(key, "status", "skipped")
        pipe.expire(key, DELIVERY_TTL)
        pipe.zrem(keys.webhook_due, delivery_id)
        pipe.srem(keys.webhook_backlog(webhook_id), delivery_id)
        pipe.execute()
        return "skipped"
    attempt = int(h.get("attempt") or 0) + 1
    now = time.time() if now is None else now
    stamp = int(now)
    body = h["body"].encode()
    headers = {"Content-Type": "application/json", "User-Agent": "outreach-webhooks/1",
               "Outreach-Event-Id": h["event_id"], "Outreach-Event": h["event"],
               "Outreach-Signature": sign(hook.get("secret", ""), stamp, body)}
    status_code: int | None = None
    error: str | None = None
    try:
        status_code = post(hook["url"], body, headers, config.webhook_timeout_seconds,
                           config.webhook_allow_private)
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except Invalid as exc:
        error = "; ".join((exc.fields or {}).get("url", [exc.message]))
    except (OSError, http.client.HTTPException) as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    entry = {"delivery_id": delivery_id, "event_id": h["event_id"], "event": h["event"],
             "attempt": attempt, "at": stamp, "status_code": status_code, "error": error}
    log = keys.webhook_deliveries(webhook_id)
    pipe = store.r.pipeline(transaction=True)
    pipe.lpush(log, json.dumps(entry))
    pipe.ltrim(log, 0, LOG_KEEP - 1)
    if error is None:
        pipe.hset(key, mapping={"status": "delivered", "attempt": str(attempt)})
        pipe.expire(key, DELIVERY_TTL)
        pipe.zrem(keys.webhook_due, delivery_id)
        pipe.srem(keys.webhook_backlog(webhook_id), delivery_id)
        pipe.hset(keys.webhook(webhook_id), "failures", "0")
        pipe.hdel(keys.webhook(webhook_id), "failing_since")
        pipe.execute()
        return "delivered"
    pipe.hincrby(keys.webhook(webhook_id), "failures", 1)
    pipe.execute()
    failing_since = _failing_since(store, webhook_id, now)
    hours = (now - failing_since) / 3600
    disable = hours >= config.webhook_disable_after_hours
    if disable:
        store.r.hset(keys.webhook(webhook_id), mapping={
            "active": "0",
            "disabled_reason": f"failing for {hours:.0f} h with no success "
                               f"(since {iso(int(failing_since))}); last: {error}"})
    if attempt >= config.webhook_max_attempts or disable:
        pipe = store.r.pipeline(transaction=True)
        pipe.hset(key, mapping={"status": "failed", "attempt": str(attempt)})
        pipe.expire(key, DELIVERY_TTL)
        pipe.zrem(keys.webhook_due, delivery_id)
        pipe.srem(keys.webhook_backlog(webhook_id), delivery_id)
        pipe.execute()
        return "failed"
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(key, mapping={"status": "retrying", "attempt": str(attempt)})
    pipe.zadd(keys.webhook_due, {delivery_id: now + retry_delay(attempt)})
    pipe.execute()
    return "retrying"


def _failing_since(store: Store, webhook_id: str, now: float) -> float:
    """When the webhook's current run of failures began (set by its first failure after a
    success, kept until the next success)."""
    key = store.keys.webhook(webhook_id)
    store.r.hsetnx(key, "failing_since", repr(now))
    return float(store.r.hget(key, "failing_since") or now)
