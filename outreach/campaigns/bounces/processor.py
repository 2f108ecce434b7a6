"""One processor for every bounce and complaint door (inbound SMTP, the polled mailbox).

A ``Report`` (``outreach.mail.reports``) names a campaign and a person's ref
through a signed token; it is applied atomically and once (``bounce.lua``):

- hard (5.1.x, 5.0.0 unknown mailbox): the recipient is ``bounced`` and the address
  suppressed (reason ``hard_bounce``, with the campaign and the reply);
- soft (4.x.x, 5.2.2, ``Action: delayed``): counted (``soft_bounced``); the address is
  suppressed once it has ``soft_bounce_limit`` soft bounces within 30 days;
- blocked (5.7.x policy): counted against the campaign (``blocked``), nobody suppressed;
- complaint: ``complained``, suppressed (reason ``complaint``) and consent withdrawn.

The same report twice changes nothing. After at least ``RATE_MIN_DELIVERED`` delivered, a
sending campaign whose hard-bounce or complaint rate passes its limit pauses itself with
the reason in ``status_reason``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from outreach.config import Config
from outreach.mail.reports import BLOCKED, COMPLAINT, HARD, SOFT, Parsed, Report, parse
from outreach.normalize import InvalidEmail, checked_email, email_hash
from outreach.people.consent import withdraw_consent_of
from outreach.store import Store

log = logging.getLogger(__name__)

SOFT_WINDOW_SECONDS = 30 * 24 * 3600
SEEN_SECONDS = 90 * 24 * 3600
RATE_MIN_DELIVERED = 200


def _person_email(store: Store, ref: str) -> str | None:
    return store.r.hget(store.keys.person(ref), "email")


def apply_report(store: Store, config: Config, report: Report) -> str:
    """Apply one report. Returns ``recorded``, ``suppressed``, ``duplicate`` or
    ``unknown`` (no genuine token, or not a recipient of that campaign)."""
    if not (report.campaign_id and report.ref) or report.kind not in (HARD, SOFT, BLOCKED, COMPLAINT):
        return "unknown"
    email = _person_email(store, report.ref)
    if not email:
        return "unknown"
    try:
        email = checked_email(email)
    except InvalidEmail:
        return "unknown"
    keys, cid, now = store.keys, report.campaign_id, int(time.time())
    reply = " ".join(p for p in (report.status, report.diagnostic) if p)[:500]
    if report.kind == COMPLAINT:
        value = f"complaint:{cid}"
        info = {"reason": "complaint", "at": now, "campaign_id": cid, "reply": reply or None}
    else:
        value = f"bounced:{cid}"
        info = {"reason": "hard_bounce", "at": now, "campaign_id": cid, "reply": reply or None}
        if report.kind == SOFT:
            info["soft_bounces"] = config.soft_bounce_limit
    event_kind = {"hard": "bounce", "soft": "soft_bounce", "blocked": "blocked",
                  "complaint": "complaint"}[report.kind]
    event = f"{event_kind}|{cid}|{now}|{reply.replace('|', ' ')}"
    result = int(store.run("bounce", keys=[
        keys.campaign(cid), keys.campaign_ledger(cid), keys.suppressed, keys.suppression_info,
        keys.bounce_seen(report.report_id or f"{cid}:{report.ref}:{report.kind}:{now}"),
        keys.person_events(report.ref), keys.soft_bounces(email_hash(email)),
        keys.campaign_errors(cid), keys.campaign_report(cid)],
        args=[email, report.ref, report.kind, str(now), str(config.soft_bounce_limit), value,
              json.dumps(info), event, reply if report.kind != COMPLAINT else "",
              str(SOFT_WINDOW_SECONDS), str(SEEN_SECONDS), report.report_id or str(now)]))
    if result == 0:
        return "duplicate"
    if result < 0:
        return "unknown"
    if report.kind == COMPLAINT:
        withdraw_consent_of(store, email, how="unsubscribe")
    check_rates(store, config, cid)
    return "suppressed" if result == 2 else "recorded"



def check_rates(store: Store, config: Config, campaign_id: str) -> str | None:
    """Pause a sending campaign whose hard-bounce or complaint rate is over its limit (after
    ``RATE_MIN_DELIVERED`` delivered); returns the reason when it did."""
    from outreach.campaigns import lifecycle

    h = store.r.hmget(store.keys.campaign(campaign_id), "status", "sent", "bounced", "complained")
    status, sent, bounced, complained = h[0], int(h[1] or 0), int(h[2] or 0), int(h[3] or 0)
    if status != "sending" or sent < RATE_MIN_DELIVERED:
        return None
    reason = None
    if bounced / sent > config.max_bounce_rate:
        reason = (f"hard-bounce rate {100 * bounced / sent:.1f}% ({bounced} of {sent} delivered) is "
                  f"over OUTREACH_MAX_BOUNCE_RATE {100 * config.max_bounce_rate:.1f}%")
    elif complained / sent > config.max_complaint_rate:
        reason = (f"complaint rate {100 * complained / sent:.2f}% ({complained} of {sent} delivered) "
                  f"is over OUTREACH_MAX_COMPLAINT_RATE {100 * config.max_complaint_rate:.2f}%")
    if reason:
        log.warning("pausing campaign %s: %s", campaign_id, reason)
        lifecycle.auto_pause(store, campaign_id, reason)
    return reason


def process_message(store: Store, config: Config, raw: bytes,
                    envelope_rcpts: list[str] | None = None) -> dict[str, Any]:
    """Parse one inbound message and apply every report in it."""
    parsed: Parsed = parse(raw, config.secret_keys, envelope_rcpts)
    outcomes = [apply_report(store, config, report) for report in parsed.reports]
    return {"what": parsed.what, "reports": [
        {"kind": r.kind, "recipient": r.recipient, "status": r.status, "outcome": o}
        for r, o in zip(parsed.reports, outcomes, strict=True)]}
