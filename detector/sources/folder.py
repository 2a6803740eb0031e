"""`ImageFolderSource`: a folder of stills (time-lapse cameras, drone photo sets), in name order."""

from __future__ import annotations

import re
import struct
import threading
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path

from detector.errors import ImageReadError
from detector.imageio import IMAGE_SUFFIXES, decode_image
from detector.sources.base import SampleClock, SourceBase, SourceError, SourceState
from detector.sources.guard import FrameGuard
from detector.sources.mjpeg import image_error_reason

__all__ = ["ImageFolderSource", "exif_datetime", "filename_datetime", "TS_FROM"]

TS_FROM = ("exif", "filename", "mtime")


class ImageFolderSource(SourceBase):
    """Stills from a folder, in natural name order (img2 before img10), each stamped with its capture time.

    Corrupt or truncated files are skipped and counted (``rejected_reasons["corrupt"]``...), never fatal;
    an image whose time goes backwards relative to the previous emitted one is refused as "out_of_order"
    (dwell times would be negative). Every sample is delivered (no drops): this is offline input.

    Args:
        folder: The folder; files with the suffixes in `detector.imageio.IMAGE_SUFFIXES` are read, hidden
            files and others ignored.
        sample_fps: Samples per second of capture time; None keeps every image.
        ts_from: Where the time comes from, tried in order, separated by "|": "exif" (DateTimeOriginal,
            with OffsetTimeOriginal and SubSecTimeOriginal when present), "filename" (e.g.
            ``IMG_20260601_081500.jpg``, ``cam1-2026-06-01T08-15-00.123.jpg`` or Unix seconds/milliseconds)
            and "mtime" (last resort: copying a file changes it). An image no source dates is refused as
            "no_timestamp".
        tz: Time zone of times that carry none (EXIF without offset, file names).
        source_id: Id on each frame; default the folder name.
        queue_size: Output queue capacity.
        guard: Black/frozen frame guard (default `FrameGuard()`; duplicates count as "frozen").
        stop_event: A service-wide stop event.

    Raises:
        SourceError: From `start()` when the folder does not exist.

    Example:
        >>> with ImageFolderSource("stills/", ts_from="exif|mtime") as source:  # doctest: +SKIP
        ...     for frame in source:
        ...         print(frame.index, frame.ts)
    """

    kind = "folder"

    def __init__(self, folder: Path | str, sample_fps: float | None = None, ts_from: str = "exif|filename|mtime",
                 tz: tzinfo = timezone.utc, *, source_id: str | None = None, queue_size: int = 4,
                 guard: FrameGuard | None = None, stop_event: threading.Event | None = None):
        self.folder = Path(folder)
        super().__init__(source_id or self.folder.name, live=False, queue_size=queue_size, guard=guard,
                         stop_event=stop_event)
        self.ts_from = tuple(part.strip() for part in ts_from.split("|") if part.strip())
        unknown = [p for p in self.ts_from if p not in TS_FROM]
        if unknown or not self.ts_from:
            raise ValueError(f"ts_from must be '|'-separated names from {TS_FROM}, got {ts_from!r}")
        self.sample_fps = sample_fps
        self.tz = tz
        self._clock = SampleClock(sample_fps)
        self._files: list[Path] = []

    def _open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"{self.folder}: no such folder")
        self._files = sorted((p for p in self.folder.iterdir()
                              if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()),
                             key=_natural_key)
        self._set_state(SourceState.STREAMING, connected=True)

    def _run(self) -> None:
        last_ts: datetime | None = None
        for index, path in enumerate(self._files):
            if self.stopping:
                return
            self._beat()
            self._count_in()
            try:
                data = path.read_bytes()
            except OSError as exc:
                self._reject("unreadable")
                self._note_error(f"{path.name}: cannot read: {exc.strerror}")
                continue
            ts = self._timestamp(path, data)
            if ts is None:
                self._reject("no_timestamp")
                self._note_error(f"{path.name}: no capture time from {'|'.join(self.ts_from)}")
                continue
            if last_ts is not None and ts < last_ts:
                self._reject("out_of_order")
                self._note_error(f"{path.name}: taken at {ts.isoformat()}, before the previous image")
                continue
            if not self._clock.due(ts.timestamp()):
                continue  # not sampled: not even decoded
            try:
                image = decode_image(data, path.name)
            except ImageReadError as exc:
                self._reject(image_error_reason(exc))
                self._note_error(exc)
                continue
            if self._emit(image, ts, index):
                self._clock.take(ts.timestamp())
                last_ts = ts
        self._set_state(SourceState.ENDED, connected=False)

    def _timestamp(self, path: Path, data: bytes) -> datetime | None:
        for method in self.ts_from:
            if method == "exif":
                ts = exif_datetime(data, self.tz)
            elif method == "filename":
                ts = filename_datetime(path.name, self.tz)
            else:
                ts = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
            if ts is not None:
                return ts.astimezone(timezone.utc)
        return None


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


_NAME_DATETIME = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d\d)[-_.]?(?P<mo>\d\d)[-_.]?(?P<d>\d\d)[T_ .-]?"
    r"(?P<h>\d\d)[-_.:h]?(?P<mi>\d\d)[-_.:m]?(?P<s>\d\d)(?:[.,](?P<frac>\d{1,6})|(?P<ms>\d{3}))?(?!\d)")
_NAME_EPOCH = re.compile(r"(?<!\d)(?P<s>1\d{9})(?:(?P<ms>\d{3})|\.(?P<frac>\d{1,6}))?(?!\d)")


def filename_datetime(name: str, tz: tzinfo = timezone.utc) -> datetime | None:
    """A capture time written in a file name, or None.

    Example:
        >>> filename_datetime("IMG_20260601_081500.jpg")
        datetime.datetime(2026, 6, 1, 8, 15, tzinfo=datetime.timezone.utc)
        >>> filename_datetime("cam-1780302900123.jpg").isoformat()
        '2026-06-01T08:35:00.123000+00:00'
    """
    match = _NAME_DATETIME.search(name)
    if match:
        g = match.groupdict()
        frac = g["frac"] or g["ms"] or ""
        try:
            return datetime(int(g["y"]), int(g["mo"]), int(g["d"]), int(g["h"]), int(g["mi"]), int(g["s"]),
                            int(frac.ljust(6, "0")) if frac else 0, tzinfo=tz)
        except ValueError:
            pass
    match = _NAME_EPOCH.search(name)
    if match:
        frac = match["frac"] or match["ms"] or ""
        seconds = int(match["s"]) + (int(frac) / 10 ** len(frac) if frac else 0.0)
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    return None


def exif_datetime(data: bytes, tz: tzinfo = timezone.utc) -> datetime | None:
    """DateTimeOriginal (else DateTime) from a JPEG's EXIF, with its offset and sub-seconds; None if absent.

    A small reader of the TIFF structure inside APP1, so no imaging library is needed; anything malformed
    gives None rather than an error.

    Example:
        >>> exif_datetime(b"not a jpeg") is None
        True
    """
    try:
        tiff = _exif_tiff(data)
        if tiff is None:
            return None
        return _exif_tiff_datetime(tiff, tz)
    except (struct.error, IndexError, ValueError, UnicodeDecodeError):
        return None


def _exif_tiff(data: bytes) -> bytes | None:
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no metadata after this
            return None
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker == 0xE1 and data[i + 4:i + 10] == b"Exif\x00\x00":
            return data[i + 10:i + 2 + length]
        i += 2 + length
    return None


_EXIF_IFD, _DATETIME, _DATETIME_ORIGINAL, _OFFSET_ORIGINAL, _SUBSEC_ORIGINAL = 0x8769, 0x0132, 0x9003, 0x9011, 0x9291


def _exif_tiff_datetime(tiff: bytes, tz: tzinfo) -> datetime | None:
    endian = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if endian is None:
        return None

    def entries(offset: int) -> dict[int, tuple[int, int, bytes]]:
        count = struct.unpack(endian + "H", tiff[offset:offset + 2])[0]
        out = {}
        for k in range(count):
            base = offset + 2 + 12 * k
            tag, typ, n = struct.unpack(endian + "HHI", tiff[base:base + 8])
            out[tag] = (typ, n, tiff[base + 8:base + 12])
        return out

    def ascii_value(entry: tuple[int, int, bytes] | None) -> str | None:
        if entry is None or entry[0] != 2:
            return None
        _, n, raw = entry
        value = raw[:n] if n <= 4 else tiff[struct.unpack(endian + "I", raw)[0]:][:n]
        return value.split(b"\x00")[0].decode("ascii").strip() or None

    ifd0 = entries(struct.unpack(endian + "I", tiff[4:8])[0])
    exif = {}
    if _EXIF_IFD in ifd0:
        exif = entries(struct.unpack(endian + "I", ifd0[_EXIF_IFD][2])[0])
    text = ascii_value(exif.get(_DATETIME_ORIGINAL)) or ascii_value(ifd0.get(_DATETIME))
    if not text or text.startswith("0000"):
        return None
    ts = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    subsec = ascii_value(exif.get(_SUBSEC_ORIGINAL))
    if subsec and subsec.isdigit():
        ts = ts.replace(microsecond=int(subsec[:6].ljust(6, "0")))
    offset = ascii_value(exif.get(_OFFSET_ORIGINAL))
    match = re.fullmatch(r"([+-])(\d\d):(\d\d)", offset or "")
    if match:
        delta = timedelta(hours=int(match[2]), minutes=int(match[3]))
        return ts.replace(tzinfo=timezone(delta if match[1] == "+" else -delta))
    return ts.replace(tzinfo=tz)
