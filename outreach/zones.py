"""Time zones: whether a name is an IANA zone, and a person's zone (their ``timezone``,
else ``OUTREACH_DEFAULT_TIMEZONE``). Quiet hours, journey waits and local-time sends all
read a person's zone through ``zone_of``; zoneinfo makes the DST arithmetic right."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


def iana_zone(value: Any) -> bool:
    """``value`` names an IANA time zone (``Europe/Paris``)."""
    if type(value) is not str or not 0 < len(value) <= 64 or value != value.strip():
        return False
    return _zone(value) is not None


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_of(timezone: str | None, default: str = "UTC") -> ZoneInfo:
    """The zone named by a person's ``timezone``, else ``default``, else UTC (a name
    stored before it stopped being valid never fails a send)."""
    for name in (timezone, default):
        if name and iana_zone(name):
            zone = _zone(name)
            if zone is not None:
                return zone
    return ZoneInfo("UTC")


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """The zone names to offer a person who picks one (a form's suggestions): ``UTC`` and
    every ``Area/Place`` name, without the ``Etc/`` offsets and old ``SystemV/`` names
    (any IANA name is still accepted)."""
    names = {name for name in available_timezones()
             if "/" in name and not name.startswith(("Etc/", "SystemV/", "posix/", "right/"))}
    return ("UTC", *sorted(names))
