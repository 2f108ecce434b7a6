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
from difflib import SequenceMatcher
from typing import Any

from outreach.config import Config
from outreach.errors import Conflict, Invalid, NotFound, PossibleDuplicates
from outreach.normalize import FREE_MAIL_DOMAINS, email_domain, normalise_company
from outreach.people.scoring import decay_of, ensure_decay
from outreach.people.segments import catalog, dirty, membership
from outreach.people.segments.rules import ACCOUNT_OPEN
from outreach.platform import refs, users, webhooks
from outreach.sales.owners import assignment_pool, checked_owner
from outreach.store import Store

AUTO = "system:conversion"  # the ``by`` of the automatic pass



def _account_keys(company: str | None, email: str) -> tuple[str, str, str]:
    """(company key, domain key, account name) for a lead."""
    company_key = normalise_company(company or "")
    domain = email_domain(email)
    domain_key = "" if domain in FREE_MAIL_DOMAINS else domain
    name = (company or "").strip() or domain_key
    return company_key, domain_key, name


def _lead_args(config: Config, lead_id: str, email: str, company: str | None,
               estimated_revenue: float | None = None, estimated_close_date: date | None = None,
               probability: int | None = None, *, create_account: bool = True,
               create_contact: bool = True, create_opportunity: bool = True,
               account_id: str = "", contact_id: str = "", owner: str = "",
               by: str = "") -> list[Any]:
    company_key, domain_key, name = _account_keys(company, email)
    close = estimated_close_date or (
        datetime.now(UTC).date() + timedelta(days=config.default_close_days))
    revenue = estimated_revenue if estimated_revenue is not None else config.default_estimated_revenue
    flag = {True: "1", False: "0"}
    return [lead_id, company_key, domain_key, name, repr(float(revenue)), close.isoformat(),
            int(probability if probability is not None else config.default_probability),
            flag[create_account], flag[create_contact], flag[create_opportunity],
            account_id, contact_id, owner, by]


def _run_qualify(store: Store, config: Config, leads: list[list[Any]], auto: bool,
                 pool: list[str]) -> list[list[str]]:
    args: list[Any] = [store.keys.tag, int(time.time()), "1" if auto else "0",
                       config.promotion_threshold, len(leads), len(pool), *pool]
    for lead in leads:
        args.extend(lead)
    results = store.run("qualify", args=args)
    # the lead's status and the new contact change what segments hold them
    changed = [ref for lead, (outcome, contact, *_) in zip(leads, results, strict=True)
               if outcome == "created"
               for ref in (refs.lead_ref(lead[0]), contact and refs.contact_ref(contact)) if ref]
    dirty.touch_many(store, changed, [membership.ANY])
    if changed:  # an account may be new: leads match accounts by company name or domain
        catalog.rebuild_readers(store, "account")
        # a new opportunity opens its account: the account's other contacts
        opened = sorted({account for outcome, _, account, opportunity, *_ in results
                         if outcome == "created" and account and opportunity})
        contacts = [refs.contact_ref(c) for account_id in opened
                    for c in store.r.zrange(store.keys.account_contacts(account_id), 0, -1)]
        dirty.touch_many(store, contacts, [ACCOUNT_OPEN])
    return results


def _announce(store: Store, lead_id: str, contact_id: str, account_id: str, opportunity_id: str,
              by: str) -> None:
    """The webhook events of a qualification that created something."""
    from outreach.sales.opportunities import get_opportunity

    webhooks.emit(store, "lead.qualified", {
        "lead_id": lead_id, "contact_id": contact_id or None, "account_id": account_id or None,
        "opportunity_id": opportunity_id or None, "by": by})
    if opportunity_id:
        webhooks.emit(store, "opportunity.created",
                      {"opportunity": get_opportunity(store, opportunity_id), "by": by})


def _similar(a: str, b: str) -> bool:
    """Two normalised company names likely to be one company: one's words begin the
    other's (``contoso`` / ``contoso pharmaceuticals``), the same letters without spaces,
    or a close spelling (difflib ratio >= 0.85)."""
    wa, wb = a.split(), b.split()
    shorter, longer = sorted((wa, wb), key=len)
    if shorter and longer[:len(shorter)] == shorter:
        return True
    if a.replace(" ", "") == b.replace(" ", ""):
        return True
    return SequenceMatcher(None, a, b).ratio() >= 0.85


_INDEXED = "!indexed"


def possible_duplicates(store: Store, company_key: str, limit: int = 10) -> list[dict[str, str]]:
    """Accounts whose normalised name is like ``company_key`` (not equal: an equal one is
    linked anyway), from the lexicographic name index (built once from ``by-name``)."""
    keys = store.keys
    if not company_key:
        return []
    if store.r.zscore(keys.account_names, _INDEXED) is None:
        names = store.r.hgetall(keys.account_by_name)
        members = {f"{name}|{account_id}": 0 for name, account_id in names.items()}
        members[_INDEXED] = 0
        store.r.zadd(keys.account_names, members)
    prefix = company_key[:3]
    rows = store.r.zrangebylex(keys.account_names, f"[{prefix}", f"[{prefix}\uffff", start=0,
                               num=500)
    seen: dict[str, str] = {}
    for row in rows:
        name, _, account_id = row.rpartition("|")
        if name and name != company_key and account_id not in seen and _similar(name, company_key):
            seen[account_id] = name
    if not seen:
        return []
    ids = list(seen)[:limit]
    pipe = store.r.pipeline(transaction=False)
    for account_id in ids:
        pipe.hget(keys.account(account_id), "name")
    return [{"account_id": account_id, "name": display or seen[account_id]}
            for account_id, display in zip(ids, pipe.execute(), strict=True)
            if display is not None]


def qualify(
    store: Store, config: Config, lead_id: str, *, estimated_revenue: float | None = None,
    estimated_close_date: date | None = None, probability: int | None = None,
    create_account: bool = True, create_contact: bool = True, create_opportunity: bool = True,
    account_id: str | None = None, contact_id: str | None = None,
    on_duplicate: str | None = None, owner: str | None = None, by: str | None = None,
    me: str | None = None,
) -> dict[str, Any]:
    """Qualify one lead (``POST /leads/<id>/qualify``); repeating returns the same ids.

    ``account_id`` / ``contact_id`` attach existing records instead of matching; the
    ``create_*`` flags (default true) leave out what is not wanted. When a new account
    would be made while accounts with a similar name exist, ``on_duplicate`` decides:
    absent, ``PossibleDuplicates`` (409) and nothing is created; ``link``, the most likely
    one is used; ``create``, a new account is made. The opportunity's owner: ``owner``,
    else the lead's, else ``me`` (the caller's user) when it may own, else the rule.
    """
    keys = store.keys
    email, company, status, lead_owner = store.r.hmget(keys.lead(lead_id), "email", "company",
                                                       "status", "owner")
    if not email:
        raise NotFound(f"No lead {lead_id!r}.")
    if status == "disqualified":
        raise Conflict("The lead is disqualified; reactivate it before qualifying.")
    errors: dict[str, list[str]] = {}
    if account_id and not store.r.exists(keys.account(account_id)):
        errors["account_id"] = ["No such account."]
    if contact_id and not store.r.exists(keys.contact(contact_id)):
        errors["contact_id"] = ["No such contact."]
    chosen = ""
    if owner:
        try:
            chosen = checked_owner(store, owner)
        except Invalid as exc:
            errors.update(exc.fields or {})
    if errors:
        raise Invalid("Validation failed.", errors)
    if status != "qualified" and create_account and not account_id:
        company_key, domain_key, _ = _account_keys(company, email)
        exact = ((company_key and store.r.hexists(keys.account_by_name, company_key))
                 or (domain_key and store.r.hexists(keys.account_by_domain, domain_key)))
        if not exact and on_duplicate != "create":
            candidates = possible_duplicates(store, company_key)
            if candidates and on_duplicate is None:
                raise PossibleDuplicates(
                    "Accounts with a similar name exist: pass on_duplicate=link to use the "
                    "most likely one (or account_id), or on_duplicate=create.", candidates)
            if candidates:
                account_id = candidates[0]["account_id"]
    if not chosen and not lead_owner and me and users.can_own(store, me):
        chosen = me
    pool = [] if chosen or lead_owner else assignment_pool(store, config)
    who = by or "api"
    lead = _lead_args(config, lead_id, email, company, estimated_revenue, estimated_close_date,
                      probability, create_account=create_account, create_contact=create_contact,
                      create_opportunity=create_opportunity, account_id=account_id or "",
                      contact_id=contact_id or "", owner=chosen, by=who)
    outcome, contact, account, opportunity, _ = _run_qualify(store, config, [lead], False, pool)[0]
    if outcome == "not_found":
        raise NotFound(f"No lead {lead_id!r}.")
    if outcome == "disqualified":
        raise Conflict("The lead is disqualified; reactivate it before qualifying.")
    if outcome == "created":
        _announce(store, lead_id, contact, account, opportunity, who)
    return {"lead_id": lead_id, "contact_id": contact or None, "account_id": account or None,
            "opportunity_id": opportunity or None, "created": outcome == "created"}


def run_conversion(store: Store, config: Config, chunk: int = 500, per_call: int = 50) -> dict[str, Any]:
    """Qualify every new, consenting lead whose engagement score reached the threshold.

    It walks the candidates (``leads:cand``: leads still ``new``, kept by the scripts that
    score and change a lead's status), never the leads already qualified or disqualified.

    Candidates are read in chunks and qualified ``per_call`` leads per atomic Lua call;
    the script re-checks each lead's status, consent and score, so concurrent passes
    and reruns after a crash promote each lead exactly once. New opportunities go to the
    lead's owner, else to the assignment rule (``owners.assignment_pool``: the fixed
    owner, else round-robin over active sales users).
    """
    keys = store.keys
    promoted: list[str] = []
    pool = assignment_pool(store, config)
    # candidates are by score scaled to the decay epoch: those whose current, rounded score
    # reaches the threshold now (qualify.lua checks each again)
    ensure_decay(store, config)
    decay = decay_of(store)
    least = decay.scaled_bound(config.promotion_threshold, time.time())
    offset = 0
    while True:
        ids = store.r.zrangebyscore(keys.lead_candidates, repr(least), "+inf",
                                    start=offset, num=chunk)
        if not ids:
            break
        pipe = store.r.pipeline(transaction=False)
        for lead_id in ids:
            pipe.hmget(keys.lead(lead_id), "status", "consent", "email", "company")
        due = [_lead_args(config, lead_id, email, company, by=AUTO)
               for lead_id, (status, consent, email, company) in zip(ids, pipe.execute(), strict=True)
               if status == "new" and consent == "1" and email]
        for i in range(0, len(due), per_call):
            part = due[i:i + per_call]
            results = _run_qualify(store, config, part, True, pool)
            for args, (outcome, contact, account, opportunity_id, _) in zip(part, results,
                                                                             strict=True):
                if outcome == "created":
                    promoted.append(opportunity_id)
                    _announce(store, args[0], contact, account, opportunity_id, AUTO)
        # the next chunk starts after the leads of this one that are still candidates (no
        # consent, no address): the promoted ones left the set, by this pass or by another
        # running at the same time, so counting positions would skip leads
        scores = store.r.zmscore(keys.lead_candidates, ids)
        offset += sum(1 for score in scores
                      if score is not None and score >= least)
    return {"promoted": len(promoted), "opportunity_ids": promoted}


def disqualify(store: Store, lead_id: str, reason: str, note: str | None,
               by: str | None = None) -> None:
    """One script (``lead_status.lua``) changes the status and every index that reads it."""
    outcome, _ = store.run("lead_status", args=[store.keys.tag, int(time.time()), lead_id,
                                                "disqualify", by or "", reason, note or ""])
    if outcome == "not_found":
        raise NotFound(f"No lead {lead_id!r}.")
    if outcome == "has_opportunity":
        raise Conflict("The lead has an opportunity; close the opportunity as lost instead.")
    dirty.touch(store, refs.lead_ref(lead_id), {"field:status", "field:updated_at"})
    webhooks.emit(store, "lead.disqualified", {"lead_id": lead_id, "reason": reason,
                                               "note": note or None, "by": by})


def reactivate(store: Store, lead_id: str, by: str | None = None) -> None:
    outcome, status = store.run("lead_status", args=[store.keys.tag, int(time.time()), lead_id,
                                                     "reactivate", by or "", "", ""])
    if outcome == "not_found":
        raise NotFound(f"No lead {lead_id!r}.")
    if outcome == "not_disqualified":
        raise Conflict(f"The lead is {status}; only disqualified leads can be reactivated.")
    dirty.touch(store, refs.lead_ref(lead_id), {"field:status", "field:updated_at"})


def funnel(store: Store, config: Config) -> dict[str, Any]:
    keys = store.keys
    pipe = store.r.pipeline(transaction=False)
    pipe.zcard(keys.leads)
    pipe.zcard(keys.leads_by_status("qualified"))
    pipe.zcard(keys.leads_by_status("disqualified"))
    engaged_from = decay_of(store).scaled_bound(config.promotion_threshold, time.time())
    pipe.zcount(keys.lead_scores, repr(engaged_from), "+inf")
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
