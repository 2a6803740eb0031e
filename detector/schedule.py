"""Weekly schedules in a camera's local time zone, with minute resolution.

A schedule answers one question for a rule or a zone: *is it in force at this instant?* Vending may be
allowed on a square 18:00–22:00 on weekdays; a no-vending street may be enforced 07:00–21:00. Times are
wall-clock times where the camera stands (an IANA zone such as ``Asia/Shanghai``), so a schedule keeps
meaning "18:00" across daylight-saving changes.

A window whose end is not after its start crosses midnight and belongs to the day it starts on:
``{days: [fri], start: "22:00", end: "02:00"}`` covers Friday 22:00 to Saturday 02:00, and a Sunday
window crossing midnight runs into Monday of the next week.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from detector.errors import StreetwatchError

__all__ = ["WEEKDAYS", "ScheduleError", "TimeWindow", "WeeklySchedule", "WindowConfig", "parse_days", "parse_hhmm", "load_timezone"]

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MINUTES_PER_DAY = 24 * 60
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")
# next_change() looks this far ahead; a weekly schedule that has not changed within 8 days never will.
_LOOKAHEAD = timedelta(days=8)


class ScheduleError(StreetwatchError, ValueError):
    """A schedule window or time zone is malformed. The message names the offending value."""


def load_timezone(name: str) -> ZoneInfo:
    """The IANA time zone called `name`, or a ScheduleError naming it.

    Example:
        >>> load_timezone("Asia/Shanghai").key
        'Asia/Shanghai'
    """
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise ScheduleError(f"unknown time zone {name!r}: use an IANA name such as 'Asia/Shanghai'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}: use an IANA name such as 'Asia/Shanghai'") from None


def parse_hhmm(text: str, *, allow_24: bool = False) -> int:
    """Minutes since midnight of ``"HH:MM"``; ``"24:00"`` only where `allow_24` (a window's end).

    Example:
        >>> parse_hhmm("18:30"), parse_hhmm("24:00", allow_24=True)
        (1110, 1440)
    """
    match = _HHMM.match(text) if isinstance(text, str) else None
    if match is None:
        raise ScheduleError(f"time {text!r} is not HH:MM")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if allow_24 and (hours, minutes) == (24, 0):
        return _MINUTES_PER_DAY
    if hours > 23 or minutes > 59:
        limit = "00:00..24:00" if allow_24 else "00:00..23:59"
        raise ScheduleError(f"time {text!r} is out of range ({limit})")
    return hours * 60 + minutes


def parse_days(days: Iterable[str]) -> frozenset[int]:
    """Weekday numbers (Monday = 0) of day names and ranges such as ``"mon-fri"`` or ``"sat-mon"``.

    Example:
        >>> sorted(parse_days(["mon-wed", "sun"]))
        [0, 1, 2, 6]
    """
    if isinstance(days, str):
        days = [days]  # a lone "mon-fri" is what a user means, not the characters m, o, n
    out: set[int] = set()
    for item in days:
        text = str(item).strip().lower()
        first, sep, last = text.partition("-")
        if first not in WEEKDAYS or (sep and last not in WEEKDAYS):
            raise ScheduleError(f"day {item!r} is not one of {', '.join(WEEKDAYS)} or a range like 'mon-fri'")
        start = WEEKDAYS.index(first)
        stop = WEEKDAYS.index(last) if sep else start
        span = (stop - start) % 7  # "sat-mon" wraps over the week's end
        out.update((start + k) % 7 for k in range(span + 1))
    if not out:
        raise ScheduleError("a window needs at least one day")
    return frozenset(out)


def _format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class TimeWindow:
    """One weekly window: on each of `days`, from `start_min` until `end_min` (local wall time).

    Attributes:
        days: Weekdays the window starts on, Monday = 0 … Sunday = 6.
        start_min: Start, minutes since local midnight (0..1439), inclusive.
        end_min: End, minutes since local midnight (1..1440), exclusive. When it is not after `start_min`
            the window crosses midnight and ends on the following day.

    Example:
        >>> w = TimeWindow.parse(["fri"], "22:00", "02:00")
        >>> w.contains(4, 23 * 60), w.contains(5, 60), w.contains(5, 120)
        (True, True, False)
    """

    days: frozenset[int]
    start_min: int
    end_min: int

    def __post_init__(self) -> None:
        if not self.days or any(d not in range(7) for d in self.days):
            raise ScheduleError(f"window days must be weekday numbers 0..6, got {sorted(self.days)}")
        if not 0 <= self.start_min < _MINUTES_PER_DAY:
            raise ScheduleError(f"window start {self.start_min} min is outside 0..1439")
        if not 0 <= self.end_min <= _MINUTES_PER_DAY:
            raise ScheduleError(f"window end {self.end_min} min is outside 0..1440")
        if self.start_min == self.end_min % _MINUTES_PER_DAY and self.end_min != _MINUTES_PER_DAY:
            # Equal ends could mean "never" or "all day"; make the user say which.
            raise ScheduleError(
                f"window start and end are both {_format_minutes(self.start_min)}: "
                "use 00:00-24:00 for a whole day"
            )

    @classmethod
    def parse(cls, days: Iterable[str], start: str, end: str) -> "TimeWindow":
        """Build a window from day names and ``"HH:MM"`` times (``end`` may be ``"24:00"``)."""
        return cls(parse_days(days), parse_hhmm(start), parse_hhmm(end, allow_24=True))

    @property
    def crosses_midnight(self) -> bool:
        return self.end_min <= self.start_min

    def contains(self, weekday: int, minute_of_day: int) -> bool:
        """Whether local (`weekday`, `minute_of_day`) lies in the window."""
        if not self.crosses_midnight:
            return weekday in self.days and self.start_min <= minute_of_day < self.end_min
        # The part after midnight belongs to the previous day's window (Sunday's runs into Monday).
        return (weekday in self.days and minute_of_day >= self.start_min) or (
            (weekday - 1) % 7 in self.days and minute_of_day < self.end_min
        )

    def describe(self) -> str:
        days = ",".join(WEEKDAYS[d] for d in sorted(self.days))
        return f"{days} {_format_minutes(self.start_min)}-{_format_minutes(self.end_min)}"


@dataclass(frozen=True)
class WeeklySchedule:
    """A set of weekly windows in one IANA time zone; active when any window contains the local time.

    Attributes:
        windows: The windows; an empty tuple is never active.
        timezone: IANA zone name of the camera, e.g. ``"Asia/Shanghai"``.

    Example:
        >>> from datetime import datetime, timezone
        >>> s = WeeklySchedule.from_windows([{"days": ["mon-fri"], "start": "18:00", "end": "22:00"}],
        ...                                 "Asia/Shanghai")
        >>> s.active(datetime(2026, 6, 1, 10, 30, tzinfo=timezone.utc))  # Monday 18:30 in Shanghai
        True
        >>> s.next_change(datetime(2026, 6, 1, 10, 30, tzinfo=timezone.utc)).isoformat()
        '2026-06-01T14:00:00+00:00'
    """

    windows: tuple[TimeWindow, ...]
    timezone: str
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "windows", tuple(self.windows))
        object.__setattr__(self, "_tz", load_timezone(self.timezone))

    @classmethod
    def from_windows(cls, windows: Iterable[Mapping], timezone: str) -> "WeeklySchedule":
        """Build from mappings ``{days: [...], start: "HH:MM", end: "HH:MM"}`` (days default to every day)."""
        parsed = []
        for i, w in enumerate(windows):
            try:
                parsed.append(TimeWindow.parse(w.get("days", WEEKDAYS), w["start"], w["end"]))
            except KeyError as exc:
                raise ScheduleError(f"window {i}: missing {exc.args[0]!r}") from None
            except ScheduleError as exc:
                raise ScheduleError(f"window {i}: {exc}") from None
        return cls(tuple(parsed), timezone)

    def _local(self, ts: datetime) -> datetime:
        if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
            raise ValueError(f"schedule times must be timezone-aware datetimes (UTC), got {ts!r}")
        return ts.astimezone(self._tz)

    def active(self, ts: datetime) -> bool:
        """Whether the schedule is in force at instant `ts` (aware; any zone, usually UTC)."""
        local = self._local(ts)
        minute = local.hour * 60 + local.minute
        return any(w.contains(local.weekday(), minute) for w in self.windows)

    def next_change(self, ts: datetime) -> datetime | None:
        """The first instant after `ts` at which `active` differs from `active(ts)` (UTC), or None.

        None means the schedule never changes (no windows, or windows covering the whole week). Exact
        across daylight-saving jumps: a window ending in a skipped hour ends at the jump.
        """
        state = self.active(ts)
        boundaries = sorted({w.start_min for w in self.windows} | {w.end_min % _MINUTES_PER_DAY for w in self.windows})
        if not boundaries:
            return None
        t = ts.astimezone(timezone.utc)
        limit = t + _LOOKAHEAD
        while t < limit:
            offset = self._local(t).utcoffset()
            wall = self._local(t).replace(tzinfo=None)
            candidate = _next_wall_boundary(wall, boundaries) - offset
            candidate = candidate.replace(tzinfo=timezone.utc)
            if self._local(candidate).utcoffset() != offset:
                # The UTC offset changes before the next boundary (DST): the jump itself may switch state.
                candidate = self._offset_change(t, candidate, offset)
            if self.active(candidate) != state:
                return candidate
            t = candidate
        return None

    def _offset_change(self, lo: datetime, hi: datetime, offset: timedelta) -> datetime:
        # First whole second in (lo, hi] whose UTC offset differs from `offset` (binary search).
        lo_s, hi_s = int(lo.timestamp()), int(hi.timestamp())
        while hi_s - lo_s > 1:
            mid_s = (lo_s + hi_s) // 2
            if datetime.fromtimestamp(mid_s, self._tz).utcoffset() == offset:
                lo_s = mid_s
            else:
                hi_s = mid_s
        return datetime.fromtimestamp(hi_s, timezone.utc)

    def describe(self) -> str:
        return f"{'; '.join(w.describe() for w in self.windows) or 'never'} ({self.timezone})"


def _next_wall_boundary(wall: datetime, boundaries_min: Sequence[int]) -> datetime:
    """The first local wall time strictly after `wall` that falls on one of the boundary minutes."""
    midnight = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    for day in range(3):
        for minute in boundaries_min:
            candidate = midnight + timedelta(days=day, minutes=minute)
            if candidate > wall:
                return candidate
    raise AssertionError("unreachable: every day has the same boundaries")  # pragma: no cover


class WindowConfig(BaseModel):
    """One weekly window as configuration files write it, local time; ``end`` before ``start`` crosses midnight.

    The configuration's form of a `TimeWindow` (camera zones and rules, drone no-vending layers).
    """

    model_config = ConfigDict(extra="forbid")

    days: list[str] = Field(
        default_factory=lambda: list(WEEKDAYS), min_length=1, max_length=14,
        description="Days the window starts on: mon..sun, or ranges such as mon-fri (default: every day).",
    )
    start: str = Field(description="Start time HH:MM, local time (quote it in YAML: \"18:00\").",
                       min_length=4, max_length=5)
    end: str = Field(description="End time HH:MM (24:00 allowed); at or before start it ends the next day.",
                     min_length=4, max_length=5)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _yaml_sexagesimal_time(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 18:30 as the base-60 integer 1110, which is exactly minutes since
        # midnight; turn it back into the text the user wrote instead of failing on a correct-looking file.
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 24 * 60:
            return f"{value // 60:02d}:{value % 60:02d}"
        return value

    @model_validator(mode="after")
    def _window_valid(self) -> "WindowConfig":
        self.to_window()  # ScheduleError is a ValueError: its message becomes the problem
        return self

    def to_window(self) -> TimeWindow:
        return TimeWindow.parse(self.days, self.start, self.end)
