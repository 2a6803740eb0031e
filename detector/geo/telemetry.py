"""Drone telemetry in: DJI ``.SRT`` sidecars and geotagged stills → per-frame `detector.types.FrameGeo`.

DJI writes one subtitle cue per video frame (or per second on older aircraft) whose text carries the
aircraft's position, altitude and, on some models, the gimbal and body attitude. The text format changed
with almost every generation; `parse_srt` detects which one a file uses and reports it as `TelemetryTrack.format`:

==================  ==========================================================================================
``dji_bracket``     Mavic 3 / Air 2S / Mini / Avata: ``[latitude: …] [longitude: …] [rel_alt: … abs_alt: …]``
                    (or ``[altitude: …]``), ``FrameCnt``/``SrtCnt``, a date-time line, optional
                    ``[focal_len: …]``, ``[dzoom_ratio: …]`` and ``[gb_yaw: … gb_pitch: … gb_roll: …]``.
``dji_mavic2``      Mavic 2: ``[latitude : …] [longtitude : …]`` (DJI's spelling), optional ``[altitude: …]``.
``dji_gps_lon_lat`` Mavic Pro / Phantom 3-4 / Mavic Mini: ``GPS(lon,lat,satellites)``, ``HOME(lon,lat)``,
                    ``BAROMETER:h`` or ``Hb:h`` or ``H hm`` (height above take-off).
``dji_matrice``     Matrice 300: ``GPS(lat,lon,altM) BAROMETER:hM`` — the *other* coordinate order.
``dji_p4rtk``       Phantom 4 RTK: the ``GPS (lon, lat, n)`` line plus ``F.PRY (p°, r°, y°)`` (aircraft) and
                    ``G.PRY (p°, r°, y°)`` (gimbal).
==================  ==========================================================================================

Times: each cue's start (``00:00:01,033 --> …``) is the sample's ``t_s``, seconds from the start of the
video; the date-time line, when present, is the aircraft's *local* wall clock without a zone, kept naive
(`TelemetrySample.local_time`) and made aware only with a configured `TelemetryOptions.timezone`.

Angles follow DJI (and `detector.types.FrameGeo`): yaw clockwise from true north in (-180, 180],
pitch 0 at the horizon and -90 straight down, roll positive right side down (DJI's gimbal roll, passed
through unchanged).

Bad input never disappears silently: unparseable cues, 0,0 positions (no GPS fix yet), cues out of time
order and isolated position glitches are dropped and counted per reason (`TelemetryTrack.problems`, with
the first line of each in `problem_lines`); a file with no usable sample raises `TelemetryError`.

Example:
    >>> srt = '''1
    ... 00:00:00,000 --> 00:00:00,033
    ... [latitude: 31.230400] [longitude: 121.473700] [rel_alt: 50.000 abs_alt: 54.000]
    ...
    ... 2
    ... 00:00:00,033 --> 00:00:00,066
    ... [latitude: 31.230410] [longitude: 121.473700] [rel_alt: 50.000 abs_alt: 54.000]
    ... '''
    >>> track = parse_srt_text(srt, source="demo.SRT")
    >>> track.format, len(track.samples), track.end_s
    ('dji_bracket', 2, 0.066)
    >>> geo = track.at(0.0165)
    >>> round(geo.lat_deg, 6), geo.alt_m, geo.pitch_deg, geo.pitch_source
    (31.230405, 50.0, -90.0, 'config')
"""

from __future__ import annotations

import io
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import exifread
import numpy as np

from detector.errors import StreetwatchError
from detector.geo.enu import LocalFrame
from detector.types import FRAME_GEO_ANGLE_SOURCES, FrameGeo

__all__ = [
    "FORMATS",
    "NoGpsError",
    "SkippedStill",
    "StillGeo",
    "StillsResult",
    "TelemetryAt",
    "TelemetryError",
    "TelemetryOptions",
    "TelemetrySample",
    "TelemetryTrack",
    "parse_srt",
    "parse_srt_text",
    "read_still_geo",
    "read_stills",
]

FORMAT_BRACKET = "dji_bracket"
FORMAT_MAVIC2 = "dji_mavic2"
FORMAT_GPS_LON_LAT = "dji_gps_lon_lat"
FORMAT_MATRICE = "dji_matrice"
FORMAT_P4RTK = "dji_p4rtk"
FORMATS: tuple[str, ...] = (FORMAT_BRACKET, FORMAT_MAVIC2, FORMAT_GPS_LON_LAT, FORMAT_MATRICE, FORMAT_P4RTK)

SOURCE_GIMBAL, SOURCE_FLIGHT, SOURCE_TRACK, SOURCE_CONFIG = FRAME_GEO_ANGLE_SOURCES

# Reasons a cue is dropped (keys of `TelemetryTrack.problems`) and how a person reads them.
PROBLEM_TEXT: dict[str, str] = {
    "no_cue_time": "subtitle block without a readable cue time (HH:MM:SS,mmm --> HH:MM:SS,mmm)",
    "no_position": "cue without a latitude/longitude",
    "no_gps_fix": "latitude/longitude 0,0 (no GPS fix yet)",
    "out_of_range": "latitude outside ±90° or longitude outside ±180°",
    "time_not_increasing": "cue starts no later than the cue before it",
    "position_jump": "isolated position jump (faster than the aircraft can fly)",
    "bad_wall_time": "unreadable date-time line (the sample is kept without wall time)",
}

_NUM = r"[-+]?\d+(?:\.\d+)?"
_CUE = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*-->\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})")
_INDEX = re.compile(r"^\s*\d+\s*$")
_TAG = re.compile(r"<[^<>]*>")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^\s,\]]+)")
# GPS(a,b,c) / GPS (a, b, c): the third value is satellites (Mavic Pro, P4) or altitude with a unit (Matrice).
_GPS = re.compile(rf"\bGPS\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*(?:,\s*({_NUM})\s*([A-Za-z]*)\s*)?\)")
_BARO = re.compile(rf"\bBAROMETER\s*[:(]\s*({_NUM})")
_HB = re.compile(rf"\bHb\s*:\s*({_NUM})")
_H = re.compile(rf"(?<![\w.])H\s+({_NUM})\s*m\b")
# F.PRY (2.7°, -7.0°, 110.1°): the degree sign may arrive mis-decoded, so anything but digits/sign/comma.
_PRY = r"\s*\(\s*({n})[^,\d()+-]*,\s*({n})[^,\d()+-]*,\s*({n})[^,\d()+-]*\)".format(n=_NUM)
_FPRY = re.compile(r"\bF\.PRY" + _PRY)
_GPRY = re.compile(r"\bG\.PRY" + _PRY)
_COUNT = re.compile(r"\b(?:FrameCnt|SrtCnt)\s*:\s*(\d+)")
_WALL = re.compile(
    r"\b(\d{4})[-./](\d{1,2})[-./](\d{1,2})[ T]+(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d{1,6}))?(?:,(\d{3}))?"
)

# An aircraft is not faster than this; a cue that leaves its neighbours faster is a glitch. Generous on
# purpose (DJI FPV tops out near 40 m/s) plus slack for 4-decimal legacy positions (~11 m steps).
_MAX_SPEED_M_S = 60.0
_JUMP_SLACK_M = 30.0


class TelemetryError(StreetwatchError, ValueError):
    """A telemetry file (SRT or still) is missing, unreadable or has no usable sample; the message names it."""


class NoGpsError(TelemetryError):
    """A still carries no GPS position (or only 0,0); callers list it and skip it."""


# --- options -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TelemetryOptions:
    """How to fill what the telemetry lacks.

    Attributes:
        default_yaw_deg: Camera yaw when neither gimbal, flight nor track heading is known (None: unknown).
        default_pitch_deg: Gimbal pitch when the source has none; -90 is nadir (the usual mapping setup).
        default_roll_deg: Gimbal roll when the source has none.
        heading_baseline_m: Positions this far apart (at least) define the course over ground; shorter
            displacements (hovering, GPS jitter) leave the heading undefined and the last one is carried.
        home_abs_alt_m: Absolute altitude of the take-off point, metres; turns an absolute-only altitude
            (Mavic 2 ``[altitude: …]``) into a relative one. None: such frames have no ``alt_m``.
        timezone: IANA zone of the aircraft's clock (e.g. ``Asia/Shanghai``); DJI writes local time without
            a zone, so without this wall times stay naive.
        hfov_deg: Horizontal field of view to put on every `FrameGeo` (from a camera profile), if known.
    """

    default_yaw_deg: float | None = None
    default_pitch_deg: float = -90.0
    default_roll_deg: float = 0.0
    heading_baseline_m: float = 5.0
    home_abs_alt_m: float | None = None
    timezone: str | None = None
    hfov_deg: float | None = None

    def __post_init__(self) -> None:
        for name in ("default_yaw_deg", "default_pitch_deg", "default_roll_deg", "home_abs_alt_m", "hfov_deg"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise TelemetryError(f"TelemetryOptions.{name} must be finite, got {value}")
        if not -180.0 <= self.default_pitch_deg <= 180.0:
            raise TelemetryError(
                f"TelemetryOptions.default_pitch_deg must lie in [-180, 180], got {self.default_pitch_deg}"
            )
        if not (math.isfinite(self.heading_baseline_m) and self.heading_baseline_m > 0):
            raise TelemetryError(f"TelemetryOptions.heading_baseline_m must be > 0, got {self.heading_baseline_m}")
        if self.hfov_deg is not None and not 0.0 < self.hfov_deg < 180.0:
            raise TelemetryError(f"TelemetryOptions.hfov_deg must lie in (0, 180), got {self.hfov_deg}")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise TelemetryError(f"TelemetryOptions.timezone: unknown IANA time zone {self.timezone!r}") from None

    @property
    def tzinfo(self) -> ZoneInfo | None:
        return ZoneInfo(self.timezone) if self.timezone else None


# --- one sample ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TelemetrySample:
    """One subtitle cue's telemetry, as the aircraft wrote it (None where that cue had no such field).

    Attributes:
        t_s: Cue start, seconds from the start of the video.
        end_s: Cue end, seconds.
        lat_deg: WGS84 latitude.
        lon_deg: WGS84 longitude.
        rel_alt_m: Height above the take-off point (``rel_alt``, ``BAROMETER``, ``Hb``, ``H``), metres.
        abs_alt_m: Absolute altitude (``abs_alt``, or Mavic 2 / Air 2S ``altitude``), metres.
        local_time: The aircraft's wall clock for this cue, naive local time.
        gimbal_yaw_deg: Gimbal yaw (``gb_yaw``, G.PRY third value).
        gimbal_pitch_deg: Gimbal pitch (``gb_pitch``, G.PRY first value).
        gimbal_roll_deg: Gimbal roll (``gb_roll``, G.PRY second value).
        flight_yaw_deg: Aircraft yaw (F.PRY third value).
        flight_pitch_deg: Aircraft pitch (F.PRY first value).
        flight_roll_deg: Aircraft roll (F.PRY second value).
        focal_len_35mm_mm: 35 mm-equivalent focal length (``focal_len``; legacy ``240`` means 24.0 mm).
        dzoom_ratio: Digital zoom (``dzoom_ratio``, decimal form only).
        frame_cnt: DJI's frame counter (``FrameCnt``/``SrtCnt``).
        line_no: 1-based line of the cue in its file, for messages.
    """

    t_s: float
    end_s: float
    lat_deg: float
    lon_deg: float
    rel_alt_m: float | None = None
    abs_alt_m: float | None = None
    local_time: datetime | None = None
    gimbal_yaw_deg: float | None = None
    gimbal_pitch_deg: float | None = None
    gimbal_roll_deg: float | None = None
    flight_yaw_deg: float | None = None
    flight_pitch_deg: float | None = None
    flight_roll_deg: float | None = None
    focal_len_35mm_mm: float | None = None
    dzoom_ratio: float | None = None
    frame_cnt: int | None = None
    line_no: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.t_s) and self.t_s >= 0):
            raise ValueError(f"TelemetrySample.t_s must be finite and >= 0, got {self.t_s}")
        if not -90.0 <= self.lat_deg <= 90.0 or not -180.0 <= self.lon_deg <= 180.0:
            raise ValueError(f"TelemetrySample position out of range: lat {self.lat_deg}, lon {self.lon_deg}")
        if self.local_time is not None and self.local_time.tzinfo is not None:
            raise ValueError("TelemetrySample.local_time is the aircraft's naive local clock; attach a zone later")


# --- SRT parsing ---------------------------------------------------------------------------------------------


@dataclass
class _Cue:
    """A cue before the file-level decisions (coordinate order, glitches) are made."""

    line_no: int
    t_s: float
    end_s: float
    style: str
    first: float  # latitude for bracket formats; GPS(...) first value otherwise
    second: float
    gps_pair: bool  # the position came from a GPS(a,b,…) tuple whose order is decided per file
    fields: dict


def _cue_seconds(h: str, m: str, s: str, frac: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")[:3]) / 1000.0


def _wall_time(text: str) -> tuple[datetime | None, bool]:
    """The date-time in a cue, or None; the flag says a date-time was there but could not be read."""
    m = _WALL.search(text)
    if not m:
        return None, False
    year, month, day, hour, minute, second, frac, extra = m.groups()
    if frac is not None and extra is not None and len(frac) == 3:
        micro = int(frac) * 1000 + int(extra)  # Mavic 2 / Air 2S: "13:40:40,774,808" is s, ms, µs
    elif frac is not None:
        micro = int(frac.ljust(6, "0")[:6])
    else:
        micro = 0
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro), False
    except ValueError:
        return None, True


def _focal_35mm(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    # Air 2S / Mavic 2 write the focal length x10 as an integer ("240" = 24 mm); newer models write "24.00".
    if "." not in raw and value >= 100:
        value /= 10.0
    return value if value > 0 else None


def _float(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _parse_cue_text(text: str) -> tuple[str | None, float | None, float | None, bool, dict]:
    """Tokens of one cue's text → (style, first, second, gps_pair, fields); style None without a position."""
    text = _TAG.sub(" ", text)
    pairs: dict[str, str] = {}
    for inner in _BRACKET.findall(text):
        for key, value in _PAIR.findall(inner):
            pairs.setdefault(key.lower(), value)
    fields: dict = {}
    local_time, bad_time = _wall_time(text)
    fields["local_time"] = local_time
    fields["bad_wall_time"] = bad_time
    count = _COUNT.search(text)
    fields["frame_cnt"] = int(count.group(1)) if count else None
    if "focal_len" in pairs:
        fields["focal_len_35mm_mm"] = _focal_35mm(pairs["focal_len"])
    if "dzoom_ratio" in pairs and "." in pairs["dzoom_ratio"]:
        # Only the decimal form ("1.00") is a ratio we can vouch for; integer forms are left unread.
        fields["dzoom_ratio"] = _float(pairs["dzoom_ratio"])
    fields["gimbal_yaw_deg"] = _float(pairs.get("gb_yaw"))
    fields["gimbal_pitch_deg"] = _float(pairs.get("gb_pitch"))
    fields["gimbal_roll_deg"] = _float(pairs.get("gb_roll"))
    fields["rel_alt_m"] = _float(pairs.get("rel_alt"))
    # "[altitude: …]" (Mavic 2, Air 2S) is the absolute altitude: the public Mavic 2 Zoom sample starts at
    # 214 m on the ground in Lahore, which lies at about that elevation.
    fields["abs_alt_m"] = _float(pairs.get("abs_alt", pairs.get("altitude")))
    gpry = _GPRY.search(text)
    if gpry:
        fields["gimbal_pitch_deg"], fields["gimbal_roll_deg"], fields["gimbal_yaw_deg"] = map(float, gpry.groups())
    fpry = _FPRY.search(text)
    if fpry:
        fields["flight_pitch_deg"], fields["flight_roll_deg"], fields["flight_yaw_deg"] = map(float, fpry.groups())
    if fields["rel_alt_m"] is None:
        for pattern in (_BARO, _HB, _H):
            m = pattern.search(text)
            if m:
                fields["rel_alt_m"] = float(m.group(1))
                break

    lat, lon_key = _float(pairs.get("latitude")), None
    for key in ("longitude", "longtitude"):
        if key in pairs:
            lon_key = key
            break
    lon = _float(pairs.get(lon_key)) if lon_key else None
    if lat is not None and lon is not None:
        style = FORMAT_MAVIC2 if lon_key == "longtitude" else FORMAT_BRACKET
        return style, lat, lon, False, fields
    gps = _GPS.search(text)
    if gps:
        first, second, _third, unit = gps.groups()
        if fpry or gpry:
            style = FORMAT_P4RTK
        elif unit and unit.upper() == "M":
            # The Matrice writes an altitude with its unit: GPS(lat,lon,0.0M). The public M300 sample has 0.0M
            # throughout a 380 s flight, so it is not used; BAROMETER gives the height above take-off.
            style = FORMAT_MATRICE
        else:
            style = FORMAT_GPS_LON_LAT
        return style, float(first), float(second), True, fields
    return None, None, None, False, fields


def _blocks(lines: list[str]) -> Iterable[tuple[int, list[str]]]:
    """Blank-line separated blocks as (1-based line number of their first line, lines)."""
    start, block = 0, []
    for i, line in enumerate(lines):
        if line.strip():
            if not block:
                start = i + 1
            block.append(line)
        elif block:
            yield start, block
            block = []
    if block:
        yield start, block


def _lat_first(style: str) -> bool:
    """Whether a GPS(a,b,…) tuple of this style is (lat, lon): only the Matrice's is, per the public samples."""
    return style == FORMAT_MATRICE


def parse_srt_text(text: str, source: str = "<srt>", options: TelemetryOptions | None = None) -> "TelemetryTrack":
    """Parse the text of a DJI SRT file (any format in `FORMATS`) into a `TelemetryTrack`.

    Args:
        text: The file's text.
        source: File name used in messages.
        options: How to fill missing yaw/pitch/altitude; defaults to `TelemetryOptions()`.

    Raises:
        TelemetryError: No cue yields a usable sample (the message names the file and the first problems).
    """
    options = options or TelemetryOptions()
    problems: Counter[str] = Counter()
    problem_lines: dict[str, int] = {}

    def problem(reason: str, line_no: int) -> None:
        problems[reason] += 1
        problem_lines.setdefault(reason, line_no)

    lines = text.lstrip("\ufeff").splitlines()
    cues: list[_Cue] = []
    n_blocks = 0
    for start, block in _blocks(lines):
        n_blocks += 1
        cue_at = next((k for k in range(min(3, len(block))) if _CUE.match(block[k])), None)
        if cue_at is None:
            problem("no_cue_time", start)
            continue
        line_no = start + cue_at
        g = _CUE.match(block[cue_at]).groups()
        t_s, end_s = _cue_seconds(*g[:4]), _cue_seconds(*g[4:])
        style, first, second, gps_pair, fields = _parse_cue_text(" ".join(block[cue_at + 1 :]))
        if fields.pop("bad_wall_time"):
            problem("bad_wall_time", line_no)
        if style is None:
            problem("no_position", line_no)
            continue
        if first == 0.0 and second == 0.0:
            problem("no_gps_fix", line_no)
            continue
        cues.append(_Cue(line_no, t_s, max(end_s, t_s), style, first, second, gps_pair, fields))

    if not cues:
        if not n_blocks:
            raise TelemetryError(f"{source}: no subtitle cues (empty or not a DJI SRT file)")
        raise _no_usable(source, n_blocks, problems, problem_lines)

    # Coordinate order of GPS(a,b,…) tuples, per file: the format's convention, unless that puts latitudes
    # outside ±90° and the other order does not (then the convention is wrong for this variant).
    lat_first = {style: _lat_first(style) for style in {c.style for c in cues if c.gps_pair}}
    for style in lat_first:
        firsts = np.array([c.first for c in cues if c.style == style])
        seconds = np.array([c.second for c in cues if c.style == style])
        lats = firsts if lat_first[style] else seconds
        other = seconds if lat_first[style] else firsts
        if (np.abs(lats) > 90).any() and not (np.abs(other) > 90).any():
            lat_first[style] = not lat_first[style]

    samples: list[TelemetrySample] = []
    for c in cues:
        if c.gps_pair and not lat_first[c.style]:
            lat, lon = c.second, c.first
        else:
            lat, lon = c.first, c.second
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            problem("out_of_range", c.line_no)
            continue
        if samples and c.t_s <= samples[-1].t_s:
            problem("time_not_increasing", c.line_no)
            continue
        samples.append(
            TelemetrySample(t_s=c.t_s, end_s=c.end_s, lat_deg=lat, lon_deg=lon, line_no=c.line_no, **c.fields)
        )

    samples = _drop_glitches(samples, problem)
    if not samples:
        raise _no_usable(source, n_blocks, problems, problem_lines)
    styles = Counter(c.style for c in cues)
    fmt = max(styles, key=lambda s: (styles[s], -FORMATS.index(s)))
    order = {s: ("lat_lon" if v else "lon_lat") for s, v in lat_first.items()}
    return TelemetryTrack(
        samples=tuple(samples),
        options=options,
        source=source,
        format=fmt,
        problems=dict(problems),
        problem_lines=problem_lines,
        gps_order=order.get(fmt),
    )


def parse_srt(path: str | Path, options: TelemetryOptions | None = None) -> "TelemetryTrack":
    """Read and parse a DJI SRT file; see `parse_srt_text`.

    Raises:
        TelemetryError: The file cannot be read or has no usable sample (the message names it).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TelemetryError(f"{path}: cannot read telemetry file: {exc.strerror or exc}") from None
    if not raw.strip():
        raise TelemetryError(f"{path}: empty file, no telemetry")
    if b"\x00" in raw[:4096]:
        raise TelemetryError(f"{path}: binary file, not a DJI SRT subtitle file")
    # SRT is text; DJI writes UTF-8 (with a BOM on some models). A stray byte must not lose the whole file.
    return parse_srt_text(raw.decode("utf-8-sig", errors="replace"), source=str(path), options=options)


def _drop_glitches(samples: list[TelemetrySample], problem) -> list[TelemetrySample]:
    """Drop single cues that leave both neighbours faster than an aircraft flies, while the neighbours agree."""
    if len(samples) < 3:
        return samples
    lat = np.array([s.lat_deg for s in samples])
    lon = np.array([s.lon_deg for s in samples])
    t = np.array([s.t_s for s in samples])
    e, n, _ = LocalFrame(float(np.median(lat)), float(np.median(lon))).to_enu(lat, lon)
    keep = np.ones(len(samples), bool)

    def too_far(i: int, j: int) -> bool:
        return math.hypot(e[j] - e[i], n[j] - n[i]) > _MAX_SPEED_M_S * abs(t[j] - t[i]) + _JUMP_SLACK_M

    for i in range(1, len(samples) - 1):
        if too_far(i - 1, i) and too_far(i, i + 1) and not too_far(i - 1, i + 1):
            keep[i] = False
            problem("position_jump", samples[i].line_no)
    return [s for s, k in zip(samples, keep, strict=True) if k]


def _no_usable(source: str, n_blocks: int, problems: Counter[str], problem_lines: dict[str, int]) -> TelemetryError:
    return TelemetryError(
        f"{source}: no usable telemetry sample in {n_blocks} subtitle blocks ({_summary(problems, problem_lines)})"
    )


def _summary(problems: Counter[str] | dict[str, int], problem_lines: dict[str, int]) -> str:
    if not problems:
        return "no problems"
    return "; ".join(
        f"{count} × {PROBLEM_TEXT.get(reason, reason)} (first at line {problem_lines.get(reason, '?')})"
        for reason, count in sorted(problems.items(), key=lambda kv: -kv[1])
    )


# --- the track: interpolation and angle sources ---------------------------------------------------------------


def _wrap_deg(a: np.ndarray) -> np.ndarray:
    """Angles to (-180, 180]; values already inside are returned bit-for-bit (no float noise from the modulo)."""
    a = np.asarray(a, np.float64)
    w = np.mod(a + 180.0, 360.0) - 180.0
    w = np.where(w == -180.0, 180.0, w)
    return np.where((a > -180.0) & (a <= 180.0), a, w)


def _unwrap_deg(a: np.ndarray) -> np.ndarray:
    """Unwrap the finite entries so consecutive ones differ by at most 180° (the shortest arc)."""
    out = np.array(a, np.float64)
    ok = np.isfinite(out)
    if ok.sum() > 1:
        out[ok] = np.unwrap(out[ok], period=360.0)
    return out


def _column(samples: Sequence, name: str) -> np.ndarray:
    return np.array([np.nan if getattr(s, name) is None else float(getattr(s, name)) for s in samples], np.float64)


def _track_heading_deg(lat: np.ndarray, lon: np.ndarray, baseline_m: float) -> np.ndarray:
    """Course over ground at each sample, degrees clockwise from north; NaN until the aircraft first moves.

    The heading at a sample is the direction of the displacement between the samples about half a
    baseline of *path* before and after it (a centred difference, which smooths GPS noise). Hovering
    piles up jitter path without displacement, so such windows are left undefined and the last defined
    heading is carried forward. Legacy files round positions to 4 decimals (~11 m steps); the baseline
    grows to three such steps so a heading is not read off the rounding staircase.
    """
    n = len(lat)
    heading = np.full(n, np.nan)
    if n < 2:
        return heading
    e, nn, _ = LocalFrame(float(lat[0]), float(lon[0])).to_enu(lat, lon)
    step = np.hypot(np.diff(e), np.diff(nn))
    # Rounded coordinates change by whole multiples of their last digit: the smallest change seen is the
    # resolution (1e-4° ≈ 11 m on legacy files; about 0.1 m on 6-decimal files, where it does not matter).
    # A spherical metres-per-degree is plenty to size a window; positions themselves go through LocalFrame.
    quantum_m = math.inf
    for values, m_per_deg in ((lat, 111_320.0), (lon, 111_320.0 * math.cos(math.radians(float(lat[0]))))):
        changes = np.abs(np.diff(values))
        changes = changes[changes > 1e-9]
        if changes.size:
            quantum_m = min(quantum_m, float(changes.min()) * m_per_deg)
    baseline = max(baseline_m, 3.0 * quantum_m if 1.0 < quantum_m < math.inf else 0.0)
    s = np.concatenate([[0.0], np.cumsum(step)])
    a = np.clip(np.searchsorted(s, s - baseline / 2.0, side="right") - 1, 0, n - 1)
    b = np.clip(np.searchsorted(s, s + baseline / 2.0, side="left"), 0, n - 1)
    de, dn = e[b] - e[a], nn[b] - nn[a]
    defined = np.hypot(de, dn) >= 0.8 * baseline
    heading[defined] = np.degrees(np.arctan2(de[defined], dn[defined]))
    # Carry the last defined heading forward (hovering, turning on the spot).
    idx = np.where(np.isfinite(heading), np.arange(n), -1)
    idx = np.maximum.accumulate(idx)
    carried = np.where(idx >= 0, heading[np.maximum(idx, 0)], np.nan)
    return _wrap_deg(carried)


@dataclass(frozen=True, eq=False)  # holds arrays
class TelemetryAt:
    """Telemetry interpolated to many frame times, column-wise (NaN / None where unknown).

    Attributes:
        t_s: (N,) the frame times asked for.
        covered: (N,) whether the telemetry covers each time (False: no FrameGeo for that frame).
        lat_deg, lon_deg, alt_m, abs_alt_m, yaw_deg, pitch_deg, roll_deg, focal_len_35mm_mm,
            dzoom_ratio: (N,) float64 columns.
        yaw_source, pitch_source: (N,) object arrays of source names (or None).
        hfov_deg: The configured horizontal field of view, copied to every FrameGeo.
    """

    t_s: np.ndarray
    covered: np.ndarray
    lat_deg: np.ndarray
    lon_deg: np.ndarray
    alt_m: np.ndarray
    abs_alt_m: np.ndarray
    yaw_deg: np.ndarray
    pitch_deg: np.ndarray
    roll_deg: np.ndarray
    focal_len_35mm_mm: np.ndarray
    dzoom_ratio: np.ndarray
    yaw_source: np.ndarray
    pitch_source: np.ndarray
    hfov_deg: float | None = None

    def __len__(self) -> int:
        return int(self.t_s.shape[0])

    def frame_geo(self, i: int) -> FrameGeo | None:
        """The `FrameGeo` of the i-th time, or None when the telemetry does not cover it."""
        if not self.covered[i]:
            return None

        def opt(col: np.ndarray) -> float | None:
            v = float(col[i])
            return v if math.isfinite(v) else None

        return FrameGeo(
            lat_deg=float(self.lat_deg[i]),
            lon_deg=float(self.lon_deg[i]),
            alt_m=opt(self.alt_m),
            yaw_deg=opt(self.yaw_deg),
            pitch_deg=opt(self.pitch_deg),
            roll_deg=opt(self.roll_deg),
            hfov_deg=self.hfov_deg,
            abs_alt_m=opt(self.abs_alt_m),
            yaw_source=self.yaw_source[i] if opt(self.yaw_deg) is not None else None,
            pitch_source=self.pitch_source[i] if opt(self.pitch_deg) is not None else None,
            focal_len_35mm_mm=opt(self.focal_len_35mm_mm),
            dzoom_ratio=opt(self.dzoom_ratio),
        )

    def frame_geos(self) -> list[FrameGeo | None]:
        return [self.frame_geo(i) for i in range(len(self))]


@dataclass(frozen=True, eq=False)  # holds arrays derived from the samples
class TelemetryTrack:
    """A flight's telemetry samples in time order, with each sample's camera yaw/pitch already resolved.

    Camera yaw, per sample, from the first source that has it:
    1. the gimbal yaw (``gb_yaw``, G.PRY) — the camera's own heading;
    2. the aircraft (body) yaw (F.PRY): DJI gimbals follow the body in yaw by default ("follow mode"), so
       without a gimbal yaw the body yaw is the camera's heading up to the gimbal's small yaw offset;
    3. the heading of the track (course over ground, see `_track_heading_deg`): right for a camera looking
       ahead along the flight line, wrong when the aircraft flies sideways — hence last but one;
    4. `TelemetryOptions.default_yaw_deg`.
    Pitch: the gimbal pitch, else `TelemetryOptions.default_pitch_deg`. Every `FrameGeo` says which it used.

    Attributes:
        samples: The usable samples, strictly increasing in `t_s`.
        options: The options used to resolve missing values.
        source: File name (for messages).
        format: Detected format, one of `FORMATS`.
        problems: Dropped cues per reason (keys of `PROBLEM_TEXT`).
        problem_lines: First line of each reason.
        gps_order: ``lat_lon`` or ``lon_lat`` for GPS(…) tuple formats (None for bracket formats).
    """

    samples: tuple[TelemetrySample, ...]
    options: TelemetryOptions = field(default_factory=TelemetryOptions)
    source: str = "<telemetry>"
    format: str = FORMAT_BRACKET
    problems: dict[str, int] = field(default_factory=dict)
    problem_lines: dict[str, int] = field(default_factory=dict)
    gps_order: str | None = None
    _cols: dict[str, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.samples:
            raise TelemetryError(f"{self.source}: a telemetry track needs at least one sample")
        t = np.array([s.t_s for s in self.samples], np.float64)
        if (np.diff(t) <= 0).any():
            raise TelemetryError(f"{self.source}: telemetry samples must be strictly increasing in time")
        opts = self.options
        cols = {name: _column(self.samples, name) for name in (
            "lat_deg", "lon_deg", "rel_alt_m", "abs_alt_m", "gimbal_yaw_deg", "gimbal_pitch_deg",
            "gimbal_roll_deg", "flight_yaw_deg", "focal_len_35mm_mm", "dzoom_ratio")}
        cols["t_s"] = t
        alt = cols["rel_alt_m"].copy()
        if opts.home_abs_alt_m is not None:
            fill = ~np.isfinite(alt) & np.isfinite(cols["abs_alt_m"])
            alt[fill] = cols["abs_alt_m"][fill] - opts.home_abs_alt_m
        cols["alt_m"] = alt

        n = len(self.samples)
        yaw = np.full(n, np.nan)
        yaw_src = np.full(n, -1, np.int8)
        candidates = [(cols["gimbal_yaw_deg"], 0), (cols["flight_yaw_deg"], 1)]
        if not (np.isfinite(cols["gimbal_yaw_deg"]) | np.isfinite(cols["flight_yaw_deg"])).all():
            candidates.append((_track_heading_deg(cols["lat_deg"], cols["lon_deg"], opts.heading_baseline_m), 2))
        if opts.default_yaw_deg is not None:
            candidates.append((np.full(n, float(opts.default_yaw_deg)), 3))
        for values, code in candidates:
            take = ~np.isfinite(yaw) & np.isfinite(values)
            yaw[take] = values[take]
            yaw_src[take] = code
        cols["yaw_deg"] = _unwrap_deg(_wrap_deg(yaw))
        cols["yaw_src"] = yaw_src.astype(np.float64)
        has_pitch = np.isfinite(cols["gimbal_pitch_deg"])
        cols["pitch_deg"] = np.where(has_pitch, cols["gimbal_pitch_deg"], opts.default_pitch_deg)
        cols["pitch_src"] = np.where(has_pitch, 0.0, 3.0)
        roll = np.where(np.isfinite(cols["gimbal_roll_deg"]), cols["gimbal_roll_deg"], opts.default_roll_deg)
        cols["roll_deg"] = _unwrap_deg(roll)
        object.__setattr__(self, "_cols", cols)

    # --- coverage -----------------------------------------------------------------------------------------

    @property
    def start_s(self) -> float:
        """First covered time: the first cue's start."""
        return self.samples[0].t_s

    @property
    def end_s(self) -> float:
        """Last covered time: the last cue's end (its values hold until then)."""
        return max(self.samples[-1].end_s, self.samples[-1].t_s)

    def covers(self, t_s: float) -> bool:
        return self.start_s <= t_s <= self.end_s

    def describe_coverage(self, duration_s: float) -> str:
        """One line for the user, e.g. ``telemetry covers 0.0–42.0 s of 60.0 s (70 %)``."""
        start, end = self.start_s, min(self.end_s, duration_s)
        share = max(0.0, end - start) / duration_s if duration_s > 0 else 0.0
        name = Path(self.source).name
        return f"{name}: telemetry covers {start:.1f}–{end:.1f} s of {duration_s:.1f} s ({share:.0%})"

    def problem_summary(self) -> str:
        """Dropped cues per reason with the first line of each, for a report ('no problems' when clean)."""
        return _summary(self.problems, self.problem_lines)

    @property
    def yaw_sources(self) -> dict[str, int]:
        """How many samples got their yaw from each source (``none`` when unknown)."""
        names = (*FRAME_GEO_ANGLE_SOURCES, "none")
        return dict(Counter(names[int(c)] for c in self._cols["yaw_src"]))

    # --- interpolation ------------------------------------------------------------------------------------

    def at_many(self, t_s: np.ndarray | Sequence[float]) -> TelemetryAt:
        """Interpolate to many frame times at once (linear; angles along the shortest arc).

        Times before the first cue or after the last cue's end are not covered (their `FrameGeo` is None);
        between the last cue's start and end the last values hold.
        """
        t = np.asarray(t_s, np.float64).reshape(-1)
        c = self._cols
        ts = c["t_s"]
        covered = np.isfinite(t) & (t >= self.start_s) & (t <= self.end_s)
        tt = np.where(covered, t, self.start_s)
        i = np.clip(np.searchsorted(ts, tt, side="right") - 1, 0, len(ts) - 1)
        j = np.minimum(i + 1, len(ts) - 1)
        span = ts[j] - ts[i]
        w = np.where(span > 0, (tt - ts[i]) / np.where(span > 0, span, 1.0), 0.0)
        w = np.clip(w, 0.0, 1.0)

        def lin(col: np.ndarray) -> np.ndarray:
            out = col[i] + (col[j] - col[i]) * w
            return np.where(covered, out, np.nan)

        nearest = np.where(w < 0.5, i, j)
        names = np.array([*FRAME_GEO_ANGLE_SOURCES, None], dtype=object)
        return TelemetryAt(
            t_s=t,
            covered=covered,
            lat_deg=lin(c["lat_deg"]),
            lon_deg=lin(c["lon_deg"]),
            alt_m=lin(c["alt_m"]),
            abs_alt_m=lin(c["abs_alt_m"]),
            yaw_deg=_wrap_deg(lin(c["yaw_deg"])),
            pitch_deg=lin(c["pitch_deg"]),
            roll_deg=_wrap_deg(lin(c["roll_deg"])),
            focal_len_35mm_mm=lin(c["focal_len_35mm_mm"]),
            dzoom_ratio=lin(c["dzoom_ratio"]),
            yaw_source=names[c["yaw_src"].astype(int)[nearest]],
            pitch_source=names[c["pitch_src"].astype(int)[nearest]],
            hfov_deg=self.options.hfov_deg,
        )

    def at(self, t_s: float) -> FrameGeo | None:
        """The camera pose at one frame time, or None outside the covered span.

        Example:
            >>> track = TelemetryTrack((TelemetrySample(0.0, 1.0, 30.0, 120.0, gimbal_yaw_deg=359.0),
            ...                         TelemetrySample(1.0, 2.0, 30.0, 120.0, gimbal_yaw_deg=1.0)))
            >>> track.at(0.5).yaw_deg, track.at(0.5).yaw_source, track.at(2.5)
            (0.0, 'gimbal', None)
        """
        return self.at_many([t_s]).frame_geo(0)

    def wall_time_at(self, t_s: float) -> datetime | None:
        """The aircraft's wall clock at a video time: naive local, or aware with `TelemetryOptions.timezone`.

        Taken from the last cue at or before `t_s` that has a date-time, plus the time since that cue.
        """
        best = None
        for s in self.samples:
            if s.t_s > t_s:
                break
            if s.local_time is not None:
                best = s
        if best is None:
            best = next((s for s in self.samples if s.local_time is not None), None)
            if best is None:
                return None
        wall = best.local_time + timedelta(seconds=t_s - best.t_s)
        tz = self.options.tzinfo
        return wall.replace(tzinfo=tz) if tz else wall


# --- geotagged stills ----------------------------------------------------------------------------------------

_DJI_NS = "{http://www.dji.com/drone-dji/1.0/}"
_XMP_APP1_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_STILL_SUFFIXES = {".jpg", ".jpeg"}
_OTHER_IMAGE_SUFFIXES = {".dng", ".tif", ".tiff", ".png", ".heic", ".raw"}
# Start-of-frame markers carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not SOFs.
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class StillGeo:
    """Where and how a geotagged still was taken.

    Attributes:
        path: The image file.
        lat_deg: WGS84 latitude (DJI XMP ``GpsLatitude`` when present, else EXIF GPS).
        lon_deg: WGS84 longitude (XMP ``GpsLongitude``/``GpsLongtitude``, else EXIF GPS).
        position_source: ``xmp`` or ``exif``.
        rel_alt_m: XMP ``RelativeAltitude`` (height above take-off), metres.
        abs_alt_m: XMP ``AbsoluteAltitude``, else the EXIF GPS altitude (sign from GPSAltitudeRef), metres.
        taken_local: EXIF DateTimeOriginal (+ SubSecTimeOriginal), naive local time.
        utc_offset: EXIF OffsetTimeOriginal, when present.
        width_px: Image width (EXIF PixelXDimension, else the JPEG frame header).
        height_px: Image height.
        focal_len_mm: EXIF FocalLength (the lens's true focal length).
        focal_len_35mm_mm: EXIF FocalLengthIn35mmFilm.
        make: EXIF Make.
        model: EXIF Model.
        gimbal_yaw_deg, gimbal_pitch_deg, gimbal_roll_deg: XMP Gimbal{Yaw,Pitch,Roll}Degree.
        flight_yaw_deg, flight_pitch_deg, flight_roll_deg: XMP Flight{Yaw,Pitch,Roll}Degree.
        notes: Things that were wrong but did not make the still unusable (e.g. an unreadable XMP packet).
    """

    path: Path
    lat_deg: float
    lon_deg: float
    position_source: str
    rel_alt_m: float | None = None
    abs_alt_m: float | None = None
    taken_local: datetime | None = None
    utc_offset: timedelta | None = None
    width_px: int | None = None
    height_px: int | None = None
    focal_len_mm: float | None = None
    focal_len_35mm_mm: float | None = None
    make: str | None = None
    model: str | None = None
    gimbal_yaw_deg: float | None = None
    gimbal_pitch_deg: float | None = None
    gimbal_roll_deg: float | None = None
    flight_yaw_deg: float | None = None
    flight_pitch_deg: float | None = None
    flight_roll_deg: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def taken(self) -> datetime | None:
        """DateTimeOriginal made aware with OffsetTimeOriginal; naive local when the offset is absent."""
        if self.taken_local is None:
            return None
        if self.utc_offset is None:
            return self.taken_local
        return self.taken_local.replace(tzinfo=timezone(self.utc_offset))

    def frame_geo(self, options: TelemetryOptions | None = None) -> FrameGeo:
        """The still's camera pose.

        Yaw: the gimbal's, else the aircraft body's, else the configured one; pitch: the gimbal's, else configured.
        """
        options = options or TelemetryOptions()
        if self.gimbal_yaw_deg is not None:
            yaw, yaw_source = self.gimbal_yaw_deg, SOURCE_GIMBAL
        elif self.flight_yaw_deg is not None:
            yaw, yaw_source = self.flight_yaw_deg, SOURCE_FLIGHT  # the gimbal follows the body in yaw by default
        elif options.default_yaw_deg is not None:
            yaw, yaw_source = options.default_yaw_deg, SOURCE_CONFIG
        else:
            yaw, yaw_source = None, None
        if self.gimbal_pitch_deg is not None:
            pitch, pitch_source = self.gimbal_pitch_deg, SOURCE_GIMBAL
        else:
            pitch, pitch_source = options.default_pitch_deg, SOURCE_CONFIG
        alt = self.rel_alt_m
        if alt is None and self.abs_alt_m is not None and options.home_abs_alt_m is not None:
            alt = self.abs_alt_m - options.home_abs_alt_m
        return FrameGeo(
            lat_deg=self.lat_deg,
            lon_deg=self.lon_deg,
            alt_m=alt,
            yaw_deg=None if yaw is None else float(_wrap_deg(np.array([yaw]))[0]),
            pitch_deg=pitch,
            roll_deg=self.gimbal_roll_deg if self.gimbal_roll_deg is not None else options.default_roll_deg,
            hfov_deg=options.hfov_deg,
            abs_alt_m=self.abs_alt_m,
            yaw_source=yaw_source,
            pitch_source=pitch_source,
            focal_len_35mm_mm=self.focal_len_35mm_mm,
        )


def _jpeg_headers(data: bytes) -> tuple[bytes | None, tuple[int, int] | None]:
    """Walk a JPEG's marker segments up to the scan: (XMP APP1 payload or None, (width, height) or None)."""
    xmp = None
    size = None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            break  # not at a marker: a corrupt header; what was found so far stands
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no more headers
            break
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        payload = data[i + 4 : i + 2 + length]
        if marker == 0xE1 and xmp is None and payload.startswith(_XMP_APP1_HEADER):
            xmp = payload[len(_XMP_APP1_HEADER) :]
        elif marker in _SOF_MARKERS and len(payload) >= 5 and size is None:
            size = (int.from_bytes(payload[3:5], "big"), int.from_bytes(payload[1:3], "big"))
        i += 2 + length
    return xmp, size


def _dji_xmp(app1: bytes) -> tuple[dict[str, str], list[str]]:
    """DJI ``drone-dji:`` properties of an XMP packet (attribute and element form), keys lower-cased."""
    start = app1.find(b"<x:xmpmeta")
    end = app1.find(b"</x:xmpmeta>")
    if start < 0 or end < start:
        return {}, ["XMP segment without an <x:xmpmeta> packet"]
    try:
        root = ET.fromstring(app1[start : end + len(b"</x:xmpmeta>")])
    except ET.ParseError as exc:
        return {}, [f"XMP packet is not well-formed XML ({exc}); DJI altitude and angles not read"]
    values: dict[str, str] = {}
    for el in root.iter():
        for name, value in el.attrib.items():
            if name.startswith(_DJI_NS):
                values.setdefault(name[len(_DJI_NS) :].lower(), value.strip())
        if isinstance(el.tag, str) and el.tag.startswith(_DJI_NS) and el.text and el.text.strip():
            values.setdefault(el.tag[len(_DJI_NS) :].lower(), el.text.strip())
    return values, []


def _exif_dms(tags: dict, key: str, ref_key: str, negative: str) -> float | None:
    tag, ref = tags.get(key), tags.get(ref_key)
    if tag is None or ref is None:
        return None
    try:
        d, m, s = (float(v) for v in tag.values[:3])
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = d + m / 60.0 + s / 3600.0
    return -value if str(ref.printable).strip().upper().startswith(negative) else value


def _exif_float(tags: dict, key: str) -> float | None:
    tag = tags.get(key)
    if tag is None or not getattr(tag, "values", None):
        return None
    try:
        value = float(tag.values[0])
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) else None


def _exif_text(tags: dict, key: str) -> str | None:
    tag = tags.get(key)
    text = str(tag.printable).strip().strip("\x00").strip() if tag is not None else ""
    return text or None


def _exif_time(tags: dict) -> tuple[datetime | None, timedelta | None]:
    text = _exif_text(tags, "EXIF DateTimeOriginal")
    if not text:
        return None, None
    try:
        taken = datetime.strptime(text, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None, None
    sub = _exif_text(tags, "EXIF SubSecTimeOriginal")
    if sub and sub.isdigit():
        taken = taken.replace(microsecond=int(sub.ljust(6, "0")[:6]))
    offset = None
    m = re.fullmatch(r"([+-])(\d{2}):(\d{2})", _exif_text(tags, "EXIF OffsetTimeOriginal") or "")
    if m:
        offset = timedelta(hours=int(m.group(2)), minutes=int(m.group(3))) * (-1 if m.group(1) == "-" else 1)
    return taken, offset


def read_still_geo(path: str | Path) -> StillGeo:
    """Read a geotagged JPEG still: EXIF (via exifread) and the DJI XMP packet (via ElementTree).

    Raises:
        NoGpsError: The still has no GPS position (or only 0,0).
        TelemetryError: The file cannot be read or is not a JPEG.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TelemetryError(f"{path}: cannot read image: {exc.strerror or exc}") from None
    if not data.startswith(b"\xff\xd8"):
        raise TelemetryError(f"{path}: not a JPEG file")
    tags = exifread.process_file(io.BytesIO(data), details=False)
    app1, sof_size = _jpeg_headers(data)
    notes: list[str] = []
    xmp: dict[str, str] = {}
    if app1 is not None:
        xmp, xmp_notes = _dji_xmp(app1)
        notes += xmp_notes

    def xmp_float(*names: str) -> float | None:
        for name in names:
            raw = xmp.get(name.lower())
            if raw is None:
                continue
            value = _float(raw)
            if value is None:
                notes.append(f"XMP drone-dji:{name} is not a number: {raw!r}")
            return value
        return None

    xmp_lat = xmp_float("GpsLatitude")
    xmp_lon = xmp_float("GpsLongitude", "GpsLongtitude")  # DJI spelled it "Longtitude" for years
    exif_lat = _exif_dms(tags, "GPS GPSLatitude", "GPS GPSLatitudeRef", "S")
    exif_lon = _exif_dms(tags, "GPS GPSLongitude", "GPS GPSLongitudeRef", "W")
    # DJI's XMP position pairs with its RelativeAltitude and angles in the same packet, at 7-9 decimals.
    if xmp_lat is not None and xmp_lon is not None and (xmp_lat, xmp_lon) != (0.0, 0.0):
        lat, lon, source = xmp_lat, xmp_lon, "xmp"
    elif exif_lat is not None and exif_lon is not None and (exif_lat, exif_lon) != (0.0, 0.0):
        lat, lon, source = exif_lat, exif_lon, "exif"
    elif (xmp_lat, xmp_lon) == (0.0, 0.0) or (exif_lat, exif_lon) == (0.0, 0.0):
        raise NoGpsError(f"{path}: GPS position is 0,0 (no GPS fix when the photo was taken)")
    else:
        raise NoGpsError(f"{path}: no GPS position (no EXIF GPS and no DJI XMP GpsLatitude/GpsLongitude)")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise NoGpsError(f"{path}: GPS position out of range (lat {lat}, lon {lon})")

    gps_alt = _exif_float(tags, "GPS GPSAltitude")
    ref = tags.get("GPS GPSAltitudeRef")
    below_sea_level = ref is not None and bool(getattr(ref, "values", None)) and str(ref.values[0]) == "1"
    if gps_alt is not None and below_sea_level:
        gps_alt = -gps_alt  # GPSAltitudeRef 1: below sea level
    abs_alt = xmp_float("AbsoluteAltitude")
    taken, offset = _exif_time(tags)
    width = _exif_float(tags, "EXIF ExifImageWidth")
    height = _exif_float(tags, "EXIF ExifImageLength")
    if (width is None or height is None) and sof_size is not None:
        width, height = sof_size
    return StillGeo(
        path=path,
        lat_deg=float(lat),
        lon_deg=float(lon),
        position_source=source,
        rel_alt_m=xmp_float("RelativeAltitude"),
        abs_alt_m=abs_alt if abs_alt is not None else gps_alt,
        taken_local=taken,
        utc_offset=offset,
        width_px=None if width is None else int(width),
        height_px=None if height is None else int(height),
        focal_len_mm=_exif_float(tags, "EXIF FocalLength"),
        focal_len_35mm_mm=_exif_float(tags, "EXIF FocalLengthIn35mmFilm"),
        make=_exif_text(tags, "Image Make"),
        model=_exif_text(tags, "Image Model"),
        gimbal_yaw_deg=xmp_float("GimbalYawDegree"),
        gimbal_pitch_deg=xmp_float("GimbalPitchDegree"),
        gimbal_roll_deg=xmp_float("GimbalRollDegree"),
        flight_yaw_deg=xmp_float("FlightYawDegree"),
        flight_pitch_deg=xmp_float("FlightPitchDegree"),
        flight_roll_deg=xmp_float("FlightRollDegree"),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class SkippedStill:
    """An image in a stills folder that could not be used, and why (one line naming the file)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class StillsResult:
    """The usable stills of a folder in time order, and the skipped ones with reasons."""

    stills: tuple[StillGeo, ...]
    skipped: tuple[SkippedStill, ...]


def read_stills(folder: str | Path) -> StillsResult:
    """Read every JPEG still in a folder (not recursive); stills without GPS are listed, not fatal.

    Stills are sorted by DateTimeOriginal (then name); those without a time come last, by name.
    Other image files (DNG, TIFF, PNG …) are listed as skipped; non-image files are ignored.

    Raises:
        TelemetryError: The folder does not exist or is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TelemetryError(f"{folder}: not a folder of stills")
    stills: list[StillGeo] = []
    skipped: list[SkippedStill] = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        suffix = path.suffix.lower()
        if suffix in _OTHER_IMAGE_SUFFIXES:
            skipped.append(SkippedStill(path, f"{path}: not a JPEG still (only JPEG stills are read)"))
            continue
        if suffix not in _STILL_SUFFIXES:
            continue
        try:
            stills.append(read_still_geo(path))
        except TelemetryError as exc:
            skipped.append(SkippedStill(path, str(exc)))
    stills.sort(key=lambda s: (s.taken_local is None, s.taken_local or datetime.min, s.path.name))
    return StillsResult(tuple(stills), tuple(skipped))
