"""Per-receiving-domain pacing and concurrency, global in Redis.

``OUTREACH_DOMAIN_LIMITS`` (``gmail.com=20/s,5c;yahoo.com=10/s;*=50/s``): rules separated
by ``;``, each ``domain=`` one or both of a rate (``N/s`` or ``N/m``) and a concurrency
(``Nc``: at most N SMTP transactions with that domain at once, across all workers),
comma separated. ``*`` is the rule of every domain without one of its own (a domain's rule
replaces it as a whole).

Rate: a token bucket per domain shared by every worker (``domain_take.lua``; burst = one
second's worth). Concurrency: a hash of the send runs in a transaction with the domain
(``domain_slots``), taken in the same script and given back after the transaction
(``release``); a holder is tied to its send run's heartbeat, so a killed worker's slot is
freed by the next run that finds the domain full. A recipient whose domain is out of tokens
or slots is deferred (left queued, the batch comes back when a token is due, or after
``SLOT_WAIT_MS`` for a slot), never failed.

Back-off, with or without limits: a deferral from a domain (``421``/``4xx`` with ``4.7.x``,
``450``, ``451``) backs that domain alone off, exponentially (1 s, 2 s, 4 s ... capped at
300 s); other domains keep their pace. Backed-off domains are listed in one hash that a send
batch reads once (``backoffs``), so without limits the pace costs nothing per recipient; the
first delivery to a domain after its back-off resets the level (``recovered``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache

from outreach.config import ConfigError
from outreach.store import Store

_RULE = re.compile(r"^\s*([*a-z0-9.-]+)\s*=(.*)$", re.I)
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|m|min)\s*$", re.I)
_CONCURRENCY = re.compile(r"^\s*(\d+)\s*c\s*$", re.I)
MAX_BACKOFF_SECONDS = 300
SLOT_WAIT_MS = 200  # a domain at its concurrency limit: when to look again for a free slot


@dataclass(frozen=True)
class DomainLimit:
    rate: float | None = None  # messages per second
    concurrency: int | None = None  # SMTP transactions at once, across all workers


def _rule(part: str) -> tuple[str, DomainLimit]:
    match = _RULE.match(part)
    if match:
        rate: float | None = None
        concurrency: int | None = None
        for item in match.group(2).split(","):
            if (found := _RATE.match(item)) and rate is None and float(found.group(1)) > 0:
                per = 1.0 if found.group(2).lower().startswith("s") else 60.0
                rate = float(found.group(1)) / per
            elif (found := _CONCURRENCY.match(item)) and concurrency is None \
                    and int(found.group(1)) > 0:
                concurrency = int(found.group(1))
            else:
                break
        else:
            return match.group(1).lower(), DomainLimit(rate, concurrency)
    raise ConfigError(f"OUTREACH_DOMAIN_LIMITS: {part.strip()!r} is not domain=N/s or N/m "
                      "and/or Nc (at most N at once), e.g. gmail.com=20/s,5c")


@lru_cache(maxsize=16)
def parse_limits(text: str) -> dict[str, DomainLimit]:
    """``{domain: DomainLimit}``; ``*`` is the rule of every other domain. Raises
    ``ConfigError`` naming ``OUTREACH_DOMAIN_LIMITS`` (one line) for a malformed value."""
    limits: dict[str, DomainLimit] = {}
    for part in (text or "").split(";"):
        if part.strip():
            domain, limit = _rule(part)
            limits[domain] = limit
    return limits


def domain_of(email: str) -> str:
    return email.rpartition("@")[2].lower().rstrip(".")


def limit_for(limits: dict[str, DomainLimit], domain: str) -> DomainLimit | None:
    return limits.get(domain, limits.get("*"))


def concurrency_for(limits_text: str, email: str) -> int | None:
    """The concurrency limit of ``email``'s domain (None: none)."""
    limit = limit_for(parse_limits(limits_text), domain_of(email)) if limits_text else None
    return limit.concurrency if limit else None


def take(store: Store, limits_text: str, email: str, run: str = "", pace: bool = True) -> int:
    """0 when ``email``'s domain may get a message now, else milliseconds to wait.

    ``pace``: its back-off and its rate are checked (a token taken). With ``run`` and a
    concurrency limit for the domain, a slot is taken for ``run`` too (nothing is taken when
    the answer is to wait): give it back with ``release`` after the transaction."""
    domain = domain_of(email)
    limit = limit_for(parse_limits(limits_text), domain)
    rate = (limit.rate or 0.0) if limit and pace else 0.0
    slots = (limit.concurrency or 0) if limit and run else 0
    if not rate and not slots:
        return 0
    keys = store.keys
    return int(store.run("domain_take", keys=[keys.domain_bucket(domain),
                                              keys.domain_backoff(domain),
                                              keys.domain_slots(domain)],
                         args=[str(int(time.time() * 1000)), repr(rate), repr(max(1.0, rate)),
                               str(slots), run, keys.send_run(""), str(SLOT_WAIT_MS),
                               "1" if pace else "0"]))


def release(store: Store, email: str, run: str) -> None:
    """``run``'s transaction with ``email``'s domain is over: its slot is free."""
    store.r.hdel(store.keys.domain_slots(domain_of(email)), run)


def slow_down(store: Store, email: str) -> float:
    """The domain answered with a deferral: back it off; returns the back-off in seconds."""
    domain = domain_of(email)
    keys = store.keys
    level = int(store.r.hincrby(keys.domain_bucket(domain), "level", 1))
    seconds = min(float(2 ** min(level - 1, 16)), float(MAX_BACKOFF_SECONDS))
    until = int((time.time() + seconds) * 1000)
    pipe = store.r.pipeline(transaction=False)
    pipe.pexpire(keys.domain_bucket(domain), 600_000 + int(seconds * 1000))
    pipe.set(keys.domain_backoff(domain), "1", px=int(seconds * 1000))
    pipe.hset(keys.domain_backoffs, domain, str(until))
    pipe.execute()
    return seconds


def backoffs(store: Store) -> dict[str, int]:
    """``{domain: back-off end in epoch ms}`` of the domains backed off and not recovered
    since (the end may be past: the level stays until a delivery succeeds)."""
    return {domain: int(until) for domain, until in store.r.hgetall(store.keys.domain_backoffs).items()}


def recovered(store: Store, domain: str) -> None:
    """A delivery to ``domain`` succeeded: the next deferral starts again at 1 s."""
    pipe = store.r.pipeline(transaction=False)
    pipe.hdel(store.keys.domain_bucket(domain), "level")
    pipe.hdel(store.keys.domain_backoffs, domain)
    pipe.execute()


def is_deferral(code: int | None, reply: str) -> bool:
    text = reply.partition(" ")[2] if reply[:3].isdigit() else reply
    return code in (421, 450, 451) or text.lstrip().startswith("4.7.")
