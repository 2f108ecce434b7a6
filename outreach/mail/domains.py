"""Per-receiving-domain pacing, global in Redis.

``OUTREACH_DOMAIN_LIMITS`` (``gmail.com=20/s;yahoo.com=10/s;*=50/s``): a token bucket per
domain shared by every worker (``domain_take.lua``; burst = one second's worth). A recipient
whose domain is out of tokens is deferred (left queued, the batch comes back when a token is
due), never failed.

Back-off, with or without limits: a deferral from a domain (``421``/``4xx`` with ``4.7.x``,
``450``, ``451``) backs that domain alone off, exponentially (1 s, 2 s, 4 s ... capped at
300 s); other domains keep their pace. Backed-off domains are listed in one hash that a send
batch reads once (``backoffs``), so without limits the pace costs nothing per recipient; the
first delivery to a domain after its back-off resets the level (``recovered``).
"""

from __future__ import annotations

import re
import time
from functools import lru_cache

from outreach.config import ConfigError
from outreach.store import Store

_RULE = re.compile(r"^\s*([*a-z0-9.-]+)\s*=\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|m|min)\s*$", re.I)
MAX_BACKOFF_SECONDS = 300


@lru_cache(maxsize=16)
def parse_limits(text: str) -> dict[str, float]:
    """``{domain: tokens per second}``; ``*`` is the default for every other domain."""
    limits: dict[str, float] = {}
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        match = _RULE.match(part)
        if not match or float(match.group(2)) <= 0:
            raise ConfigError(f"OUTREACH_DOMAIN_LIMITS: {part.strip()!r} is not domain=N/s or N/m")
        per = 1.0 if match.group(3).lower().startswith("s") else 60.0
        limits[match.group(1).lower()] = float(match.group(2)) / per
    return limits


def domain_of(email: str) -> str:
    return email.rpartition("@")[2].lower().rstrip(".")


def rate_for(limits: dict[str, float], domain: str) -> float | None:
    return limits.get(domain, limits.get("*"))


def take(store: Store, limits_text: str, email: str) -> int:
    """0 when ``email``'s domain may get a message now, else milliseconds to wait."""
    limits = parse_limits(limits_text)
    domain = domain_of(email)
    rate = rate_for(limits, domain)
    if rate is None:
        return 0
    return int(store.run("domain_take", keys=[store.keys.domain_bucket(domain),
                                              store.keys.domain_backoff(domain)],
                         args=[str(int(time.time() * 1000)), repr(rate), repr(max(1.0, rate))]))


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
