"""Who gets which variant: a pure function of (campaign id, normalised address).

``bucket`` hashes the pair (SHA-256): the first 64 bits place the address in the test share
or the rest, the next 64 pick its variant. Nothing random, nothing stored first, so a retry,
a pause, a crash or a redelivered task always gives the same answer. The variant of each
test-share address queued is written (``Keys.campaign_variants``) so the send and event
scripts count per variant without hashing in Lua; everyone else got ``x_rest``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from outreach.campaigns.experiments.setup import settings_of
from outreach.store import Store

_TWO_64 = float(2 ** 64)


def bucket(campaign_id: str, email: str, test_share: float, variants: int) -> int | None:
    """The index of the variant a test-share address gets; None for the rest."""
    digest = hashlib.sha256(f"{campaign_id}\x00{email.strip().lower()}".encode()).digest()
    if int.from_bytes(digest[:8], "big") / _TWO_64 >= test_share:
        return None
    return int.from_bytes(digest[8:16], "big") % variants


def page(store: Store, campaign_id: str, h: dict[str, str], triples: list[str]) -> list[str]:
    """Dispatch's (email, ref, verdict) triples of one page as an experiment sends them.
    Test phase: the rest share is skipped ('-': not written to the ledger, so the rest
    phase finds them). Either phase: the variant of each test-share address to be queued is
    recorded first (idempotent: always the same value)."""
    settings: dict[str, Any] | None = settings_of(h)
    if settings is None or not triples:
        return triples
    names = [v["name"] for v in settings["variants"]]
    share = float(settings["test_share"])
    testing = h.get("x_phase") != "rest"
    out = list(triples)
    chosen: dict[str, str] = {}
    for i in range(0, len(triples), 3):
        email, verdict = triples[i], triples[i + 2]
        index = bucket(campaign_id, email, share, len(names))
        if index is None:
            if testing:
                out[i + 2] = "-"
        elif verdict == "1":
            chosen[email] = names[index]
    if chosen:
        store.r.hset(store.keys.campaign_variants(campaign_id), mapping=chosen)
    return out
