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
from dataclasses import dataclass
from typing import Any

from outreach.config import Config
from outreach.normalize import InvalidEmail, checked_email
from outreach.schemas.intake import ASSET_PATTERN, KINDS, PROFILE_FIELDS
from outreach.store import Store

log = logging.getLogger(__name__)
_ASSET = re.compile(ASSET_PATTERN)
# one Lua call gets every field of a batch as arguments: keep batches moderate
MAX_BATCH = 2000


@dataclass
class DrainResult:
    processed: int = 0
    more: bool = False  # stopped on the time budget with entries left
    recheck_in: float = 0.0  # entries pending at another consumer: look again after this


def drain(store: Store, config: Config, consumer: str, time_budget: float = 20.0) -> DrainResult:
    """Apply queued registrations until the stream is empty or the budget is spent."""
    store.ensure_ingest_group()
    keys = store.keys
    result = DrainResult()
    deadline = time.monotonic() + time_budget
    result.processed += _take_over_stale(store, config, consumer)
    while True:
        if time.monotonic() > deadline:
            result.more = True
            return result
        batch = store.r.xreadgroup(
            keys.ingest_group, consumer, {keys.intake_stream: ">"},
            count=min(config.ingest_batch_size, MAX_BATCH),
        )
        entries = batch[0][1] if batch else []
        if not entries:
            break
        result.processed += apply_batch(store, config, entries)
    pending = store.r.xpending(keys.intake_stream, keys.ingest_group)
    if pending and pending.get("pending"):
        result.recheck_in = config.ingest_claim_idle_ms / 1000.0
    return result


def _take_over_stale(store: Store, config: Config, consumer: str) -> int:
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
            processed += apply_batch(store, config, entries)
        if start == "0-0" or not entries:
            return processed


def apply_batch(store: Store, config: Config, entries: list[tuple[str, dict[str, str]]]) -> int:
    """Apply stream entries in one atomic, idempotent Lua call. Returns how many were acked."""
    args: list[Any] = [
        store.keys.tag,
        store.keys.ingest_group,
        int(time.time()),
        config.score_repeat_registration,
        config.score_event_after_white_paper,
        max(1, config.registration_status_days) * 86_400,
        len(entries),
    ]
    for entry_id, fields in entries:
        args.extend(_record(entry_id, fields))
    return int(store.run("ingest", args=args))


def _record(entry_id: str, fields: dict[str, str] | None) -> list[Any]:
    """One registration as the Lua script's flat record; malformed ones are rejected."""
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
        return [entry_id, "", "malformed", "", "0", 0, 0]
    profile: list[str] = []
    for name in PROFILE_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and value:
            profile.extend((name, value))
    consent = "1" if data.get("consent") else "0"
    return [entry_id, email, kind, asset, consent, at, len(profile) // 2, *profile]
