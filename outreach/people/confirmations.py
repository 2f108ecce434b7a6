"""Double opt-in mails waiting to be sent: a schedule in Redis (``confirmations_due``).

A registration whose consent waits for confirmation puts its mail in the schedule in the
same script that stores it (``intake.lua``); the request then only nudges a worker. The
beat's tick takes what is due (a lease keeps each in the schedule until its attempt ends:
a lost publish or a dead worker is retried when the lease lapses) and a mail leaves the
schedule once it is sent or not needed. ``send_confirmation``'s once-an-hour mark per
address keeps a mail from going twice when a nudge and the beat meet.
"""

from __future__ import annotations

import json
import time
from typing import Any

from outreach.store import Store

LEASE_SECONDS = 120.0


def entry(email: str, asset: str, version: int) -> str:
    """The schedule's member for one confirmation mail: one per (address, asset, consent
    text version), however often the person registers before it goes."""
    return json.dumps([email, asset, int(version)], separators=(",", ":"), ensure_ascii=False)


def read(member: str) -> tuple[str, str, int]:
    email, asset, version = json.loads(member)
    return email, asset, int(version)


def claim_due(store: Store, now: float | None = None, limit: int = 200,
              lease: float = LEASE_SECONDS) -> list[str]:
    now = time.time() if now is None else now
    return store.run("claim_due", keys=[store.keys.confirmations_due, ""],
                     args=[now, limit, int(now), lease])


def done(store: Store, member: str) -> None:
    store.r.zrem(store.keys.confirmations_due, member)


def pending(store: Store) -> list[dict[str, Any]]:
    """What waits (for tests and operators)."""
    out = []
    for member, due in store.r.zrange(store.keys.confirmations_due, 0, -1, withscores=True):
        email, asset, version = read(member)
        out.append({"email": email, "asset": asset, "version": version, "due": due})
    return out
