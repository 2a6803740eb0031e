"""The one-page flight report: its data (positions in mosaic pixels, order, links), bad folders, and the page itself
opened from disk in Debian's Chromium (through Playwright, launched by path) with every non-file request blocked.

A small builder writes a flight output folder as `service.drone.run_flight` does (formats in the README's drone
section): a synthetic mosaic of a 120 × 80 m area at 0.25 m/px, one violation of each drone kind and one plain
finding that lies outside the mosaic. Screenshots go to ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.geo.enu import LocalFrame
from service.kinds import KINDS
from service.report import (
    NO_MAP_NO_TELEMETRY,
    ReportInputError,
    _duration,
    _wall_range,
    content_security_policy,
    report_data,
    write_report,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

ORIGIN = (31.2304, 121.4737)  # any take-off point; the report only needs the local frame to be consistent
LOCAL = LocalFrame(*ORIGIN)
MOSAIC_BOUNDS_M = (-60.0, -40.0, 60.0, 40.0)
MOSAIC_M_PER_PX = 0.25
CASE_URL = "/review?case={case_id}"


@dataclass(frozen=True)
class Spec:
    finding_id: str
    cls: str
    kind: str | None
    east_m: float
    north_m: float
    score: float
    case_id: int | None = None
    crop: str | None = "default"  # "default": evidence/<slug>.crop.jpg written; None: no crop; else this path


SPECS = [
    Spec("F1:illegal_structure:1", "illegal_structure", "illegal_structure", 10.0, 5.0, 0.91, case_id=41),
    Spec("F1:bicycle:1", "bicycle", "bike_misparked", -20.0, -10.0, 0.78),
    Spec("F1:stall:1", "stall", "stall_occupation", 25.0, -15.0, 0.66),
    Spec("F1:bicycle:2", "bicycle", None, 90.0, 0.0, 0.55),  # 30 m east of the mosaic's edge
]


def lonlat(east_m: float, north_m: float) -> list[float]:
    lon, lat = LOCAL.en_to_lonlat(np.array([[east_m, north_m]]))[0]
    return [round(float(lon), 9), round(float(lat), 9)]


def expected_px(east_m: float, north_m: float) -> tuple[float, float]:
    return (east_m - MOSAIC_BOUNDS_M[0]) / MOSAIC_M_PER_PX, (MOSAIC_BOUNDS_M[3] - north_m) / MOSAIC_M_PER_PX


def write_jpeg(path: Path, size: tuple[int, int], colour: tuple[int, int, int], label: str) -> str:
    w, h = size
    image = np.full((h, w, 3), colour, np.uint8)
    cv2.putText(image, label, (4, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path.name


def square(east_m: float, north_m: float, half_m: float) -> list[list[float]]:
    ring = [lonlat(east_m + dx, north_m + dy) for dx, dy in
            ((-half_m, -half_m), (half_m, -half_m), (half_m, half_m), (-half_m, half_m))]
    return ring + ring[:1]


def write_flight(out_dir: Path, specs: list[Spec] = SPECS, *, mosaic: bool = True, track: bool = True,
                 name: str = "南京路巡查 patrol") -> Path:
    """A flight output folder as `run_flight` writes it (summary, GeoJSON, evidence, mosaic)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    features = []
    for i, s in enumerate(specs):
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", s.finding_id)
        evidence = {"annotated": f"evidence/{slug}.jpg"}
        write_jpeg(out_dir / evidence["annotated"], (320, 180), (60, 90, 120), s.finding_id)
        if s.crop == "default":
            evidence["crop"] = f"evidence/{slug}.crop.jpg"
            write_jpeg(out_dir / evidence["crop"], (80 + 10 * i, 60), (40 * i, 120, 200), s.cls)
        elif s.crop is not None:
            evidence["crop"] = s.crop
        props = {"finding_id": s.finding_id, "class": s.cls, "kind": s.kind,
                 "violation_id": f"{s.kind}:{s.finding_id}" if s.kind else None,
                 "zone_id": "baseline-2025" if s.kind == "illegal_structure" else "", "score": s.score,
                 "n_frames": 3 + i, "first_t_s": 10.0 + i, "last_t_s": 14.5 + i,
                 "first_seen": f"2026-06-01T10:00:{10 + i:02d}+08:00",
                 "last_seen": f"2026-06-01T10:00:{14 + i:02d}+08:00",
                 "grid_code": "310101001001" if s.kind else "", "category_code": KINDS[s.kind].category_code if s.kind
                 else None, "evidence": evidence, "case_id": s.case_id,
                 "lat_deg": lonlat(s.east_m, s.north_m)[1], "lon_deg": lonlat(s.east_m, s.north_m)[0]}
        features.append({"type": "Feature", "id": s.finding_id,
                         "geometry": {"type": "Point", "coordinates": lonlat(s.east_m, s.north_m)},
                         "properties": {**props, "role": "point"}})
        features.append({"type": "Feature", "id": f"{s.finding_id}:footprint",
                         "geometry": {"type": "Polygon", "coordinates": [square(s.east_m, s.north_m, 2.0)]},
                         "properties": {**props, "role": "footprint"}})
    (out_dir / "findings.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                                              encoding="utf-8")
    if track:
        positions = [(-50.0 + 10.0 * k, -5.0 + (k % 2) * 2.0) for k in range(11)]
        line = {"type": "Feature", "id": "track", "properties": {"role": "track"},
                "geometry": {"type": "LineString", "coordinates": [lonlat(e, n) for e, n in positions]}}
        frames = [{"type": "Feature", "id": f"frame-{30 * k}",
                   "geometry": {"type": "Point", "coordinates": lonlat(e, n)},
                   "properties": {"role": "frame", "frame_index": 30 * k, "t_s": float(k), "alt_m": 50.0,
                                  "yaw_deg": 90.0, "pitch_deg": -90.0, "yaw_source": "gimbal",
                                  "image": f"frames/{30 * k:06d}.jpg"}} for k, (e, n) in enumerate(positions[::3])]
        (out_dir / "track.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [line, *frames]}))
        prints = [{"type": "Feature", "id": f"footprint-{30 * k}",
                   "geometry": {"type": "Polygon", "coordinates": [square(e, n, 20.0)]},
                   "properties": {"frame_index": 30 * k, "t_s": float(k), "image": f"frames/{30 * k:06d}.jpg",
                                  "gsd_m": 0.03}} for k, (e, n) in enumerate(positions[::3])]
        (out_dir / "footprints.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": prints}))
    if mosaic:
        e0, n0, e1, n1 = MOSAIC_BOUNDS_M
        w, h = round((e1 - e0) / MOSAIC_M_PER_PX), round((n1 - n0) / MOSAIC_M_PER_PX)
        image = np.full((h, w, 3), (70, 110, 90), np.uint8)
        for k in range(0, w, 40):  # a line every 10 m
            cv2.line(image, (k, 0), (k, h), (150, 160, 160), 1)
        for k in range(0, h, 40):
            cv2.line(image, (0, k), (w, k), (150, 160, 160), 1)
        assert cv2.imwrite(str(out_dir / "mosaic.jpg"), image)
        corners = [lonlat(e0, n1), lonlat(e1, n1), lonlat(e1, n0), lonlat(e0, n0)]
        (out_dir / "mosaic.json").write_text(json.dumps({
            "m_per_px": MOSAIC_M_PER_PX, "width_px": w, "height_px": h, "en_bounds_m": list(MOSAIC_BOUNDS_M),
            "corners_lonlat_deg": corners, "origin": {"lat_deg": ORIGIN[0], "lon_deg": ORIGIN[1]}}))
    violations = [s for s in specs if s.kind]
    summary = {
        "flight_id": "F1", "name": name, "source": {"video": "DJI_0001.MP4", "srt": "DJI_0001.SRT", "stills": None},
        "camera": {"how": "profile mavic_3", "width_px": 3840, "height_px": 2160, "hfov_deg": 71.6},
        "origin": {"lat_deg": ORIGIN[0], "lon_deg": ORIGIN[1]}, "started_at": "2026-06-01T10:00:00+08:00",
        "timezone": "Asia/Shanghai", "duration_s": 60.0,
        "frames": {"total": 1800, "sampled": 24, "processed": 23, "skipped": {"corrupt_frame": 1}},
        "telemetry": {"format": "dji_srt_mavic3", "coverage": "SRT covers 0–42 s of 60 s", "covered_s": [0.0, 42.0],
                      "yaw_sources": {"gimbal": 23}, "problems": {}},
        "findings": len(specs), "violations": len(violations),
        "by_class": {c: sum(s.cls == c for s in specs) for c in {s.cls for s in specs}},
        "by_kind": {s.kind: 1 for s in violations},
        "timings_s": {"decode": 1.0, "detect": 5.0, "georeference": 0.1, "merge": 0.1, "rules": 0.1, "outputs": 0.5,
                      "total": 7.0},
        "realtime_factor": 0.12, "notes": ["SRT covers 0–42 s of 60 s"], "status": "done"}
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    return out_dir


# --- the data -----------------------------------------------------------------------------------------------

def test_positions_are_mosaic_pixels_and_violations_come_first(tmp_path):
    data = report_data(write_flight(tmp_path), case_url=CASE_URL)
    rows = {f["id"]: f for f in data["findings"]}
    assert set(rows) == {s.finding_id for s in SPECS}
    for s in SPECS:
        x, y = expected_px(s.east_m, s.north_m)
        assert (rows[s.finding_id]["x"], rows[s.finding_id]["y"]) == pytest.approx((x, y), abs=0.02)
    assert [f["violation"] for f in data["findings"]] == [True, True, True, False]
    assert [f["kind"] for f in data["findings"][:3]] == [k for k in KINDS if k in {s.kind for s in SPECS}]
    assert rows["F1:bicycle:2"]["inside_map"] is False and rows["F1:stall:1"]["inside_map"] is True
    assert ["位置 Position", "在影像范围外 outside the imagery"] in rows["F1:bicycle:2"]["fields"]
    assert rows["F1:illegal_structure:1"]["color"] == KINDS["illegal_structure"].color_hex
    assert rows["F1:illegal_structure:1"]["title"] == "私搭乱建 Illegal structure"
    assert rows["F1:bicycle:2"]["color"] == "#9e9e9e"
    m = data["map"]
    assert (m["width"], m["height"], m["image"]) == (480, 320, "mosaic.jpg")
    x0, y0, w, h = m["view"]  # the first view shows the mosaic and the finding beside it
    assert x0 < 0 and y0 < 0 and x0 + w > expected_px(90.0, 0.0)[0] and y0 + h > 320
    track_start = data["track"][0]
    assert track_start == pytest.approx(expected_px(-50.0, -5.0), abs=0.1)
    assert len(data["footprints"]) == 4 and data["no_map"] is None


@pytest.mark.parametrize("case_url, case_href", [(CASE_URL, "/review?case=41"), (None, None),
                                                 ("https://cases.example/c/{case_id}", "https://cases.example/c/41"),
                                                 ("javascript:alert({case_id})", None)])
def test_the_case_link_follows_case_url(tmp_path, case_url, case_href):
    rows = {f["id"]: f for f in report_data(write_flight(tmp_path), case_url=case_url)["findings"]}
    assert rows["F1:illegal_structure:1"]["case_href"] == case_href
    assert rows["F1:bicycle:1"]["case_href"] is None  # no case yet
    assert rows["F1:bicycle:1"]["annotated"] == "evidence/F1_bicycle_1.jpg"


@pytest.mark.parametrize("crop", ["../../etc/passwd", "/etc/passwd", "file:///etc/passwd", "javascript:alert(1)",
                                  "evidence/missing.crop.jpg", None])
def test_evidence_outside_the_folder_or_missing_is_not_linked(tmp_path, crop):
    specs = [Spec("F1:stall:9", "stall", "stall_occupation", 0.0, 0.0, 0.7, crop=crop)]
    (row,) = report_data(write_flight(tmp_path, specs))["findings"]
    assert row["crop"] is None and row["annotated"] == "evidence/F1_stall_9.jpg"


def test_without_mosaic_the_map_is_drawn_from_vectors_and_without_anything_it_says_why(tmp_path):
    vectors = report_data(write_flight(tmp_path / "a", mosaic=False))
    assert vectors["map"] is not None and vectors["map"]["image"] is None and "no mosaic" in vectors["map_note"]
    assert all(f["x"] is not None for f in vectors["findings"])
    nothing = report_data(write_flight(tmp_path / "b", [], mosaic=False, track=False))
    assert nothing["map"] is None and nothing["no_map"] == NO_MAP_NO_TELEMETRY and nothing["findings"] == []
    page = write_report(tmp_path / "b").read_text(encoding="utf-8")
    assert NO_MAP_NO_TELEMETRY in page


def test_zero_findings_with_a_mosaic(tmp_path):
    data = report_data(write_flight(tmp_path, []))
    assert data["findings"] == [] and data["map"]["image"] == "mosaic.jpg" and len(data["footprints"]) == 4


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "summary.json").unlink(), r"summary\.json: missing"),
    (lambda d: (d / "findings.geojson").write_text("{not json"), r"findings\.geojson: not readable JSON"),
    (lambda d: (d / "track.geojson").write_text('{"type": "Feature"}'),
     r"track\.geojson: not a GeoJSON FeatureCollection"),
    (lambda d: (d / "mosaic.json").write_text('{"m_per_px": 0, "width_px": 1, "height_px": 1, "en_bounds_m": '
                                              '[0, 0, 1, 1], "origin": {"lat_deg": 31, "lon_deg": 121}}'),
     r"mosaic\.json: needs m_per_px > 0"),
    (lambda d: (d / "findings.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [500.0, 31.0]},
         "properties": {"finding_id": "bad", "role": "point"}}]})),
     r"findings\.geojson: feature 0 \(bad\): coordinates out of range"),
])
def test_a_malformed_folder_gets_one_line_naming_the_file(tmp_path, damage, message):
    damage(write_flight(tmp_path))
    with pytest.raises(ReportInputError, match=message) as err:
        write_report(tmp_path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "report.html").exists()


def test_positions_may_carry_an_altitude_and_case_url_names_only_case_id(tmp_path):
    folder = write_flight(tmp_path)
    data = json.loads((folder / "findings.geojson").read_text())
    data["features"][0]["geometry"]["coordinates"].append(12.5)  # RFC 7946 allows [lon, lat, alt]
    (folder / "findings.geojson").write_text(json.dumps(data))
    rows = {f["id"]: f for f in report_data(folder)["findings"]}
    assert (rows[SPECS[0].finding_id]["x"], rows[SPECS[0].finding_id]["y"]) == pytest.approx(
        expected_px(SPECS[0].east_m, SPECS[0].north_m), abs=0.02)
    with pytest.raises(ValueError, match="only {case_id} may be substituted"):
        report_data(folder, case_url="/cases/{id}")


def test_missing_optional_files_become_notes(tmp_path):
    folder = write_flight(tmp_path)
    (folder / "track.geojson").unlink()
    data = report_data(folder)
    assert "track.geojson is missing" in data["notes"] and data["track"] == []


@pytest.mark.parametrize("first, last, shown", [
    ("2026-06-01T10:00:10+08:00", "2026-06-01T10:00:14+08:00", "2026-06-01 10:00:10 – 10:00:14 +08:00"),
    ("2026-06-01T23:59:50+08:00", "2026-06-02T00:00:05+08:00",
     "2026-06-01 23:59:50 +08:00 – 2026-06-02 00:00:05 +08:00"),
    ("2026-06-01T10:00:10+08:00", "2026-06-01T10:00:10+08:00", "2026-06-01 10:00:10 +08:00"),
    ("2026-06-01T10:00:10", "2026-06-01T10:00:12", "2026-06-01 10:00:10 – 10:00:12"),
    (None, None, ""),
])
def test_wall_time_ranges(first, last, shown):
    assert _wall_range(first, last) == shown


@pytest.mark.parametrize("seconds, shown", [(42.04, "42.0 s"), (60.0, "1 min 00.0 s (60 s)"),
                                            (754.5, "12 min 34.5 s (754 s)"), (None, "–"), (math.nan, "–")])
def test_durations(seconds, shown):
    assert _duration(seconds) == shown


def blob(page_html: str) -> str:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page_html, re.DOTALL)
    assert match
    return match.group(1)


def test_the_blob_cannot_end_its_script_and_names_are_not_templated(tmp_path):
    evil = "x</script><b>bold</b><!--{{data}}"
    folder = write_flight(tmp_path, [Spec(evil, "stall", "stall_occupation", 0.0, 0.0, 0.7)], name="{{script}}<i>")
    page = write_report(folder).read_text(encoding="utf-8")
    raw = blob(page)
    assert "<" not in raw and ">" not in raw
    assert json.loads(raw) == report_data(folder)
    assert "<b>bold</b>" not in page and "<i>" not in page and "{{script}}&lt;i&gt;" in page
    assert page.count("<script") == 2  # the blob and the script, nothing injected


# --- the page in Chromium -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright Python package is missing (pip install playwright)")
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium, or scripts/install_system_deps.sh)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Opened:
    """A report page opened from disk with every request that is not a file: URL aborted and recorded."""

    def __init__(self, browser, path: Path):
        self.left: list[str] = []
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(path.as_uri())
        self.page.wait_for_selector("body[data-ready='1']")

    def _route(self, route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            self.left.append(route.request.url)
            route.abort()

    def assert_clean(self) -> None:
        assert self.errors == []
        assert self.left == [] and all(u.startswith("file:") for u in self.requests), self.requests


def marker(page, finding_id: str):
    return page.locator(f'#markers circle[data-finding-id="{finding_id}"]')


def item(page, finding_id: str):
    return page.locator(f'#finding-list li[data-finding-id="{finding_id}"]')


def test_the_report_in_chromium(browser, tmp_path):
    from playwright.sync_api import expect

    path = write_report(write_flight(tmp_path / "flight"), case_url=CASE_URL)
    opened = Opened(browser, path)
    page = opened.page
    expect(page.locator("#markers circle")).to_have_count(len(SPECS))
    expect(page.locator("#finding-list li")).to_have_count(len(SPECS))
    expect(page.locator("#finding-count")).to_have_text(str(len(SPECS)))
    assert page.evaluate("document.getElementById('mosaic').getBBox().width") == 480
    expect(page.locator("#track")).to_have_count(1)
    expect(page.locator("#footprints polygon")).to_have_count(4)
    expect(page.locator("#legend")).to_contain_text("私搭乱建 Illegal structure")
    expect(page.locator("#legend")).to_contain_text("其他发现 Other finding")
    expect(page.locator("#summary")).to_contain_text("SRT covers 0–42 s of 60 s")
    expect(page.locator("#summary")).to_contain_text("gimbal 23")
    expect(page.locator("#by-kind")).to_contain_text("非机动车乱停放 Misparked bicycles")
    assert marker(page, "F1:illegal_structure:1").get_attribute("fill") == KINDS["illegal_structure"].color_hex
    # plain findings are drawn smaller than violations
    r_plain = float(marker(page, "F1:bicycle:2").get_attribute("r"))
    assert r_plain < float(marker(page, "F1:bicycle:1").get_attribute("r"))
    # the list starts with the violations
    assert page.locator("#finding-list li").last.get_attribute("data-finding-id") == "F1:bicycle:2"

    # click a marker: its crop, its fields and its case link
    marker(page, "F1:illegal_structure:1").click()
    expect(page.locator("#panel")).to_be_visible()
    expect(page.locator("#panel-title")).to_have_text("私搭乱建 Illegal structure")
    page.wait_for_function("() => { const i = document.getElementById('panel-crop');"
                           " return i.complete && i.naturalWidth > 0; }")
    assert page.evaluate("document.getElementById('panel-crop').naturalWidth") == 80
    fields = page.locator("#panel-fields")
    for text in ("F1:illegal_structure:1", "0.91", "0101", "310101001001", "10.0 – 14.5 s", "#41",
                 "2026-06-01 10:00:10 – 10:00:14 +08:00"):
        expect(fields).to_contain_text(text)
    lon, lat = lonlat(10.0, 5.0)
    expect(fields).to_contain_text(f"{lat:.7f}, {lon:.7f}")
    expect(page.locator("#panel-link")).to_have_attribute("href", "/review?case=41")
    expect(page.locator("#panel-link")).to_have_text("打开案件 Open the case")
    expect(item(page, "F1:illegal_structure:1")).to_have_class(re.compile(r"\bcurrent\b"))

    # the list selects markers too; without a case the link is the annotated evidence
    item(page, "F1:stall:1").click()
    expect(marker(page, "F1:stall:1")).to_have_class(re.compile(r"\bselected\b"))
    expect(marker(page, "F1:illegal_structure:1")).not_to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator("#panel-title")).to_have_text("占道经营/店外经营 Stall occupying the street")
    expect(page.locator("#panel-link")).to_have_attribute("href", "evidence/F1_stall_1.jpg")
    page.wait_for_function("() => document.getElementById('panel-crop').naturalWidth === 100")

    # the finding outside the mosaic has a marker that works like the others
    marker(page, "F1:bicycle:2").click()
    expect(page.locator("#panel-fields")).to_contain_text("outside the imagery")
    expect(item(page, "F1:bicycle:2")).to_have_class(re.compile(r"\bcurrent\b"))

    # wheel zoom and reset change the viewBox; markers keep their size on screen
    before = page.locator("#map").get_attribute("viewBox")
    r_before = float(marker(page, "F1:bicycle:1").get_attribute("r"))
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)
    page.wait_for_function(f"() => document.getElementById('map').getAttribute('viewBox') !== {json.dumps(before)}")
    zoomed = [float(v) for v in page.locator("#map").get_attribute("viewBox").split()]
    assert zoomed[2] < float(before.split()[2])
    assert float(marker(page, "F1:bicycle:1").get_attribute("r")) < r_before  # smaller in map units
    page.mouse.move(box["x"] + 200, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + 300, box["y"] + 260, steps=4)
    page.mouse.up()
    panned = [float(v) for v in page.locator("#map").get_attribute("viewBox").split()]
    assert panned[0] < zoomed[0] and panned[2] == pytest.approx(zoomed[2])
    page.click("#zoom-reset")
    expect(page.locator("#map")).to_have_attribute("viewBox", before)

    ARTIFACTS.mkdir(exist_ok=True)
    marker(page, "F1:illegal_structure:1").click()
    page.screenshot(path=str(ARTIFACTS / "flight-report.png"), full_page=True)
    opened.assert_clean()
    # the harness does block what would leave: a request from the page is recorded and aborted
    page.evaluate("fetch('https://tiles.example.invalid/0/0/0.png').catch(() => 0)")
    page.wait_for_function("() => true")
    assert any(u.startswith("https://tiles.example.invalid/") for u in opened.left)
    opened.context.close()


def test_a_finding_id_with_markup_is_shown_as_text(browser, tmp_path):
    from playwright.sync_api import expect

    evil = "F1:</script><b>bold</b>:1"
    path = write_report(write_flight(tmp_path, [Spec(evil, "stall", "stall_occupation", 0.0, 0.0, 0.7)]))
    opened = Opened(browser, path)
    page = opened.page
    expect(page.locator("#finding-list li")).to_have_count(1)
    expect(page.locator("#finding-list li")).to_contain_text(evil)
    page.locator("#markers circle").click()
    expect(page.locator("#panel-fields")).to_contain_text(evil)
    assert page.locator("#finding-list b, #panel b, #map b").count() == 0  # (the header's counts are <b> of its own)
    assert marker(page, evil).count() == 1
    opened.assert_clean()
    opened.context.close()


def test_no_map_and_no_findings_in_chromium(browser, tmp_path):
    from playwright.sync_api import expect

    path = write_report(write_flight(tmp_path, [], mosaic=False, track=False))
    opened = Opened(browser, path)
    page = opened.page
    expect(page.locator("#no-map")).to_be_visible()
    expect(page.locator("#no-map")).to_contain_text(NO_MAP_NO_TELEMETRY)
    expect(page.locator("#map-wrap")).to_be_hidden()
    expect(page.locator("#no-findings")).to_be_visible()
    expect(page.locator("#finding-count")).to_have_text("0")
    opened.assert_clean()
    opened.context.close()


def test_the_page_works_when_served_with_its_content_security_policy(browser, tmp_path):
    """As the service's flight page would serve it: over HTTP with `content_security_policy` (inline style and
    script admitted by hash only). A CSP violation is a console error; nothing may be blocked."""
    from playwright.sync_api import expect

    folder = write_flight(tmp_path)
    path = write_report(folder, case_url=CASE_URL)
    csp = content_security_policy(path.read_text(encoding="utf-8"))
    origin = "http://report.test/flight/"
    served: list[str] = []
    left: list[str] = []

    def serve(route) -> None:
        url = route.request.url
        if not url.startswith(origin):
            left.append(url)
            route.abort()
            return
        served.append(url)
        rel = url[len(origin):].split("?")[0]
        headers = {"Content-Security-Policy": csp} if rel == "report.html" else {}
        route.fulfill(path=str(folder / rel), headers=headers)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.route("**/*", serve)
        page = context.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(origin + "report.html")
        page.wait_for_selector("body[data-ready='1']")
        expect(page.locator("#markers circle")).to_have_count(len(SPECS))
        marker(page, "F1:illegal_structure:1").click()
        page.wait_for_function("() => document.getElementById('panel-crop').naturalWidth === 80")
        swatch = page.locator("#by-kind .swatch").first
        assert swatch.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
        assert errors == [] and left == []
        assert origin + "mosaic.jpg" in served
    finally:
        context.close()
    with pytest.raises(ValueError, match="not a flight report page"):
        content_security_policy("<html></html>")
