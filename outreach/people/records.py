"""Leads and contacts: reading, editing, creating contacts by email (finding leads by
search is ``search``'s job)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from outreach.errors import Conflict, Invalid
from outreach.normalize import InvalidEmail, checked_email
from outreach.people.affiliation import link_contact
from outreach.people.consent import change_consent, consent_status
from outreach.people.scoring import NO_DECAY, Decay, decay_of
from outreach.people.segments import dirty, membership
from outreach.platform import refs
from outreach.platform.paging import existing_hash, load_hashes, page
from outreach.store import Store
from outreach.vocabulary import PROFILE_FIELDS, iso

LEAD_STATUSES = ("new", "qualified", "disqualified")
EDITABLE_FIELDS = tuple(f for f in PROFILE_FIELDS if not f.startswith("utm_"))


_KIND_CODES = {"w": "white_paper", "e": "event"}


def registrations_of(history: str | None, slugs: Mapping[str, str]) -> list[dict[str, str]]:
    """A stored history as API objects. Entries are ``w<n>:<base36 epoch>`` (kind code and
    the asset's lead list ``ls<n>``, whose slug ``slugs`` holds: see ``asset_slugs``);
    older ones ``w:<asset>:<base36 epoch>`` and ``white_paper:<asset>:<epoch>``."""
    out = []
    for entry in (history or "").split(";"):
        if not entry:
            continue
        parts = entry.split(":")
        if len(parts) == 2:
            asset_code, at = parts
            kind = _KIND_CODES.get(asset_code[:1], asset_code[:1])
            list_id = "ls" + asset_code[1:]
            out.append({"kind": kind, "asset": slugs.get(list_id, list_id), "at": iso(int(at, 36))})
        else:
            code, asset, at = parts
            when = int(at) if code in _KIND_CODES.values() else int(at, 36)
            out.append({"kind": _KIND_CODES.get(code, code), "asset": asset, "at": iso(when)})
    return out


def asset_slugs(store: Store, histories: Iterable[str | None]) -> dict[str, str]:
    """The asset slug of every lead list that ``histories`` name, in one round trip."""
    list_ids = sorted({
        "ls" + entry.split(":", 1)[0][1:]
        for history in histories if history
        for entry in history.split(";") if entry.count(":") == 1
    })
    if not list_ids:
        return {}
    pipe = store.r.pipeline(transaction=False)
    for list_id in list_ids:
        pipe.hget(store.keys.list(list_id), "slug")
    return {list_id: slug for list_id, slug in zip(list_ids, pipe.execute(), strict=True) if slug}


def lead_view(lead_id: str, h: dict[str, str], slugs: Mapping[str, str],
              decay: Decay = NO_DECAY, now: float | None = None) -> dict[str, Any]:
    """``decay``: the stored score decay (``scoring.decay_of``); ``score`` is the lead's
    current, decayed score, rounded."""
    view: dict[str, Any] = {"id": lead_id, "email": h.get("email")}
    for name in EDITABLE_FIELDS:
        view[name] = h.get(name)
    view.update(
        consent=h.get("consent") == "1",
        consent_status=consent_status(h.get("consent")),
        source=h.get("source") or "web_form",
        latest_source=h.get("latest_source") or h.get("source") or "web_form",
        referred_by=h.get("referred_by"),
        status=h.get("status", "new"),
        disqualify_reason=h.get("disqualify_reason"),
        disqualify_note=h.get("disqualify_note"),
        score=decay.rounded(float(h.get("score") or 0), time.time() if now is None else now),
        registrations=registrations_of(h.get("regs"), slugs),
        contact_id=h.get("contact_id"),
        opportunity_id=h.get("opportunity_id"),
        owner=h.get("owner") or None,
        created_at=iso(h.get("created_at")),
        updated_at=iso(h.get("updated_at") or h.get("created_at")),
    )
    return view


def contact_view(contact_id: str, h: dict[str, str], slugs: Mapping[str, str],
                 decay: Decay = NO_DECAY) -> dict[str, Any]:
    """``decay``: unused (a contact has no score); the signature of ``lead_view``."""
    view: dict[str, Any] = {"id": contact_id, "email": h.get("email")}
    for name in EDITABLE_FIELDS:
        view[name] = h.get(name)
    view.update(
        consent=h.get("consent") == "1",
        consent_status=consent_status(h.get("consent")),
        account_id=h.get("account_id"),
        lead_id=h.get("lead_id"),
        owner=h.get("owner") or None,
        registrations=registrations_of(h.get("regs"), slugs),
        created_at=iso(h.get("created_at")),
        updated_at=iso(h.get("updated_at") or h.get("created_at")),
    )
    return view


def load_leads(store: Store, ids: list[str]) -> list[dict[str, str]]:
    return load_hashes(store, store.keys.lead, ids)


def load_contacts(store: Store, ids: list[str]) -> list[dict[str, str]]:
    return load_hashes(store, store.keys.contact, ids)


_VIEWS = {"lead": lead_view, "contact": contact_view}


def _one(store: Store, kind: str, person_id: str) -> dict[str, Any]:
    """A lead or contact (``kind``) as the API shows it; 404 when there is none."""
    key = store.keys.lead(person_id) if kind == "lead" else store.keys.contact(person_id)
    h = existing_hash(store, key, kind, person_id)
    return _VIEWS[kind](person_id, h, asset_slugs(store, [h.get("regs")]), decay_of(store))


def _views(store: Store, kind: str, ids: list[str],
           keep: Callable[[dict[str, str]], bool]) -> list[dict[str, Any] | None]:
    """A page's leads or contacts (``kind``) as the API shows them, ``None`` where one is
    gone or ``keep`` leaves it out (a page's filter)."""
    rows = load_hashes(store, store.keys.lead if kind == "lead" else store.keys.contact, ids)
    slugs = asset_slugs(store, [h.get("regs") for h in rows if h])
    decay = decay_of(store)
    return [_VIEWS[kind](person_id, h, slugs, decay) if h and keep(h) else None
            for person_id, h in zip(ids, rows, strict=True)]


def get_lead(store: Store, lead_id: str) -> dict[str, Any]:
    return _one(store, "lead", lead_id)


def find_leads(
    store: Store,
    *,
    limit: int = 50,
    cursor: str | None = None,
    list_id: str | None = None,
    status: str | None = None,
    email: str | None = None,
    newest_first: bool = False,
) -> dict[str, Any]:
    keys = store.keys
    if email:
        lead_id = store.r.hget(keys.lead_by_email, _normal_or_none(email) or "")
        if not lead_id:
            return {"items": [], "next_cursor": None}
        lead = get_lead(store, lead_id)
        if (status and lead["status"] != status) or (
            list_id and store.r.zscore(keys.list_members(list_id), lead_id) is None
        ):
            return {"items": [], "next_cursor": None}
        return {"items": [lead], "next_cursor": None}
    if list_id:
        meta = existing_hash(store, keys.list(list_id), "list", list_id)
        if meta.get("member_type") != "lead":
            return {"items": [], "next_cursor": None}
        source = keys.list_members(list_id)
    elif status in ("qualified", "disqualified"):
        source = keys.leads_by_status(status)
    else:
        source = keys.leads

    def load(ids: list[str]) -> list[dict[str, Any] | None]:
        return _views(store, "lead", ids, lambda h: not status or h.get("status", "new") == status)

    return page(store, source, limit, cursor, load, newest_first)


def update_lead(store: Store, lead_id: str, changes: dict[str, Any], *, how: str = "api",
                ip: str | None = None, user_agent: str | None = None) -> dict[str, Any]:
    """Edit a lead's profile. Empty strings clear a field here (an explicit edit). A
    ``consent`` change goes through ``consent.change_consent`` with its evidence (``how``,
    ``ip``, ``user_agent``)."""
    keys = store.keys
    key = keys.lead(lead_id)
    current = existing_hash(store, key, "lead", lead_id)
    to_set, to_clear = _profile_edits(changes)
    new_email = changes.get("email")
    pipe = store.r.pipeline(transaction=True)
    if changes.get("consent") is not None:
        change_consent(store, refs.lead_ref(lead_id), bool(changes["consent"]), how=how,
                       current=current.get("consent"), ip=ip, user_agent=user_agent, pipe=pipe)
    if new_email and new_email != current.get("email"):
        if not store.r.hsetnx(keys.lead_by_email, new_email, lead_id):
            raise Conflict(f"Another lead already has the address {new_email}.")
        pipe.hdel(keys.lead_by_email, current["email"])
        to_set["email"] = new_email
        # the spelling shown in To: belongs to the address it spells: a new address never
        # keeps the old one's (the new recipient would see the old address)
        if changes.get("email_given"):
            to_set["email_given"] = changes["email_given"]
        else:
            to_clear.append("email_given")
    consent = {"field:consent"} if changes.get("consent") is not None else set()
    _write_profile(store, pipe, refs.lead_ref(lead_id), key, to_set, to_clear, consent)
    return get_lead(store, lead_id)


def update_contact(store: Store, contact_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Edit a contact's profile (``EDITABLE_FIELDS``; an empty value clears a field, as in
    ``update_lead``)."""
    key = store.keys.contact(contact_id)
    existing_hash(store, key, "contact", contact_id)
    to_set, to_clear = _profile_edits(changes)
    if to_set or to_clear:
        _write_profile(store, store.r.pipeline(transaction=True), refs.contact_ref(contact_id),
                       key, to_set, to_clear)
    return get_contact(store, contact_id)


def _profile_edits(changes: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The ``EDITABLE_FIELDS`` of ``changes`` to set, and those to clear (an empty value)."""
    to_set: dict[str, str] = {}
    to_clear: list[str] = []
    for name in EDITABLE_FIELDS:
        if name in changes:
            value = (changes[name] or "").strip()
            if value:
                to_set[name] = value
            else:
                to_clear.append(name)
    return to_set, to_clear


def _write_profile(store: Store, pipe: Any, ref: str, key: str, to_set: dict[str, str],
                   to_clear: list[str], also_changed: set[str] | None = None) -> None:
    """Write a profile edit on ``pipe`` (a transaction that may hold more) with the person's
    segment mark, then re-evaluate the segments that read what changed (``dirty.touch``:
    a crash between the two leaves the mark for the beat)."""
    to_set["updated_at"] = str(int(time.time()))
    pipe.hset(key, mapping=to_set)
    if to_clear:
        pipe.hdel(key, *to_clear)
    dirty.mark(pipe, store, [ref])
    pipe.execute()
    changed = {f"field:{name}" for name in (*to_set, *to_clear)} | (also_changed or set())
    dirty.touch(store, ref, changed)


def get_contact(store: Store, contact_id: str) -> dict[str, Any]:
    return _one(store, "contact", contact_id)


def find_contacts(
    store: Store,
    *,
    limit: int = 50,
    cursor: str | None = None,
    email: str | None = None,
    account_id: str | None = None,
) -> dict[str, Any]:
    keys = store.keys
    if email:
        contact_id = store.r.hget(keys.contact_by_email, _normal_or_none(email) or "")
        items = [get_contact(store, contact_id)] if contact_id else []
        return {"items": items, "next_cursor": None}

    def load(ids: list[str]) -> list[dict[str, Any] | None]:
        return _views(store, "contact", ids,
                      lambda h: not account_id or h.get("account_id") == account_id)

    # an account's contacts come from its own index (people/affiliation keeps it), never
    # from a walk of every contact
    source = keys.account_contacts(account_id) if account_id else keys.contacts
    return page(store, source, limit, cursor, load)


def upsert_contact(store: Store, data: dict[str, Any], *, how: str = "api",
                   asset: str | None = None, ip: str | None = None,
                   user_agent: str | None = None) -> tuple[dict[str, Any], bool]:
    """Create the contact for ``data['email']`` or update it. Returns (contact, created).
    A ``consent`` change goes through ``consent.change_consent`` with its evidence."""
    keys = store.keys
    email = data["email"]
    account_id = data.get("account_id")
    if account_id and not store.r.exists(keys.account(account_id)):
        raise Invalid("Validation failed.", {"account_id": ["No such account."]})
    contact_id = store.r.hget(keys.contact_by_email, email)
    created = False
    now = str(int(time.time()))
    if not contact_id:
        new_id, n = store.next_id("contact", "ct")
        if store.r.hsetnx(keys.contact_by_email, email, new_id):
            contact_id, created = new_id, True
            pipe = store.r.pipeline(transaction=True)
            pipe.hset(keys.contact(contact_id), mapping={"email": email, "created_at": now,
                                                         "consent": "0"})
            pipe.zadd(keys.contacts, {contact_id: n})
            dirty.mark(pipe, store, [refs.contact_ref(contact_id)])
            pipe.execute()
        else:
            contact_id = store.r.hget(keys.contact_by_email, email)
    # as in ingest, a blank value never erases: "   " is as empty as ""
    fields = {name: data[name].strip() for name in EDITABLE_FIELDS
              if data.get(name) and data[name].strip()}
    if account_id:
        fields["account_id"] = account_id
    fields["updated_at"] = now
    previous, consent = store.r.hmget(keys.contact(contact_id), "account_id", "consent")
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(keys.contact(contact_id), mapping=fields)
    dirty.mark(pipe, store, [refs.contact_ref(contact_id)])
    if data.get("consent") is not None:
        change_consent(store, refs.contact_ref(contact_id), bool(data["consent"]), how=how, current=consent,
                       asset=asset, ip=ip, user_agent=user_agent, pipe=pipe)
    pipe.execute()
    if account_id and previous != account_id:
        link_contact(store, contact_id, account_id, previous)
    dirty.touch(store, refs.contact_ref(contact_id), [membership.ANY])
    return get_contact(store, contact_id), created


def _normal_or_none(email: str) -> str | None:
    try:
        return checked_email(email)
    except InvalidEmail:
        return None


def person_events(store: Store, ref: str, limit: int = 50) -> list[dict[str, Any]]:
    """A person's recent tracking events, newest first: ``{"type": "open"|"click"|...,
    "campaign_id", "at", "detail"}``. ``ref`` is ``l:<lead id>`` or ``c:<contact id>``."""
    out = []
    for entry in store.r.lrange(store.keys.person_events(ref), 0, limit - 1):
        parts = entry.split("|")
        if len(parts) < 3:
            continue
        kind, campaign_id, at = parts[0], parts[1], parts[2]
        out.append({"type": kind, "campaign_id": campaign_id or None,
                    "at": iso(int(at)) if at.isdigit() else None,
                    "detail": "|".join(parts[3:]) or None})
    return out
