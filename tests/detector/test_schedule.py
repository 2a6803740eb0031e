from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from detector.schedule import ScheduleError, TimeWindow, WeeklySchedule, load_timezone, parse_days

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def local(tz: ZoneInfo, text: str) -> datetime:
    """An aware local datetime from 'YYYY-MM-DD HH:MM' (2026-06-01 is a Monday)."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=tz)


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc)


def schedule(windows: list[tuple[list[str], str, str]], tz: str = "Asia/Shanghai") -> WeeklySchedule:
    return WeeklySchedule.from_windows([{"days": d, "start": s, "end": e} for d, s, e in windows], tz)


WEEKDAY_EVENINGS = [(["mon-fri"], "18:00", "22:00")]
FRIDAY_NIGHT = [(["fri"], "22:00", "02:00")]
SUNDAY_NIGHT = [(["sun"], "23:00", "01:00")]
WORKDAYS = [(["mon-fri"], "00:00", "24:00")]


@pytest.mark.parametrize(
    "windows, when, active",
    [
        # Plain window: start inclusive, end exclusive, minute resolution.
        (WEEKDAY_EVENINGS, "2026-06-01 17:59", False),
        (WEEKDAY_EVENINGS, "2026-06-01 18:00", True),
        (WEEKDAY_EVENINGS, "2026-06-01 21:59", True),
        (WEEKDAY_EVENINGS, "2026-06-01 22:00", False),
        (WEEKDAY_EVENINGS, "2026-06-06 19:00", False),  # Saturday
        # Weekday boundary: Friday 23:59 vs Saturday 00:00, Sunday 23:59 vs Monday 00:00.
        (WORKDAYS, "2026-06-05 23:59", True),
        (WORKDAYS, "2026-06-06 00:00", False),
        (WORKDAYS, "2026-06-07 23:59", False),
        (WORKDAYS, "2026-06-08 00:00", True),
        # Crossing midnight: belongs to the start day.
        (FRIDAY_NIGHT, "2026-06-05 21:59", False),
        (FRIDAY_NIGHT, "2026-06-05 22:00", True),
        (FRIDAY_NIGHT, "2026-06-06 01:59", True),
        (FRIDAY_NIGHT, "2026-06-06 02:00", False),
        (FRIDAY_NIGHT, "2026-06-05 01:00", False),  # Friday early morning is Thursday night's
        (FRIDAY_NIGHT, "2026-06-06 22:30", False),  # Saturday night is not Friday's
        # Crossing midnight into the next week: Sunday night runs into Monday.
        (SUNDAY_NIGHT, "2026-06-07 23:30", True),
        (SUNDAY_NIGHT, "2026-06-08 00:30", True),
        (SUNDAY_NIGHT, "2026-06-08 01:00", False),
        (SUNDAY_NIGHT, "2026-06-01 00:30", True),  # the Monday of the week before, too
        (SUNDAY_NIGHT, "2026-06-06 23:30", False),
        (SUNDAY_NIGHT, "2026-06-08 23:30", False),
    ],
)
def test_active_in_shanghai_local_time(windows, when, active):
    assert schedule(windows).active(local(SHANGHAI, when)) is active


def test_utc_input_and_local_input_agree():
    s = schedule(WEEKDAY_EVENINGS)
    # Monday 18:30 in Shanghai is Monday 10:30 UTC; 18:30 UTC is already Tuesday 02:30 in Shanghai.
    assert s.active(utc("2026-06-01 10:30")) is True
    assert s.active(local(SHANGHAI, "2026-06-01 18:30")) is True
    assert s.active(utc("2026-06-01 18:30")) is False
    # Any aware zone is converted to the schedule's zone first.
    assert s.active(local(BERLIN, "2026-06-01 12:30")) is True  # = 18:30 in Shanghai (CEST, UTC+2)


@pytest.mark.parametrize(
    "when_utc, active",
    [
        ("2026-01-12 16:30", False),  # Monday, winter: 16:30 UTC = 17:30 CET
        ("2026-01-12 17:00", True),  # 18:00 CET
        ("2026-07-13 16:00", True),  # Monday, summer: 16:00 UTC = 18:00 CEST
        ("2026-07-13 20:00", False),  # 22:00 CEST
    ],
)
def test_berlin_keeps_wall_clock_hours_across_dst(when_utc, active):
    assert schedule(WEEKDAY_EVENINGS, "Europe/Berlin").active(utc(when_utc)) is active


@pytest.mark.parametrize(
    "windows, when_utc, active",
    [
        # 2026-03-29 (Sunday): clocks jump from 02:00 CET to 03:00 CEST at 01:00 UTC.
        ([(["sun"], "01:00", "03:00")], "2026-03-29 00:59", True),  # 01:59 CET
        ([(["sun"], "01:00", "03:00")], "2026-03-29 01:00", False),  # 03:00 CEST: the window lasted 1 h
        ([(["sun"], "02:00", "04:00")], "2026-03-29 00:59", False),
        ([(["sun"], "02:00", "04:00")], "2026-03-29 01:00", True),  # starts at the jump
        ([(["sun"], "02:00", "04:00")], "2026-03-29 02:00", False),  # 04:00 CEST
        ([(["sun"], "02:15", "02:45")], "2026-03-29 01:30", False),  # a window inside the gap never happens
    ],
)
def test_berlin_spring_forward_day(windows, when_utc, active):
    assert schedule(windows, "Europe/Berlin").active(utc(when_utc)) is active


@pytest.mark.parametrize(
    "windows, tz, start_utc, change_utc",
    [
        (WEEKDAY_EVENINGS, "Asia/Shanghai", "2026-06-01 02:00", "2026-06-01 10:00"),  # Mon 10:00 -> 18:00 local
        (WEEKDAY_EVENINGS, "Asia/Shanghai", "2026-06-05 13:00", "2026-06-05 14:00"),  # Fri 21:00 -> 22:00 local
        (WEEKDAY_EVENINGS, "Asia/Shanghai", "2026-06-05 15:00", "2026-06-08 10:00"),  # over the weekend
        (SUNDAY_NIGHT, "Asia/Shanghai", "2026-06-07 15:30", "2026-06-07 17:00"),  # Sun 23:30 -> Mon 01:00 local
        ([(["sun"], "01:00", "03:00")], "Europe/Berlin", "2026-03-29 00:30", "2026-03-29 01:00"),  # ends at the jump
        ([(["sun"], "02:00", "04:00")], "Europe/Berlin", "2026-03-29 00:30", "2026-03-29 01:00"),  # starts at it
        ([(["sun"], "02:00", "04:00")], "Europe/Berlin", "2026-03-29 01:00", "2026-03-29 02:00"),
        ([(["sun"], "02:30", "03:30")], "Europe/Berlin", "2026-10-25 00:00", "2026-10-25 00:30"),  # fall back
        ([(["sun"], "02:30", "03:30")], "Europe/Berlin", "2026-10-25 00:30", "2026-10-25 01:00"),  # 02:00 again
        ([(["sun"], "02:30", "03:30")], "Europe/Berlin", "2026-10-25 01:00", "2026-10-25 01:30"),  # ... 02:30 again
    ],
)
def test_next_change(windows, tz, start_utc, change_utc):
    assert schedule(windows, tz).next_change(utc(start_utc)) == utc(change_utc)


@pytest.mark.parametrize("windows", [[], [(["mon-sun"], "00:00", "24:00")]])
def test_next_change_is_none_for_constant_schedules(windows):
    assert schedule(windows).next_change(utc("2026-06-01 00:00")) is None


@pytest.mark.parametrize(
    "windows, tz, start_utc",
    [
        ([(["mon", "wed"], "07:30", "09:00"), (["sun"], "22:00", "02:00")], "Asia/Shanghai", "2026-06-06 00:00"),
        ([(["sun"], "01:30", "02:30"), (["sat-sun"], "23:00", "03:00")], "Europe/Berlin", "2026-03-27 12:00"),
        ([(["sun"], "01:30", "02:30"), (["sat-sun"], "23:00", "03:00")], "Europe/Berlin", "2026-10-23 12:00"),
    ],
)
def test_next_change_agrees_with_a_minute_by_minute_scan(windows, tz, start_utc):
    s = schedule(windows, tz)
    t = utc(start_utc)
    expected = []
    state = s.active(t)
    for minute in range(1, 4 * 24 * 60):
        now = t + timedelta(minutes=minute)
        if s.active(now) != state:
            expected.append(now)
            state = not state
    found, cursor = [], t
    while len(found) < len(expected):
        cursor = s.next_change(cursor)
        found.append(cursor)
    assert expected and found == expected


@pytest.mark.parametrize(
    "days, start, end, message",
    [
        (["mon"], "25:00", "26:00", "out of range"),
        (["mon"], "18:60", "20:00", "out of range"),
        (["mon"], "6pm", "20:00", "not HH:MM"),
        (["mon"], "24:00", "02:00", "out of range"),  # 24:00 ends a window, it cannot start one
        (["mon"], "18:00", "18:00", "use 00:00-24:00"),
        (["fry"], "18:00", "20:00", "day 'fry'"),
        ([], "18:00", "20:00", "at least one day"),
    ],
)
def test_bad_windows_are_rejected_with_the_value(days, start, end, message):
    with pytest.raises(ScheduleError, match=message):
        TimeWindow.parse(days, start, end)


def test_day_ranges_wrap_over_the_weekend():
    assert sorted(parse_days(["sat-mon"])) == [0, 5, 6]
    assert sorted(parse_days("mon-fri")) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name", ["Asia/Shangai", "", "../etc/passwd", "CET+8"])
def test_unknown_time_zones_are_rejected(name):
    with pytest.raises(ScheduleError, match="unknown time zone"):
        load_timezone(name)


def test_naive_datetimes_are_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule(WEEKDAY_EVENINGS).active(datetime(2026, 6, 1, 18, 0))


def test_from_windows_names_the_bad_window():
    with pytest.raises(ScheduleError, match="window 1: time '7' is not HH:MM"):
        WeeklySchedule.from_windows([{"start": "06:00", "end": "07:00"}, {"start": "7", "end": "08:00"}], "UTC")
