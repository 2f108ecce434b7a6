"""Consent and its evidence: double opt-in confirmation, withdrawal, the evidence trail.

A lead's or contact's ``consent`` field is '1' given, 'p' pending confirmation (double
opt-in), 'w' withdrawn (unsubscribed), '0'/absent none. Campaigns mail only '1'. Every
change keeps its evidence (when, how, asset, consent text version, IP, user agent) in a
per-person list (``Keys.consent_events``), written by the ingest script for registrations
and here for confirmations, withdrawals and edits.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from outreach.config import Config
from outreach.errors import NotFound
from outreach.mail import dkim
from outreach.mail.message import build_message
from outreach.mail.smtp.classify import PermanentFailure, SessionFailure
from outreach.normalize import email_hash
from outreach.people.suppressions import lift, liftable_by_consent
from outreach.platform import refs
from outreach.store import Store
from outreach.tokens import Tokens
from outreach.vocabulary import iso

HOWS = ("form", "import", "api", "console", "confirmation", "unsubscribe")
STATUSES = {"1": "given", "p": "pending", "w": "withdrawn"}
RESEND_SECONDS = 3600
log = logging.getLogger(__name__)


def consent_status(value: str | None) -> str:
    return STATUSES.get(value or "", "none")


def _ua_id(user_agent: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha1(user_agent.encode()).digest()[:9]).decode()


def evidence_entry(at: int, how: str, asset: str | None, version: int | None, ip: str | None,
                   user_agent: str | None, status: str) -> str:
    """One piece of evidence as stored: ``at|how|asset|version|ip|ua id|status``, then a
    newline and the user agent (the ingest script keeps user agents once, by id)."""
    ua = (user_agent or "").replace("\n", " ").replace("\r", " ")[:200]
    fields = (str(at), how, asset or "", "" if version is None else str(version),
              (ip or "").replace("|", ""), _ua_id(ua) if ua else "", status)
    return "|".join(f.replace("|", "") for f in fields) + ("\n" + ua if ua else "")


def record_event(store: Store, ref: str, *, how: str, status: str, asset: str | None = None,
                 text_version: int | None = None, ip: str | None = None,
                 user_agent: str | None = None, pipe: Any = None) -> None:
    """Append one piece of evidence to ``ref``'s trail (``l:<id>`` or ``c:<id>``)."""
    entry, _, ua = evidence_entry(int(time.time()), how, asset, text_version, ip, user_agent,
                                  status).partition("\n")
    target = pipe if pipe is not None else store.r.pipeline(transaction=True)
    if ua:
        target.hsetnx(store.keys.consent_user_agents, _ua_id(ua), ua)
    target.rpush(store.keys.consent_events(ref), entry)
    target.ltrim(store.keys.consent_events(ref), -50, -1)
    if pipe is None:
        target.execute()


def edited_consent(current: str | None, given: bool) -> str | None:
    """The value an explicit edit (API, console, import) turns the stored ``current`` into,
    or None when it changes nothing. Given: '1'. Not given: given or pending consent is
    withdrawn ('w'); none and withdrawn stay as they are (never silently '0')."""
    if given:
        return None if current == "1" else "1"
    return "w" if current in ("1", "p") else None


def withdraw_consent(store: Store, ref: str, *, how: str, current: str | None,
                     pipe: Any = None) -> bool:
    """An unsubscribe's withdrawal: consent becomes 'w' whatever it was, with its evidence,
    unless it is withdrawn already (a repeated unsubscribe records nothing). True when it
    changed; written on ``pipe`` when given (the caller executes it)."""
    if how not in HOWS:
        raise ValueError(f"unknown consent change {how!r}")
    if current == "w":
        return False
    _write(store, ref, "w", how=how, pipe=pipe)
    return True


def _people_of(store: Store, email: str
               ) -> tuple[str | None, str | None, list[tuple[str, str]]]:
    """Whoever has ``email``: ``(lead id, contact id, [(ref, key)] of each that exists)``."""
    keys = store.keys
    pipe = store.r.pipeline(transaction=False)
    pipe.hget(keys.lead_by_email, email)
    pipe.hget(keys.contact_by_email, email)
    lead_id, contact_id = pipe.execute()
    people = [(ref, keys.person(ref)) for ref in (lead_id and refs.lead_ref(lead_id),
                                                  contact_id and refs.contact_ref(contact_id))
              if ref]
    return lead_id, contact_id, people


def withdraw_consent_of(store: Store, email: str, *, how: str) -> tuple[str | None, str | None]:
    """``withdraw_consent`` for whoever has ``email`` (its lead and its contact), in one
    transaction; returns their ids ``(lead_id, contact_id)``."""
    lead_id, contact_id, people = _people_of(store, email)
    if people:
        read = store.r.pipeline(transaction=False)
        for _, key in people:
            read.hget(key, "consent")
        currents = read.execute()
        pipe = store.r.pipeline(transaction=True)
        for (ref, _), current in zip(people, currents, strict=True):
            withdraw_consent(store, ref, how=how, current=current, pipe=pipe)
        pipe.execute()
    return lead_id, contact_id


def change_consent(store: Store, ref: str, given: bool, *, how: str, current: str | None,
                   asset: str | None = None, text_version: int | None = None,
                   ip: str | None = None, user_agent: str | None = None,
                   pipe: Any = None) -> str | None:
    """The one way an edit changes a person's consent (``ref`` ``l:<id>`` or ``c:<id>``,
    whose stored value is ``current``): the new value and its evidence are written together
    (on ``pipe`` when given, which the caller executes), and only when the value changes.
    Returns the new value, or None when nothing changed."""
    if how not in HOWS:
        raise ValueError(f"unknown consent change {how!r}")
    value = edited_consent(current, given)
    if value is not None:
        _write(store, ref, value, how=how, pipe=pipe, asset=asset, text_version=text_version,
               ip=ip, user_agent=user_agent)
    return value


def _write(store: Store, ref: str, value: str, *, how: str, pipe: Any, **evidence: Any) -> None:
    """The person's consent ``value`` and its evidence, in one transaction (``pipe``'s,
    which its owner executes, or one of its own)."""
    key = store.keys.person(ref)
    target = pipe if pipe is not None else store.r.pipeline(transaction=True)
    target.hset(key, mapping={"consent": value, "updated_at": str(int(time.time()))})
    # with the change: the caller re-evaluates the person's segments and clears the mark;
    # the beat settles it when a crash came first (people/segments/dirty.py)
    target.sadd(store.keys.segment_dirty, ref)
    record_event(store, ref, how=how, status=STATUSES[value], pipe=target, **evidence)
    if pipe is None:
        target.execute()


def consent_items(store: Store, ref: str) -> list[dict[str, Any]]:
    """The evidence, oldest first: the person hash's ``ce`` (the first entry, kept there by the
    ingest script) and then the list."""
    person_key = store.keys.person(ref)
    pipe = store.r.pipeline(transaction=False)
    pipe.hget(person_key, "ce")
    pipe.lrange(store.keys.consent_events(ref), 0, -1)
    first, rest = pipe.execute()
    rows = [entry.split("|") for entry in ([first] if first else []) + rest]
    ua_ids = sorted({row[5] for row in rows if len(row) == 7 and row[5]})
    agents = dict(zip(ua_ids, store.r.hmget(store.keys.consent_user_agents, ua_ids),
                      strict=True)) if ua_ids else {}
    out = []
    for row in rows:
        if len(row) != 7:
            continue
        at, how, asset, version, ip, ua_id, status = row
        out.append({"at": iso(int(at)) if at.isdigit() else None, "how": how,
                    "asset": asset or None, "text_version": int(version) if version else None,
                    "ip": ip or None, "user_agent": agents.get(ua_id) if ua_id else None,
                    "status": status})
    return out


def lead_consent(store: Store, lead_id: str) -> dict[str, Any]:
    if not store.r.exists(store.keys.lead(lead_id)):
        raise NotFound(f"No lead {lead_id!r}.")
    return {"items": consent_items(store, refs.lead_ref(lead_id))}


def confirmation_url(config: Config, email: str, asset: str, version: int) -> str:
    token = Tokens(config.secret_key, config.secret_key_fallbacks).sign_confirmation([email, asset, version])
    return f"{config.base_url.rstrip('/')}/c/{token}"


@dataclass(frozen=True)
class Standing:
    """What decides whether an address may be mailed, read at once (``standing``):
    its suppression (the stored value), whether it was erased, and the consent of its lead
    and its contact (``None`` where it has none, or the field is absent)."""

    suppressed: str | None
    erased: bool
    lead: bool
    contact: bool
    lead_consent: str | None = None
    contact_consent: str | None = None

    @property
    def blocked(self) -> bool:
        """Suppressed or erased: nothing but what lifts it may be mailed."""
        return bool(self.suppressed) or self.erased

    @property
    def consent(self) -> str | None:
        """The consent of the person a registration lands on: the contact's if there is
        one, else the lead's."""
        return self.contact_consent if self.contact else self.lead_consent

    @property
    def may_be_mailed(self) -> bool:
        """Not blocked, and an address that is no one's, or someone's who gave consent."""
        if self.blocked:
            return False
        return not (self.lead or self.contact) or "1" in (self.lead_consent,
                                                           self.contact_consent)


def standing(store: Store, email: str) -> Standing:
    """``email``'s ``Standing``, in two round trips."""
    keys = store.keys
    pipe = store.r.pipeline(transaction=False)
    pipe.hget(keys.suppressed, email)
    pipe.sismember(keys.erased, email_hash(email))
    pipe.hget(keys.lead_by_email, email)
    pipe.hget(keys.contact_by_email, email)
    suppressed, erased, lead_id, contact_id = pipe.execute()
    people = [key for key in (lead_id and keys.lead(lead_id),
                              contact_id and keys.contact(contact_id)) if key]
    pipe = store.r.pipeline(transaction=False)
    for key in people:
        pipe.hget(key, "consent")
    consents = iter(pipe.execute())  # nothing asked: no round trip
    return Standing(suppressed, bool(erased), bool(lead_id), bool(contact_id),
                    next(consents) if lead_id else None,
                    next(consents) if contact_id else None)


def confirmation_not_needed(store: Store, email: str) -> str | None:
    """Why no confirmation should be mailed to ``email``: ``"suppressed"`` (unsubscribed,
    bounced, complained, erased...) or ``"given"`` (the person a registration lands on, the
    contact if there is one, else the lead, has given consent already); None: mail it.
    Read on the worker, so intake makes no extra round trip."""
    found = standing(store, email)
    if found.blocked:
        # an unsubscribed (or erased) person who asks again through a double opt-in form
        # (pending) gets the link: their confirmation lifts the suppression; nothing else does
        # (pending, or given again by a form post since: the form cannot lift it, the link can)
        if found.consent in ("p", "1") and liftable_by_consent(found.suppressed, found.erased):
            return None
        return "suppressed"
    if found.consent == "1":
        return "given"
    return None


def send_confirmation(store: Store, config: Config, messenger: Any, email: str, asset: str,
                      version: int) -> bool:
    """Mail the double opt-in link, at most once per hour per address, and only when it is
    needed (``confirmation_not_needed``). True when sent; False too when the relay refused
    it for good (logged once); a transient failure raises (the task retries it)."""
    reason = confirmation_not_needed(store, email)
    if reason is not None:
        log.info("no confirmation mailed for %s to an address at %s: %s", asset,
                 email.rpartition("@")[2],
                 "consent already given" if reason == "given" else "the address is suppressed")
        return False
    if not store.r.set(store.keys.consent_resend(email), "1", nx=True, ex=RESEND_SECONDS):
        return False
    from outreach.people.assets import get_asset

    try:
        title = get_asset(store, asset)["title"]
    except NotFound:
        title = asset
    url = confirmation_url(config, email, asset, version)
    text = (f"Please confirm that you want to hear from us about {title}.\n\n"
            f"Confirm: {url}\n\nIf this was not you, ignore this message: without your "
            "confirmation we will not send you marketing email.\n")
    from html import escape

    html = (f"<p>Please confirm that you want to hear from us about {escape(title)}.</p>"
            f'<p><a href="{escape(url, quote=True)}">Confirm my subscription</a></p>'
            "<p>If this was not you, ignore this message: without your confirmation we will not "
            "send you marketing email.</p>")
    # transactional, not a list's: no List-Unsubscribe (a mail client's RFC 8058 one-click
    # POST to the confirmation URL would otherwise be taken as the person's click)
    msg = build_message(from_email=config.from_email, to_email=email,
                        subject=f"Please confirm: {title}", text=text, html=html,
                        unsubscribe_url=None, unsubscribe_mailto=None, campaign_id="consent",
                        dkim=dkim.from_config(config))
    try:
        messenger.send(msg, config.from_email, email)
    except (PermanentFailure, SessionFailure) as exc:
        if isinstance(exc, SessionFailure) and not exc.fatal:
            store.r.delete(store.keys.consent_resend(email))  # a transient one is retried
            raise
        # a permanent refusal (5.x.x, an address the relay cannot carry): trying again
        # changes nothing, so it is logged once and not retried. The recipient's refusal
        # keeps the hour's resend mark; the relay's (sender settings) lets the next
        # registration try again once an operator fixed it.
        if isinstance(exc, SessionFailure):
            store.r.delete(store.keys.consent_resend(email))
        log.warning("confirmation for %s to an address at %s refused for good, not retried: %s",
                    asset, email.rpartition("@")[2], exc.reply)
        return False
    except Exception:
        store.r.delete(store.keys.consent_resend(email))  # a failed send may be retried
        raise
    return True


def read_confirmation(config: Config, token: str) -> tuple[dict[str, Any] | None, str]:
    """The confirmation a token carries, or ``(None, "expired"|"invalid")``."""
    payload, state = Tokens(config.secret_key, config.secret_key_fallbacks).read_confirmation(
        token, max_age=config.consent_token_days * 86_400)
    if payload is None or len(payload) != 3:
        return None, state if payload is None else "invalid"
    email, asset, version = payload
    return {"email": email, "asset": asset, "version": version}, "ok"


def confirm(store: Store, config: Config, token: str, ip: str | None,
            user_agent: str | None) -> tuple[dict[str, Any] | None, str]:
    """Give the consent a confirmation link stands for. ``(what, "ok")`` or the reason.

    A link clicked before its registration was ingested (nobody has the address yet) is
    recorded and applied when the registration is (``apply_early_confirmations``)."""
    found, state = read_confirmation(config, token)
    if found is None:
        return None, state
    email = found["email"]
    proof = {"asset": found["asset"], "version": found["version"], "ip": ip,
             "ua": (user_agent or "")[:200], "at": int(time.time())}
    if not _apply_confirmation(store, email, proof):
        keys = store.keys
        pipe = store.r.pipeline(transaction=True)
        pipe.set(keys.early_confirmation(email), json.dumps(proof),
                 ex=max(1, config.consent_token_days) * 86_400)
        pipe.zadd(keys.early_confirmations,
                  {email: proof["at"] + max(1, config.consent_token_days) * 86_400})
        pipe.execute()
    return found, "ok"


def _apply_confirmation(store: Store, email: str, proof: dict[str, Any]) -> bool:
    """Pending consent becomes given, with the confirmation as its evidence, and the
    suppression a confirmed opt-in outweighs (an unsubscribe, an erasure) is lifted through
    the one writer of suppressions. False when nobody has the address (yet)."""
    lead_id, contact_id, people = _people_of(store, email)
    if not people:
        return False
    states = [store.r.hget(key, "consent") for _, key in people]
    # withdrawn since (an old link): stays withdrawn. Pending, or given again by a form post
    # since the withdrawal: the confirmed opt-in lifts what it outweighs (an unsubscribe, an
    # erasure), through the one writer of suppressions
    lifted = lift(store, email) if any(c != "w" for c in states) else None
    pipe = store.r.pipeline(transaction=True)
    now = str(int(time.time()))
    for (ref, key), current in zip(people, states, strict=True):
        if current == "w" or (current == "1" and not lifted):
            continue  # confirmed before: nothing changes
        pipe.hset(key, mapping={"consent": "1", "updated_at": now})
        pipe.sadd(store.keys.segment_dirty, ref)  # cleared once re-evaluated (segments/dirty.py)
        record_event(store, ref, how="confirmation", status="given", asset=proof["asset"],
                     text_version=proof["version"], ip=proof["ip"], user_agent=proof["ua"],
                     pipe=pipe)
    pipe.execute()
    # imported here: segments read consent_status from this module
    from outreach.people.segments import dirty

    dirty.touch_many(store, [ref for ref, _ in people], {"field:consent", "field:updated_at"})
    return True


def apply_early_confirmations(store: Store, emails: list[str]) -> None:
    """At ingest: the confirmations clicked before these addresses' registrations arrived."""
    keys = store.keys
    if not emails:
        return
    early = [e for e, hit in zip(emails, store.r.zmscore(keys.early_confirmations, emails),
                                 strict=True) if hit is not None]
    if early:  # the lapsed ones go (bounded: a link is good for consent_token_days)
        store.r.zremrangebyscore(keys.early_confirmations, "-inf", int(time.time()))
    for email in dict.fromkeys(early):
        raw = store.r.get(keys.early_confirmation(email))
        try:
            proof = json.loads(raw) if raw else None
        except ValueError:
            proof = None
        if proof is None or _apply_confirmation(store, email, proof):
            pipe = store.r.pipeline(transaction=True)
            pipe.delete(keys.early_confirmation(email))
            pipe.zrem(keys.early_confirmations, email)
            pipe.execute()
