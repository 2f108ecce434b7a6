"""Local-time sends: a campaign with ``send_at_local: "HH:MM"`` and a date ``send_at``
mails each recipient at that wall-clock time of that date in their own time zone (their
``timezone``, else ``OUTREACH_DEFAULT_TIMEZONE``: ``zones.zone_of``).

How it rides on what exists:

- **Create** keeps the date and the time (``send_date``, ``send_at_local``) and sets the
  campaign's ``send_at`` to the first moment anyone can be due: that wall-clock time at
  UTC+14 (the Line Islands, the earliest zone). Launch before it schedules the campaign as
  any ``send_at`` does; launch after it sends at once.
- **Dispatch** (``hold``, one call from ``dispatch``) reads each eligible recipient's zone
  and moment. Whoever's moment has passed is queued at once, as usual; whoever's is ahead
  is claimed in the ledger as *waiting* (``w|<ref>|``) and put in the campaign's waiting
  zset scored by that UTC moment, in one script (``local_hold.lua``). The ledger's HSETNX
  is the same each-address-once rule as ``queue_page.lua``.
- **Release** (``release_due``, from dispatch, which the watch and finished batches nudge)
  moves the due ones from the zset into send batches within the send window, turning
  *waiting* into *queued* in the same script (``local_release.lua``): from there the send
  path is the usual one (claim, send, mark), so crash recovery is unchanged.
- The campaign is not finished while anyone waits (``look``, from the watch); pause holds
  the waiting (nothing is released unless sending); cancel drops them.

Time-zone rules (RFC 5545's, which zoneinfo's ``fold=0`` gives): a wall-clock time that a
spring-forward change skips is read with the offset from before the change, so it is sent
that long after the change (02:30 on the day New York skips 02:00-03:00 is 03:30 EDT); a
time that a fall-back change repeats is its first occurrence (01:30 on the day New York
repeats 01:00-02:00 is 01:30 EDT, never again at 01:30 EST).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from outreach.campaigns import model
from outreach.config import Config
from outreach.platform.jobs import Jobs
from outreach.store import Store
from outreach.zones import zone_of

HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# the earliest offset in use (Pacific/Kiritimati): nobody's HH:MM comes before it there
EARLIEST = timezone(timedelta(hours=14))


def wall_time(hhmm: str) -> time:
    """``"HH:MM"`` as a time (the caller checked it against ``HHMM``)."""
    hours, minutes = hhmm.split(":")
    return time(int(hours), int(minutes))


def moment(day: date, at: time, zone: ZoneInfo | timezone) -> float:
    """The UTC moment (epoch seconds) when the wall clock of ``zone`` shows ``at`` on
    ``day``; a skipped time is read with the offset before the change, a repeated one is its
    first occurrence (``fold=0``, as RFC 5545 says)."""
    return datetime.combine(day, at, tzinfo=zone).timestamp()


def first_moment(day: date, at: time) -> float:
    """When the first zone reaches ``at`` on ``day``: the campaign's ``send_at``."""
    return moment(day, at, EARLIEST)


def draft_fields(data: dict[str, Any]) -> dict[str, str]:
    """The campaign hash fields of a local-time send (none without ``send_at_local``):
    ``data['send_at']`` is the date's midnight as the schema loaded it."""
    hhmm = data.get("send_at_local")
    if not hhmm:
        return {}
    day = data["send_at"].date()
    return {"send_at_local": hhmm, "send_date": day.isoformat(),
            "send_at": str(first_moment(day, wall_time(hhmm)))}


def hold(store: Store, config: Config, campaign_id: str, h: dict[str, str],
         candidates: list[str]) -> list[str]:
    """Dispatch's page of (email, ref, verdict) triples, less the eligible recipients whose
    local moment is still ahead: those are held (ledger *waiting*, the waiting zset) and the
    rest returned for ``queue_page``. Safe to run twice on a page (the ledger's HSETNX)."""
    hhmm, day = h.get("send_at_local"), h.get("send_date")
    if not hhmm or not day or not candidates:
        return candidates
    keys = store.keys
    eligible = [candidates[i + 1] for i in range(0, len(candidates), 3)
                if candidates[i + 2] == "1"]
    pipe = store.r.pipeline(transaction=False)
    for ref in eligible:
        pipe.hget(keys.person(ref), "timezone")
    zone_names = dict(zip(eligible, pipe.execute(), strict=True))
    at, on = wall_time(hhmm), date.fromisoformat(day)
    moments: dict[str | None, float] = {}
    now = model.now()
    held: list[str] = []
    rest: list[str] = []
    for i in range(0, len(candidates), 3):
        email, ref, verdict = candidates[i:i + 3]
        if verdict == "1":
            name = zone_names.get(ref)
            if name not in moments:
                moments[name] = moment(on, at, zone_of(name, config.default_timezone))
            if moments[name] > now:
                held += [email, ref, str(int(moments[name]))]
                continue
        rest += [email, ref, verdict]
    if held:
        store.run("local_hold", keys=[keys.campaign(campaign_id), keys.campaign_ledger(campaign_id),
                                      keys.campaign_waiting_local(campaign_id)],
                  args=[len(held) // 3, *held])
    return rest


def release_due(store: Store, config: Config, jobs: Jobs, campaign_id: str) -> int:
    """Move the waiting recipients whose moment has come into send batches (as many as the
    send window has room for) and nudge their sends. Returns the number of new batches."""
    keys = store.keys
    now = model.now()
    created = store.run("local_release", keys=[
        keys.campaign(campaign_id), keys.campaign_ledger(campaign_id),
        keys.campaign_waiting_local(campaign_id), keys.campaign_batches(campaign_id)],
        args=[keys.campaign_batch(campaign_id, ""), config.send_batch_size, str(int(now)),
              repr(now), config.send_window_batches])
    for batch_no in created:
        jobs.send_batch(campaign_id, int(batch_no))
    return len(created)


def look(store: Store, config: Config, jobs: Jobs, campaign_id: str, h: dict[str, str],
         outstanding: int, now: float) -> int:
    """The watch's look at a sending campaign's waiting recipients: how many wait (0 for a
    campaign without ``send_at_local``), with a dispatch nudged when some are due and the
    send window has room. The ``waiting_local`` stat is set to the count when it drifted
    (an erasure takes a waiting address out of the zset only)."""
    if not h.get("send_at_local"):
        return 0
    key = store.keys.campaign_waiting_local(campaign_id)
    waiting = int(store.r.zcard(key))
    if str(waiting) != (h.get("waiting_local") or "0"):
        store.r.hset(store.keys.campaign(campaign_id), "waiting_local", str(waiting))
    if waiting and outstanding < config.send_window_batches and store.r.zrangebyscore(
            key, "-inf", repr(now), start=0, num=1):
        jobs.dispatch(campaign_id)
    return waiting


def drop(store: Store, campaign_id: str) -> None:
    """A cancelled campaign sends nobody who still waits (their ledger entries stay
    *waiting*: never sent)."""
    pipe = store.r.pipeline(transaction=True)
    pipe.delete(store.keys.campaign_waiting_local(campaign_id))
    pipe.hset(store.keys.campaign(campaign_id), "waiting_local", "0")
    pipe.execute()

