"""Sending one batch of a campaign, exactly once per (campaign, address).

Per recipient: claim in the ledger (Lua: campaign still sending, not suppressed,
global token bucket) -> render -> one SMTP transaction -> record the outcome.

Failures are attributed to the party at fault (``outreach.mail.smtp.classify``):
- the relay or the sender's settings (connect, greeting, EHLO, STARTTLS, AUTH, MAIL FROM):
  the claim is handed back, the batch retried with capped backoff, and the campaign pauses
  with the relay's reply as its reason after ``send_session_retries`` refusals (5xx, TLS)
  or ``send_max_consecutive_failures`` connection failures. No recipient is failed;
- the recipient: a hard bounce (5.1.x, 5.2.1) fails and suppresses the address; a soft one
  (4xx, 5.2.2) goes back in the queue, up to ``send_soft_retries`` times; anything else
  (5.7.x policy, 5.3.x, 5.4.x, ...) fails it without suppressing;
- the circuit breaker: ``send_breaker_refusals`` distinct recipients refused in a row with
  the same kind of answer (no delivery between) is the relay's answer: the campaign pauses
  and every one of them goes back in the queue, unsuppressed;
- our own code: any unexpected error rendering or sending one message fails that
  recipient with the error's class and message; the batch goes on.
Policy for what cannot be known: a claim left by a crashed worker, or a message
whose content went out without a final reply, is reported ``unknown`` and never resent.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass

from outreach.campaigns import pacing
from outreach.campaigns.sending.context import CampaignContext, load_people
from outreach.campaigns.sending.deliver import Messenger, deliver_one
from outreach.campaigns.sending.heartbeats import HEARTBEATS
from outreach.config import Config
from outreach.normalize import email_hash
from outreach.platform.jobs import Jobs
from outreach.store import Store

# Set when this process is asked to stop (SIGTERM on a deploy): the batch in hand stops
# before its next recipient and hands the rest back (tasks/campaigns.py wires the signals).
STOP = threading.Event()


@dataclass
class BatchResult:
    sent: int = 0
    retry_in: float | None = None  # send the rest of the batch again after this many seconds
    finished: bool = False


def send_batch(
    store: Store, config: Config, messenger: Messenger, jobs: Jobs, campaign_id: str,
    batch_no: int, attempt: int = 0,
) -> BatchResult:
    keys = store.keys
    result = BatchResult()
    if STOP.is_set():  # this worker is stopping: hand the batch straight back
        result.retry_in = 0.0
        return result
    h = store.r.hgetall(keys.campaign(campaign_id))
    if h.get("status") != "sending":
        return result
    emails = store.r.lrange(keys.campaign_batch(campaign_id, batch_no), 0, -1)
    if not emails:
        store.r.hdel(keys.campaign_batches(campaign_id), str(batch_no))
        result.finished = True
        return result
    run = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    HEARTBEATS.add(store, run, config.send_heartbeat_seconds)  # before the first claim
    try:
        store.r.hset(keys.campaign_batch_runs(campaign_id), str(batch_no), run)
        return _send_batch(store, config, messenger, jobs, campaign_id, batch_no, attempt, h,
                           emails, run, result)
    finally:
        with contextlib.suppress(Exception):
            store.run("forget_run", keys=[keys.campaign_batch_runs(campaign_id)],
                      args=[str(batch_no), run])
        HEARTBEATS.remove(store, run)


def _send_batch(
    store: Store, config: Config, messenger: Messenger, jobs: Jobs, campaign_id: str,
    batch_no: int, attempt: int, h: dict[str, str], emails: list[str], run: str,
    result: BatchResult,
) -> BatchResult:
    keys = store.keys
    store.r.hset(keys.campaign_batches(campaign_id), str(batch_no), str(int(time.time())))
    context = CampaignContext(store, config, campaign_id, h)
    context.load_variants(emails)
    ledger = store.r.hmget(keys.campaign_ledger(campaign_id), emails)
    people = load_people(store, [(v or "||").split("|")[1] for v in ledger])
    rate = float(h.get("rate") or 0)
    claim_keys = [keys.campaign(campaign_id), keys.campaign_ledger(campaign_id),
                  keys.campaign_sending(campaign_id), keys.suppressed,
                  keys.campaign_bucket(campaign_id), keys.erased,
                  keys.campaign_errors(campaign_id), keys.campaign_claims(campaign_id),
                  keys.send_run(run)]
    soft_run = 0  # soft refusals in a row in this run: the relay asks us to slow down
    requeued = False
    deferred = 0  # ms until the soonest token or back-off end of a domain that had to wait
    for i, email in enumerate(emails):
        if i and i % 20 == 0:
            store.r.hset(keys.campaign_batches(campaign_id), str(batch_no), str(int(time.time())))
        state = (ledger[i] or "")[:1]
        # per-domain pace and back-off for a queued recipient; a slot of the domain's
        # concurrency limit for any that may be claimed and sent (a dead run's claim too)
        pace, slot = state == "q", state in ("q", "s", "d") and context.has_slots(email)
        if pace or slot:
            wait_ms = context.domain_wait(email, run if slot else "", pace)
            if wait_ms:  # deferred, not failed: stays queued for this batch's next run
                deferred = min(deferred or wait_ms, wait_ms)
                continue
        try:
            while True:
                if STOP.is_set():  # stop before the next recipient; the rest goes back
                    result.retry_in = 0.0
                    return result
                outcome, detail = store.run("claim_send", keys=claim_keys, args=[
                    email, repr(time.time()), config.send_claim_timeout_seconds, rate,
                    email_hash(email), run, config.send_heartbeat_seconds, keys.send_run("")])
                if outcome != "wait":
                    break
                wait = int(detail) / 1000.0
                if wait > 5:
                    result.retry_in = wait
                    return result
                STOP.wait(wait)
            if outcome == "stopped":
                return result
            if outcome != "claimed":
                continue
            person = people.get(detail) or {}
            verdict = deliver_one(store, config, messenger, context, email, detail, person, run)
        finally:
            if slot:  # the transaction is over (or never started): the slot is free
                pacing.release(store, email, run)
        if verdict == "sent":
            result.sent += 1
        if verdict == "deferred":  # that domain backs off; the others go on
            wait_ms = context.domain_wait(email)
            deferred = min(deferred or wait_ms, wait_ms) if wait_ms else deferred
            continue
        soft_run = soft_run + 1 if verdict == "soft" else 0
        requeued = requeued or verdict == "soft"
        if verdict in ("session", "connection", "unknown") or soft_run >= 3:
            result.retry_in = _backoff(config, attempt)
            return result
        if verdict == "tripped":
            return result
    if deferred:
        result.retry_in = max(0.05, deferred / 1000.0)
        # waiting on purpose: not stale (the watch would start it again) before it is due
        store.r.hset(keys.campaign_batches(campaign_id), str(batch_no),
                     str(int(time.time() + result.retry_in)))
        return result
    if requeued:
        result.retry_in = _backoff(config, attempt)
        return result
    if _batch_done(store, campaign_id, emails):
        pipe = store.r.pipeline(transaction=True)
        pipe.hdel(keys.campaign_batches(campaign_id), str(batch_no))
        pipe.delete(keys.campaign_batch(campaign_id, batch_no))
        pipe.execute()
        result.finished = True
        if not h.get("dispatched") or int(h.get("waiting_local") or 0):  # more to queue
            jobs.dispatch(campaign_id)
    return result


def _backoff(config: Config, attempt: int) -> float:
    return min(float(2 ** min(attempt, 10)), float(config.send_retry_max_seconds))


def _batch_done(store: Store, campaign_id: str, emails: list[str]) -> bool:
    """No recipient of the batch is queued or in flight (a dead worker's claim turns
    into ``unknown`` after the claim timeout, so this always ends)."""
    states = store.r.hmget(store.keys.campaign_ledger(campaign_id), emails)
    return not any(s and s[0] in "qsd" for s in states)
