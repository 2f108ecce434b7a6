"""Draining the intake stream into leads, contacts and the assets' lists.

Delivery is at-least-once (a Redis consumer group; entries are acknowledged by the
same Lua call that applies them) and processing is idempotent (a registration
already applied is skipped), so a crash at any point loses nothing and applies
nothing twice. Entries left pending by a dead worker are taken over after
``ingest_claim_idle_ms``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from outreach.config import Config
from outreach.normalize import InvalidEmail, checked_email
from outreach.people.segments import membership
from outreach.platform import webhooks
from outreach.store import Store
from outreach.vocabulary import ASSET_PATTERN, KINDS, PROFILE_FIELDS, SOURCES

log = logging.getLogger(__name__)
_ASSET = re.compile(ASSET_PATTERN)
# one Lua call gets every field of a batch as arguments: keep batches moderate
MAX_BATCH = 2000


@dataclass
class DrainResult:
    processed: int = 0
    more: bool = False  # stopped on the time budget with entries left
    recheck_in: float = 0.0  # entries pending at another consumer: look again after this


# what settles the people a batch changed for the saved segments: ``settle_touched`` here,
# or the ingest task's hand-over to another worker process (``tasks/ingest.py``)
Settler = Callable[[Store, list[str]], Any]

SETTLE_CHUNK = 1000  # people a hand-over to ``settle`` names (one task each)
SETTLE_AFTER = 5.0  # seconds a drain that keeps finding entries holds its people at most
SETTLE_HOLD = 100_000  # people a drain holds at most (~300 bytes of memory each)


class Unsettled:
    """The people a drain's batches changed, held until the stream is empty (or for
    ``SETTLE_AFTER`` seconds, or ``SETTLE_HOLD`` people), then handed to ``settle`` in
    chunks of ``SETTLE_CHUNK`` people.

    Settling competes with applying for Redis's one thread and the worker's cores: during a
    burst, the registrations reach their lists (what campaigns, confirmations and exports
    read) first and the segments follow in bigger batches, which several worker processes
    settle side by side; at a steady rate the stream is empty after every read, so nothing
    waits. The ingest script marked each person dirty: a drain killed while holding them
    leaves them to the beat (``membership.tick``)."""

    def __init__(self, store: Store, settle: Settler | None) -> None:
        self.store = store
        self.settle: Settler = settle or settle_touched
        # ref -> what changed, the tokens of every report of theirs joined (repeats are
        # harmless: ``settle_touched`` makes a set); strings only, which the cyclic garbage
        # collector does not walk however many people are held
        self.changed: dict[str, str] = {}
        self.since = 0.0

    def add(self, _store: Store, reported: list[str]) -> None:
        """A ``Settler``: hold what a batch reported (``'<ref>\\t<what changed>'``)."""
        if not self.changed:
            self.since = time.monotonic()
        changed = self.changed
        for entry in reported:
            ref, tokens = _parse_reported(entry)
            held = changed.get(ref)
            if held is not None:
                tokens = f"{held} {tokens}"
                if len(tokens) > 1000:  # a person registering again and again: once each
                    tokens = " ".join(sorted(set(tokens.split())))
            changed[ref] = tokens

    def due(self) -> bool:
        return bool(self.changed) and (len(self.changed) >= SETTLE_HOLD
                                       or time.monotonic() - self.since >= SETTLE_AFTER)

    def hand_over(self) -> None:
        """Everyone held, a person once (with all that changed about them), to ``settle``."""
        held = [f"{ref}\t{tokens}" for ref, tokens in self.changed.items()]
        self.changed = {}
        for start in range(0, len(held), SETTLE_CHUNK):
            self.settle(self.store, held[start:start + SETTLE_CHUNK])


def drain(store: Store, config: Config, consumer: str, time_budget: float = 20.0,
          settle: Settler | None = None) -> DrainResult:
    """Apply queued registrations until the stream is empty or the budget is spent;
    ``settle``: how the people the batches changed are settled (``Unsettled``)."""
    store.ensure_ingest_group()
    keys = store.keys
    result = DrainResult()
    deadline = time.monotonic() + time_budget
    unsettled = Unsettled(store, settle)  # a failure below leaves its people to the beat
    result.processed += _take_over_stale(store, config, consumer, unsettled.add)
    while True:
        if time.monotonic() > deadline:
            result.more = True
            break
        batch = store.r.xreadgroup(
            keys.ingest_group, consumer, {keys.intake_stream: ">"},
            count=min(config.ingest_batch_size, MAX_BATCH),
        )
        entries = batch[0][1] if batch else []
        if not entries:
            break
        result.processed += apply_batch(store, config, entries, unsettled.add)
        if unsettled.due():
            unsettled.hand_over()
    unsettled.hand_over()
    if result.more:
        return result
    pending = store.r.xpending(keys.intake_stream, keys.ingest_group)
    if pending and pending.get("pending"):
        result.recheck_in = config.ingest_claim_idle_ms / 1000.0
    return result


def _take_over_stale(store: Store, config: Config, consumer: str, settle: Settler) -> int:
    keys = store.keys
    processed = 0
    start = "0-0"
    while True:
        reply = store.r.xautoclaim(
            keys.intake_stream,
            keys.ingest_group,
            consumer,
            min_idle_time=config.ingest_claim_idle_ms,
            start_id=start,
            count=min(config.ingest_batch_size, MAX_BATCH),
        )
        start, entries = reply[0], reply[1]
        entries = [e for e in entries if e[1] is not None]
        if entries:
            log.info("taking over %d registrations left pending by another worker", len(entries))
            processed += apply_batch(store, config, entries, settle)
        if start == "0-0" or not entries:
            return processed


def apply_batch(store: Store, config: Config, entries: list[tuple[str, dict[str, str]]],
                settle: Settler | None = None) -> int:
    """Apply stream entries in one atomic, idempotent Lua call. Returns how many were acked.

    While any webhook exists the script also names the leads it created (it looks itself: no
    extra round trip), and when one wants ``lead.created`` each of them gets its event once
    (a redelivered entry creates nothing). While any segment is saved it also names every
    person it changed, marked dirty in the same script, and they are re-evaluated for the
    segments by ``settle`` (default ``settle_touched``, here and now; ``drain`` holds them
    in ``Unsettled`` until the stream is empty; none saved: no extra round trip).
    """
    records = [_record(entry_id, fields) for entry_id, fields in entries]
    emails = [record[1] for record in records]
    reply = store.run("ingest", args=_script_args(store, config, records, "stream"))
    from outreach.people.consent import apply_early_confirmations

    apply_early_confirmations(store, [email for email in emails if email])
    if not isinstance(reply, list):
        return int(reply)
    created = int(reply[1])
    if created:
        announce_created(store, reply[2:2 + created])
    touched = reply[2 + created:]
    if touched:
        (settle or settle_touched)(store, touched)
    return int(reply[0])


def settle_touched(store: Store, reported: list[str]) -> int:
    """Re-evaluate the people the ingest script reported (``'<ref>\\t<what changed>'``; a
    person reported more than once, by several registrations of the batch, for all of it)
    for the segments that read what changed, all at once, and clear their dirty marks
    (their marks, left by a crash, are the beat's: ``membership.tick``)."""
    changed: dict[str, set[str]] = {}
    for entry in reported:
        ref, tokens = _parse_reported(entry)
        changed.setdefault(ref, set()).update(tokens.split())
    # '*' from the script: a person it created (no due entries yet)
    created = [ref for ref, tokens in changed.items() if membership.ANY in tokens]
    return membership.settle(store, list(changed), changed=changed, created=created)


def _parse_reported(entry: str) -> tuple[str, str]:
    """``'<ref>\\t<what changed>'`` as (ref, the space-separated tokens); nothing named:
    anything about them (``membership.ANY``)."""
    ref, _, tokens = entry.partition("\t")
    return ref, tokens or membership.ANY


def announce_created(store: Store, lead_ids: list[str] | None = None) -> int:
    """``lead.created`` for each new lead, ``data`` ``{"lead": <as GET /api/v1/leads/<id>>}``,
    when some webhook wants it. The ingest script records each created lead in the event's
    outbox in its own transaction; this turns the outbox into deliveries, exactly once (the
    webhooks tick does too, after a drain that died in between). ``lead_ids`` is unused
    (what the script returned): the outbox is the record."""
    return webhooks.flush_outbox(store, "lead.created", render_created)


def render_created(store: Store, lead_ids: list[str]) -> list[dict[str, Any] | None]:
    from outreach.people.records import asset_slugs, lead_view, load_leads
    from outreach.people.scoring import decay_of

    rows = load_leads(store, lead_ids)
    slugs = asset_slugs(store, [h.get("regs") for h in rows if h])
    decay = decay_of(store)
    return [{"lead": lead_view(lead_id, h, slugs, decay)} if h else None
            for lead_id, h in zip(lead_ids, rows, strict=True)]


def apply_rows(store: Store, config: Config, rows: list[dict[str, Any]], *,
               contacts: bool = False) -> list[tuple[str, str]]:
    """Apply validated registrations (``RegistrationIn`` output, e.g. CSV rows) in one call of
    the same ingest script, without the stream: the same dedup, merge rules and lists.
    ``contacts``: the rows are contacts (the contacts import): an address no contact has
    becomes a new contact, never a lead.

    Returns one ``(outcome, person)`` per row: outcome ``created``, ``updated``,
    ``unchanged`` or ``rejected`` (person: ``l:<lead id>``/``c:<contact id>``, or the reason).
    A repeat of a registration already in the person's history only writes changed fields.
    """
    if not rows:
        return []
    now = int(time.time())
    # already validated and normalised by the intake schema: no JSON round trip
    records = [_flat_record("0-0", data["email"], data["kind"], data["asset"], now,
                            registration_payload(data, now), trusted=True) for data in rows]
    reply = store.run("ingest", args=_script_args(store, config, records,
                                                  "contacts" if contacts else "import"))
    segments_saved = len(reply) % 2 == 1  # the script appends 's' while any segment is saved
    if segments_saved:
        reply = reply[:-1]
    names = {"c": "created", "u": "updated", "n": "unchanged", "x": "rejected"}
    reported = [(names[reply[i]], reply[i + 1]) for i in range(0, len(reply), 2)]
    # while segments are saved a person comes with what changed: '<ref>\t<tokens>'
    outcomes = [(outcome, person.partition("\t")[0] if outcome != "rejected" else person)
                for outcome, person in reported]
    if segments_saved:
        settle_touched(store, [person for outcome, person in reported
                               if outcome in ("created", "updated")])
    if any(outcome == "created" and person.startswith("l:") for outcome, person in outcomes):
        announce_created(store)
    return outcomes


def registration_payload(data: dict[str, Any], at: int) -> dict[str, Any]:
    """What the intake stream holds for a validated registration (and what ``_record`` reads)."""
    payload: dict[str, Any] = {"kind": data["kind"], "asset": data["asset"], "email": data["email"],
                               "at": at}
    if data.get("consent"):
        payload["consent"] = data["consent"] if data["consent"] == "p" else 1
    if data.get("referred_by"):
        payload["referred_by"] = data["referred_by"]
        payload["source"] = data.get("source") or "referral"
    elif data.get("source") and data["source"] != "web_form":
        payload["source"] = data["source"]
    for name in PROFILE_FIELDS:
        value = data.get(name)
        if value and value.strip():
            payload[name] = value.strip()
    if payload.get("consent") and data.get("evidence"):
        payload["ev"] = data["evidence"]  # {how, v (text version), ip, ua}
    if data.get("email_given"):
        payload["email_given"] = data["email_given"]
    return payload


def _script_args(store: Store, config: Config, records: list[list[Any]], mode: str
                 ) -> list[Any]:
    """``ingest.lua``'s arguments: the settings, then the records as one JSON argument
    (redis-py packs each argument on its own, in Python: one string for the batch costs
    less than twenty a registration, and the script decodes it in C)."""
    from outreach.people.scoring import ensure_decay

    ensure_decay(store, config)  # the script scales gains to the stored decay's epoch
    return [
        store.keys.tag,
        store.keys.ingest_group,
        int(time.time()),
        config.score_repeat_registration,
        config.score_event_after_white_paper,
        max(1, config.registration_status_days) * 86_400,
        len(records),
        mode,
        json.dumps(records, ensure_ascii=False, separators=(",", ":")),
    ]


def _record(entry_id: str, fields: dict[str, str] | None) -> list[Any]:
    """One registration as the Lua script's record (strings, and the profile's pairs);
    malformed ones are rejected."""
    try:
        data = json.loads((fields or {}).get("d", ""))
        email = checked_email(data["email"])
        kind, asset = data["kind"], data["asset"]
        # the asset goes into history entries ("kind:asset:at;..."): keep it to the slug rule
        if kind not in KINDS or not isinstance(asset, str) or not _ASSET.fullmatch(asset):
            raise ValueError("bad kind or asset")
        at = int(data.get("at") or time.time())
    except (ValueError, KeyError, TypeError, AttributeError, InvalidEmail):
        log.warning("rejecting malformed registration %s", entry_id)
        return [entry_id, "", "malformed", "", "0", "0", "web_form", "", "0", []]
    return _flat_record(entry_id, email, kind, asset, at, data, trusted=data.get("auth") == 1)


def _spells(given: str, email: str) -> bool:
    """``given`` is a spelling of ``email`` (a stream entry cannot point To: elsewhere)."""
    try:
        return checked_email(given) == email
    except InvalidEmail:
        return False


def _flat_record(entry_id: str, email: str, kind: str, asset: str, at: int,
                 data: dict[str, Any], *, trusted: bool) -> list[Any]:
    """``trusted``: an authenticated write (an API key, an import), whose fields replace a
    contact's or a qualified lead's; otherwise they are only proposed (``ingest.lua``)."""
    profile: list[str] = []
    for name in PROFILE_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and value:
            profile.extend((name, value))
    source = data.get("source")
    if source not in SOURCES:
        source = "web_form"
    referred_by = data.get("referred_by")
    if isinstance(referred_by, str) and referred_by:
        profile.extend(("referred_by", referred_by))
    given = data.get("email_given")
    if isinstance(given, str) and given and _spells(given, email):
        profile.extend(("email_given", given))  # the To: spelling; the person is ``email``
    consent = data.get("consent")
    consent = "p" if consent == "p" else ("1" if consent else "0")
    evidence = ""
    proof = data.get("ev")
    if consent != "0" and isinstance(proof, dict):
        from outreach.people.consent import evidence_entry

        when = proof.get("at")  # an import's original opt-in time
        when = when if type(when) is int and 0 < when <= at else at
        evidence = evidence_entry(when, proof.get("how") or "form", asset, proof.get("v"),
                                  proof.get("ip"), proof.get("ua"),
                                  "pending" if consent == "p" else "given")
    return [entry_id, email, kind, asset, consent, str(at), source, evidence,
            "1" if trusted else "0", profile]
