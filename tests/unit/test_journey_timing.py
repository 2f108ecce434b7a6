"""``wait until HH:MM`` and quiet hours in the person's zone, across DST, in two zones:
checked against a minute-by-minute walk of the clock (hypothesis), plus the gap and the
repeated hour by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.journeys import timing

ZONES = [ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]
# around both zones' DST changes of 2026 (March 8/29, October 25 / November 1) and between
START = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
END = datetime(2026, 11, 10, tzinfo=UTC).timestamp()


def _wall(t: float, zone: ZoneInfo) -> tuple[int, int]:
    local = datetime.fromtimestamp(t, zone)
    return local.hour, local.minute


def _brute_next(now: float, hour: int, minute: int, zone: ZoneInfo) -> float | None:
    t = now - now % 60 + 60
    for _ in range(60 * 50):
        if _wall(t, zone) == (hour, minute):
            return t
        t += 60
    return None


instants = st.one_of(
    st.floats(min_value=START, max_value=END),
    # near the changes themselves
    st.sampled_from([datetime(2026, 3, 8, 6, 0, tzinfo=UTC).timestamp(),
                     datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp(),
                     datetime(2026, 10, 25, 0, 0, tzinfo=UTC).timestamp(),
                     datetime(2026, 11, 1, 5, 0, tzinfo=UTC).timestamp()]).flatmap(
        lambda base: st.floats(min_value=base - 2 * 86400, max_value=base + 86400)),
)


@settings(max_examples=150, deadline=None)
@given(now=instants, hour=st.integers(0, 23), minute=st.sampled_from([0, 15, 30, 59]),
       zone=st.sampled_from(ZONES))
def test_wait_until_is_the_next_such_local_time(now: float, hour: int, minute: int,
                                                zone: ZoneInfo) -> None:
    got = timing.next_local(now, hour, minute, zone)
    assert got > now
    expected = _brute_next(now, hour, minute, zone)
    if _wall(got, zone) == (hour, minute):
        assert got == expected  # the first instant with that wall time, none skipped
    else:  # only in a spring-forward gap: the same wall time after the change, that day
        assert expected is None or expected > got
        assert got - now < 86400 + 3600


def test_the_gap_and_the_repeated_hour_by_hand() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 2026-03-29 02:30 does not exist in Berlin: 03:30 CEST, that morning
    before = datetime(2026, 3, 28, 23, 0, tzinfo=UTC).timestamp()
    got = datetime.fromtimestamp(timing.next_local(before, 2, 30, berlin), berlin)
    assert (got.month, got.day, got.hour, got.minute) == (3, 29, 3, 30)
    # 2026-10-25 02:30 happens twice: the first one
    before = datetime(2026, 10, 24, 22, 0, tzinfo=UTC).timestamp()
    got_ts = timing.next_local(before, 2, 30, berlin)
    assert got_ts == datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp()
    # 09:00 in New York and in Berlin are different instants of one day
    ny = ZoneInfo("America/New_York")
    now = datetime(2026, 6, 1, 0, 0, tzinfo=UTC).timestamp()
    assert timing.next_local(now, 9, 0, ny) - timing.next_local(now, 9, 0, berlin) == 6 * 3600


@settings(max_examples=150, deadline=None)
@given(now=instants, start=st.integers(0, 23), end=st.integers(0, 23), zone=st.sampled_from(ZONES))
def test_quiet_hours_end_when_they_end(now: float, start: int, end: int, zone: ZoneInfo) -> None:
    if start == end:
        return
    until = timing.quiet_until(now, (start, 0), (end, 0), zone)

    def quiet(t: float) -> bool:
        h = _wall(t, zone)[0]
        return start <= h < end if start < end else (h >= start or h < end)

    assert (until is None) == (not quiet(now))
    if until is None:
        return
    assert until > now
    assert not quiet(until)
    t = now
    while t < until - 60:  # quiet all the way (sampled by minutes)
        assert quiet(t)
        t += 600


def test_the_repeated_hour_once_its_first_occurrence_is_past() -> None:
    """At 02:00 CEST of the fall-back night (or any moment before 02:00 CET), the next
    02:00 in Berlin is the repeated one an hour later, not the next night's."""
    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2026, 10, 25, 0, 0, tzinfo=UTC).timestamp()  # 02:00 CEST
    assert timing.next_local(first, 2, 0, berlin) == first + 3600  # 02:00 CET
    assert timing.next_local(first + 1800, 2, 0, berlin) == first + 3600
    assert timing.next_local(first + 3600, 2, 0, berlin) > first + 86_400
