"""DJI SRT parsing, interpolation, yaw/pitch sources and geotagged stills (`detector.geo.telemetry`).

The SRT cues below are real published samples (each cites its repository and path); only cue numbers and
times are changed where a test needs a second cue, and that is said next to it.
"""

from __future__ import annotations

import dataclasses
import io
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import piexif
import pytest

from detector.geo.enu import LocalFrame
from detector.geo.telemetry import (
    FORMATS,
    NoGpsError,
    TelemetryError,
    TelemetryOptions,
    TelemetrySample,
    TelemetryTrack,
    parse_srt,
    parse_srt_text,
    read_still_geo,
    read_stills,
)
from detector.types import FrameGeo

# --- real SRT samples ----------------------------------------------------------------------------------------

# JuanIrache/DJI_SRT_Parser samples/MAVIC3.srt (Mavic 3: FrameCnt/DiffTime, <font>, rel_alt + abs_alt).
MAVIC3 = """1
00:00:00,000 --> 00:00:00,020
<font size="28">FrameCnt: 1, DiffTime: 20ms
2021-12-25 12:27:52.373
[iso: 220] [shutter: 1/8000.0] [fnum: 3.2] [ev: 0] [ct: 5115] [color_md : default] [focal_len: 24.00] [latitude: 3.41531] [longitude: -3.37440] [rel_alt: -2.400 abs_alt: 0.401] </font>

2
00:00:00,020 --> 00:00:00,040
<font size="28">FrameCnt: 2, DiffTime: 20ms
2021-12-25 12:27:52.391
[iso: 220] [shutter: 1/8000.0] [fnum: 3.2] [ev: 0] [ct: 5115] [color_md : default] [focal_len: 24.00] [latitude: 3.41531] [longitude: -3.37440] [rel_alt: -2.400 abs_alt: 0.401] </font>
"""

# JuanIrache/DJI_SRT_Parser samples/air2s.srt (Air 2S: SrtCnt, "s,ms,µs" clock, [altitude: …], focal x10).
AIR2S = """1
00:00:00,000 --> 00:00:00,033
<font size="36">SrtCnt : 1, DiffTime : 33ms
2022-08-07 13:40:40,774,808
[iso : 100] [shutter : 1/80.0] [fnum : 280] [ev : 0] [ct : 5744] [color_md : default] [focal_len : 240] [latitude: 41.424724] [longitude: 2.234156] [altitude: 117.000000] </font>

2
00:00:00,033 --> 00:00:00,066
<font size="36">SrtCnt : 2, DiffTime : 33ms
2022-08-07 13:40:40,808,164
[iso : 100] [shutter : 1/80.0] [fnum : 280] [ev : 0] [ct : 5744] [color_md : default] [focal_len : 240] [latitude: 41.424725] [longitude: 2.234147] [altitude: 117.000000] </font>
"""

# CallMarcus/dji-drone-metadata-embedder samples/Avata360/clip.SRT (gimbal tokens gb_yaw/gb_pitch/gb_roll).
AVATA360 = """1
00:00:00,000 --> 00:00:00,041
<font size="28">FrameCnt: 1, DiffTime: 41ms, FrameId: 4787
2026-05-27 13:10:00.015
[iso: 200] [shutter: 1/6400.0] [fnum: 1.9] [ev: 0] [ct: 5845] [color_md: dlog_m] [ae_meter_md: 0] [focal_len: 28.00] [dzoom_ratio: 1.00], [latitude: 53.365080] [longitude: 6.460739] [rel_alt: 5.400 abs_alt: -124.744] [gb_yaw: -162.8 gb_pitch: 0.0 gb_roll: 0.0] [vsync: 0] [eis: close] [shift x: 0.00, y: 0.00] [pp_vsync:0] [pp_timestamp:0] [pp_target:0.000, 0.000, 0.000, 0.000] [pp_current:0.000, 0.000, 0.000, 0.000] [pp_limit_ratio:0.0000] [pp_over_image_border:0] [pp_warp_status:0] [pp_imu_td:0]</font>

2
00:00:00,041 --> 00:00:00,082
<font size="28">FrameCnt: 2, DiffTime: 41ms, FrameId: 4788
2026-05-27 13:10:00.056
[iso: 200] [shutter: 1/6400.0] [fnum: 1.9] [ev: 0] [ct: 5845] [color_md: dlog_m] [ae_meter_md: 0] [focal_len: 28.00] [dzoom_ratio: 1.00], [latitude: 53.365080] [longitude: 6.460739] [rel_alt: 5.400 abs_alt: -124.744] [gb_yaw: -162.8 gb_pitch: 0.0 gb_roll: 0.0] [vsync: 0] [eis: close] [shift x: 0.00, y: 0.00] [pp_vsync:0] [pp_timestamp:0] [pp_target:0.000, 0.000, 0.000, 0.000] [pp_current:0.000, 0.000, 0.000, 0.000] [pp_limit_ratio:0.0000] [pp_over_image_border:0] [pp_warp_status:0] [pp_imu_td:0]</font>
"""

# JuanIrache/DJI_SRT_Parser samples/mavic_2pro_new.SRT (Mavic 2 Pro: "longtitude", spaces before colons, BOM).
MAVIC2PRO = """\ufeff1
00:00:00,000 --> 00:00:00,040
<font size="36">FrameCnt : 218, DiffTime : 40ms
2019-09-27 10:28:08,438,904
[iso : 110] [shutter : 1/1250.0] [fnum : 280] [ev : 0] [ct : 5174] [color_md : default] [focal_len : 280] [latitude : -35.080155] [longtitude : -60.286702] </font>
"""

# JuanIrache/DJI_SRT_Parser samples/m2zoom.SRT (Mavic 2 Zoom: "longtitude" plus [altitude: …]).
M2ZOOM = """1
00:00:00,000 --> 00:00:00,016
<font size="36">FrameCnt : 1, DiffTime : 16ms
2020-04-02 15:19:58,720,764
[iso : 120] [shutter : 1/2500.0] [fnum : 280] [ev : 0] [ct : 5003] [color_md : default] [focal_len : 240] [latitude : 31.452012] [longtitude : 74.398751] [altitude: 213.983002] </font>
"""

# JuanIrache/DJI_SRT_Parser samples/mavic_pro.SRT (Mavic Pro: HOME(lon,lat) date, GPS(lon,lat,sats), BAROMETER).
MAVIC_PRO = """1
00:00:01,000 --> 00:00:02,000
HOME(149.0251,-20.2532) 2017.08.05 14:11:51
GPS(149.0251,-20.2533,16) BAROMETER:1.9
ISO:100 Shutter:60 EV: Fnum:2.2
"""

# JuanIrache/DJI_SRT_Parser samples/old_format.SRT (older Phantom firmware: Hb/Hs heights, unpadded date).
OLD_FORMAT = """1
00:00:01,000 --> 00:00:02,000
HOME(149.0251,-20.2532) 2017.8.5 14:11:51
GPS(149.0251,-20.2533,16) Hb:1.9 Hs:1.9
ISO:100 TV:60 EV: 0 IR:F2.8
"""

# JuanIrache/DJI_SRT_Parser samples/p4p_sample.SRT (Phantom 4 Pro: "GPS (lon, lat, sats)", D/H; lon 8.2 / lat
# 47.5 are both valid either way, so only the format's convention decides).
P4P = """1
00:00:00,000 --> 00:00:01,000
F/3.2, SS 160, ISO 100, EV 0, GPS (8.2090, 47.4692, 18), D 49.21m, H 45.60m, H.S 0.00m/s, V.S 0.00m/s 
"""

# JuanIrache/DJI_SRT_Parser samples/mavic_mini.SRT (Mavic Mini: the same single-line style).
MAVIC_MINI = """1
00:00:00,000 --> 00:00:01,000
F/2.8, SS 30.15, ISO 260, EV -1.7, GPS (-121.7458, 48.0771, 17), D 221.21m, H 200.70m, H.S n/a, V.S n/a 
"""

# JuanIrache/DJI_SRT_Parser samples/matrice_300.srt (Matrice 300: CRLF, GPS(lat,lon,altM), BAROMETER:…M).
MATRICE = (
    "1\r\n00:00:00,000 --> 00:00:01,000\r\n2022.06.21 16:06:17\r\nGPS(36.6146,-6.1120,0.0M) BAROMETER:0.3M\r\n\r\n"
    "13\r\n00:00:12,000 --> 00:00:13,000\r\n2022.06.21 16:06:29\r\nGPS(36.6146,-6.1120,0.0M) BAROMETER:38.4M\r\n"
)

# JuanIrache/DJI_SRT_Parser samples/p4_rtk.SRT (Phantom 4 RTK: F.PRY aircraft and G.PRY gimbal attitude).
P4RTK = """1
00:00:00,000 --> 00:00:01,000
F/5.6, SS 400, ISO 100, EV 0, GPS (-58.851745, -34.237922, 15), HOME (-58.847509, -34.232707, -57.98m), D 698.70m, H 85.80m, H.S 0.00m/s, V.S 0.00m/s, F.PRY (2.7°, -7.0°, 110.1°), G.PRY (-24.4°, 0.0°, 110.4°)

2
00:00:01,000 --> 00:00:02,000
F/5.6, SS 400, ISO 100, EV 0, GPS (-58.851740, -34.237911, 15), HOME (-58.847509, -34.232707, -57.98m), D 697.41m, H 85.83m, H.S 2.88m/s, V.S 0.00m/s, F.PRY (3.0°, -19.9°, 110.3°), G.PRY (-24.4°, 0.0°, 110.5°)

3
00:00:02,000 --> 00:00:03,000
F/5.6, SS 400, ISO 100, EV 0, GPS (-58.851723, -34.237873, 15), HOME (-58.847509, -34.232707, -57.98m), D 692.94m, H 85.94m, H.S 5.61m/s, V.S 0.00m/s, F.PRY (4.6°, -20.8°, 110.2°), G.PRY (-24.4°, 0.0°, 110.8°)

4
00:00:03,000 --> 00:00:04,000
F/5.6, SS 400, ISO 100, EV 0, GPS (-58.851696, -34.237815, 14), HOME (-58.847509, -34.232707, -57.98m), D 686.08m, H 85.96m, H.S 7.60m/s, V.S 0.00m/s, F.PRY (5.4°, -20.7°, 109.8°), G.PRY (-24.4°, 0.0°, 111.0°)
"""

# CallMarcus/dji-drone-metadata-embedder samples/neo2/clip_nogps.SRT (Neo 2 before its GPS fix: 0,0).
NEO2_NO_FIX = """1
00:00:00,000 --> 00:00:00,033
<font size="28">FrameCnt: 1, DiffTime: 33ms
2026-05-31 16:15:29.797
[iso: 480] [shutter: 1/100.0] [fnum: 2.2] [ev: 0.3] [ct: 4708] [color_md: default] [ae_meter_md: 0] [latitude: 0.000000] [longitude: 0.000000] [rel_alt: 0.400 abs_alt: 269.099] [vsync: 9878] [eis: normal] [shift x: 0.00, y: 0.00] [pp_vsync:9878] [pp_timestamp:0] [pp_target:0.015, -0.000, 0.000, 1.000] [pp_current:0.015, 0.000, -0.000, 1.000] [pp_limit_ratio:1.0000] [pp_over_image_border:0] [pp_warp_status:0] [pp_imu_td:0]</font>
"""


def renumber(srt: str, start_s: float, index: int = 1) -> str:
    """A one-cue sample moved to another cue time (to splice real cues of different files into one file)."""
    lines = srt.lstrip("\ufeff").strip("\n").split("\n")
    h, rem = divmod(start_s, 3600)
    m, s = divmod(rem, 60)
    lines[0] = str(index)
    lines[1] = f"{int(h):02d}:{int(m):02d}:{s:06.3f} --> {int(h):02d}:{int(m):02d}:{s + 0.5:06.3f}".replace(".", ",")
    return "\n".join(lines) + "\n\n"


# --- each format ---------------------------------------------------------------------------------------------

FORMAT_CASES = [
    # name, text, format, t_s, lat, lon, rel_alt, abs_alt, focal_35mm, local time (ISO)
    ("mavic3", MAVIC3, "dji_bracket", 0.0, 3.41531, -3.37440, -2.4, 0.401, 24.0, "2021-12-25 12:27:52.373000"),
    ("air2s", AIR2S, "dji_bracket", 0.0, 41.424724, 2.234156, None, 117.0, 24.0, "2022-08-07 13:40:40.774808"),
    ("avata360", AVATA360, "dji_bracket", 0.0, 53.365080, 6.460739, 5.4, -124.744, 28.0, "2026-05-27 13:10:00.015000"),
    ("mavic2pro", MAVIC2PRO, "dji_mavic2", 0.0, -35.080155, -60.286702, None, None, 28.0, "2019-09-27 10:28:08.438904"),
    ("m2zoom", M2ZOOM, "dji_mavic2", 0.0, 31.452012, 74.398751, None, 213.983002, 24.0, "2020-04-02 15:19:58.720764"),
    ("mavic_pro", MAVIC_PRO, "dji_gps_lon_lat", 1.0, -20.2533, 149.0251, 1.9, None, None, "2017-08-05 14:11:51"),
    ("old_format", OLD_FORMAT, "dji_gps_lon_lat", 1.0, -20.2533, 149.0251, 1.9, None, None, "2017-08-05 14:11:51"),
    ("p4p", P4P, "dji_gps_lon_lat", 0.0, 47.4692, 8.2090, 45.6, None, None, None),
    ("mavic_mini", MAVIC_MINI, "dji_gps_lon_lat", 0.0, 48.0771, -121.7458, 200.7, None, None, None),
    ("matrice", MATRICE, "dji_matrice", 0.0, 36.6146, -6.1120, 0.3, None, None, "2022-06-21 16:06:17"),
    ("p4rtk", P4RTK, "dji_p4rtk", 0.0, -34.237922, -58.851745, 85.8, None, None, None),
]


@pytest.mark.parametrize(
    "name,text,fmt,t_s,lat,lon,rel_alt,abs_alt,focal,local", FORMAT_CASES, ids=[c[0] for c in FORMAT_CASES]
)
def test_each_format_first_sample(name, text, fmt, t_s, lat, lon, rel_alt, abs_alt, focal, local):
    track = parse_srt_text(text, source=f"{name}.SRT")
    assert track.format == fmt
    assert track.problems == {}
    s = track.samples[0]
    assert s.t_s == pytest.approx(t_s)
    assert (s.lat_deg, s.lon_deg) == (pytest.approx(lat), pytest.approx(lon))
    assert s.rel_alt_m == (None if rel_alt is None else pytest.approx(rel_alt))
    assert s.abs_alt_m == (None if abs_alt is None else pytest.approx(abs_alt))
    assert s.focal_len_35mm_mm == (None if focal is None else pytest.approx(focal))
    assert s.local_time == (None if local is None else datetime.fromisoformat(local))


def test_formats_table_covers_every_detected_format():
    assert {c[2] for c in FORMAT_CASES} == set(FORMATS)


def test_gps_tuple_order_per_format():
    assert parse_srt_text(MATRICE).gps_order == "lat_lon"
    assert parse_srt_text(MAVIC_PRO).gps_order == "lon_lat"
    assert parse_srt_text(P4RTK).gps_order == "lon_lat"
    assert parse_srt_text(MAVIC3).gps_order is None


def test_gps_order_flips_when_the_convention_puts_latitude_out_of_range():
    # The real Mavic Pro cue with the pair reversed: under the lon,lat convention the "latitude" would be
    # 149°, the other order is valid, so the file's order is flipped rather than every cue dropped.
    flipped = MAVIC_PRO.replace("GPS(149.0251,-20.2533,16)", "GPS(-20.2533,149.0251,16)")
    track = parse_srt_text(flipped)
    assert track.gps_order == "lat_lon"
    assert (track.samples[0].lat_deg, track.samples[0].lon_deg) == (-20.2533, 149.0251)


def test_longtitude_spelling_and_spaces_before_colons():
    s = parse_srt_text(MAVIC2PRO).samples[0]
    assert (s.lat_deg, s.lon_deg) == (-35.080155, -60.286702)
    assert s.frame_cnt == 218


def test_p4rtk_flight_and_gimbal_attitude():
    s = parse_srt_text(P4RTK).samples[0]
    assert (s.flight_pitch_deg, s.flight_roll_deg, s.flight_yaw_deg) == (2.7, -7.0, 110.1)
    assert (s.gimbal_pitch_deg, s.gimbal_roll_deg, s.gimbal_yaw_deg) == (-24.4, 0.0, 110.4)


def test_avata_gimbal_tokens_and_digital_zoom():
    s = parse_srt_text(AVATA360).samples[0]
    assert (s.gimbal_yaw_deg, s.gimbal_pitch_deg, s.gimbal_roll_deg) == (-162.8, 0.0, 0.0)
    assert s.dzoom_ratio == 1.0
    assert s.frame_cnt == 1


def test_matrice_crlf_cue_times_and_barometer():
    track = parse_srt_text(MATRICE)
    assert [s.t_s for s in track.samples] == [0.0, 12.0]
    assert [s.rel_alt_m for s in track.samples] == [0.3, 38.4]
    assert track.end_s == 13.0


@pytest.mark.parametrize(
    "cue,t_s,end_s",
    [
        ("00:00:01,033 --> 00:00:02,066", 1.033, 2.066),
        ("00:01:00,5 --> 00:01:01,000", 60.5, 61.0),  # short fraction: tenths
        ("01:02:03.040 --> 01:02:03.080", 3723.04, 3723.08),  # dot as decimal separator
        ("  00:00:00,000-->00:00:00,033", 0.0, 0.033),
    ],
)
def test_cue_time_parsing(cue, t_s, end_s):
    text = MAVIC3.split("\n\n")[0].replace("00:00:00,000 --> 00:00:00,020", cue)
    s = parse_srt_text(text).samples[0]
    assert (s.t_s, s.end_s) == (pytest.approx(t_s), pytest.approx(end_s))


# --- bad input -----------------------------------------------------------------------------------------------


def test_zero_zero_fixes_are_dropped_and_counted():
    # Two real no-fix cues of a Neo 2, then real Mavic 3 cues moved later in time (spliced for the test).
    text = renumber(NEO2_NO_FIX, 0.0, 1) + renumber(NEO2_NO_FIX, 0.5, 2) + renumber(MAVIC3.split("\n\n")[0], 1.0, 3)
    track = parse_srt_text(text, source="neo.SRT")
    assert len(track.samples) == 1 and track.samples[0].lat_deg == 3.41531
    assert track.problems == {"no_gps_fix": 2}
    assert track.problem_lines["no_gps_fix"] == 2
    assert track.start_s == 1.0 and track.at(0.2) is None
    assert "no GPS fix" in track.problem_summary() and "line 2" in track.problem_summary()


def test_only_zero_zero_fixes_is_an_error_naming_the_file():
    with pytest.raises(TelemetryError, match=r"^neo\.SRT: no usable telemetry sample in 1 subtitle blocks .*no GPS"):
        parse_srt_text(NEO2_NO_FIX, source="neo.SRT")


def test_malformed_blocks_are_skipped_and_counted(tmp_path):
    # The real Mavic Pro cue, repeated at other times and broken in the ways real files break.
    good1 = renumber(MAVIC_PRO, 0.0, 1)
    no_cue = "2\nGPS(149.0251,-20.2533,16) BAROMETER:1.9\n\n"
    no_pos = "3\n00:00:02,000 --> 00:00:03,000\nISO:100 Shutter:60 EV: Fnum:2.2\n\n"
    good_early = renumber(MAVIC_PRO, 0.5, 4)
    repeated = renumber(MAVIC_PRO, 0.5, 5)  # same start as the cue before it: dropped
    bad_date = renumber(MAVIC_PRO.replace("2017.08.05", "2017.13.45"), 4.0, 6)
    good2 = renumber(MAVIC_PRO, 5.0, 7)
    path = tmp_path / "mixed.SRT"
    path.write_text(good1 + no_cue + no_pos + good_early + repeated + bad_date + good2, encoding="utf-8")
    track = parse_srt(path)
    assert [s.t_s for s in track.samples] == [0.0, 0.5, 4.0, 5.0]
    assert track.problems == {"no_cue_time": 1, "no_position": 1, "time_not_increasing": 1, "bad_wall_time": 1}
    assert track.samples[2].local_time is None  # kept, without its unreadable wall time
    assert track.problem_lines["no_cue_time"] == 7


def test_isolated_position_glitch_is_dropped():
    cues = [renumber(P4P, float(k), k + 1) for k in range(5)]
    cues[2] = cues[2].replace("GPS (8.2090, 47.4692, 18)", "GPS (8.3090, 47.4692, 18)")  # 7.5 km away for 1 s
    track = parse_srt_text("".join(cues))
    assert [s.t_s for s in track.samples] == [0.0, 1.0, 3.0, 4.0]
    assert track.problems == {"position_jump": 1}


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", r"empty\.SRT: empty file, no telemetry"),
        (b"   \n\n", r"empty\.SRT: empty file, no telemetry"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"empty\.SRT: binary file"),
        (b"hello\nworld\n", r"empty\.SRT: no usable telemetry sample in 1 subtitle blocks .*cue time .*line 1"),
    ],
)
def test_empty_or_garbage_file_is_an_error_naming_it(tmp_path, content, message):
    path = tmp_path / "empty.SRT"
    path.write_bytes(content)
    with pytest.raises(TelemetryError, match=message):
        parse_srt(path)


def test_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(TelemetryError, match=r"nope\.SRT: cannot read telemetry file"):
        parse_srt(tmp_path / "nope.SRT")


def test_error_message_is_one_line():
    with pytest.raises(TelemetryError) as info:
        parse_srt_text("1\n00:00:00,000 --> 00:00:01,000\nno position here\n", source="x.SRT")
    assert "\n" not in str(info.value)


# --- interpolation -------------------------------------------------------------------------------------------


def sample(t_s: float, lat: float = 31.0, lon: float = 121.0, **kw) -> TelemetrySample:
    return TelemetrySample(t_s=t_s, end_s=t_s + 1.0, lat_deg=lat, lon_deg=lon, **kw)


def test_linear_position_and_altitude():
    track = TelemetryTrack((sample(0.0, 31.0, 121.0, rel_alt_m=40.0), sample(2.0, 31.001, 121.002, rel_alt_m=60.0)))
    geo = track.at(0.5)
    assert geo.lat_deg == pytest.approx(31.00025) and geo.lon_deg == pytest.approx(121.0005)
    assert geo.alt_m == pytest.approx(45.0)


@pytest.mark.parametrize(
    "yaw0,yaw1,expected",
    [(359.0, 1.0, 0.0), (179.0, -179.0, 180.0), (-170.0, 170.0, 180.0), (10.0, 30.0, 20.0), (-90.0, 90.0, 0.0)],
)
def test_angles_interpolate_along_the_shortest_arc(yaw0, yaw1, expected):
    track = TelemetryTrack((sample(0.0, gimbal_yaw_deg=yaw0), sample(1.0, gimbal_yaw_deg=yaw1)))
    yaw = track.at(0.5).yaw_deg
    assert -180.0 < yaw <= 180.0
    assert abs(((yaw - expected) + 180.0) % 360.0 - 180.0) < 1e-9


def test_outside_the_covered_span_is_none_and_last_cue_holds_until_its_end():
    track = TelemetryTrack((sample(1.0, rel_alt_m=10.0), sample(2.0, rel_alt_m=20.0)))  # last cue ends at 3.0
    assert track.at(0.99) is None
    assert track.at(2.5).alt_m == pytest.approx(20.0)
    assert track.at(3.0).alt_m == pytest.approx(20.0)
    assert track.at(3.01) is None
    assert track.describe_coverage(60.0) == "<telemetry>: telemetry covers 1.0–3.0 s of 60.0 s (3%)"


def test_at_many_matches_at_and_counts_uncovered_frames():
    track = parse_srt_text(P4RTK)
    times = np.array([-1.0, 0.0, 0.25, 1.5, 3.9, 4.0, 4.5])
    many = track.at_many(times)
    assert many.covered.tolist() == [False, True, True, True, True, True, False]
    for i, t in enumerate(times):
        assert many.frame_geo(i) == track.at(float(t))
    assert sum(g is None for g in many.frame_geos()) == 2


def test_interpolates_real_p4rtk_gimbal_yaw():
    geo = parse_srt_text(P4RTK).at(1.5)
    assert geo.yaw_deg == pytest.approx((110.5 + 110.8) / 2)
    assert geo.pitch_deg == pytest.approx(-24.4) and geo.roll_deg == pytest.approx(0.0)
    assert (geo.yaw_source, geo.pitch_source) == ("gimbal", "gimbal")


def test_wall_time_stays_naive_unless_a_zone_is_configured():
    naive = parse_srt_text(MATRICE)
    assert naive.wall_time_at(12.5) == datetime(2022, 6, 21, 16, 6, 29, 500000)
    aware = parse_srt_text(MATRICE, options=TelemetryOptions(timezone="Europe/Madrid"))
    wall = aware.wall_time_at(0.0)
    assert wall.utcoffset() == timedelta(hours=2)
    assert wall.astimezone(timezone.utc) == datetime(2022, 6, 21, 14, 6, 17, tzinfo=timezone.utc)
    assert parse_srt_text(P4P).wall_time_at(0.0) is None


def test_bad_timezone_option_names_it():
    with pytest.raises(TelemetryError, match="TelemetryOptions.timezone"):
        TelemetryOptions(timezone="Mars/Olympus")


# --- yaw and pitch sources -----------------------------------------------------------------------------------


def enu_samples(points_en_m, t0_s=0.0, dt_s=1.0, **kw) -> tuple[TelemetrySample, ...]:
    frame = LocalFrame(31.2304, 121.4737)
    en = np.asarray(points_en_m, float)
    lat, lon, _ = frame.to_geodetic(en[:, 0], en[:, 1], 0.0)
    return tuple(sample(t0_s + k * dt_s, float(lat[k]), float(lon[k]), **kw) for k in range(len(en)))


def test_yaw_from_gimbal_when_present():
    geo = parse_srt_text(AVATA360).at(0.02)
    assert (geo.yaw_deg, geo.yaw_source, geo.pitch_deg, geo.pitch_source) == (-162.8, "gimbal", 0.0, "gimbal")


def test_yaw_from_flight_when_no_gimbal_yaw():
    moving_north = enu_samples([(0.0, 10.0 * k) for k in range(5)], flight_yaw_deg=75.0)
    geo = TelemetryTrack(moving_north).at(2.0)
    assert (geo.yaw_deg, geo.yaw_source) == (75.0, "flight")  # the body yaw wins over the course over ground
    assert geo.pitch_source == "config" and geo.pitch_deg == -90.0


def test_yaw_from_track_with_hovering_keeping_the_last_heading():
    rng = np.random.default_rng(7)

    def jitter(e: float, n: float) -> tuple[float, float]:  # GPS noise while hovering
        return e + rng.normal(0, 0.3), n + rng.normal(0, 0.3)

    takeoff = [jitter(0.0, 0.0) for _ in range(8)]  # climbing on the spot: no course yet
    east = [(5.0 * k, 0.0) for k in range(1, 8)]  # 5 m/s east
    hover = [jitter(35.0, 0.0) for _ in range(20)]
    north = [(35.0, 5.0 * k) for k in range(1, 8)]
    track = TelemetryTrack(enu_samples(takeoff + east + hover + north), options=TelemetryOptions(default_yaw_deg=12.0))
    at = track.at_many(np.arange(len(track.samples), dtype=float))
    assert at.yaw_source[0] == "config" and at.yaw_deg[0] == 12.0  # before the first movement
    assert at.yaw_source[11] == "track" and at.yaw_deg[11] == pytest.approx(90.0, abs=1.0)
    # Hovering (samples 15-34): jitter is no course, so the eastward heading is carried; only the last few
    # hover samples, whose window reaches the northward leg, turn (the centred window rounds the corner).
    for k in range(16, 30):
        assert at.yaw_source[k] == "track" and at.yaw_deg[k] == pytest.approx(90.0, abs=10.0)
    assert at.yaw_deg[-2] == pytest.approx(0.0, abs=1.0)
    sources = track.yaw_sources
    assert set(sources) == {"config", "track"} and sources["config"] < 8


def test_track_heading_on_real_p4rtk_positions_shows_sideways_flight():
    # Without its attitude tokens the real P4 RTK track still has a course: the aircraft, yawed ~110° and
    # rolled ~-20° (left side down), drifts left, i.e. along ~20°. Its GPS order (lon, lat) must be right for
    # this: swapped coordinates would mirror the course to ~70°.
    real = parse_srt_text(P4RTK).samples
    stripped = tuple(dataclasses.replace(s, gimbal_yaw_deg=None, flight_yaw_deg=None) for s in real)
    geo = TelemetryTrack(stripped, options=TelemetryOptions(heading_baseline_m=3.0)).at(3.0)
    assert geo.yaw_source == "track"
    assert geo.yaw_deg == pytest.approx(20.0, abs=5.0)


def test_yaw_from_config_when_hovering_from_the_start():
    still = enu_samples([(0.0, 0.0)] * 4)
    assert TelemetryTrack(still, options=TelemetryOptions(default_yaw_deg=-45.0)).at(1.0).yaw_source == "config"
    geo = TelemetryTrack(still).at(1.0)
    assert geo.yaw_deg is None and geo.yaw_source is None


def test_absolute_only_altitude_needs_the_home_altitude():
    assert parse_srt_text(M2ZOOM).at(0.0).alt_m is None
    geo = parse_srt_text(M2ZOOM, options=TelemetryOptions(home_abs_alt_m=200.0)).at(0.0)
    assert geo.alt_m == pytest.approx(13.983002) and geo.abs_alt_m == pytest.approx(213.983002)


def test_frame_geo_rejects_unknown_sources():
    with pytest.raises(ValueError, match="yaw_source"):
        FrameGeo(30.0, 120.0, yaw_source="compass")


# --- stills --------------------------------------------------------------------------------------------------

# Attribute form: the drone-dji values of a real Zenmuse P1 / Matrice 300 RTK photo published on the DJI
# forum, "M300RTK P1 EXIF Data" (https://forum.dji.com/forum.php?mod=viewthread&tid=244989), wrapped in the
# xmpmeta/RDF envelope DJI writes.
P1_XMP_ATTRS = """<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="DJI Meta Data"
    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"
   tiff:Make="DJI"
   tiff:Model="ZenmuseP1"
   dc:format="image/jpg"
   drone-dji:Version="1.4"
   drone-dji:GpsStatus="Normal"
   drone-dji:AltitudeType="RtkAlt"
   drone-dji:GpsLatitude="+29.282190206"
   drone-dji:GpsLongitude="-94.922448090"
   drone-dji:AbsoluteAltitude="+14.687"
   drone-dji:RelativeAltitude="+39.839"
   drone-dji:GimbalRollDegree="+0.00"
   drone-dji:GimbalYawDegree="+57.20"
   drone-dji:GimbalPitchDegree="-89.90"
   drone-dji:FlightRollDegree="+5.00"
   drone-dji:FlightYawDegree="+55.90"
   drone-dji:FlightPitchDegree="-7.40"
   drone-dji:RtkFlag="16"
   drone-dji:UTCAtExposure="2021-05-26T15:21:49.073960"/>
 </rdf:RDF>
</x:xmpmeta>"""

# Element form: the drone-dji elements posted in domlysz/BlenderGIS issue #378 ("Extract XMP metadata from
# geotagged DJI drone image"), in the same envelope.
BLENDERGIS_XMP_ELEMENTS = """<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/">
         <drone-dji:GpsLatitude>+44.5135795</drone-dji:GpsLatitude>
         <drone-dji:GpsLongitude>-64.3007844</drone-dji:GpsLongitude>
         <drone-dji:AbsoluteAltitude>+46.00</drone-dji:AbsoluteAltitude>
         <drone-dji:RelativeAltitude>+46.00</drone-dji:RelativeAltitude>
         <drone-dji:GimbalRollDegree>+0.00</drone-dji:GimbalRollDegree>
         <drone-dji:GimbalYawDegree>+84.20</drone-dji:GimbalYawDegree>
         <drone-dji:GimbalPitchDegree>-44.50</drone-dji:GimbalPitchDegree>
         <drone-dji:FlightRollDegree>+10.90</drone-dji:FlightRollDegree>
         <drone-dji:FlightYawDegree>+111.00</drone-dji:FlightYawDegree>
         <drone-dji:FlightPitchDegree>-7.80</drone-dji:FlightPitchDegree>
         <drone-dji:CamReverse>0</drone-dji:CamReverse>
         <drone-dji:GimbalReverse>0</drone-dji:GimbalReverse>
         <drone-dji:SelfData/>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"""


def longtitude(xmp: str) -> str:
    """The same packet with DJI's older spelling of the longitude tag (``GpsLongtitude``, listed in ExifTool's
    DJI XMP tag table and orthority's docs/file_formats/exif_xmp.rst)."""
    return xmp.replace("GpsLongitude", "GpsLongtitude")


def dms(value: float) -> tuple[tuple[int, int], ...]:
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    s = Fraction((value - d - m / 60) * 3600).limit_denominator(100000)
    return ((d, 1), (m, 1), (s.numerator, s.denominator))


def write_still(
    path: Path,
    *,
    gps: tuple[float, float, float] | None = None,
    xmp: str | None = None,
    taken: str | None = "2021:05:26 10:21:49",
    offset: str | None = None,
    size: tuple[int, int] = (64, 48),
) -> Path:
    """A small real JPEG with EXIF written by piexif and, optionally, an XMP APP1 segment."""
    ok, buf = cv2.imencode(".jpg", np.full((size[1], size[0], 3), 128, np.uint8))
    assert ok
    exif: dict = {
        "0th": {piexif.ImageIFD.Make: b"DJI", piexif.ImageIFD.Model: b"ZenmuseP1"},
        "Exif": {piexif.ExifIFD.FocalLength: (35, 1), piexif.ExifIFD.FocalLengthIn35mmFilm: 35},
        "GPS": {},
    }
    if taken:
        exif["Exif"][piexif.ExifIFD.DateTimeOriginal] = taken.encode()
    if offset:
        exif["Exif"][piexif.ExifIFD.OffsetTimeOriginal] = offset.encode()
    if gps:
        lat, lon, alt = gps
        exif["GPS"] = {
            piexif.GPSIFD.GPSLatitudeRef: b"N" if lat >= 0 else b"S",
            piexif.GPSIFD.GPSLatitude: dms(lat),
            piexif.GPSIFD.GPSLongitudeRef: b"E" if lon >= 0 else b"W",
            piexif.GPSIFD.GPSLongitude: dms(lon),
            piexif.GPSIFD.GPSAltitudeRef: 0 if alt >= 0 else 1,
            piexif.GPSIFD.GPSAltitude: (int(round(abs(alt) * 1000)), 1000),
        }
    out = io_insert_exif(piexif.dump(exif), buf.tobytes())
    if xmp is not None:
        payload = b"http://ns.adobe.com/xap/1.0/\x00" + xmp.encode("utf-8")
        segment = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
        out = out[:2] + segment + out[2:]
    path.write_bytes(out)
    return path


def io_insert_exif(exif_bytes: bytes, jpeg: bytes) -> bytes:
    out = io.BytesIO()
    piexif.insert(exif_bytes, jpeg, out)
    return out.getvalue()


@pytest.mark.parametrize(
    "xmp,lat,lon,rel_alt,abs_alt,gimbal,flight",
    [
        (P1_XMP_ATTRS, 29.282190206, -94.922448090, 39.839, 14.687, (57.2, -89.9, 0.0), (55.9, -7.4, 5.0)),
        (longtitude(P1_XMP_ATTRS), 29.282190206, -94.922448090, 39.839, 14.687, (57.2, -89.9, 0.0), (55.9, -7.4, 5.0)),
        (BLENDERGIS_XMP_ELEMENTS, 44.5135795, -64.3007844, 46.0, 46.0, (84.2, -44.5, 0.0), (111.0, -7.8, 10.9)),
        (
            longtitude(BLENDERGIS_XMP_ELEMENTS), 44.5135795, -64.3007844, 46.0, 46.0, (84.2, -44.5, 0.0), (111.0, -7.8, 10.9)
        ),
    ],
    ids=["attributes", "attributes-longtitude", "elements", "elements-longtitude"],
)
def test_still_xmp_forms_and_spellings(tmp_path, xmp, lat, lon, rel_alt, abs_alt, gimbal, flight):
    # EXIF GPS deliberately elsewhere: the position must come from the XMP packet.
    still = read_still_geo(write_still(tmp_path / "DJI_0001.JPG", gps=(10.0, 10.0, 5.0), xmp=xmp))
    assert still.position_source == "xmp"
    assert (still.lat_deg, still.lon_deg) == (pytest.approx(lat), pytest.approx(lon))
    assert (still.rel_alt_m, still.abs_alt_m) == (pytest.approx(rel_alt), pytest.approx(abs_alt))
    assert (still.gimbal_yaw_deg, still.gimbal_pitch_deg, still.gimbal_roll_deg) == gimbal
    assert (still.flight_yaw_deg, still.flight_pitch_deg, still.flight_roll_deg) == flight
    geo = still.frame_geo()
    assert (geo.yaw_deg, geo.yaw_source, geo.pitch_deg, geo.pitch_source) == (gimbal[0], "gimbal", gimbal[1], "gimbal")
    assert geo.alt_m == pytest.approx(rel_alt)


def test_still_exif_only(tmp_path):
    still = read_still_geo(write_still(tmp_path / "a.jpg", gps=(-29.282190206, 94.922448090, -3.5), offset="+08:00"))
    assert still.position_source == "exif"
    assert still.lat_deg == pytest.approx(-29.282190206, abs=1e-8)
    assert still.lon_deg == pytest.approx(94.922448090, abs=1e-8)
    assert still.abs_alt_m == pytest.approx(-3.5)  # GPSAltitudeRef 1: below sea level
    assert still.rel_alt_m is None and still.gimbal_yaw_deg is None
    assert (still.width_px, still.height_px) == (64, 48)  # from the JPEG frame header
    assert (still.focal_len_mm, still.focal_len_35mm_mm, still.make, still.model) == (35.0, 35.0, "DJI", "ZenmuseP1")
    assert still.taken_local == datetime(2021, 5, 26, 10, 21, 49)
    assert still.taken == datetime(2021, 5, 26, 2, 21, 49, tzinfo=timezone.utc)
    geo = still.frame_geo(TelemetryOptions(default_yaw_deg=30.0))
    assert (geo.yaw_source, geo.pitch_source, geo.alt_m) == ("config", "config", None)


def test_still_flight_yaw_when_no_gimbal_yaw(tmp_path):
    xmp = P1_XMP_ATTRS.replace('   drone-dji:GimbalYawDegree="+57.20"\n', "")
    geo = read_still_geo(write_still(tmp_path / "a.jpg", xmp=xmp)).frame_geo()
    assert (geo.yaw_deg, geo.yaw_source) == (55.9, "flight")


@pytest.mark.parametrize(
    "gps,xmp,message",
    [
        (None, None, "no GPS position"),
        ((0.0, 0.0, 0.0), None, "0,0"),
        (None, P1_XMP_ATTRS.replace("+29.282190206", "+0.0").replace("-94.922448090", "0.0"), "0,0"),
        (None, P1_XMP_ATTRS.replace("drone-dji:GpsLongitude", "drone-dji:GpsAltitudeX"), "no GPS position"),
    ],
    ids=["nothing", "exif-zero", "xmp-zero", "xmp-latitude-only"],
)
def test_still_without_gps_raises_no_gps_error(tmp_path, gps, xmp, message):
    path = write_still(tmp_path / "nogps.jpg", gps=gps, xmp=xmp)
    with pytest.raises(NoGpsError, match=rf"nogps\.jpg: .*{message}"):
        read_still_geo(path)


def test_still_with_broken_xmp_keeps_exif_and_notes_it(tmp_path):
    broken = P1_XMP_ATTRS.replace("/>", ">")  # the Description element is never closed
    still = read_still_geo(write_still(tmp_path / "a.jpg", gps=(30.0, 120.0, 50.0), xmp=broken))
    assert still.position_source == "exif" and still.rel_alt_m is None
    assert len(still.notes) == 1 and "not well-formed" in still.notes[0]


def test_read_stills_sorts_by_time_and_lists_skipped(tmp_path):
    write_still(tmp_path / "DJI_0003.JPG", xmp=P1_XMP_ATTRS, taken="2021:05:26 10:21:40")
    write_still(tmp_path / "DJI_0001.JPG", xmp=BLENDERGIS_XMP_ELEMENTS, taken="2021:05:26 10:21:55")
    write_still(tmp_path / "DJI_0002.JPG", gps=(30.0, 120.0, 5.0), taken=None)
    write_still(tmp_path / "DJI_0004.JPG")  # no GPS at all
    (tmp_path / "DJI_0005.JPG").write_bytes(b"not a jpeg")
    (tmp_path / "DJI_0006.DNG").write_bytes(b"II*\x00")
    (tmp_path / "flight.SRT").write_text("ignored")
    result = read_stills(tmp_path)
    assert [s.path.name for s in result.stills] == ["DJI_0003.JPG", "DJI_0001.JPG", "DJI_0002.JPG"]
    reasons = {s.path.name: s.reason for s in result.skipped}
    assert set(reasons) == {"DJI_0004.JPG", "DJI_0005.JPG", "DJI_0006.DNG"}
    assert "no GPS position" in reasons["DJI_0004.JPG"]
    assert "not a JPEG file" in reasons["DJI_0005.JPG"]
    assert "not a JPEG still" in reasons["DJI_0006.DNG"]


def test_read_stills_on_a_missing_folder_names_it(tmp_path):
    with pytest.raises(TelemetryError, match="nowhere: not a folder of stills"):
        read_stills(tmp_path / "nowhere")

