"""Erasing a person (GDPR right to erasure) while making sure they are never mailed again.

Everything held about the address goes: lead, contact, list memberships, events,
registrations still queued, and the address in campaign ledgers (replaced by its
hash so campaign counts stay right). What stays is a SHA-256 of the address in
the erased set, which every audience and every send checks.
Each step is idempotent, so an interrupted erasure is completed by running it again.
"""

from __future__ import annotations

import json
from typing import Any

from outreach.config import Config
from outreach.errors import Invalid
from outreach.normalize import InvalidEmail, checked_email, email_hash
from outreach.people.segments import membership
from outreach.platform import refs
from outreach.store import Store


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
    list_ids = store.r.zrange(keys.lists, 0, -1)
    source = (store.r.hget(keys.lead(lead_id), "source") or "web_form") if lead_id else None
    pipe = store.r.pipeline(transaction=True)
    for ref, person_id in (("l", lead_id), ("c", contact_id)):
        if not person_id:
            continue
        for list_id in list_ids:
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
    # out of every segment (the person is gone: each re-evaluation finds nobody)
    membership.touch_many(store, [ref for ref in (lead_id and refs.lead_ref(lead_id),
                                                  contact_id and refs.contact_ref(contact_id)) if ref],
                          [membership.ANY])
    _unlink_opportunities(store, lead_id, contact_id)
    from outreach.platform import webhooks
    from outreach.sales import activities

    activities.erase_person_activities(store, lead_id, contact_id)
    if lead_id or contact_id:
        webhooks.emit(store, "person.erased", {"email_sha256": digest, "lead_id": lead_id,
                                               "contact_id": contact_id})
    campaigns = _scrub_ledgers(store, email, digest)
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


def _scrub_ledgers(store: Store, email: str, digest: str) -> int:
    keys = store.keys
    scrubbed = 0
    for campaign_id in store.r.zrange(keys.campaigns, 0, -1):
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


def _drop_queued_registrations(store: Store, email: str, keep_seconds: int) -> int:
    keys = store.keys
    dropped = 0
    for entry_id, fields in store.r.xrange(keys.intake_stream, count=None):
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
