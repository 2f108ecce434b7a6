"""Accepting registrations from public forms.

The request path does one thing: one Lua call that rate-limits, deduplicates the
Idempotency-Key, appends the registration to the intake stream (durable once
Redis has it) and, at most once per ``ingest_kick_ms``, asks for an ingest run.
Everything else happens on the workers.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from outreach.config import Config
from outreach.errors import Invalid, NotFound, RateLimited, Unavailable
from outreach.people.ingest import registration_payload
from outreach.platform import refs
from outreach.store import Store

_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


@dataclass(frozen=True)
class Accepted:
    id: str
    duplicate: bool = False
    dropped: bool = False


def accept_registration(
    store: Store,
    config: Config,
    data: dict[str, Any],
    client: str,
    idempotency_key: str | None = None,
    kick: Callable[[], None] | None = None,
    confirmation: str | None = None,
) -> Accepted:
    """Durably store one validated registration and return its id.

    ``data`` is the output of ``RegistrationIn``. A filled honeypot is answered
    like a success but stored nowhere. ``kick`` is called for every stored one
    (``IngestKicker`` throttles it). ``confirmation`` (``confirmations.entry``): a double
    opt-in mail to schedule in the same script as the append (Redis is the outbox).
    """
    if data.get("website"):
        return Accepted(id=_fake_id(), dropped=True)
    payload = registration_payload(data, int(time.time()))
    encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    rate = config.intake_rate
    keys = store.keys
    replicas = config.intake_min_replicas
    acked = replicas
    if rate is None and not idempotency_key and not confirmation:
        # nothing to check atomically: the cheapest durable append
        command = ("XADD", keys.intake_stream, "*", "d", encoded)
        if replicas:
            value, acked = store.durable(replicas, config.intake_replica_timeout_ms, *command)
        else:
            value = store.direct(*command)
        outcome = "accepted"
    else:
        limit, window = rate if rate else (0, 1)
        idem = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32] if idempotency_key else "-"
        script_keys = [keys.intake_stream, keys.rate_limit(client), keys.idempotency(idem)]
        script_args = [limit, window, 1 if idempotency_key else 0, config.idempotency_ttl_seconds,
                       encoded]
        if confirmation:
            script_keys.append(keys.confirmations_due)
            script_args += [confirmation, repr(time.time() + config.outbox_grace_seconds)]
        if replicas:
            (outcome, value), acked = store.durable(
                replicas, config.intake_replica_timeout_ms, script="intake", keys=script_keys,
                script_args=script_args)
        else:
            outcome, value = store.run("intake", keys=script_keys, args=script_args, direct=True)
    if acked < replicas and outcome != "limited":
        # stored on the master only: a failover now could lose it, so it is not "accepted"
        # (a retry with the same Idempotency-Key answers with the same id once replicated)
        raise Unavailable(f"The registration reached {acked} of {replicas} required replicas; "
                          "try again shortly.")
    if outcome == "limited":
        raise RateLimited("Too many registrations from this address; try again later.", int(value))
    if kick is not None and outcome == "accepted":
        kick()
    return Accepted(id=value, duplicate=outcome == "duplicate")


class IngestKicker:
    """Asks for an ingest run at most once per ``interval`` seconds in this process.

    No registration is left behind by the throttle: a drain that applied anything runs
    again one interval later (``tasks.ingest``), so a registration that arrived while
    this process was quiet is picked up by that follow-up.
    """

    def __init__(self, send: Callable[[], None], interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._send, self._interval, self._clock = send, interval, clock
        self._last = float("-inf")
        self._lock = threading.Lock()

    def __call__(self) -> None:
        now = self._clock()
        if now - self._last < self._interval:
            return
        with self._lock:
            if now - self._last < self._interval:
                return
            self._last = now
        self._send()


def count_dropped(store: Store, reason: str) -> None:
    """A post answered like a success and stored nowhere (honeypot, bot check): counted."""
    store.r.hincrby(store.keys.metrics, f"registrations_dropped_{reason}", 1)


def _fake_id() -> str:
    return f"{int(time.time() * 1000)}-{secrets.randbelow(1000) + 1000}"


def check_redirect(config: Config, url: str | None) -> str | None:
    """Return ``url`` when its origin is allow-listed, raise 422 otherwise."""
    if not url:
        return None
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    allowed = {o.rstrip("/").lower() for o in (*config.cors_origins, *config.redirect_allow_list)}
    base = urlsplit(config.base_url)
    allowed.add(f"{base.scheme}://{base.netloc}".lower())
    if parts.scheme in ("http", "https") and origin in allowed:
        return url
    raise Invalid("Validation failed.", {"redirect_to": ["This redirect target is not allowed."]})


def registration_status(store: Store, registration_id: str) -> dict[str, Any]:
    """Where a registration is: accepted (queued), processed (with person and lists) or rejected."""
    if not _STREAM_ID.match(registration_id) or any(
        int(part) >= 2**64 for part in registration_id.split("-")
    ):
        raise NotFound("No such registration.")
    keys = store.keys
    result = store.r.hget(keys.registrations(registration_id), registration_id)
    if result is None:
        if store.r.xrange(keys.intake_stream, registration_id, registration_id, count=1):
            return {"id": registration_id, "status": "accepted"}
        raise NotFound("No such registration.")
    kind, person_id, list_id = result.split("|", 2)
    if kind == "x":
        return {"id": registration_id, "status": "rejected"}
    return {
        "id": registration_id,
        "status": "processed",
        "person": {"type": refs.TYPES.get(kind, "contact"), "id": person_id},
        "lists": [list_id] if list_id else [],
    }
