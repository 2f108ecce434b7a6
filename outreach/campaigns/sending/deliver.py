"""Delivering one claimed recipient: its message (template, link tracking, unsubscribe,
VERP, DKIM), one SMTP transaction, and the verdict the batch acts on."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from outreach.campaigns import pacing
from outreach.campaigns.sending.context import CampaignContext
from outreach.campaigns.sending.outcome import Outcome, note_error, session_failure
from outreach.config import Config
from outreach.mail import verp
from outreach.mail.message import build_message
from outreach.mail.rendering import RenderError
from outreach.mail.smtp.classify import (
    DEFERRED,
    AmbiguousFailure,
    ClaimLost,
    ConnectionFailure,
    PermanentFailure,
    SessionFailure,
    TemporaryFailure,
)
from outreach.people.segments import dirty, membership
from outreach.store import Store

log = logging.getLogger(__name__)


class Messenger(Protocol):
    def send(self, msg: Any, mail_from: str, rcpt_to: str,
             before_data: Callable[[], bool] | None = None) -> str: ...


def deliver_one(store: Store, config: Config, messenger: Messenger, ctx: CampaignContext, email: str,
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
        session_failure(store, config, ctx.campaign_id, exc)
        return "connection" if isinstance(exc, ConnectionFailure) else "session"
    except TemporaryFailure as exc:
        note_error(store, ctx.campaign_id, f"{email}: {exc}")
        if exc.kind == DEFERRED:  # the domain asks to slow down: not this recipient's refusal,
            ctx.deferred(email)   # never a bounce, not counted against it; back in the queue
            if _deferred_too_long(store, config, ctx.campaign_id, email):
                outcome.finish("failed", error=(
                    f"the receiving domain deferred it for more than "
                    f"{config.domain_defer_max_seconds:g} s; last reply: {exc.reply}"))
                return "failed"
            outcome.finish("requeue", error=exc.reply)
            return "deferred"
        if config.domain_limits and pacing.is_deferral(exc.code, exc.reply):
            ctx.deferred(email)  # this domain alone backs off
        gave_up = outcome.finish("soft", error=exc.reply) == 3
        return "failed" if gave_up else "soft"
    except PermanentFailure as exc:
        verdict = outcome.refused(exc)
        note_error(store, ctx.campaign_id, f"{email}: {exc}")
        return verdict
    except AmbiguousFailure as exc:
        outcome.finish("unknown", error=str(exc))
        note_error(store, ctx.campaign_id, str(exc), count=True, config=config)
        return "unknown"
    except RenderError as exc:  # this person's data and the template do not agree
        error = f"{type(exc).__name__}: {exc}"
        log.warning("campaign %s: render failed for %s: %s", ctx.campaign_id, ref, exc)
        outcome.finish("failed", error=error)
        note_error(store, ctx.campaign_id, f"render failed for {ref}: {exc}")
        return "failed"
    except Exception as exc:  # our own error (a template, one person's data, a bug): theirs alone
        error = f"{type(exc).__name__}: {exc}"
        log.exception("campaign %s: sending to %s failed: %s", ctx.campaign_id, ref, error)
        outcome.finish("failed", error=error)
        note_error(store, ctx.campaign_id, f"{ref}: {error}")
        return "failed"
    # a segment reads this campaign's sends: the script marks the person dirty with the send,
    # so a worker killed before the re-evaluation leaves them to the beat (segments/dirty.py)
    outcome.finish("sent", mark_segments=bool(ctx.sent_segments))
    ctx.delivered(email)
    if ctx.sent_segments:
        membership.evaluate_for(store, ref, ctx.sent_segments)
        dirty.clear(store, [ref])
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


def _message(ctx: CampaignContext, email: str, ref: str, person: dict[str, str | None]) -> Any:
    unsubscribe_token = ctx.tokens.sign("unsubscribe", [ctx.campaign_id, ref])
    unsubscribe_url = f"{ctx.base}/u/{unsubscribe_token}"
    variables: dict[str, Any] = {k: v for k, v in person.items() if k != "email_given"}
    variables.update(email=email, person=dict(person), unsubscribe_url=unsubscribe_url,
                     asset=ctx.asset, campaign=ctx.campaign)
    variables["postal_address"] = ctx.config.postal_address  # the built-in templates' footer
    subject, html, text = ctx.template_for(email).render(variables)
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
