"""Evidence that proves duration: a time-lapse strip and a short clip of a violation's object over its dwell.

A case's annotated frame shows that the object is there when the violation became due; a 城管 case needs proof
that it stood there for the whole time. The camera worker keeps a few crops per track over its life
(`detector.track_history.TrackHistory`); when evidence of a violation is written, this module makes from them:

* the **strip** (``<stem>.strip.jpg``): three panels of the object, at first sight (the kept crop nearest the
  violation's ``first_seen``), midway and last sight (the current frame), each labelled with its camera-local
  time and the time since first sight, under a header with the date, the time zone and the dwell;
* the **clip** (``<stem>.clip.mp4``): an H.264 MP4 (PyAV, yuv420p, plays in browsers) time-lapse of every kept
  crop from first sight to now, each held `CLIP_HOLD_S` with its time burnt in above it and a bar showing where in
  the dwell it is; at most `CLIP_WIDTH_PX` wide and `CLIP_MAX_BYTES` large.

Times are frame timestamps shown in the camera's time zone, never frame counts. Composition (`pick_strip`,
`compose_strip`, `clip_frames`) is pure and tested without models; `save_timelapse` writes both files owner-only
or neither, raising `EvidenceWriteError` (the worker counts it in the evidence guard, so health shows it).

Only camera cases get them: a drone flight finds each object in a few frames of one pass, not over a dwell.

Example:
    >>> from datetime import datetime, timezone
    >>> from zoneinfo import ZoneInfo
    >>> t0 = datetime(2026, 6, 1, 6, 0, tzinfo=timezone.utc)
    >>> looks = [Look(t0 + timedelta(minutes=m), np.zeros((80, 60, 3), np.uint8), (10, 10, 50, 70))
    ...          for m in (0, 3, 5, 8, 11)]
    >>> [lk.t.minute for lk in pick_strip(looks, first_seen=t0)]
    [0, 5, 11]
    >>> compose_strip(pick_strip(looks, t0), ZoneInfo("Asia/Shanghai"), (0, 140, 251), "cam-1").shape[2]
    3
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av
import cv2
import numpy as np

from detector.rules import Violation
from detector.track_history import TrackHistory, crop_around
from detector.types import Frame
from service.evidence import EvidenceWriteError, write_evidence_jpeg

__all__ = ["CLIP_FPS", "CLIP_HOLD_S", "CLIP_MAX_BYTES", "CLIP_WIDTH_PX", "Look", "clip_frames", "compose_strip",
           "format_elapsed", "pick_strip", "redact_clip", "save_timelapse", "strip_labels", "violation_looks",
           "write_clip"]

CLIP_WIDTH_PX = 480  # small enough to send and to keep (<= 640), large enough for a 320 px crop
CLIP_HEIGHT_PX = 360  # the picture; a caption bar is added below it
CLIP_BAR_PX = 48
CLIP_FPS = 5
CLIP_HOLD_S = 0.8  # each kept look on screen this long: 10 looks make an 8 s clip
CLIP_MAX_BYTES = 2_000_000
STRIP_PANEL_H_PX = 240
_FONT = cv2.FONT_HERSHEY_SIMPLEX  # OpenCV's Hershey fonts are ASCII only: labels are English and digits
_BG = (32, 34, 40)
_INK = (240, 240, 240)
_DIM = (170, 176, 186)


@dataclass(frozen=True, eq=False)  # holds an array
class Look:
    """One look at the violation's object.

    Attributes:
        t: When the frame was taken (timezone-aware).
        image: The crop around the object (HxWx3 uint8 BGR).
        box_xyxy: The object's box within `image`, pixels.
    """

    t: datetime
    image: np.ndarray
    box_xyxy: tuple[float, float, float, float]


def violation_looks(event: Violation, frame: Frame, history: TrackHistory) -> list[Look]:
    """The kept looks of a violation's object, oldest first, ending with the current frame.

    A violation of several tracks (a cluster of bikes) is shown by the member seen longest: the one whose kept
    history starts earliest.

    Args:
        event: The violation event whose evidence is being written.
        frame: The frame of that event (the last look is cut from it).
        history: The camera's track history.

    Returns:
        The looks (at least the current one when its box overlaps the frame; empty otherwise).
    """
    members = [(history.samples(tid), i) for i, tid in enumerate(event.track_ids)]
    with_history = [m for m in members if m[0]]
    samples, index = min(with_history, key=lambda m: m[0][0].t_s) if with_history else ((), 0)
    looks = [Look(Frame.utc_from_s(s.t_s), s.image(), s.box_xyxy) for s in samples if s.t_s < frame.ts_s]
    if len(event.track_ids):
        try:
            crop, box = crop_around(frame.image, event.xyxy[index])
        except ValueError:
            return looks
        looks.append(Look(frame.ts, crop, box))
    return looks


def pick_strip(looks: Sequence[Look], first_seen: datetime) -> list[Look]:
    """The strip's panels: the look nearest `first_seen`, the one nearest the middle, and the last one.

    Args:
        looks: Looks oldest first (`violation_looks`).
        first_seen: When the violation's condition started.

    Returns:
        Three looks, or two when only two are kept after first sight, or fewer (then no strip is made).
    """
    if not looks:
        return []
    last = len(looks) - 1
    first = min(range(len(looks)), key=lambda i: (abs((looks[i].t - first_seen).total_seconds()), i))
    first = min(first, last)
    if last - first < 2:
        return [looks[i] for i in sorted({first, last})]
    middle_t = looks[first].t + (looks[last].t - looks[first].t) / 2
    mid = min(range(first + 1, last), key=lambda i: abs((looks[i].t - middle_t).total_seconds()))
    return [looks[first], looks[mid], looks[last]]


def format_elapsed(seconds: float) -> str:
    """A duration for a label: ``45 s``, ``5 min 28 s``, ``2 h 05 min``.

    Example:
        >>> [format_elapsed(s) for s in (0, 45.4, 328, 7500)]
        ['0 s', '45 s', '5 min 28 s', '2 h 05 min']
    """
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _offset(t: datetime) -> str:
    off = t.utcoffset() or timedelta(0)
    sign = "-" if off < timedelta(0) else "+"
    minutes = abs(int(off.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _text(image: np.ndarray, text: str, org: tuple[int, int], scale: float, color: tuple[int, int, int],
          thickness: int = 1) -> None:
    text = text.encode("ascii", "replace").decode("ascii")
    cv2.putText(image, text, org, _FONT, scale, color, thickness, cv2.LINE_AA)


def _fit(image: np.ndarray, box: tuple[float, ...], width: int, height: int
         ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """`image` scaled to fit width x height (letterboxed on the background), and the box in the result."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    out = np.full((height, width, 3), _BG, np.uint8)
    x0, y0 = (width - sw) // 2, (height - sh) // 2
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out[y0:y0 + sh, x0:x0 + sw] = cv2.resize(image, (sw, sh), interpolation=interp)
    x1, y1, x2, y2 = box
    return out, (round(x0 + x1 * scale), round(y0 + y1 * scale), round(x0 + x2 * scale), round(y0 + y2 * scale))


def strip_labels(panels: Sequence[Look], tz: tzinfo, title: str) -> tuple[str, list[tuple[str, str]]]:
    """The strip's header and each panel's two label lines, in the camera's local time.

    A panel shows the time only, or month-day and time when it falls on another local day than the first.

    Example:
        >>> from datetime import timezone
        >>> from zoneinfo import ZoneInfo
        >>> t0 = datetime(2026, 6, 1, 15, 58, tzinfo=timezone.utc)  # 23:58 in Shanghai
        >>> looks = [Look(t0 + timedelta(seconds=s), np.zeros((2, 2, 3), np.uint8), (0, 0, 1, 1)) for s in (0, 328)]
        >>> strip_labels(looks, ZoneInfo("Asia/Shanghai"), "cam-1")
        ('cam-1  2026-06-01  UTC+08:00  23:58:00 - 00:03:28  (5 min 28 s)', [('first seen 23:58:00', '+0 s'), ('last seen 06-02 00:03:28', '+5 min 28 s')])
    """
    roles = ["first seen", "midway", "last seen"] if len(panels) == 3 else ["first seen", "last seen"]
    t0 = panels[0].t
    local0, local_end = t0.astimezone(tz), panels[-1].t.astimezone(tz)
    dwell = format_elapsed((panels[-1].t - t0).total_seconds())
    header = (f"{title}  {local0:%Y-%m-%d}  {_offset(local0)}  {local0:%H:%M:%S} - {local_end:%H:%M:%S}  "
              f"({dwell})")
    lines = []
    for role, look in zip(roles, panels):
        local = look.t.astimezone(tz)
        stamp = f"{local:%H:%M:%S}" if local.date() == local0.date() else f"{local:%m-%d %H:%M:%S}"
        lines.append((f"{role} {stamp}", f"+{format_elapsed((look.t - t0).total_seconds())}"))
    return header, lines


def compose_strip(panels: Sequence[Look], tz: tzinfo, color_bgr: tuple[int, int, int], title: str,
                  panel_h_px: int = STRIP_PANEL_H_PX) -> np.ndarray:
    """One image of the panels side by side, each labelled with its local time and the time since the first.

    Args:
        panels: Two or three looks (`pick_strip`), oldest first.
        tz: The camera's time zone (labels show its local time).
        color_bgr: Colour of the object's box (the violation kind's).
        title: Shown first in the header (the camera, say).
        panel_h_px: Height of each panel's picture.

    Returns:
        HxWx3 uint8 BGR.

    Raises:
        ValueError: Fewer than two panels.
    """
    if len(panels) < 2:
        raise ValueError(f"a strip needs at least two looks, got {len(panels)}")
    header_text, labels = strip_labels(panels, tz, title)
    gap, header, caption = 8, 34, 50
    pictures = []
    for look in panels:
        h, w = look.image.shape[:2]
        pw = int(np.clip(round(w * panel_h_px / h), 200, 2 * panel_h_px))  # room for the label, no slivers
        pic, (x1, y1, x2, y2) = _fit(look.image, look.box_xyxy, pw, panel_h_px)
        cv2.rectangle(pic, (x1, y1), (x2, y2), color_bgr, 2, cv2.LINE_AA)
        pictures.append(pic)
    width = sum(p.shape[1] for p in pictures) + gap * (len(pictures) + 1)
    out = np.full((header + panel_h_px + caption + gap, width, 3), _BG, np.uint8)
    _text(out, header_text, (gap, 23), 0.5, _INK)
    x = gap
    for (when, since), pic in zip(labels, pictures):
        pw = pic.shape[1]
        out[header:header + panel_h_px, x:x + pw] = pic
        _text(out, when, (x, header + panel_h_px + 20), 0.55, _INK)
        _text(out, since, (x, header + panel_h_px + 42), 0.5, _DIM)
        x += pw + gap
    return out


def clip_frames(looks: Sequence[Look], tz: tzinfo, color_bgr: tuple[int, int, int],
                width_px: int = CLIP_WIDTH_PX, height_px: int = CLIP_HEIGHT_PX) -> Iterator[np.ndarray]:
    """One picture per look for the clip: its time and a bar of the dwell above the crop, letterboxed, with its box.

    Args:
        looks: Looks oldest first, the first being first sight.
        tz: The camera's time zone.
        color_bgr: Colour of the object's box.
        width_px: Picture width (even: H.264 with 4:2:0 chroma needs even sides).
        height_px: Picture height without the caption bar (even).

    Yields:
        (height_px + 48) x width_px x 3 uint8 BGR pictures.
    """
    if not looks:
        return
    t0, t_end = looks[0].t, looks[-1].t
    span_s = max((t_end - t0).total_seconds(), 1e-9)
    for look in looks:
        pic, (x1, y1, x2, y2) = _fit(look.image, look.box_xyxy, width_px, height_px)
        cv2.rectangle(pic, (x1, y1), (x2, y2), color_bgr, 2, cv2.LINE_AA)
        bar = np.full((CLIP_BAR_PX, width_px, 3), _BG, np.uint8)
        done = (look.t - t0).total_seconds() / span_s
        cv2.rectangle(bar, (0, CLIP_BAR_PX - 4), (round(done * (width_px - 1)), CLIP_BAR_PX - 1), color_bgr, -1)
        local = look.t.astimezone(tz)
        _text(bar, f"{local:%Y-%m-%d %H:%M:%S} {_offset(local)}", (8, 20), 0.55, _INK)
        _text(bar, f"+{format_elapsed((look.t - t0).total_seconds())} since first sight", (8, 38), 0.45, _DIM)
        yield np.vstack([bar, pic])  # the caption on top: a player's controls cover the bottom of the picture


def write_clip(path: Path, pictures: Sequence[np.ndarray], fps: int = CLIP_FPS, hold_s: float = CLIP_HOLD_S,
               max_bytes: int = CLIP_MAX_BYTES) -> None:
    """Encode pictures as an H.264 MP4 that browsers play, each held `hold_s`; owner-only.

    Baseline profile, yuv420p and the index at the front (``+faststart``), so a ``<video>`` element plays it
    from the first bytes.

    Raises:
        EvidenceWriteError: The encoder or the disk failed, or the clip came out larger than `max_bytes`
            (nothing is left at `path` then).
        ValueError: No pictures, or pictures of different or odd sizes.
    """
    if not pictures:
        raise ValueError(f"{path}: a clip needs at least one picture")
    h, w = pictures[0].shape[:2]
    if h % 2 or w % 2 or any(p.shape != pictures[0].shape for p in pictures):
        raise ValueError(f"{path}: pictures must share one even size, got {sorted({p.shape for p in pictures})}")
    repeat = max(1, round(hold_s * fps))
    try:
        with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": "26", "preset": "veryfast", "profile": "baseline"}
            for picture in pictures:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="bgr24")
                for _ in range(repeat):
                    container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    except (av.FFmpegError, OSError, ValueError) as exc:
        path.unlink(missing_ok=True)
        raise EvidenceWriteError(f"{path}: not written: {str(exc).strip().splitlines()[-1] if str(exc) else exc!r}"
                                 ) from None
    size = path.stat().st_size if path.is_file() else 0
    if not 0 < size <= max_bytes:
        path.unlink(missing_ok=True)
        raise EvidenceWriteError(f"{path}: not written: {size} bytes (empty or over the {max_bytes}-byte limit)")
    path.chmod(0o600)  # evidence shows people and plates: readable by the service's user only


def save_timelapse(out_dir: Path, stem: str, event: Violation, frame: Frame, history: TrackHistory, tz: tzinfo,
                   color_bgr: tuple[int, int, int], title: str) -> dict[str, str]:
    """Write the strip and the clip of a violation beside its other evidence; both or neither.

    Args:
        out_dir: The evidence folder of this event (`service.evidence.save_evidence`'s).
        stem: The event's file stem; files are ``<stem>.strip.jpg`` and ``<stem>.clip.mp4``.
        event: The violation event.
        frame: Its frame.
        history: The camera's track history.
        tz: The camera's time zone.
        color_bgr: The violation kind's colour.
        title: The strip's header starts with this (the camera id).

    Returns:
        ``{"strip": path, "clip": path}``, or ``{}`` when fewer than two looks are kept (the object was first
        seen in this very frame, or its history was lost on a restart): nothing proves a duration then.

    Raises:
        EvidenceWriteError: A file could not be written (the other is removed too).
    """
    looks = violation_looks(event, frame, history)
    panels = pick_strip(looks, event.first_seen)
    if len(panels) < 2:
        return {}
    paths = {"strip": out_dir / f"{stem}.strip.jpg", "clip": out_dir / f"{stem}.clip.mp4"}
    from_first = [lk for lk in looks if lk.t >= panels[0].t]
    try:
        write_evidence_jpeg(paths["strip"], compose_strip(panels, tz, color_bgr, title), 90)
        write_clip(paths["clip"], list(clip_frames(from_first, tz, color_bgr)))
    except (OSError, ValueError) as exc:
        for path in paths.values():
            path.unlink(missing_ok=True)
        if isinstance(exc, EvidenceWriteError):
            raise
        raise EvidenceWriteError(f"{out_dir / stem}: time-lapse not written: {exc}") from None
    return {k: str(v) for k, v in paths.items()}


def redact_clip(src: Path, dst: Path, redact: Callable[[np.ndarray], np.ndarray],
                max_bytes: int = CLIP_MAX_BYTES) -> None:
    """A copy of a clip with `redact` applied to every picture (privacy: blurred copies of what leaves the
    service, `service.privacy`), written atomically and owner-only.

    Args:
        src: A clip written by `write_clip`.
        dst: Where the copy goes (replaced when it exists).
        redact: BGR picture in, BGR picture of the same size out.
        max_bytes: Largest copy allowed.

    Raises:
        EvidenceWriteError: `src` cannot be decoded, or the copy cannot be written (nothing is left at `dst`).
    """
    try:
        with av.open(str(src)) as container:
            stream = container.streams.video[0]
            fps = max(1, round(float(stream.average_rate or CLIP_FPS)))
            pictures = [redact(f.to_ndarray(format="bgr24")) for f in container.decode(stream)]
    except (av.FFmpegError, OSError, IndexError) as exc:
        raise EvidenceWriteError(f"{src}: cannot be read as a clip: {exc}") from None
    # A temporary name beside `dst`, then a rename: a reader never sees half a clip.
    tmp = dst.with_name(f".{dst.stem}.tmp-{os.getpid()}.mp4")
    write_clip(tmp, pictures, fps=fps, hold_s=1 / fps, max_bytes=max_bytes)
    try:
        os.replace(tmp, dst)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EvidenceWriteError(f"{dst}: not written: {exc.strerror or exc}") from None
