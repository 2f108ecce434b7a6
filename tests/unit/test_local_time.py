"""Local-time sends (``send_at_local``): each recipient gets the campaign at that wall-clock
time of the ``send_at`` date in their own time zone, DST-correct, once; the campaign starts
when the first zone (UTC+14) gets there and is finished only when nobody waits."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.campaigns import local_time, model

# ---------------------------------------------------------------- the moment of a wall-clock time


def utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def at(zone: str, day: str, hhmm: str) -> str:
    return utc(local_time.moment(date.fromisoformat(day), local_time.wall_time(hhmm),
                                 ZoneInfo(zone)))


@pytest.mark.parametrize(("zone", "day", "hhmm", "expected"), [
    # ordinary days, either side of DST
    ("America/New_York", "2027-01-15", "09:00", "2027-01-15T14:00:00Z"),  # EST, -5
    ("America/New_York", "2027-07-15", "09:00", "2027-07-15T13:00:00Z"),  # EDT, -4
    ("Europe/Berlin", "2027-01-15", "09:00", "2027-01-15T08:00:00Z"),  # CET, +1
    ("Europe/Berlin", "2027-07-15", "09:00", "2027-07-15T07:00:00Z"),  # CEST, +2
    ("Australia/Lord_Howe", "2027-07-15", "09:00", "2027-07-14T22:30:00Z"),  # +10:30
    ("Australia/Lord_Howe", "2027-01-15", "09:00", "2027-01-14T22:00:00Z"),  # +11 (summer)
    ("Pacific/Kiritimati", "2027-07-15", "09:00", "2027-07-14T19:00:00Z"),  # +14
    # the day of the change, away from the changing hour
    ("America/New_York", "2027-03-14", "09:00", "2027-03-14T13:00:00Z"),
    ("Europe/Berlin", "2027-10-31", "09:00", "2027-10-31T08:00:00Z"),
    # spring forward: a skipped time is read with the offset before the change (RFC 5545),
    # so it is sent that long after the change: 02:30 EST-reckoned is 03:30 EDT
    ("America/New_York", "2027-03-14", "02:30", "2027-03-14T07:30:00Z"),
    ("Europe/Berlin", "2027-03-28", "02:30", "2027-03-28T01:30:00Z"),  # 03:30 CEST
    ("Australia/Lord_Howe", "2027-10-03", "02:15", "2027-10-02T15:45:00Z"),  # 02:45 +11
    # fall back: a repeated time is its first occurrence (still summer time)
    ("America/New_York", "2027-11-07", "01:30", "2027-11-07T05:30:00Z"),  # 01:30 EDT
    ("Europe/Berlin", "2027-10-31", "02:30", "2027-10-31T00:30:00Z"),  # 02:30 CEST
    ("Australia/Lord_Howe", "2027-04-04", "01:45", "2027-04-03T14:45:00Z"),  # 01:45 +11
])
def test_moment_of_a_wall_clock_time(zone, day, hhmm, expected) -> None:
    assert at(zone, day, hhmm) == expected


def test_a_skipped_time_comes_after_the_change_and_a_repeated_one_once() -> None:
    new_york = ZoneInfo("America/New_York")
    skipped = datetime.fromtimestamp(
        local_time.moment(date(2027, 3, 14), time(2, 30), new_york), new_york)
    assert (skipped.hour, skipped.minute, skipped.tzname()) == (3, 30, "EDT")
    repeated = datetime.fromtimestamp(
        local_time.moment(date(2027, 11, 7), time(1, 30), new_york), new_york)
    assert (repeated.hour, repeated.minute, repeated.tzname()) == (1, 30, "EDT")


def test_the_first_moment_is_the_line_islands() -> None:
    day, nine = date(2027, 7, 15), time(9)
    assert local_time.first_moment(day, nine) == local_time.moment(
        day, nine, ZoneInfo("Pacific/Kiritimati"))


ZONES = sorted(available_timezones())


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


@settings(max_examples=150, deadline=None)
@given(zone=st.sampled_from(ZONES), day=st.dates(date(2000, 1, 1), date(2037, 12, 31)),
       hour=st.integers(0, 23), minute=st.integers(0, 59))
def test_each_moment_shows_the_asked_time_in_its_zone(zone, day, hour, minute) -> None:
    """Brute force over every UTC minute around the day: where the wall-clock time exists,
    the moment is the first minute that shows it (so converted back it is the asked time);
    where a change skips it, the moment is the asked time read with the offset before the
    change. No zone reaches it before the campaign's first moment (UTC+14)."""
    tz = ZoneInfo(zone)
    target = datetime.combine(day, time(hour, minute))
    moment = datetime.fromtimestamp(local_time.moment(day, time(hour, minute), tz), UTC)
    assert moment.timestamp() >= local_time.first_moment(day, time(hour, minute))
    start = target.replace(tzinfo=UTC) - timedelta(hours=15)
    minutes = [start + timedelta(minutes=n) for n in range(30 * 60)]
    showing = [m for m in minutes if _wall(m, tz) == target]
    if showing:
        assert moment == showing[0]
        assert _wall(moment, tz) == target
    else:  # skipped: the last minute before the jump tells the offset before the change
        (before,) = [m for m in minutes if _wall(m, tz) < target
                     < _wall(m + timedelta(minutes=1), tz)]
        assert moment == (target - before.astimezone(tz).utcoffset()).replace(tzinfo=UTC)
        assert _wall(moment, tz) > target


# ---------------------------------------------------------------- the API


PEOPLE = {  # address -> time zone (None: OUTREACH_DEFAULT_TIMEZONE, UTC here)
    "kiri@example.com": "Pacific/Kiritimati",
    "howe@example.com": "Australia/Lord_Howe",
    "berlin@example.com": "Europe/Berlin",
    "nobody@example.com": None,
    "ny@example.com": "America/New_York",
}
# 09:00 on 2031-05-04 in each of them
MOMENTS = {
    "kiri@example.com": "2031-05-03T19:00:00Z",
    "howe@example.com": "2031-05-03T22:30:00Z",
    "berlin@example.com": "2031-05-04T07:00:00Z",
    "nobody@example.com": "2031-05-04T09:00:00Z",
    "ny@example.com": "2031-05-04T13:00:00Z",
}


def _people(cenv, people=PEOPLE, asset: str = "guide") -> str:
    for email, zone in people.items():
        extra = {"timezone": zone} if zone else {}
        assert cenv.register(email, asset=asset, consent=True, **extra).status_code == 202
    cenv.drain()
    return cenv.asset_list(asset, "lead")


def _epoch(iso: str) -> float:
    return model.utc_from_iso(iso).timestamp()


def _waiting(cenv, campaign_id: str) -> dict[str, str]:
    raw = cenv.store.r.zrange(cenv.store.keys.campaign_waiting_local(campaign_id), 0, -1,
                              withscores=True)
    return {email: utc(score) for email, score in raw}


def _clock(monkeypatch, iso: str) -> None:
    moment = _epoch(iso)
    monkeypatch.setattr(model, "now", lambda: moment)


def test_local_time_campaign_end_to_end(cenv, monkeypatch) -> None:
    list_id = _people(cenv)
    _clock(monkeypatch, "2031-05-01T00:00:00Z")
    campaign_id = cenv.campaign([list_id], send_at="2031-05-04", send_at_local="09:00")
    shown = cenv.show(campaign_id)
    assert (shown["send_at"], shown["send_at_local"]) == ("2031-05-04", "09:00")
    # it starts when the first zone gets there
    assert cenv.store.r.hget(cenv.store.keys.campaign(campaign_id), "send_at") == str(
        _epoch("2031-05-03T19:00:00Z"))
    assert cenv.post(f"/api/v1/campaigns/{campaign_id}/launch").get_json()["status"] == "scheduled"
    cenv.pending()

    _clock(monkeypatch, "2031-05-03T19:00:00Z")  # 09:00 in Kiritimati
    cenv.watch(campaign_id)
    assert cenv.show(campaign_id)["status"] == "sending"
    shown = cenv.run(campaign_id)
    assert cenv.messenger.counts() == {"kiri@example.com": 1}
    assert shown["status"] == "sending"
    assert shown["stats"]["targeted"] == 5
    assert shown["stats"]["waiting_local"] == 4
    assert _waiting(cenv, campaign_id) == {e: m for e, m in MOMENTS.items() if e != "kiri@example.com"}
    waiting = cenv.get(f"/api/v1/campaigns/{campaign_id}/recipients?status=waiting").get_json()
    assert sorted(i["email"] for i in waiting["items"]) == sorted(set(PEOPLE) - {"kiri@example.com"})
    assert {i["status"] for i in waiting["items"]} == {"waiting"}

    # nothing is released before its moment; each one at its own
    order = ["howe@example.com", "berlin@example.com", "nobody@example.com", "ny@example.com"]
    for n, email in enumerate(order, start=1):
        moment = _epoch(MOMENTS[email])
        monkeypatch.setattr(model, "now", lambda moment=moment: moment - 1)
        assert cenv.watch(campaign_id) is not None
        assert cenv.pending() == []  # a second early: nobody due
        monkeypatch.setattr(model, "now", lambda moment=moment: moment)
        cenv.watch(campaign_id)  # the watch nudges a dispatch, which releases the due
        shown = cenv.run(campaign_id)
        assert cenv.messenger.counts() == dict.fromkeys(["kiri@example.com", *order[:n]], 1)
        assert shown["stats"]["waiting_local"] == 4 - n
        assert shown["status"] == ("sending" if n < 4 else "sent"), n
    assert shown["stats"]["sent"] == 5 and shown["progress"] == 1.0


def test_launched_after_the_moment_everyone_gets_it_at_once(cenv, monkeypatch) -> None:
    list_id = _people(cenv)
    _clock(monkeypatch, "2031-05-05T12:00:00Z")
    campaign_id = cenv.launched([list_id], send_at="2031-05-04", send_at_local="09:00")
    assert cenv.show(campaign_id)["status"] == "sending"
    shown = cenv.run(campaign_id)
    assert shown["status"] == "sent"
    assert cenv.messenger.counts() == dict.fromkeys(PEOPLE, 1)
    assert shown["stats"]["waiting_local"] == 0


def test_launched_midway_the_passed_zones_go_at_once(cenv, monkeypatch) -> None:
    list_id = _people(cenv)
    _clock(monkeypatch, "2031-05-04T08:00:00Z")  # past Kiritimati, Lord Howe and Berlin
    campaign_id = cenv.launched([list_id], send_at="2031-05-04", send_at_local="09:00")
    shown = cenv.run(campaign_id)
    assert sorted(cenv.messenger.counts()) == ["berlin@example.com", "howe@example.com",
                                                 "kiri@example.com"]
    assert shown["stats"]["waiting_local"] == 2
    assert set(_waiting(cenv, campaign_id)) == {"nobody@example.com", "ny@example.com"}


def test_the_default_zone_is_the_setting(make_cenv, monkeypatch) -> None:
    with make_cenv(default_timezone="Asia/Tokyo") as cenv:
        list_id = _people(cenv, {"nobody@example.com": None})
        _clock(monkeypatch, "2031-05-04T00:00:00Z")  # 09:00 in Tokyo
        campaign_id = cenv.launched([list_id], send_at="2031-05-04", send_at_local="09:00")
        assert cenv.run(campaign_id)["status"] == "sent"
        _clock(monkeypatch, "2031-05-03T23:59:00Z")
        campaign_id = cenv.launched([list_id], send_at="2031-05-04", send_at_local="09:00")
        cenv.run(campaign_id)
        assert _waiting(cenv, campaign_id) == {"nobody@example.com": "2031-05-04T00:00:00Z"}


def test_an_address_in_two_lists_waits_and_is_sent_once(cenv, monkeypatch) -> None:
    list_id = _people(cenv, {"ny@example.com": "America/New_York"})
    other = cenv.manual_list("ny@example.com")
    _clock(monkeypatch, "2031-05-04T00:00:00Z")
    campaign_id = cenv.launched([list_id, other], send_at="2031-05-04", send_at_local="09:00")
    shown = cenv.run(campaign_id)
    assert (shown["stats"]["targeted"], shown["stats"]["waiting_local"]) == (1, 1)
    campaign = cenv.store.r.hgetall(cenv.store.keys.campaign(campaign_id))
    # dispatch run again over the same page (a crash before its cursor moved): held once
    h = {**campaign}
    from outreach.campaigns.dispatch import verdicts

    lead_id = cenv.lead_of("ny@example.com")["id"]
    page = verdicts(cenv.store, "lead", [lead_id])
    assert local_time.hold(cenv.store, cenv.config, campaign_id, h, page) == []
    assert cenv.show(campaign_id)["stats"]["targeted"] == 1
    _clock(monkeypatch, "2031-05-04T13:00:00Z")
    cenv.watch(campaign_id)
    assert cenv.run(campaign_id)["status"] == "sent"
    assert cenv.messenger.counts() == {"ny@example.com": 1}


def test_pause_holds_the_waiting_and_resume_sends_the_due_at_once(cenv, monkeypatch) -> None:
    list_id = _people(cenv)
    _clock(monkeypatch, "2031-05-04T00:00:00Z")
    campaign_id = cenv.launched([list_id], send_at="2031-05-04", send_at_local="09:00")
    cenv.run(campaign_id)
    assert sorted(cenv.messenger.counts()) == ["howe@example.com", "kiri@example.com"]
    cenv.post(f"/api/v1/campaigns/{campaign_id}/pause")
    _clock(monkeypatch, "2031-05-04T10:00:00Z")
    assert cenv.watch(campaign_id) is None
    assert cenv.dispatch(campaign_id) == 0  # a stray dispatch releases nobody while paused
    cenv.pump()
    assert len(cenv.messenger.counts()) == 2
    assert cenv.show(campaign_id)["stats"]["waiting_local"] == 3
    cenv.post(f"/api/v1/campaigns/{campaign_id}/resume")
    shown = cenv.run(campaign_id)
    assert set(cenv.messenger.counts()) == set(PEOPLE) - {"ny@example.com"}
    assert shown["stats"]["waiting_local"] == 1 and shown["status"] == "sending"


def test_cancel_drops_the_waiting(cenv, monkeypatch) -> None:
    list_id = _people(cenv)
    _clock(monkeypatch, "2031-05-04T00:00:00Z")
    campaign_id = cenv.launched([list_id], send_at="2031-05-04", send_at_local="09:00")
    cenv.run(campaign_id)
    shown = cenv.post(f"/api/v1/campaigns/{campaign_id}/cancel").get_json()
    assert shown["status"] == "cancelled" and shown["stats"]["waiting_local"] == 0
    assert _waiting(cenv, campaign_id) == {}
    _clock(monkeypatch, "2031-05-05T00:00:00Z")
    cenv.dispatch(campaign_id)
    cenv.pump()
    assert sorted(cenv.messenger.counts()) == ["howe@example.com", "kiri@example.com"]


def test_an_erased_person_who_waits_is_never_sent(cenv, monkeypatch) -> None:
    list_id = _people(cenv)
    _clock(monkeypatch, "2031-05-04T00:00:00Z")
    campaign_id = cenv.launched([list_id], send_at="2031-05-04", send_at_local="09:00")
    cenv.run(campaign_id)
    assert cenv.erase("ny@example.com")["status"] == "done"
    assert "ny@example.com" not in _waiting(cenv, campaign_id)
    _clock(monkeypatch, "2031-05-04T14:00:00Z")
    cenv.watch(campaign_id)
    shown = cenv.run(campaign_id)
    assert shown["status"] == "sent"
    assert shown["stats"]["waiting_local"] == 0
    assert set(cenv.messenger.counts()) == set(PEOPLE) - {"ny@example.com"}


def test_release_keeps_to_the_send_window(cenv, monkeypatch) -> None:
    """Batches of 3, 2 outstanding at most: 10 people due at once go 6 now, then the rest
    as batches finish."""
    people = {f"p{i}@example.com": "America/New_York" for i in range(10)}
    list_id = _people(cenv, people)
    _clock(monkeypatch, "2031-05-04T00:00:00Z")
    campaign_id = cenv.launched([list_id], send_at="2031-05-04", send_at_local="09:00")
    cenv.run(campaign_id)
    assert cenv.show(campaign_id)["stats"]["waiting_local"] == 10
    _clock(monkeypatch, "2031-05-04T13:00:00Z")
    cenv.watch(campaign_id)
    assert cenv.pending() == [("dispatch", (campaign_id,))]
    assert cenv.dispatch(campaign_id) == 2
    assert cenv.show(campaign_id)["stats"]["waiting_local"] == 4
    cenv.pump()  # finished batches nudge dispatch, which releases the rest
    shown = cenv.run(campaign_id)
    assert shown["status"] == "sent"
    assert cenv.messenger.counts() == dict.fromkeys(people, 1)


@pytest.mark.parametrize(("change", "field"), [
    ({"send_at": "2031-05-04", "send_at_local": "9:00"}, "send_at_local"),
    ({"send_at": "2031-05-04", "send_at_local": "24:00"}, "send_at_local"),
    ({"send_at": "2031-05-04", "send_at_local": "12:60"}, "send_at_local"),
    ({"send_at": "2031-05-04", "send_at_local": "noon"}, "send_at_local"),
    ({"send_at": "2031-05-04", "send_at_local": "09:00:00"}, "send_at_local"),
    ({"send_at": "2031-05-04", "send_at_local": 900}, "send_at_local"),
    ({"send_at_local": "09:00"}, "send_at"),
    ({"send_at": None, "send_at_local": "09:00"}, "send_at"),
    ({"send_at": "2031-05-04T09:00:00Z", "send_at_local": "09:00"}, "send_at"),
    ({"send_at": "2031-02-30", "send_at_local": "09:00"}, "send_at"),
])
def test_local_time_validation(cenv, check_error, change, field) -> None:
    list_id = cenv.leads("ann@example.com")
    body = {"name": "x", "template_id": cenv.template(), "list_ids": [list_id], **change}
    fields = check_error(cenv.post("/api/v1/campaigns", json=body), 422)["fields"]
    assert set(fields) == {field}
    assert cenv.get("/api/v1/campaigns").get_json()["items"] == []


def test_a_plain_campaign_has_no_local_time(cenv) -> None:
    campaign_id = cenv.campaign([cenv.leads("a@example.com")], send_at="2031-05-04")
    shown = cenv.show(campaign_id)
    assert (shown["send_at"], shown["send_at_local"]) == ("2031-05-04T00:00:00Z", None)
