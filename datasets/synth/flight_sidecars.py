"""What a DJI drone writes beside its pictures, for synthetic flights: the SRT telemetry sidecar of a video and
the EXIF GPS block and DJI XMP packet of a still.

SRT cues follow the Mavic 3 / Air 2S / Mini style (one cue per video frame, ``FrameCnt``/``DiffTime``, a local
date-time line without zone, then bracketed ``[key: value]`` tokens). Where the camera does not look along the
track, the gimbal angles are added as ``[gb_yaw: … gb_pitch: … gb_roll: …]`` in one bracket right after
``[rel_alt: … abs_alt: …]``, as the Mavic 3 Enterprise series writes them, e.g. (a Mavic 3T flight log,
PhilipQuirke/SkyCombAnalystHelp, FlightLogs.md):
``[latitude: -37.996099] [longitude: 177.035704] [rel_alt: 75.645 abs_alt: 227.888] [gb_yaw: 76.8 gb_pitch:
-49.1 gb_roll: 0.0] </font>``. DJI writes latitude and longitude with 6 decimals (about 0.1 m) and gimbal
angles with 1; so does this writer, so a parser meets the rounding of a real file.

Stills carry EXIF GPS (written with piexif) and an XMP packet in the ``drone-dji`` namespace
(``http://www.dji.com/drone-dji/1.0/``: ``GpsLatitude``, ``GpsLongitude`` or DJI's misspelt ``GpsLongtitude``,
``AbsoluteAltitude``, ``RelativeAltitude``, ``GimbalRoll/Yaw/PitchDegree``, ``FlightRoll/Yaw/PitchDegree``;
tag list of exiftool/exiftool, lib/Image/ExifTool/DJI.pm, table ``XMP-drone-dji``).
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

import cv2
import numpy as np
import piexif

__all__ = ["SrtCue", "srt_time", "srt_text", "StillMeta", "still_jpeg_bytes", "dji_xmp_packet", "insert_app1",
           "normalize_yaw_deg"]

_XMP_APP1_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"


def normalize_yaw_deg(yaw_deg: float) -> float:
    """A heading in DJI's range (-180, 180].

    Example:
        >>> normalize_yaw_deg(270.0), normalize_yaw_deg(-180.0), normalize_yaw_deg(37.0)
        (-90.0, 180.0, 37.0)
    """
    y = math.fmod(float(yaw_deg), 360.0)
    if y > 180.0:
        y -= 360.0
    elif y <= -180.0:
        y += 360.0
    return y


def srt_time(ms: int) -> str:
    """SubRip time ``HH:MM:SS,mmm`` of a time in milliseconds.

    Example:
        >>> srt_time(3_723_045)
        '01:02:03,045'
    """
    if ms < 0:
        raise ValueError(f"SRT times cannot be negative, got {ms} ms")
    h, rest = divmod(int(ms), 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, milli = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{milli:03d}"


@dataclass(frozen=True)
class SrtCue:
    """One SRT cue: the telemetry of one video frame.

    Attributes:
        frame_count: 1-based frame number (DJI's ``FrameCnt``).
        start_ms: Cue start, milliseconds from the start of the video.
        end_ms: Cue end (the next frame's start).
        wall_local: Local wall-clock time of the frame, naive (DJI writes no zone).
        lat_deg: Latitude, WGS84.
        lon_deg: Longitude, WGS84.
        rel_alt_m: Altitude above the take-off point.
        abs_alt_m: Altitude above sea level.
        focal_35mm_mm: 35 mm equivalent focal length (DJI's ``focal_len``).
        f_number: Aperture.
        gimbal_ypr_deg: (yaw, pitch, roll) of the gimbal in DJI's convention, or None to leave it out.
    """

    frame_count: int
    start_ms: int
    end_ms: int
    wall_local: datetime
    lat_deg: float
    lon_deg: float
    rel_alt_m: float
    abs_alt_m: float
    focal_35mm_mm: float
    f_number: float
    gimbal_ypr_deg: tuple[float, float, float] | None = None

    def text(self) -> str:
        """The cue as DJI writes it (number, times, and the ``<font>`` block), without the blank line after it."""
        stamp = self.wall_local.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        tokens = (f"[iso: 100] [shutter: 1/1000.0] [fnum: {self.f_number:.1f}] [ev: 0] [color_md: default] "
                  f"[focal_len: {self.focal_35mm_mm:.2f}] [latitude: {self.lat_deg:.6f}] "
                  f"[longitude: {self.lon_deg:.6f}] [rel_alt: {self.rel_alt_m:.3f} abs_alt: {self.abs_alt_m:.3f}] ")
        if self.gimbal_ypr_deg is not None:
            yaw, pitch, roll = self.gimbal_ypr_deg
            tokens += f"[gb_yaw: {normalize_yaw_deg(yaw):.1f} gb_pitch: {pitch:.1f} gb_roll: {roll:.1f}] "
        tokens += "[ct: 5500] </font>"
        return (f"{self.frame_count}\n{srt_time(self.start_ms)} --> {srt_time(self.end_ms)}\n"
                f"<font size=\"28\">FrameCnt: {self.frame_count}, DiffTime: {self.end_ms - self.start_ms}ms\n"
                f"{stamp}\n{tokens}")


def srt_text(cues: Sequence[SrtCue]) -> str:
    """A whole SRT file: cues separated by blank lines, ending with a newline."""
    return "\n\n".join(c.text() for c in cues) + "\n" if cues else ""


# --- stills ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StillMeta:
    """What a DJI still carries about where and how it was taken.

    Attributes:
        taken_local: Local wall-clock time, naive.
        utc_offset_s: Offset of local time from UTC (EXIF ``OffsetTimeOriginal``).
        lat_deg: Latitude, or None for a still taken without a GPS fix (no GPS in EXIF nor XMP).
        lon_deg: Longitude, or None.
        rel_alt_m: Altitude above the take-off point (XMP ``RelativeAltitude``).
        abs_alt_m: Altitude above sea level (EXIF ``GPSAltitude``, XMP ``AbsoluteAltitude``).
        gimbal_ypr_deg: Gimbal yaw, pitch, roll (DJI convention).
        flight_ypr_deg: Aircraft body yaw, pitch, roll (the body tilts forward when flying; the gimbal does not).
        focal_mm: Real focal length.
        focal_35mm_mm: 35 mm equivalent.
        f_number: Aperture.
        make: EXIF Make.
        model: EXIF Model (the camera's name, e.g. ``L2D-20c`` for the Mavic 3's Hasselblad camera).
        xmp_longitude_key: ``GpsLongitude`` or DJI's older misspelling ``GpsLongtitude``.
    """

    taken_local: datetime
    utc_offset_s: int
    lat_deg: float | None
    lon_deg: float | None
    rel_alt_m: float
    abs_alt_m: float
    gimbal_ypr_deg: tuple[float, float, float]
    flight_ypr_deg: tuple[float, float, float]
    focal_mm: float
    focal_35mm_mm: float
    f_number: float
    make: str = "DJI"
    model: str = "L2D-20c"
    xmp_longitude_key: str = "GpsLongitude"


def _dms(value_deg: float) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Degrees, minutes and seconds (1/10000 s, about 3 mm) as EXIF rationals."""
    v = abs(float(value_deg))
    deg = int(v)
    minutes = int((v - deg) * 60)
    sec = round(((v - deg) * 60 - minutes) * 60 * 10000)
    if sec >= 600000:  # rounding carried a whole minute
        sec -= 600000
        minutes += 1
    if minutes >= 60:
        minutes -= 60
        deg += 1
    return (deg, 1), (minutes, 1), (sec, 10000)


def _rational(value: float, denominator: int) -> tuple[int, int]:
    return round(value * denominator), denominator


def _offset_text(offset_s: int) -> str:
    sign = "+" if offset_s >= 0 else "-"
    h, m = divmod(abs(offset_s) // 60, 60)
    return f"{sign}{h:02d}:{m:02d}"


def _exif_bytes(meta: StillMeta, width_px: int, height_px: int) -> bytes:
    stamp = meta.taken_local.strftime("%Y:%m:%d %H:%M:%S").encode()
    f_ratio = Fraction(meta.f_number).limit_denominator(100)
    exif = {
        "0th": {piexif.ImageIFD.Make: meta.make.encode(), piexif.ImageIFD.Model: meta.model.encode(),
                piexif.ImageIFD.Software: b"streetwatch synthetic flight", piexif.ImageIFD.DateTime: stamp,
                piexif.ImageIFD.ImageDescription: b"default"},
        "Exif": {piexif.ExifIFD.DateTimeOriginal: stamp, piexif.ExifIFD.DateTimeDigitized: stamp,
                 piexif.ExifIFD.SubSecTimeOriginal: f"{meta.taken_local.microsecond // 1000:03d}".encode(),
                 piexif.ExifIFD.OffsetTimeOriginal: _offset_text(meta.utc_offset_s).encode(),
                 piexif.ExifIFD.FocalLength: _rational(meta.focal_mm, 100),
                 piexif.ExifIFD.FocalLengthIn35mmFilm: round(meta.focal_35mm_mm),
                 piexif.ExifIFD.FNumber: (f_ratio.numerator, f_ratio.denominator),
                 piexif.ExifIFD.ExposureTime: (1, 1000), piexif.ExifIFD.ISOSpeedRatings: 100,
                 piexif.ExifIFD.PixelXDimension: int(width_px), piexif.ExifIFD.PixelYDimension: int(height_px)},
        "GPS": {},
    }
    if meta.lat_deg is not None and meta.lon_deg is not None:
        exif["GPS"] = {
            piexif.GPSIFD.GPSVersionID: (2, 3, 0, 0),
            piexif.GPSIFD.GPSLatitudeRef: b"N" if meta.lat_deg >= 0 else b"S",
            piexif.GPSIFD.GPSLatitude: _dms(meta.lat_deg),
            piexif.GPSIFD.GPSLongitudeRef: b"E" if meta.lon_deg >= 0 else b"W",
            piexif.GPSIFD.GPSLongitude: _dms(meta.lon_deg),
            piexif.GPSIFD.GPSAltitudeRef: 0 if meta.abs_alt_m >= 0 else 1,
            piexif.GPSIFD.GPSAltitude: _rational(abs(meta.abs_alt_m), 1000),
        }
    return piexif.dump(exif)


def dji_xmp_packet(meta: StillMeta) -> bytes:
    """The XMP packet of a DJI still (attribute form on one ``rdf:Description``, as DJI writes it)."""
    gy, gp, gr = meta.gimbal_ypr_deg
    fy, fp, fr = meta.flight_ypr_deg
    attrs = [("tiff:Make", meta.make), ("tiff:Model", meta.model), ("dc:format", "image/jpeg")]
    if meta.lat_deg is not None and meta.lon_deg is not None:
        attrs += [("drone-dji:GpsLatitude", f"{meta.lat_deg:+.8f}"),
                  (f"drone-dji:{meta.xmp_longitude_key}", f"{meta.lon_deg:+.8f}")]
    attrs += [("drone-dji:AbsoluteAltitude", f"{meta.abs_alt_m:+.3f}"),
              ("drone-dji:RelativeAltitude", f"{meta.rel_alt_m:+.3f}"),
              ("drone-dji:GimbalRollDegree", f"{gr:+.2f}"),
              ("drone-dji:GimbalYawDegree", f"{normalize_yaw_deg(gy):+.2f}"),
              ("drone-dji:GimbalPitchDegree", f"{gp:+.2f}"),
              ("drone-dji:FlightRollDegree", f"{fr:+.2f}"),
              ("drone-dji:FlightYawDegree", f"{normalize_yaw_deg(fy):+.2f}"),
              ("drone-dji:FlightPitchDegree", f"{fp:+.2f}")]
    body = "\n".join(f'   {k}="{v}"' for k, v in attrs)
    text = ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
            '  <rdf:Description rdf:about="DJI Meta Data"\n'
            '    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"\n'
            '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
            '    xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"\n'
            f'{body}>\n'
            '  </rdf:Description>\n'
            ' </rdf:RDF>\n'
            '</x:xmpmeta>\n'
            '<?xpacket end="w"?>')
    return text.encode("utf-8")


def insert_app1(jpeg: bytes, payload: bytes) -> bytes:
    """Insert an APP1 segment carrying `payload` after the JPEG's leading APPn segments.

    piexif writes the EXIF APP1 but knows no XMP, and no maintained library here writes XMP into a JPEG, so
    this walks the segment headers by hand (SOI, then length-prefixed APPn segments).
    """
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG: it does not start with SOI (FF D8)")
    if len(payload) + 2 > 0xFFFF:
        raise ValueError(f"APP1 payload of {len(payload)} bytes does not fit one segment (max 65533)")
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF and 0xE0 <= jpeg[pos + 1] <= 0xEF:
        (length,) = struct.unpack(">H", jpeg[pos + 2:pos + 4])
        pos += 2 + length
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:pos] + segment + jpeg[pos:]


def still_jpeg_bytes(image_bgr: np.ndarray, meta: StillMeta, quality: int = 92) -> bytes:
    """A JPEG of `image_bgr` with DJI-style EXIF (GPS when the still has a fix) and the DJI XMP packet."""
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("could not encode the still as JPEG")
    out = io.BytesIO()
    piexif.insert(_exif_bytes(meta, image_bgr.shape[1], image_bgr.shape[0]), buf.tobytes(), out)
    return insert_app1(out.getvalue(), _XMP_APP1_HEADER + dji_xmp_packet(meta))
