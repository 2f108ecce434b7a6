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
import hashlib
import html as html_lib
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from outreach.campaigns import lifecycle, templates, watch
from outreach.campaigns import pacing as domains
from outreach.config import Config
from outreach.mail import dkim, verp
from outreach.mail.message import build_message
from outreach.mail.rendering import RenderError
from outreach.mail.smtp import (
    DEFERRED,
    AmbiguousFailure,
    ClaimLost,
    ConnectionFailure,
    DeliveryError,
    PermanentFailure,
    SessionFailure,
    TemporaryFailure,
    UnsupportedAddress,
    enhanced_code,
)
from outreach.normalize import InvalidEmail, ascii_domain, email_hash
from outreach.platform.jobs import Jobs
from outreach.store import Store
from outreach.tokens import Tokens

log = logging.getLogger(__name__)

_HREF = re.compile(r'href="(https?://[^"]+)"', re.I)
_PERSON_FIELDS = ("email", "first_name", "last_name", "job_title", "company", "phone",
                  "mobile_phone", "street", "city", "state", "postal_code", "country", "topic",
                  "email_given")


class Messenger(Protocol):
    def send(self, msg: Any, mail_from: str, rcpt_to: str,
             before_data: Callable[[], bool] | None = None) -> str: ...


# Set when this process is asked to stop (SIGTERM on a deploy): the batch in hand stops
# before its next recipient and hands the rest back (tasks/campaigns.py wires the signals).
STOP = threading.Event()


class _Heartbeats:
    """Keeps each running batch's heartbeat key alive from a daemon thread, so a long SMTP
    transaction never looks like a dead worker; a killed process stops refreshing and its
    runs are seen dead after ``send_heartbeat_seconds``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, tuple[Store, float]] = {}
        self.thread: threading.Thread | None = None

    def beat(self, store: Store, run: str, seconds: float) -> None:
        store.r.set(store.keys.send_run(run), "1", px=max(1, int(seconds * 1000)))

    def add(self, store: Store, run: str, seconds: float) -> None:
        self.beat(store, run, seconds)
        with self.lock:
            self.runs[run] = (store, seconds)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="send-heartbeat",
                                               daemon=True)
                self.thread.start()

    def remove(self, store: Store, run: str) -> None:
        with self.lock:
            self.runs.pop(run, None)
        with contextlib.suppress(Exception):
            store.r.delete(store.keys.send_run(run))

    def busy(self) -> bool:
        with self.lock:
            return bool(self.runs)

    def _loop(self) -> None:
        while True:
            with self.lock:
                runs = list(self.runs.items())
            interval = min([seconds for _, (_, seconds) in runs] or [3.0]) / 3
            for run, (store, seconds) in runs:
                with contextlib.suppress(Exception):  # the next beat or the claim refreshes it
                    self.beat(store, run, seconds)
            time.sleep(max(0.2, interval))


HEARTBEATS = _Heartbeats()


def busy() -> bool:
    """Whether this process is in the middle of a send batch."""
    return HEARTBEATS.busy()


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
    context = _Context(store, config, campaign_id, h)
    ledger = store.r.hmget(keys.campaign_ledger(campaign_id), emails)
    people = _load_people(store, [(v or "||").split("|")[1] for v in ledger])
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
        if pace or slot:  # (issue 11)
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
            verdict = _deliver(store, config, messenger, context, email, detail, person, run)
        finally:
            if slot:  # the transaction is over (or never started): the slot is free
                domains.release(store, email, run)
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
        if not h.get("dispatched"):
            jobs.dispatch(campaign_id)
    return result


def _backoff(config: Config, attempt: int) -> float:
    return min(float(2 ** min(attempt, 10)), float(config.send_retry_max_seconds))


def _batch_done(store: Store, campaign_id: str, emails: list[str]) -> bool:
    """No recipient of the batch is queued or in flight (a dead worker's claim turns
    into ``unknown`` after the claim timeout, so this always ends)."""
    states = store.r.hmget(store.keys.campaign_ledger(campaign_id), emails)
    return not any(s and s[0] in "qsd" for s in states)


def _load_people(store: Store, refs: list[str]) -> dict[str, dict[str, str]]:
    keys = store.keys
    unique = [r for r in dict.fromkeys(refs) if r]
    pipe = store.r.pipeline(transaction=False)
    for ref in unique:
        kind, _, person_id = ref.partition(":")
        key = keys.lead(person_id) if kind == "l" else keys.contact(person_id)
        pipe.hmget(key, _PERSON_FIELDS)
    return {ref: dict(zip(_PERSON_FIELDS, row, strict=True))
            for ref, row in zip(unique, pipe.execute(), strict=True)}


class _Context:
    """What every message of one campaign shares: template, asset, links, tokens."""

    # per process: link ids already stored, by campaign (bounded: cleared when large)
    _known_links: dict[str, dict[str, str]] = {}

    def __init__(self, store: Store, config: Config, campaign_id: str, h: dict[str, str]) -> None:
        self.store, self.config, self.campaign_id = store, config, campaign_id
        self.from_email = h.get("from_email") or config.from_email
        self.template = templates.compiled(store, config, h["template_id"])
        self.tokens = Tokens(config.secret_key)
        self.base = config.base_url.rstrip("/")
        self.campaign = {"id": campaign_id, "name": h.get("name")}
        self.asset = None
        for list_id in json.loads(h.get("list_ids") or "[]"):
            meta = store.r.hmget(store.keys.list(list_id), "kind", "slug")
            if meta[1]:
                self.asset = {"kind": meta[0], "slug": meta[1]}
                break
        if len(self._known_links) > 64:
            self._known_links.clear()
        self.links = self._known_links.setdefault(f"{id(store)}:{store.keys.tag}:{campaign_id}", {})
        self.domain = self.from_email.rpartition("@")[2] or "localhost"
        try:
            self.ascii_domain = ascii_domain(self.domain)
        except InvalidEmail:
            self.ascii_domain = self.domain
        self.dkim = dkim.from_config(config)  # deliverability: signing and VERP (issue 11)
        self.bounce_domain = config.bounce_domain
        self.backoffs = domains.backoffs(store)  # domain -> back-off end (ms), once per batch
        # Postmark keeps neither our return path nor (in its webhooks) our Message-ID: it
        # hands back custom metadata, which its SMTP relay takes from X-PM-Metadata-* headers
        # (the signed token, not the whole Message-ID: short, so the header never folds and
        # stays within the small value size metadata allows)
        self.postmark = any(r.host.lower().rstrip(".").endswith("postmarkapp.com")
                            for r in config.relays)

    def domain_wait(self, email: str, run: str = "", pace: bool = True) -> int:
        """Milliseconds before ``email``'s domain may get a message (0: now). ``pace``: its
        back-off after a deferral, else its token bucket when OUTREACH_DOMAIN_LIMITS is set.
        With ``run``: a slot of the domain's concurrency limit is taken for ``run`` too when
        the answer is 0 (``domains.release`` gives it back)."""
        if pace:
            until = self.backoffs.get(domains.domain_of(email))
            if until is not None:
                wait = until - int(time.time() * 1000)
                if wait > 0:
                    return wait
        if self.config.domain_limits:
            return domains.take(self.store, self.config.domain_limits, email, run, pace)
        return 0

    def has_slots(self, email: str) -> bool:
        """Whether ``email``'s domain has a concurrency limit (OUTREACH_DOMAIN_LIMITS ``Nc``)."""
        return bool(self.config.domain_limits
                    and domains.concurrency_for(self.config.domain_limits, email))

    def deferred(self, email: str) -> None:
        """``email``'s domain deferred a message: back that domain alone off."""
        seconds = domains.slow_down(self.store, email)
        self.backoffs[domains.domain_of(email)] = int((time.time() + seconds) * 1000)

    def delivered(self, email: str) -> None:
        """A delivery succeeded: a domain that had backed off has recovered (level reset)."""
        if self.backoffs:
            domain = domains.domain_of(email)
            if self.backoffs.pop(domain, None) is not None:
                domains.recovered(self.store, domain)

    def link_id(self, url: str) -> str:
        """The stored id of ``url`` (HTML-escaped as it appears in the message)."""
        link_id = self.links.get(url)
        if link_id is None:
            real = html_lib.unescape(url)
            link_id = hashlib.sha1(real.encode()).hexdigest()[:12]
            self.store.r.hsetnx(self.store.keys.campaign_links(self.campaign_id), link_id, real)
            self.links[url] = link_id
        return link_id

    def track(self, html: str, ref: str) -> str:
        def rewrite(match: re.Match[str]) -> str:
            url = match.group(1)
            if url.startswith(self.base + "/"):
                return match.group(0)
            token = self.tokens.sign("click", [self.campaign_id, ref, self.link_id(url)])
            return f'href="{self.base}/t/c/{token}"'

        tracked = _HREF.sub(rewrite, html)
        if not self.config.track_opens:  # no pixel: any <img> in short mail is HTML_IMAGE_ONLY_*
            return tracked
        pixel_token = self.tokens.sign("open", [self.campaign_id, ref])
        pixel = f'<img src="{self.base}/t/o/{pixel_token}" width="1" height="1" alt="">'
        lower = tracked.lower()
        at = lower.rfind("</body>")
        return tracked[:at] + pixel + tracked[at:] if at >= 0 else tracked + pixel


def _deliver(store: Store, config: Config, messenger: Messenger, ctx: _Context, email: str,
             ref: str, person: dict[str, str | None], run: str = "") -> str:
    """One claimed recipient, start to finish. Returns ``sent``, ``failed``, ``soft`` (back
    in the queue for later), ``deferred`` (back in the queue: the domain backs off),
    ``session`` (handed back: the relay or the settings are at
    fault), ``connection`` (the same, from the network), ``unknown`` or ``tripped`` (the
    circuit breaker paused the campaign)."""
    outcome = Outcome(store, config, ctx.campaign_id, email, run)

    def before_data() -> bool:
        """From DATA on the message may be delivered: record it, or learn the claim is lost."""
        if not run:
            return True
        return bool(store.run("mark_data", keys=[store.keys.campaign_ledger(ctx.campaign_id),
                                                 store.keys.campaign_claims(ctx.campaign_id)],
                              args=[email, run, str(int(time.time()))]))

    try:
        msg = _message(ctx, email, ref, person)
        mail_from = (verp.return_path(ctx.config.secret_key, ctx.bounce_domain, ctx.campaign_id, ref)
                     if ctx.bounce_domain else ctx.from_email)
        messenger.send(msg, mail_from, email, before_data=before_data)
    except ClaimLost:
        log.warning("campaign %s: the claim of %s was taken over; not sent", ctx.campaign_id, ref)
        return "lost"
    except SessionFailure as exc:
        outcome.finish("requeue")
        _session_failure(store, config, ctx.campaign_id, exc)
        return "connection" if isinstance(exc, ConnectionFailure) else "session"
    except TemporaryFailure as exc:
        _note_error(store, ctx.campaign_id, f"{email}: {exc}")
        if exc.kind == DEFERRED:  # the domain asks to slow down: not this recipient's refusal,
            ctx.deferred(email)   # never a bounce, not counted against it; back in the queue
            if _deferred_too_long(store, config, ctx.campaign_id, email):
                outcome.finish("failed", error=(
                    f"the receiving domain deferred it for more than "
                    f"{config.domain_defer_max_seconds:g} s; last reply: {exc.reply}"))
                return "failed"
            outcome.finish("requeue", error=exc.reply)
            return "deferred"
        if config.domain_limits and domains.is_deferral(exc.code, exc.reply):
            ctx.deferred(email)  # this domain alone backs off
        gave_up = outcome.finish("soft", error=exc.reply) == 3
        return "failed" if gave_up else "soft"
    except PermanentFailure as exc:
        verdict = outcome.refused(exc)
        _note_error(store, ctx.campaign_id, f"{email}: {exc}")
        return verdict
    except AmbiguousFailure as exc:
        outcome.finish("unknown", error=str(exc))
        _note_error(store, ctx.campaign_id, str(exc), count=True, config=config)
        return "unknown"
    except RenderError as exc:  # this person's data and the template do not agree
        error = f"{type(exc).__name__}: {exc}"
        log.warning("campaign %s: render failed for %s: %s", ctx.campaign_id, ref, exc)
        outcome.finish("failed", error=error)
        _note_error(store, ctx.campaign_id, f"render failed for {ref}: {exc}")
        return "failed"
    except Exception as exc:  # our own error (a template, one person's data, a bug): theirs alone
        error = f"{type(exc).__name__}: {exc}"
        log.exception("campaign %s: sending to %s failed: %s", ctx.campaign_id, ref, error)
        outcome.finish("failed", error=error)
        _note_error(store, ctx.campaign_id, f"{ref}: {error}")
        return "failed"
    outcome.finish("sent")
    ctx.delivered(email)
    return "sent"


def _deferred_too_long(store: Store, config: Config, campaign_id: str, email: str) -> bool:
    """Whether ``email``'s domain has been deferring it for longer than an MTA keeps trying
    (``domain_defer_max_seconds``), counted from its first deferral in this campaign."""
    key = store.keys.campaign_deferred(campaign_id)
    now = time.time()
    if store.r.hsetnx(key, email, repr(now)):  # its first deferral: the clock starts now
        return False
    since = float(store.r.hget(key, email) or now)
    return now - since > config.domain_defer_max_seconds


def _message(ctx: _Context, email: str, ref: str, person: dict[str, str | None]) -> Any:
    unsubscribe_token = ctx.tokens.sign("unsubscribe", [ctx.campaign_id, ref])
    unsubscribe_url = f"{ctx.base}/u/{unsubscribe_token}"
    variables: dict[str, Any] = {k: v for k, v in person.items() if k != "email_given"}
    variables.update(email=email, person=dict(person), unsubscribe_url=unsubscribe_url,
                     asset=ctx.asset, campaign=ctx.campaign)
    variables["postal_address"] = ctx.config.postal_address  # the built-in templates' footer
    subject, html, text = ctx.template.render(variables)
    message_id = verp.message_id(ctx.config.secret_key, ctx.ascii_domain, ctx.campaign_id, ref)
    # headers show the addresses as they travel: UTF-8 with SMTPUTF8 (RFC 6532) when a
    # local part needs it, otherwise with A-label domains (build_message decides)
    return build_message(  # To: as the person wrote it (checked at ingest), else as stored
        from_email=ctx.from_email, to_email=person.get("email_given") or email,
        subject=subject, text=text, html=ctx.track(html, ref), unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=f"mailto:unsubscribe@{ctx.ascii_domain}?subject=unsubscribe%20"
                           f"{unsubscribe_token}",
        campaign_id=ctx.campaign_id, dkim=ctx.dkim, message_id=message_id,
        headers={"X-PM-Metadata-outreach": verp.token(ctx.config.secret_key, ctx.campaign_id, ref)}
        if ctx.postmark else None,
    )


class Outcome:
    """Records what became of one claimed recipient (``finish_send``)."""

    def __init__(self, store: Store, config: Config, campaign_id: str, email: str,
                 run: str = "") -> None:
        self.store, self.config, self.campaign_id, self.email = store, config, campaign_id, email
        self.run = run

    def finish(self, outcome: str, *, error: str = "", suppress: str = "", breaker: str = "",
               info: str = "", pause_reason: str = "") -> int:
        keys, cid = self.store.keys, self.campaign_id
        return int(self.store.run("finish_send", keys=watch.finish_keys(self.store, cid), args=[
            self.email, outcome, str(int(time.time())), suppress, error[:500], breaker,
            self.config.send_breaker_refusals, self.config.send_soft_retries, info,
            keys.campaign_batch(cid, ""), f"bounced:{cid}", pause_reason[:500], self.run]))

    def refused(self, exc: PermanentFailure) -> str:
        """A permanent refusal: failed; suppressed only for a hard bounce; counted by the
        circuit breaker when it says something about the relay (not an address we cannot
        carry)."""
        now = int(time.time())
        suppress = f"bounced:{self.campaign_id}" if exc.suppress else ""
        info = json.dumps({"reason": "hard_bounce", "at": now, "campaign_id": self.campaign_id,
                           "reply": exc.reply[:500]}) if suppress else ""
        breaker = "" if isinstance(exc, UnsupportedAddress) else answer_kind(exc)
        reason = (f"the relay refused {self.config.send_breaker_refusals} recipients in a row "
                  f"with the same answer, so it is the relay's answer, not theirs (none was "
                  f"failed or suppressed for it): {exc.reply}")
        done = self.finish("failed", error=exc.reply, suppress=suppress, breaker=breaker,
                           info=info, pause_reason=reason)
        if done == 2:
            log.warning("campaign %s paused by the circuit breaker: %s", self.campaign_id,
                        exc.reply)
            return "tripped"
        return "failed"


def answer_kind(exc: DeliveryError) -> str:
    """What makes two refusals "the same kind of answer": the enhanced status code when
    there is one (``5.7.1``), else the reply code (``554``)."""
    number, _, text = exc.reply.partition(" ")
    code = exc.code or (int(number) if number.isdigit() else 0)
    status = enhanced_code(code, text)
    return ".".join(map(str, status)) if status else str(code)


def _session_failure(store: Store, config: Config, campaign_id: str,
                     exc: SessionFailure) -> None:
    """The relay or the sender's settings refused: pause after a few tries when it needs an
    operator (5xx, TLS), after ``send_max_consecutive_failures`` when the relay cannot be
    reached; a relay that answers 4xx is only waited for."""
    if exc.fatal:
        _note_error(store, campaign_id, str(exc), count=True, config=config,
                    limit=config.send_session_retries)
    elif isinstance(exc, ConnectionFailure):
        _note_error(store, campaign_id, str(exc), count=True, config=config)
    else:
        _note_error(store, campaign_id, str(exc))


def _note_error(store: Store, campaign_id: str, message: str, *, count: bool = False,
                config: Config | None = None, limit: int | None = None) -> None:
    key = store.keys.campaign(campaign_id)
    store.r.hset(key, "last_error", message[:500])
    if not count or config is None:
        return
    failures = int(store.r.hincrby(key, "consecutive_failures", 1))
    if failures >= (limit or config.send_max_consecutive_failures):
        log.warning("pausing campaign %s after %d delivery failures", campaign_id, failures)
        lifecycle.auto_pause(
            store, campaign_id,
            f"{message[:400]} (paused after {failures} consecutive delivery failures)",
        )
