"""Engagement scores that fade, and what made them.

Points are added as things happen (``track_event.lua``: the first open of a campaign and
each distinct link clicked; ``ingest.lua``: a registration for an asset the lead had not
registered for before, plus a bonus when that is an event after a white paper), each kept
as a scored item of the lead (``_scoring.lua``). This module is the reader: the decay
(``Decay``), keeping the stored decay in line with the setting (``ensure_decay``) and a
lead's items with their points then and now (``score_items``).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any

from outreach.config import Config
from outreach.store import Store
from outreach.vocabulary import iso

# -- scores that fade ---------------------------------------------------------------------
#
# A lead's score is stored scaled to a fixed epoch E: S = sum of points x 2^((at - E) / H)
# (H: the half-life in seconds). Its current value is S x 2^(-(now - E) / H) = the sum of
# points x 2^(-(now - at) / H), so one sorted set of S orders leads by current score at any
# moment and no score is ever rewritten because time passed. The factor 2^((now - E) / H)
# grows with time; a rebase (``score_rebase.lua``: every S times 2^(-(now - E) / H), then
# E = now) keeps it below 2^MAX_EXPONENT (doubles reach 2^1024): with H = 30 days that is
# once in 42 years, with H = 1 day once in 1.4 years. Changing the half-life setting also
# rebases: scores carry over at their value at that moment and fade at the new rate on.
# A rebase is one script over every scored lead (so that no writer scales to the old epoch
# meanwhile): measured 1.8 s for 100k scored leads on the dev machine, so Redis pauses for
# about that long per 100k scored leads, on these rare occasions.
# The stored decay (``Keys.score_decay``) is what writers (the Lua scripts) and readers use;
# ``ensure_decay`` brings it in line with the setting. Absent, scores do not fade.

MAX_EXPONENT = 512
_CHECK_SECONDS = 60.0
_MEMO = "_outreach_decay_checked"  # key tag -> (half-life, monotonic deadline), on the client


@dataclass(frozen=True)
class Decay:
    epoch: float = 0.0
    half_life: float = 0.0  # seconds; 0: scores do not fade

    def factor(self, at: float) -> float:
        """2^((at - epoch) / half_life): points at ``at`` scaled to the epoch."""
        if self.half_life <= 0:
            return 1.0
        return 2.0 ** ((at - self.epoch) / self.half_life)

    def current(self, scaled: float, now: float) -> float:
        """The value at ``now`` of a scaled score (one multiplication)."""
        if self.half_life <= 0:
            return scaled
        return scaled * 2.0 ** (-(now - self.epoch) / self.half_life)

    def rounded(self, scaled: float, now: float) -> int:
        """A lead's ``score`` as shown and as rules and conversion compare it."""
        return math.floor(self.current(scaled, now) + 0.5)

    def scaled_bound(self, points: float, now: float) -> float:
        """The least scaled score whose rounded value at ``now`` is ``points`` or more."""
        return (points - 0.5) * self.factor(now)

    def crossing(self, scaled: float, level: float) -> float | None:
        """When the current value of ``scaled`` falls to ``level`` (None: never, or no decay)."""
        if self.half_life <= 0 or scaled <= 0 or level <= 0:
            return None
        return self.epoch + self.half_life * math.log2(scaled / level)


NO_DECAY = Decay()


def decay_of(store: Store) -> Decay:
    epoch, half_life = store.r.hmget(store.keys.score_decay, "epoch", "half_life")
    return Decay(float(epoch or 0), float(half_life or 0))


def ensure_decay(store: Store, config: Config, now: float | None = None,
                 force: bool = False) -> None:
    """Bring the stored decay in line with the setting: rebase when the half-life differs
    or the factor has grown past 2^MAX_EXPONENT. Checked at most once a minute per process
    (no round trip in between): writers call it before a script scales points; readers
    read the decay itself with ``decay_of``."""
    now = time.time() if now is None else now
    half_life = max(0.0, float(config.score_half_life_days)) * 86400.0
    memo = getattr(store.r, _MEMO, None) or {}
    seen = memo.get(store.keys.tag)
    if not force and seen and seen[0] == half_life and seen[1] > time.monotonic():
        return
    epoch, stored = store.r.hmget(store.keys.score_decay, "epoch", "half_life")
    decay = Decay(float(epoch or 0), float(stored or 0))
    if decay.half_life != half_life or (
            half_life > 0 and (now - decay.epoch) / half_life > MAX_EXPONENT):
        store.run("score_rebase", args=[store.keys.tag, repr(float(int(now))), repr(half_life)])
        # a changed half-life moves every score's crossings: the segments reading it are
        # rebuilt (not at first use: no score was scaled before the decay was stored)
        if stored is not None and decay.half_life != half_life:
            from outreach.people.segments import catalog

            catalog.rebuild_readers(store, "field:score")
    memo[store.keys.tag] = (half_life, time.monotonic() + _CHECK_SECONDS)
    with contextlib.suppress(AttributeError):  # a client that takes no attributes: check each time
        setattr(store.r, _MEMO, memo)


_WHAT = {"open": "opened campaign {0}", "click": "clicked link {1} of campaign {0}",
         "registered": "registered for {0} {1}",
         "event_after_white_paper": "{0} {1} after a white paper"}


def describe(what: str) -> str:
    """An item's ``what`` (``open|cp3|``, ``click|cp3|lk1``, ``registered|event|summit``)."""
    kind, _, rest = what.partition("|")
    parts = rest.split("|")
    template = _WHAT.get(kind)
    if template is None:
        return what
    return template.format(*(parts + ["", ""])[:2]).strip()


def score_items(store: Store, config: Config, lead_id: str,
                now: float | None = None) -> dict[str, Any]:
    """``{"score", "half_life_days", "threshold", "items": [{"at", "what", "points",
    "now"}]}``: each scored event kept (newest first) with its original and current points;
    the events older than the kept ones (``_scoring.lua`` keeps the newest 20) are one
    item, ``earlier events``."""
    keys = store.keys
    now = time.time() if now is None else now
    ensure_decay(store, config, now)
    decay = decay_of(store)
    pipe = store.r.pipeline(transaction=False)
    pipe.hmget(keys.lead(lead_id), "score", "score_rest", "score_rest_points", "score_rest_at")
    pipe.lrange(keys.lead_score_items(lead_id), 0, -1)
    (scaled, rest, rest_points, rest_at), entries = pipe.execute()
    items = []
    for entry in entries:
        parts = entry.split("|", 3)
        if len(parts) < 4:
            continue
        at, points, part, what = parts
        items.append({"at": iso(float(at)), "what": describe(what), "points": float(points),
                      "now": round(decay.current(float(part), now), 3)})
    if rest:
        items.append({"at": iso(float(rest_at or 0)), "what": "earlier events",
                      "points": float(rest_points or 0),
                      "now": round(decay.current(float(rest), now), 3)})
    return {"score": decay.rounded(float(scaled or 0), now),
            "half_life_days": config.score_half_life_days,
            "threshold": config.promotion_threshold, "items": items}
