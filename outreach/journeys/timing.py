"""Local time for journeys: ``wait until HH:MM`` and quiet hours in the person's zone
(``zones.zone_of``), DST-correct through zoneinfo: a local time that a spring-forward gap
skips is taken as the same wall time after the change (PEP 495 ``fold=0``), a time that a
fall-back repeats as its first occurrence, or its second when the first is past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo


def _at(day: datetime, hour: int, minute: int, zone: ZoneInfo) -> list[float]:
    """The instants of ``day`` showing HH:MM in ``zone``: one, or two in an hour a
    fall-back repeats (PEP 495 ``fold`` 0 and 1); in a spring-forward gap the same wall
    time after the change (a round trip through UTC with ``fold=0``)."""
    local = datetime.combine(day.date(), clock_time(hour, minute), tzinfo=zone)
    first = local.astimezone(UTC).timestamp()
    second = local.replace(fold=1).astimezone(UTC).timestamp()
    # fold=1 differs in a repeated hour (a later instant, the same wall time) and in a gap
    # (an earlier instant that shows another wall time): only the first is kept
    repeated = second > first and datetime.fromtimestamp(second, zone).time() == local.time()
    return [first, second] if repeated else [first]


def next_local(now: float, hour: int, minute: int, zone: ZoneInfo) -> float:
    """The first instant after ``now`` whose wall-clock time in ``zone`` is HH:MM (the
    instant just after a gap when a spring-forward skips it)."""
    today = datetime.fromtimestamp(now, zone)
    for days in range(0, 3):
        for at in _at(today + timedelta(days=days), hour, minute, zone):
            if at > now:
                return at
    return now + 86400  # unreachable: some day within three has that time


def minutes_of(now: float, zone: ZoneInfo) -> int:
    local = datetime.fromtimestamp(now, zone)
    return local.hour * 60 + local.minute


def quiet_until(now: float, start: tuple[int, int], end: tuple[int, int],
                zone: ZoneInfo) -> float | None:
    """When quiet hours ``start``..``end`` (local, may wrap midnight) end, if ``now`` is in
    them; None when ``now`` is not quiet."""
    here = minutes_of(now, zone)
    s, e = start[0] * 60 + start[1], end[0] * 60 + end[1]
    quiet = (s <= here < e) if s < e else (here >= s or here < e)
    if not quiet:
        return None
    return next_local(now, end[0], end[1], zone)
