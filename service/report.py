"""The one-page flight report: ``report.html`` in a flight's output folder, opened from disk in any browser.

It reads the folder `service.drone.run_flight` writes (``summary.json``, ``findings.geojson``, ``track.geojson``,
``footprints.geojson``, ``mosaic.json`` + ``mosaic.jpg``, ``evidence/``; their formats are `service.drone`'s)
and writes one self-contained HTML page: inline CSS and JavaScript, no network at all (no CDN, web fonts or map
tiles), images by paths relative to the folder. The page shows

- a header: the flight, its time and duration, the camera, the frames sampled, findings and violations by kind
  (zh-CN and English titles from `service.kinds`), the telemetry and which yaw source was used, the notes;
- a map drawn from the flight's own imagery: an SVG whose user units are mosaic pixels, with the mosaic, every
  sampled frame's footprint, the track, and each finding as a marker (violations in their kind's colour, other
  findings smaller and grey), wheel zoom and drag pan;
- a list of findings (violations first) and a panel with the selected finding's crop, fields and a link to its
  case (``case_url``) or to its annotated evidence image.

Positions are computed here, in Python (lon/lat → the mosaic's local east/north frame through
`detector.geo.enu.LocalFrame` → raster pixels through `detector.geo.mosaic.en_to_raster_px`), and embedded in
the page as one JSON blob that the script reads; the script writes every piece of text with ``textContent``,
never as HTML. `report_data` returns that blob for tests and other callers. A server that sends the page (the
service's flight page) gets a matching Content-Security-Policy from `content_security_policy`.

Example:
    >>> from pathlib import Path
    >>> write_report(Path("runs/flight-1"), case_url="/review?case={case_id}")  # doctest: +SKIP
    PosixPath('runs/flight-1/report.html')
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Sequence
from urllib.parse import quote, urlsplit

import numpy as np

from detector.errors import StreetwatchError
from detector.geo.enu import LocalFrame
from detector.geo.mosaic import en_to_raster_px
from service.kinds import KINDS, kind_title

__all__ = ["NO_MAP_NO_TELEMETRY", "REPORT_NAME", "ReportInputError", "content_security_policy", "render_report",
           "report_data", "write_report"]

REPORT_NAME = "report.html"
NO_MAP_NO_TELEMETRY = "no map: no telemetry"
"""What the page says instead of a map when the folder has nothing placed on the ground."""

TEMPLATE_DIR = Path(__file__).resolve().parent / "web"
_PLAIN_COLOR = "#9e9e9e"  # findings that are not violations
_FALLBACK_MAP_PX = 1024  # side of the map drawn without a mosaic (vectors only)
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


class ReportInputError(StreetwatchError):
    """A file of the flight folder is missing or malformed; the message names the file and the reason."""


# --- reading the folder -------------------------------------------------------------------------------------

def _read_json(path: Path, *, required: bool) -> Any:
    if not path.is_file():
        if required:
            raise ReportInputError(f"{path}: missing (the flight report needs it)")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportInputError(f"{path}: not readable JSON ({exc})") from None


def _features(path: Path) -> list[dict[str, Any]] | None:
    """The features of a GeoJSON FeatureCollection; None when the file does not exist."""
    data = _read_json(path, required=False)
    if data is None:
        return None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or not isinstance(
            data.get("features"), list):
        raise ReportInputError(f"{path}: not a GeoJSON FeatureCollection")
    for i, f in enumerate(data["features"]):
        if not isinstance(f, dict) or not isinstance(f.get("geometry"), dict) or not isinstance(
                f.get("properties", {}), dict):
            raise ReportInputError(f"{path}: feature {i} is not a GeoJSON Feature with a geometry")
    return data["features"]


def _lonlat(coords: Any, path: Path, where: str) -> np.ndarray:
    """(K, 2) [lon, lat] from GeoJSON coordinates (a position or a list of them; an altitude is ignored), checked."""
    try:
        arr = np.asarray(coords, np.float64)
    except (TypeError, ValueError):
        arr = np.zeros((0,))
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] < 2 or arr.shape[0] == 0:
        raise ReportInputError(f"{path}: {where}: coordinates are not [lon, lat] positions")
    arr = arr[:, :2]
    if not np.isfinite(arr).all() or (np.abs(arr[:, 0]) > 180).any() or (np.abs(arr[:, 1]) > 90).any():
        raise ReportInputError(f"{path}: {where}: coordinates out of range (expected [lon, lat] in degrees)")
    return arr


@dataclass(frozen=True)
class _MapFrame:
    """How lon/lat become map pixels: the mosaic's raster (or a vector-only stand-in of the same form)."""

    local: LocalFrame
    en_bounds_m: tuple[float, float, float, float]
    m_per_px: float
    width_px: int
    height_px: int
    image: str | None  # path of the mosaic JPEG relative to the folder, None when drawing vectors only

    def px(self, lonlat: np.ndarray) -> np.ndarray:
        lonlat = np.asarray(lonlat, np.float64).reshape(-1, 2)
        e, n, _ = self.local.to_enu(lonlat[:, 1], lonlat[:, 0])
        return en_to_raster_px(np.column_stack([e, n]), self.en_bounds_m, self.m_per_px)


def _mosaic_frame(out_dir: Path) -> tuple[_MapFrame | None, str | None]:
    """The map frame from mosaic.json, and a note when it exists but its picture does not."""
    path = out_dir / "mosaic.json"
    meta = _read_json(path, required=False)
    if meta is None:
        return None, None
    try:
        m_per_px = float(meta["m_per_px"])
        width_px, height_px = int(meta["width_px"]), int(meta["height_px"])
        bounds = tuple(float(v) for v in meta["en_bounds_m"])
        local = LocalFrame(float(meta["origin"]["lat_deg"]), float(meta["origin"]["lon_deg"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportInputError(f"{path}: malformed ({type(exc).__name__}: {exc})") from None
    if len(bounds) != 4 or not (math.isfinite(m_per_px) and m_per_px > 0) or width_px <= 0 or height_px <= 0:
        raise ReportInputError(f"{path}: needs m_per_px > 0, width_px, height_px > 0 and four en_bounds_m")
    has_image = (out_dir / "mosaic.jpg").is_file()
    note = None if has_image else "mosaic.jpg is missing: the map shows footprints, track and findings only"
    return _MapFrame(local, bounds, m_per_px, width_px, height_px, "mosaic.jpg" if has_image else None), note


def _vector_frame(origin: Mapping[str, Any], lonlats: Sequence[np.ndarray]) -> _MapFrame | None:
    """A stand-in raster around everything that has a position, for a folder without mosaic.json."""
    if not lonlats:
        return None
    try:
        local = LocalFrame(float(origin["lat_deg"]), float(origin["lon_deg"]))
    except (KeyError, TypeError, ValueError):
        return None
    every = np.concatenate(lonlats)
    e, n, _ = local.to_enu(every[:, 1], every[:, 0])
    pad_m = 10.0
    e0, e1, n0, n1 = e.min() - pad_m, e.max() + pad_m, n.min() - pad_m, n.max() + pad_m
    m_per_px = max(e1 - e0, n1 - n0) / _FALLBACK_MAP_PX
    w, h = max(1, math.ceil((e1 - e0) / m_per_px)), max(1, math.ceil((n1 - n0) / m_per_px))
    return _MapFrame(local, (float(e0), float(n1 - h * m_per_px), float(e0 + w * m_per_px), float(n1)), m_per_px,
                     w, h, None)


# --- formatting ---------------------------------------------------------------------------------------------

def _bilingual(kind: str) -> str:
    return f"{kind_title(kind, 'zh')} {kind_title(kind, 'en')}"


def _duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(s):
        return "–"
    if s < 60:
        return f"{s:.1f} s"
    minutes, rest = divmod(s, 60)
    return f"{int(minutes)} min {rest:04.1f} s ({s:.0f} s)"


def _wall(iso: Any) -> str:
    """An ISO 8601 time as ``YYYY-MM-DD HH:MM:SS ±HH:MM`` (as written: the flight's own time zone)."""
    if not isinstance(iso, str) or not iso:
        return ""
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    text = t.strftime("%Y-%m-%d %H:%M:%S")
    offset = t.strftime("%z")
    return f"{text} {offset[:3]}:{offset[3:]}" if offset else text


def _wall_range(first: Any, last: Any) -> str:
    """Two ISO times as one range; the second without its date and offset when they are the same."""
    a, b = _wall(first), _wall(last)
    if not (a and b):
        return a or b
    if a == b:
        return a
    date_a, time_a, *zone_a = a.split(" ")
    date_b, time_b, *zone_b = b.split(" ")
    if date_a == date_b and zone_a == zone_b:
        return " ".join([date_a, f"{time_a} – {time_b}", *zone_a])
    return f"{a} – {b}"


def _counts(mapping: Any) -> str:
    if not isinstance(mapping, Mapping) or not mapping:
        return "–"
    return ", ".join(f"{k} {v}" for k, v in sorted(mapping.items(), key=lambda kv: (-_num(kv[1]), str(kv[0]))))


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _safe_relative(out_dir: Path, value: Any) -> str | None:
    """A path inside the folder as a relative URL, or None: no scheme, no absolute path, no ``..``, and the file
    must exist (a missing image would be a broken picture and a console error)."""
    if not isinstance(value, str) or not value or "\\" in value or urlsplit(value).scheme:
        return None
    rel = PurePosixPath(value)
    if rel.is_absolute() or ".." in rel.parts or not (out_dir / rel).is_file():
        return None
    return quote(rel.as_posix())


def _case_href(case_url: str | None, case_id: Any) -> str | None:
    if case_url is None or case_id is None or case_id == "":
        return None
    try:
        href = case_url.format(case_id=quote(str(case_id), safe=""))
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"case_url {case_url!r}: only {{case_id}} may be substituted ({exc!r})") from None
    scheme = urlsplit(href).scheme
    return href if scheme in ("", "http", "https") else None


# --- the data blob ------------------------------------------------------------------------------------------

def _round_px(points: np.ndarray) -> list[list[float]]:
    return [[round(float(x), 1), round(float(y), 1)] for x, y in points]


def _finding_rows(out_dir: Path, features: Sequence[dict[str, Any]], case_url: str | None,
                  path: Path) -> list[dict[str, Any]]:
    rows = []
    seen: set[str] = set()
    for i, feature in enumerate(features):
        props = feature.get("properties") or {}
        if props.get("role", "point") != "point" or feature["geometry"].get("type") != "Point":
            continue
        fid = str(props.get("finding_id", feature.get("id", f"#{i}")))
        if fid in seen:
            raise ReportInputError(f"{path}: feature {i}: finding {fid!r} appears twice")
        seen.add(fid)
        lonlat = _lonlat(feature["geometry"].get("coordinates"), path, f"feature {i} ({fid})")
        if len(lonlat) != 1:
            raise ReportInputError(f"{path}: feature {i} ({fid}): a Point needs one [lon, lat]")
        kind = props.get("kind") or None
        row_kind = KINDS.get(kind) if kind else None
        cls = str(props.get("class", ""))
        evidence = props.get("evidence") if isinstance(props.get("evidence"), Mapping) else {}
        lon, lat = (float(v) for v in lonlat[0])
        first_t, last_t = _num(props.get("first_t_s")), _num(props.get("last_t_s"))
        seen_wall = _wall_range(props.get("first_seen"), props.get("last_seen"))
        title = _bilingual(kind) if kind else f"其他发现 Other finding: {cls}"
        fields = [
            ["编号 Finding", fid],
            ["类别 Class", cls],
            ["违规类型 Kind", _bilingual(kind) if kind else "非违规 not a violation"],
            ["置信度 Score", f"{_num(props.get('score')):.2f}"],
            ["帧数 Frames", str(props.get("n_frames", ""))],
            ["飞行时间 Flight time", f"{first_t:.1f} – {last_t:.1f} s"],
        ]
        if seen_wall:
            fields.append(["时间 Seen", seen_wall])
        fields += [
            ["网格 Grid code", str(props.get("grid_code") or "–")],
            ["案件类别 Category code", str(props.get("category_code") or "–")],
            ["纬度, 经度 Lat, lon", f"{lat:.7f}, {lon:.7f}"],
        ]
        if props.get("violation_id"):
            fields.append(["违规编号 Violation", str(props["violation_id"])])
        if props.get("zone_id"):
            fields.append(["区域 Zone", str(props["zone_id"])])
        if props.get("case_id") is not None:
            fields.append(["案件 Case", f"#{props['case_id']}"])
        rows.append({
            "id": fid, "lonlat": [lon, lat], "violation": kind is not None, "kind": kind,
            "color": row_kind.color_hex if row_kind else ("#616161" if kind else _PLAIN_COLOR),
            "title": title, "meta": f"{cls} · {_num(props.get('score')):.2f} · {first_t:.1f} s",
            "score": _num(props.get("score")), "fields": fields,
            "crop": _safe_relative(out_dir, evidence.get("crop")),
            "annotated": _safe_relative(out_dir, evidence.get("annotated")),
            "case_href": _case_href(case_url, props.get("case_id")),
        })
    kind_order = {k: i for i, k in enumerate(KINDS)}
    rows.sort(key=lambda r: (not r["violation"], kind_order.get(r["kind"], len(kind_order)), -r["score"], r["id"]))
    return rows


def report_data(out_dir: Path, *, case_url: str | None = None) -> dict[str, Any]:
    """Everything the page shows, as the JSON blob it embeds (positions already in mosaic pixels).

    Args:
        out_dir: The flight's output folder.
        case_url: Link of a finding's case, with ``{case_id}`` (e.g. ``/review?case={case_id}``); None: no case
            links (the annotated evidence image is linked instead).

    Raises:
        ReportInputError: ``summary.json`` is missing, or a file is not valid JSON / GeoJSON of the expected form.
    """
    out_dir = Path(out_dir)
    summary = _read_json(out_dir / "summary.json", required=True)
    if not isinstance(summary, dict):
        raise ReportInputError(f"{out_dir / 'summary.json'}: not a JSON object")
    missing = [name for name in ("findings.geojson", "track.geojson", "footprints.geojson")
               if not (out_dir / name).is_file()]
    findings_path = out_dir / "findings.geojson"
    findings = _finding_rows(out_dir, _features(findings_path) or [], case_url, findings_path)

    track_path, footprints_path = out_dir / "track.geojson", out_dir / "footprints.geojson"
    track_line: np.ndarray | None = None
    for i, f in enumerate(_features(track_path) or []):
        if f["geometry"].get("type") == "LineString" and (f.get("properties") or {}).get("role", "track") == "track":
            track_line = _lonlat(f["geometry"].get("coordinates"), track_path, f"feature {i} (track)")
    footprints = []
    for i, f in enumerate(_features(footprints_path) or []):
        if f["geometry"].get("type") != "Polygon" or not f["geometry"].get("coordinates"):
            raise ReportInputError(f"{footprints_path}: feature {i} is not a Polygon")
        footprints.append(_lonlat(f["geometry"]["coordinates"][0], footprints_path, f"feature {i}"))

    frame, map_note = _mosaic_frame(out_dir)
    placed = [np.array([r["lonlat"] for r in findings])] if findings else []
    placed += footprints + ([track_line] if track_line is not None and len(track_line) else [])
    if frame is None:
        frame = _vector_frame(summary.get("origin") or {}, placed)
        if frame is not None:
            map_note = "no mosaic: the map shows footprints, track and findings only"

    notes = [str(n) for n in summary.get("notes") or []]
    notes += [f"{name} is missing" for name in missing]
    data: dict[str, Any] = {
        "flight": {"id": str(summary.get("flight_id", "")), "name": str(summary.get("name", ""))},
        "map": None, "no_map": NO_MAP_NO_TELEMETRY, "map_note": map_note,
        "footprints": [], "track": [], "findings": [], "notes": notes,
    }
    if frame is None:
        data["findings"] = [{**r, "x": None, "y": None, "inside_map": False} for r in findings]
        return data
    data["no_map"] = None
    xy = frame.px(np.array([r["lonlat"] for r in findings])) if findings else np.zeros((0, 2))
    for r, (x, y) in zip(findings, xy):
        inside = bool(0 <= x <= frame.width_px and 0 <= y <= frame.height_px)
        data["findings"].append({**r, "x": round(float(x), 2), "y": round(float(y), 2), "inside_map": inside})
        if not inside:
            r["fields"].append(["位置 Position", "在影像范围外 outside the imagery"])
    data["footprints"] = [_round_px(frame.px(fp)) for fp in footprints]
    data["track"] = _round_px(frame.px(track_line)) if track_line is not None else []
    # the first view shows the imagery and everything drawn on or beside it
    every = [np.array([[0.0, 0.0], [frame.width_px, frame.height_px]]), xy]
    every += [np.asarray(p) for p in data["footprints"] if p] + ([np.asarray(data["track"])] if data["track"] else [])
    allpts = np.concatenate([p.reshape(-1, 2) for p in every])
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    pad = 0.03 * float(max(hi - lo)) + 10.0
    data["map"] = {"width": frame.width_px, "height": frame.height_px, "image": frame.image,
                   "m_per_px": frame.m_per_px,
                   "view": [round(float(lo[0] - pad), 1), round(float(lo[1] - pad), 1),
                            round(float(hi[0] - lo[0] + 2 * pad), 1), round(float(hi[1] - lo[1] + 2 * pad), 1)]}
    return data


# --- the page -----------------------------------------------------------------------------------------------

def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _header_html(summary: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    camera = summary.get("camera") or {}
    frames = summary.get("frames") or {}
    telemetry = summary.get("telemetry") or {}
    started = _wall(summary.get("started_at"))
    tz = summary.get("timezone") or ""
    rows: list[tuple[str, str]] = [
        ("航次 Flight", f"{summary.get('name') or '–'} ({summary.get('flight_id', '')})"),
        ("起飞时间 Started", f"{started} ({tz})" if started else "无时钟 no clock"),
        ("时长 Duration", _duration(summary.get("duration_s"))),
        ("相机 Camera", (f"{camera.get('how', '–')}, {camera.get('width_px', '?')}×{camera.get('height_px', '?')}"
                       f" px, HFOV {_num(camera.get('hfov_deg')):.1f}°")),
        ("帧 Frames", (f"{frames.get('sampled', 0)} sampled of {frames.get('total', 0)}, "
                       f"{frames.get('processed', 0)} processed"
                       + (f"; skipped: {_counts(frames.get('skipped'))}" if frames.get("skipped") else "")
                       + (f"; {len(frames['stills_skipped'])} still(s) skipped"
                          if frames.get("stills_skipped") else ""))),
        ("遥测 Telemetry", (f"{telemetry.get('format', '–')}; {telemetry.get('coverage', '–')}"
                           + (f"; problems: {_counts(telemetry.get('problems'))}" if telemetry.get("problems")
                              else ""))),
        ("偏航来源 Yaw source", _counts(telemetry.get("yaw_sources"))),
        ("发现 Findings", f"{summary.get('findings', 0)} ({_counts(summary.get('by_class'))})"),
        ("违规 Violations", str(summary.get("violations", 0))),
    ]
    source = summary.get("source") or {}
    files = [f"{k}: {v}" for k, v in source.items() if v] if isinstance(source, Mapping) else []
    if files:
        rows.insert(1, ("来源 Source", "; ".join(files)))
    dl = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in rows)
    by_kind = summary.get("by_kind") or {}
    kinds = "".join(
        f'<li><span class="swatch {_kind_class(k) if k in KINDS else "kind-other"}">'
        f'</span><span class="kind-title">{_esc(_bilingual(k))}</span> <b>{_esc(n)}</b></li>'
        for k, n in sorted(by_kind.items(), key=lambda kv: -_num(kv[1])))
    notes = "".join(f"<li>{_esc(n)}</li>" for n in data.get("notes", []))
    status = summary.get("status", "done")
    banner = (f'<p class="banner">状态 Status: {_esc(status)}</p>' if status != "done" else "")
    return (f'{banner}<dl class="fields" id="flight-fields">{dl}</dl>'
            f'<div class="by-kind"><h2>违规类型 Violations by kind</h2>'
            f'<ul id="by-kind">{kinds or "<li>–</li>"}</ul></div>'
            + (f'<div class="notes"><h2>说明 Notes</h2><ul id="notes">{notes}</ul></div>' if notes else ""))


def _kind_class(kind: str) -> str:
    return "kind-" + re.sub(r"[^a-z0-9_-]", "-", str(kind).lower())


def _kind_css() -> str:
    """One swatch class per catalogue kind: the header's colours live in the style block, not in ``style``
    attributes, so that a Content-Security-Policy with the block's hash admits them (see `content_security_policy`)."""
    rows = [f".swatch.{_kind_class(row.kind)} {{ background: {row.color_hex}; }}" for row in
            (KINDS[k] for k in KINDS)]
    return "\n".join(["/* kind colours (service.kinds) */", *rows, f".swatch.kind-other {{ background: {_PLAIN_COLOR}; }}"])


def content_security_policy(page_html: str) -> str:
    """A Content-Security-Policy under which the page works when a server sends it (the service's flight page):
    no network but its own images, and only this page's inline style and script (by their SHA-256).

    Example:
        >>> csp = content_security_policy(Path("runs/flight-1/report.html").read_text())  # doctest: +SKIP
        >>> # response.headers["Content-Security-Policy"] = csp
    """
    def digest(pattern: str) -> str:
        match = re.search(pattern, page_html, re.DOTALL)
        if match is None:
            raise ValueError("content_security_policy: not a flight report page (no inline style or script)")
        return "'sha256-" + base64.b64encode(hashlib.sha256(match.group(1).encode("utf-8")).digest()).decode() + "'"

    style = digest(r"<style>(.*?)</style>")
    script = digest(r"<script>(.*?)</script>")
    # base-uri 'self': the service serves the page with a <base href> of its files/ route
    return (f"default-src 'none'; img-src 'self'; style-src {style}; script-src {script}; base-uri 'self'; "
            "form-action 'none'; frame-ancestors 'self'")


def _json_for_script(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&`` can end or open a tag."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def render_report(summary: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """The page's HTML from the folder's summary and `report_data`'s blob."""
    name = summary.get("name") or summary.get("flight_id") or "flight"
    values = {
        "title": _esc(f"{name} — 飞行报告 Flight report"),
        "heading": _esc(f"{name} — 飞行报告 Flight report"),
        "style": (TEMPLATE_DIR / "flight_report.css").read_text(encoding="utf-8") + _kind_css(),
        "header": _header_html(summary, data),
        "data": _json_for_script(data),
        "script": (TEMPLATE_DIR / "flight_report.js").read_text(encoding="utf-8"),
    }
    template = (TEMPLATE_DIR / "flight_report.html").read_text(encoding="utf-8")
    # one pass, so that a value containing "{{...}}" (a flight name, say) is never substituted again
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def write_report(out_dir: Path, *, case_url: str | None = None) -> Path:
    """Write ``out_dir/report.html`` from the folder's files; returns its path.

    Works on a folder with no findings, without a mosaic (the map is drawn from the footprints, track and
    findings, or replaced by "no map: no telemetry" when nothing has a position), and with findings outside the
    mosaic (drawn beside it).

    Args:
        out_dir: The flight's output folder.
        case_url: Link of a finding's case with ``{case_id}``; None (the CLI's default) links evidence instead.

    Raises:
        ReportInputError: ``summary.json`` is missing, or a file is malformed (the message names it).
    """
    out_dir = Path(out_dir)
    data = report_data(out_dir, case_url=case_url)
    summary = _read_json(out_dir / "summary.json", required=True)
    path = out_dir / REPORT_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_report(summary, data), encoding="utf-8")
    tmp.replace(path)  # a browser or the service never sees a half-written page
    return path
