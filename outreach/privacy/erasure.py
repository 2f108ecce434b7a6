"""Erasing a person (GDPR right to erasure) while making sure they are never mailed again.

Everything held about the address goes: lead, contact, list memberships, events,
registrations still queued, and the address in campaign ledgers (replaced by its
hash so campaign counts stay right). What stays is a SHA-256 of the address in
the erased set, which every audience and every send checks.
Each step is idempotent, so an interrupted erasure is completed by running it again.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from outreach.config import Config
from outreach.errors import Invalid, NotFound
from outreach.normalize import InvalidEmail, checked_email, email_hash
from outreach.people.segments import membership
from outreach.platform import refs
from outreach.store import Store

JOB_KEEP_SECONDS = 30 * 86_400  # a finished erasure job's result answers this long


def start_erasure(store: Store, raw_email: str, base_url: str = "") -> dict[str, Any]:
    """``DELETE /api/v1/people/<email>``: from this moment nothing mails the address (its hash
    joins the erased set), and the erasure itself is a job written to Redis in the same
    transaction (``erasures_due``, driven by the beat; a publish after it only nudges).
    Returns ``{id, status, status_url}``."""
    try:
        email = checked_email(raw_email)
    except InvalidEmail as exc:
        raise Invalid("Validation failed.", {"email": [str(exc)]}) from exc
    keys = store.keys
    job_id = "er" + secrets.token_hex(8)
    now = int(time.time())
    pipe = store.r.pipeline(transaction=True)
    pipe.sadd(keys.erased, email_hash(email))
    pipe.hset(keys.erasure(job_id), mapping={"email": email, "status": "queued",
                                             "created_at": str(now)})
    pipe.zadd(keys.erasures_due, {job_id: now})
    pipe.execute()
    return erasure_status(store, job_id, base_url)


def erasure_status(store: Store, job_id: str, base_url: str = "") -> dict[str, Any]:
    h = store.r.hgetall(store.keys.erasure(job_id))
    if not h:
        raise NotFound(f"No erasure {job_id!r}.")
    out: dict[str, Any] = {"id": job_id, "status": h.get("status", "queued"),
                           "status_url": f"{base_url.rstrip('/')}/api/v1/erasures/{job_id}"}
    if h.get("status") == "done":
        result = json.loads(h.get("result") or "{}")
        out.update(result)
    return out


def run_erasure(store: Store, job_id: str,
                status_days: int = Config.registration_status_days) -> bool:
    """Run one erasure job (idempotent: every step of ``erase_person`` is). True when done."""
    keys = store.keys
    email = store.r.hget(keys.erasure(job_id), "email")
    if not email:
        store.r.zrem(keys.erasures_due, job_id)
        return False
    store.r.hset(keys.erasure(job_id), "status", "running")
    result = erase_person(store, email, status_days)
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(keys.erasure(job_id), mapping={"status": "done", "result": json.dumps(result),
                                             "finished_at": str(int(time.time()))})
    pipe.hdel(keys.erasure(job_id), "email")  # the job keeps no address once done
    pipe.expire(keys.erasure(job_id), JOB_KEEP_SECONDS)
    pipe.zrem(keys.erasures_due, job_id)
    pipe.execute()
    return True


def run_due_erasures(store: Store, config: Config, limit: int = 100) -> int:
    """The beat's (and the nudge's) pass: every erasure job due, oldest first. A job whose
    worker died stays due and is run again (each step is idempotent)."""
    done = 0
    for job_id in store.r.zrangebyscore(store.keys.erasures_due, "-inf", "+inf", start=0,
                                        num=limit):
        done += run_erasure(store, job_id, config.registration_status_days)
    return done


def erase_person(store: Store, raw_email: str,
                 status_days: int = Config.registration_status_days) -> dict[str, Any]:
    """Erase everything about ``raw_email``; a queued registration of it is marked rejected
    (``erased``) in the results, kept ``status_days`` like every result."""
    try:
        email = checked_email(raw_email)
    except InvalidEmail as exc:
        raise Invalid("Validation failed.", {"email": [str(exc)]}) from exc
    keys = store.keys
    digest = email_hash(email)
    store.r.sadd(keys.erased, digest)  # first: from now on nothing mails this address
    lead_id = store.r.hget(keys.lead_by_email, email)
    contact_id = store.r.hget(keys.contact_by_email, email)
    source = (store.r.hget(keys.lead(lead_id), "source") or "web_form") if lead_id else None
    account_id = store.r.hget(keys.contact(contact_id), "account_id") if contact_id else None
    # the person's memberships from their own index (the person hash's ``lists`` field,
    # kept by every writer of list members): never a walk over every list
    memberships = {ref: (store.r.hget(keys.person(f"{ref}:{person_id}"), "lists") or "")
                   for ref, person_id in (("l", lead_id), ("c", contact_id)) if person_id}
    pipe = store.r.pipeline(transaction=True)
    for ref, person_id in (("l", lead_id), ("c", contact_id)):
        if not person_id:
            continue
        for list_id in filter(None, memberships[ref].split(",")):
            pipe.zrem(keys.list_members(list_id), person_id)
        pipe.delete(keys.person_events(f"{ref}:{person_id}"))
        pipe.delete(keys.consent_events(f"{ref}:{person_id}"))  # IPs and user agents too
        pipe.delete(keys.consent_resend(email))
    if lead_id:
        pipe.delete(keys.lead(lead_id))
        pipe.zrem(keys.leads, lead_id)
        for status in ("qualified", "disqualified"):
            pipe.zrem(keys.leads_by_status(status), lead_id)
        pipe.zrem(keys.lead_scores, lead_id)
        pipe.zrem(keys.lead_candidates, lead_id)
        pipe.hdel(keys.lead_by_email, email)
        # counted once: the same transaction removes the address a re-run would find it by
        pipe.hincrby(keys.leads_by_source, source, -1)
    if contact_id:
        pipe.delete(keys.contact(contact_id))
        pipe.zrem(keys.contacts, contact_id)
        pipe.hdel(keys.contact_by_email, email)
    pipe.hdel(keys.suppressed, email)
    pipe.hdel(keys.suppression_info, email)
    pipe.execute()
    if contact_id and account_id:
        from outreach.people.affiliation import unlink_contact

        unlink_contact(store, contact_id, account_id)
    # out of every segment (the person is gone: each re-evaluation finds nobody)
    membership.touch_many(store, [ref for ref in (lead_id and refs.lead_ref(lead_id),
                                                  contact_id and refs.contact_ref(contact_id)) if ref],
                          [membership.ANY])
    _unlink_opportunities(store, lead_id, contact_id)
    from outreach.platform import webhooks
    from outreach.sales import activities

    activities.erase_person_activities(store, lead_id, contact_id)
    # before person.erased is emitted: that event names the ids on purpose
    _scrub_webhook_deliveries(store, email, lead_id, contact_id)
    if lead_id or contact_id:
        webhooks.emit(store, "person.erased", {"email_sha256": digest, "lead_id": lead_id,
                                               "contact_id": contact_id})
    # journeys: enrollments and histories go; their hidden send campaigns are scrubbed too
    from outreach.journeys.enrollments import forget_person

    journey_campaigns = forget_person(store, [ref for ref in (
        lead_id and refs.lead_ref(lead_id), contact_id and refs.contact_ref(contact_id)) if ref])
    campaigns = _scrub_ledgers(store, email, digest, journey_campaigns)
    queued = _drop_queued_registrations(store, email, status_days * 86_400)
    return {"erased": bool(lead_id or contact_id or campaigns or queued), "lead_id": lead_id,
            "contact_id": contact_id, "campaigns_scrubbed": campaigns,
            "queued_registrations_dropped": queued}


def _unlink_opportunities(store: Store, lead_id: str | None, contact_id: str | None) -> None:
    """Opportunities are the company's records: they stay, without the person's ids."""
    keys = store.keys
    if lead_id:
        opp_id = store.r.hget(keys.opportunity_by_lead, lead_id)
        if opp_id:
            store.r.hset(keys.opportunity(opp_id), mapping={"lead_id": "", "contact_id": ""})
            store.r.hdel(keys.opportunity_by_lead, lead_id)


def _scrub_webhook_deliveries(store: Store, email: str, lead_id: str | None,
                              contact_id: str | None) -> int:
    """Webhook deliveries kept (up to 14 days) or still pending that name the person: their
    body is replaced by the event with ``data: {"erased": true}`` (a pending one then delivers
    that). Read a page at a time (SCAN over delivery keys; webhooks.py keeps no per-person
    index of deliveries)."""
    keys = store.keys
    needles = [json.dumps(email)[1:-1]]
    needles += [f'"{person_id}"' for person_id in (lead_id, contact_id) if person_id]
    scrubbed = 0
    pattern = keys.webhook_delivery("*")
    for key in store.r.scan_iter(match=pattern, count=1000, _type="HASH"):
        body = store.r.hget(key, "body")
        if not body or not any(n in body for n in needles):
            continue
        try:
            event = json.loads(body)
        except ValueError:
            event = {}
        redacted = {name: event[name] for name in ("id", "type", "created_at") if name in event}
        redacted["data"] = {"erased": True}
        store.r.hset(key, "body", json.dumps(redacted, separators=(",", ":"), sort_keys=True))
        scrubbed += 1
    return scrubbed


def _scrub_ledgers(store: Store, email: str, digest: str, hidden: list[str] | None = None) -> int:
    """``hidden``: campaigns outside the listing (a journey's sends) to scrub as well."""
    keys = store.keys
    scrubbed = 0
    for campaign_id in [*store.r.zrange(keys.campaigns, 0, -1), *(hidden or [])]:
        ledger = keys.campaign_ledger(campaign_id)
        value = store.r.hget(ledger, email)
        if value is None:
            continue
        state = value.split("|")[0]
        if state in ("q", "s"):
            state = "x"  # never send it now
            store.r.hincrby(keys.campaign(campaign_id), "suppressed", 1)
        pipe = store.r.pipeline(transaction=True)
        pipe.hdel(ledger, email)
        pipe.hset(ledger, f"erased:{digest[:16]}", f"{state}||")
        pipe.zrem(keys.campaign_sending(campaign_id), email)
        pipe.hdel(keys.campaign_errors(campaign_id), email)
        pipe.hdel(keys.campaign_soft(campaign_id), email)
        pipe.srem(keys.campaign_streak(campaign_id), email)
        pipe.hdel(keys.campaign_claims(campaign_id), email)
        for batch_no in store.r.hkeys(keys.campaign_batches(campaign_id)):
            pipe.lrem(keys.campaign_batch(campaign_id, batch_no), 0, email)
        pipe.execute()
        scrubbed += 1
    return scrubbed


STREAM_PAGE = 1000


def _stream_pages(store: Store) -> Any:
    """The intake stream's entries, read a page at a time (never the whole stream at once)."""
    page = STREAM_PAGE
    start = "-"
    while True:
        entries = store.r.xrange(store.keys.intake_stream, min=start, count=page)
        yield from entries
        if len(entries) < page:
            return
        last = entries[-1][0]
        ms, _, n = last.partition("-")
        start = f"{ms}-{int(n) + 1}"


def _drop_queued_registrations(store: Store, email: str, keep_seconds: int) -> int:
    keys = store.keys
    dropped = 0
    for entry_id, fields in _stream_pages(store):
        try:
            data = json.loads(fields.get("d", "{}"))
            same = checked_email(str(data.get("email", ""))) == email
        except (ValueError, InvalidEmail):
            continue
        if same:
            store.r.xack(keys.intake_stream, keys.ingest_group, entry_id)
            store.r.xdel(keys.intake_stream, entry_id)
            results = keys.registrations(entry_id)
            store.r.hset(results, entry_id, "x||erased")
            if store.r.ttl(results) < 0:  # a day's results hash must never outlive its time
                store.r.expire(results, keep_seconds)
            dropped += 1
    return dropped
