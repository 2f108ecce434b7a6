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


def _lead_args(config: Config, lead_id: str, email: str, company: str | None,
               estimated_revenue: float | None = None, estimated_close_date: date | None = None,
               probability: int | None = None) -> list[Any]:
    company_key, domain_key, name = _account_keys(company, email)
    close = estimated_close_date or (
        datetime.now(UTC).date() + timedelta(days=config.default_close_days))
    revenue = estimated_revenue if estimated_revenue is not None else config.default_estimated_revenue
    return [lead_id, company_key, domain_key, name, repr(float(revenue)), close.isoformat(),
            int(probability if probability is not None else config.default_probability)]


def _run_qualify(store: Store, config: Config, leads: list[list[Any]], auto: bool) -> list[list[str]]:
    args: list[Any] = [store.keys.tag, int(time.time()), "1" if auto else "0",
                       config.promotion_threshold, len(leads)]
    for lead in leads:
        args.extend(lead)
    return store.run("qualify", args=args)


def qualify(
    store: Store, config: Config, lead_id: str, *, estimated_revenue: float | None = None,
    estimated_close_date: date | None = None, probability: int | None = None,
) -> dict[str, Any]:
    """Qualify one lead (``POST /leads/<id>/qualify``); repeating returns the same ids."""
    email, company = store.r.hmget(store.keys.lead(lead_id), "email", "company")
    if not email:
        raise NotFound(f"No lead {lead_id!r}.")
    lead = _lead_args(config, lead_id, email, company, estimated_revenue, estimated_close_date,
                      probability)
    outcome, contact_id, account_id, opportunity_id = _run_qualify(store, config, [lead], False)[0]
    if outcome == "not_found":
        raise NotFound(f"No lead {lead_id!r}.")
    if outcome == "disqualified":
        raise Conflict("The lead is disqualified; reactivate it before qualifying.")
    return {"lead_id": lead_id, "contact_id": contact_id, "account_id": account_id or None,
            "opportunity_id": opportunity_id, "created": outcome == "created"}


def run_conversion(store: Store, config: Config, chunk: int = 500, per_call: int = 50) -> dict[str, Any]:
    """Qualify every new, consenting lead whose engagement score reached the threshold.

    Candidates are read in chunks and qualified ``per_call`` leads per atomic Lua call;
    the script re-checks each lead's status, consent and score, so concurrent passes
    and reruns after a crash promote each lead exactly once.
    """
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
            pipe.hmget(keys.lead(lead_id), "status", "consent", "email", "company")
        due = [_lead_args(config, lead_id, email, company)
               for lead_id, (status, consent, email, company) in zip(ids, pipe.execute(), strict=True)
               if status == "new" and consent == "1" and email]
        for i in range(0, len(due), per_call):
            for outcome, _, _, opportunity_id in _run_qualify(store, config, due[i:i + per_call], True):
                if outcome == "created":
                    promoted.append(opportunity_id)
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
