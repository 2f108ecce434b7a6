"""Lead qualification (Microsoft Dynamics' Qualify) and the periodic conversion pass.

Qualify creates or links the account (normalised company name, else the email's
non-free-mail domain), creates or links the contact (by email), creates the
opportunity, marks the lead qualified and moves its lead-list memberships to the
parallel contact lists: one Lua script, so it is atomic, and idempotent, so two
workers or a rerun after a crash create exactly one of each.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from outreach.config import Config
from outreach.errors import Conflict, NotFound
from outreach.normalize import FREE_MAIL_DOMAINS, email_domain, normalise_company
from outreach.store import Store

DISQUALIFY_REASONS = ("no_budget", "too_far", "not_target_market", "not_interested",
                      "bad_timing", "other")


def _account_keys(company: str | None, email: str) -> tuple[str, str, str]:
    """(company key, domain key, account name) for a lead."""
    company_key = normalise_company(company or "")
    domain = email_domain(email)
    domain_key = "" if domain in FREE_MAIL_DOMAINS else domain
    name = (company or "").strip() or domain_key
    return company_key, domain_key, name


def qualify(
    store: Store, config: Config, lead_id: str, *, estimated_revenue: float | None = None,
    estimated_close_date: date | None = None, probability: int | None = None,
    auto: bool = False,
) -> dict[str, Any] | None:
    """Qualify one lead. Returns the ids, or ``None`` when ``auto`` and the lead is not due."""
    lead = store.r.hmget(store.keys.lead(lead_id), "email", "company")
    if not lead[0]:
        raise NotFound(f"No lead {lead_id!r}.")
    company_key, domain_key, name = _account_keys(lead[1], lead[0])
    close = estimated_close_date or (
        datetime.now(UTC).date() + timedelta(days=config.default_close_days))
    outcome, contact_id, account_id, opportunity_id = store.run("qualify", args=[
        store.keys.tag, lead_id, int(time.time()), company_key, domain_key, name,
        repr(float(estimated_revenue if estimated_revenue is not None
                   else config.default_estimated_revenue)),
        close.isoformat(),
        int(probability if probability is not None else config.default_probability),
        "1" if auto else "0", config.promotion_threshold,
    ])
    if outcome == "not_found":
        raise NotFound(f"No lead {lead_id!r}.")
    if outcome == "disqualified":
        raise Conflict("The lead is disqualified; reactivate it before qualifying.")
    if outcome == "skipped":
        return None
    return {"lead_id": lead_id, "contact_id": contact_id, "account_id": account_id or None,
            "opportunity_id": opportunity_id, "created": outcome == "created"}


def run_conversion(store: Store, config: Config, chunk: int = 1000) -> dict[str, Any]:
    """Qualify every new, consenting lead whose engagement score reached the threshold."""
    keys = store.keys
    promoted: list[str] = []
    offset = 0
    while True:
        ids = store.r.zrangebyscore(keys.lead_scores, config.promotion_threshold, "+inf",
                                    start=offset, num=chunk)
        if not ids:
            break
        offset += len(ids)
        pipe = store.r.pipeline(transaction=False)
        for lead_id in ids:
            pipe.hmget(keys.lead(lead_id), "status", "consent")
        for lead_id, (status, consent) in zip(ids, pipe.execute(), strict=True):
            if status != "new" or consent != "1":
                continue
            result = qualify(store, config, lead_id, auto=True)
            if result and result["created"]:
                promoted.append(result["opportunity_id"])
    return {"promoted": len(promoted), "opportunity_ids": promoted}


def disqualify(store: Store, lead_id: str, reason: str, note: str | None) -> None:
    keys = store.keys
    h = store.r.hmget(keys.lead(lead_id), "status", "opportunity_id")
    if h[0] is None:
        raise NotFound(f"No lead {lead_id!r}.")
    if h[1]:
        raise Conflict("The lead has an opportunity; close the opportunity as lost instead.")
    seq = store.r.zscore(keys.leads, lead_id) or 0
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(keys.lead(lead_id), mapping={
        "status": "disqualified", "disqualify_reason": reason, "disqualify_note": note or "",
        "updated_at": str(int(time.time()))})
    pipe.zadd(keys.leads_by_status("disqualified"), {lead_id: seq})
    pipe.execute()


def reactivate(store: Store, lead_id: str) -> None:
    keys = store.keys
    status = store.r.hget(keys.lead(lead_id), "status")
    if status is None:
        raise NotFound(f"No lead {lead_id!r}.")
    if status != "disqualified":
        raise Conflict(f"The lead is {status}; only disqualified leads can be reactivated.")
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(keys.lead(lead_id), mapping={"status": "new", "updated_at": str(int(time.time()))})
    pipe.hdel(keys.lead(lead_id), "disqualify_reason", "disqualify_note")
    pipe.zrem(keys.leads_by_status("disqualified"), lead_id)
    pipe.execute()


def funnel(store: Store, config: Config) -> dict[str, Any]:
    keys = store.keys
    pipe = store.r.pipeline(transaction=False)
    pipe.zcard(keys.leads)
    pipe.zcard(keys.leads_by_status("qualified"))
    pipe.zcard(keys.leads_by_status("disqualified"))
    pipe.zcount(keys.lead_scores, config.promotion_threshold, "+inf")
    pipe.zcard(keys.contacts)
    pipe.zcard(keys.accounts)
    for status in ("open", "won", "lost"):
        pipe.zcard(keys.opportunities_by_status(status))
    total, qualified, disqualified, engaged, contacts, accounts, open_, won, lost = pipe.execute()

    def rate(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    return {
        "leads": {"total": total, "new": total - qualified - disqualified, "qualified": qualified,
                  "disqualified": disqualified},
        "engaged_leads": engaged,
        "contacts": contacts,
        "accounts": accounts,
        "opportunities": {"open": open_, "won": won, "lost": lost},
        "rates": {
            "lead_to_qualified": rate(qualified, total),
            "engaged_to_qualified": rate(qualified, engaged),
            "opportunity_win": rate(won, won + lost),
        },
        "promotion_threshold": config.promotion_threshold,
    }
