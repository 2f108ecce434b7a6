"""Sending one batch of a campaign, exactly once per (campaign, address).

Per recipient: claim in the ledger (Lua: campaign still sending, not suppressed,
global token bucket) -> render -> one SMTP transaction -> record the outcome.
Policy for what cannot be known: a claim left by a crashed worker, or a message
whose content went out without a final reply, is reported ``unknown`` and never
resent. Temporary (4xx) answers put the recipient back in the queue and the
batch is retried with capped backoff; permanent (5xx) answers fail it and
hard-bounce-suppress the address; a run of connection failures pauses the
campaign with the reason in its status.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Protocol

from outreach.config import Config
from outreach.mail.message import build_message
from outreach.mail.smtp import (
    AmbiguousFailure,
    ConnectionFailure,
    PermanentFailure,
    TemporaryFailure,
)
from outreach.normalize import email_hash
from outreach.rendering import RenderError
from outreach.services import campaigns, templates
from outreach.services.jobs import Jobs
from outreach.store import Store
from outreach.tokens import Tokens

log = logging.getLogger(__name__)

_HREF = re.compile(r'href="(https?://[^"]+)"', re.I)
_PERSON_FIELDS = ("email", "first_name", "last_name", "job_title", "company", "phone",
                  "mobile_phone", "street", "city", "state", "postal_code", "country", "topic")


class Messenger(Protocol):
    def send(self, msg: Any, mail_from: str, rcpt_to: str) -> str: ...


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
    h = store.r.hgetall(keys.campaign(campaign_id))
    if h.get("status") != "sending":
        return result
    emails = store.r.lrange(keys.campaign_batch(campaign_id, batch_no), 0, -1)
    if not emails:
        store.r.hdel(keys.campaign_batches(campaign_id), str(batch_no))
        result.finished = True
        return result
    store.r.hset(keys.campaign_batches(campaign_id), str(batch_no), str(int(time.time())))
    context = _Context(store, config, campaign_id, h)
    ledger = store.r.hmget(keys.campaign_ledger(campaign_id), emails)
    people = _load_people(store, [(v or "||").split("|")[1] for v in ledger])
    rate = float(h.get("rate") or 0)
    claim_keys = [keys.campaign(campaign_id), keys.campaign_ledger(campaign_id),
                  keys.campaign_sending(campaign_id), keys.suppressed,
                  keys.campaign_bucket(campaign_id), keys.erased]
    for i, email in enumerate(emails):
        if i and i % 20 == 0:
            store.r.hset(keys.campaign_batches(campaign_id), str(batch_no), str(int(time.time())))
        while True:
            outcome, detail = store.run("claim_send", keys=claim_keys, args=[
                email, repr(time.time()), config.send_claim_timeout_seconds, rate, email_hash(email)])
            if outcome != "wait":
                break
            wait = int(detail) / 1000.0
            if wait > 5:
                result.retry_in = wait
                return result
            time.sleep(wait)
        if outcome == "stopped":
            return result
        if outcome != "claimed":
            continue
        person = people.get(detail) or {}
        verdict = _deliver(store, config, messenger, context, email, detail, person)
        if verdict == "sent":
            result.sent += 1
        elif verdict in ("temporary", "connection"):
            result.retry_in = min(float(2 ** min(attempt, 10)), float(config.send_retry_max_seconds))
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


def _batch_done(store: Store, campaign_id: str, emails: list[str]) -> bool:
    """No recipient of the batch is queued or in flight (a dead worker's claim turns
    into ``unknown`` after the claim timeout, so this always ends)."""
    states = store.r.hmget(store.keys.campaign_ledger(campaign_id), emails)
    return not any(s and s[0] in "qs" for s in states)


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
        pixel_token = self.tokens.sign("open", [self.campaign_id, ref])
        pixel = f'<img src="{self.base}/t/o/{pixel_token}" width="1" height="1" alt="">'
        lower = tracked.lower()
        at = lower.rfind("</body>")
        return tracked[:at] + pixel + tracked[at:] if at >= 0 else tracked + pixel


def _deliver(store: Store, config: Config, messenger: Messenger, ctx: _Context, email: str,
             ref: str, person: dict[str, str | None]) -> str:
    keys = store.keys
    unsubscribe_token = ctx.tokens.sign("unsubscribe", [ctx.campaign_id, ref])
    unsubscribe_url = f"{ctx.base}/u/{unsubscribe_token}"
    variables: dict[str, Any] = {k: v for k, v in person.items()}
    variables.update(email=email, person=dict(person), unsubscribe_url=unsubscribe_url,
                     asset=ctx.asset, campaign=ctx.campaign)
    finish_keys = [keys.campaign(ctx.campaign_id), keys.campaign_ledger(ctx.campaign_id),
                   keys.campaign_sending(ctx.campaign_id), keys.suppressed]

    def finish(outcome: str, suppress_reason: str = "") -> None:
        store.run("finish_send", keys=finish_keys,
                  args=[email, outcome, str(int(time.time())), suppress_reason])

    try:
        subject, html, text = ctx.template.render(variables)
    except RenderError as exc:
        _note_error(store, ctx.campaign_id, f"render failed for {ref}: {exc}", count=False)
        finish("failed")
        return "failed"
    msg = build_message(
        from_email=ctx.from_email, to_email=email, subject=subject, text=text,
        html=ctx.track(html, ref), unsubscribe_url=unsubscribe_url,
        unsubscribe_mailto=f"mailto:unsubscribe@{ctx.domain}?subject=unsubscribe%20{unsubscribe_token}",
        campaign_id=ctx.campaign_id,
    )
    try:
        messenger.send(msg, ctx.from_email, email)
    except TemporaryFailure as exc:
        finish("requeue")
        _note_error(store, ctx.campaign_id, str(exc), count=False)
        return "temporary"
    except PermanentFailure as exc:
        finish("failed", f"bounced:{ctx.campaign_id}")
        _note_error(store, ctx.campaign_id, f"{email}: {exc}", count=False)
        return "failed"
    except AmbiguousFailure as exc:
        finish("unknown")
        _note_error(store, ctx.campaign_id, str(exc), count=True, config=config)
        return "connection"
    except ConnectionFailure as exc:
        finish("requeue")
        _note_error(store, ctx.campaign_id, str(exc), count=True, config=config)
        return "connection"
    finish("sent")
    return "sent"


def _note_error(store: Store, campaign_id: str, message: str, *, count: bool,
                config: Config | None = None) -> None:
    key = store.keys.campaign(campaign_id)
    store.r.hset(key, "last_error", message[:500])
    if not count or config is None:
        return
    failures = int(store.r.hincrby(key, "consecutive_failures", 1))
    if failures >= config.send_max_consecutive_failures:
        log.warning("pausing campaign %s after %d delivery failures", campaign_id, failures)
        campaigns.auto_pause(
            store, campaign_id,
            f"auto-paused after {failures} consecutive delivery failures; last: {message[:300]}",
        )
