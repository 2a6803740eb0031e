"""Bulk export: cases of a time range and filters as a zip (cases.csv with a BOM, cases.geojson, blurred
evidence), through ``GET /api/v1/export`` and ``streetwatch export``, read back with the csv and json modules."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from service.app import create_app
from service.cases import CaseFilter
from service.cli import main
from service.config import CameraConfig, camera_origin
from service.export import CHUNK_BYTES, CSV_COLUMNS, iter_export_zip, public_evidence_resolver, select_case_ids
from service.settings import Settings
from tests.service.test_api import ADMIN, ALICE, CAM1, KEYS, make_config
from tests.service.test_cases import T0, make_origin, make_violation

PERSON_BOX = (60.0, 40.0, 140.0, 200.0)
ADDRESS_ZH = "上海市黄浦区南京东路88号"


def sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64), cv2.CV_64F).var())


def settings_dict(data: Path, **extra) -> dict:
    return {"database_path": str(data / "cases.sqlite3"), "evidence_dir": str(data / "evidence"),
            "run_cameras": False, "run_flights": False, "outbox": {"deliver": False}, "auth_limit": {"burst": 1000},
            # The cascades have their own tests (test_privacy.py); here the stored person boxes are blurred.
            "privacy": {"blur_faces": False, "blur_plates": False},
            "api_keys": [{"name": "root", "role": "admin", "key": KEYS["admin"]},
                         {"name": "alice", "role": "reviewer", "key": KEYS["alice"]},
                         {"name": "cam-1-gw", "role": "camera", "camera_id": "cam-1", "key": KEYS["cam-1"]}],
            **extra}


def add_case(services, name: str, *, camera: CameraConfig | None = None, kind: str = "stall_occupation",
             start_s: float = 0.0, status: str = "pending", evidence: bool = True, reason: str = "no stall",
             size=(240, 320)):
    """One case with an annotated and an original image of a random texture with a stored person box."""
    files = {}
    if evidence:
        image = np.random.default_rng(len(name)).integers(0, 256, (*size, 3), dtype=np.uint8)
        for key, suffix in (("annotated", ".jpg"), ("original", ".orig.jpg")):
            path = Path(services.settings.evidence_dir) / f"{name}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), image)
            files[key] = str(path)
    origin = camera_origin(camera) if camera is not None else make_origin()
    violation = make_violation(name, camera_id=origin.source_id, kind=kind, first_s=start_s, last_s=start_s + 300,
                               boxes=[PERSON_BOX], classes=["person"])
    case = services.cases.ingest(violation, files, origin=origin)
    if status == "confirmed":
        services.cases.confirm(case.id, "alice")
    elif status == "rejected":
        services.cases.reject(case.id, "alice", reason)
    return services.cases.get(case.id)


@pytest.fixture
def city(tmp_path):
    """The service with three cases: cam-1 stall confirmed (day 0), cam-2 bikes pending with a Chinese address
    and no position (day 0), cam-1 stall rejected with a formula-like reason and its evidence gone (day 1)."""
    data = tmp_path / "data"
    settings = Settings.model_validate(settings_dict(data))
    app = create_app(settings, config=make_config())
    services = app.state.services
    cam2 = CameraConfig(id="cam-2", name="Bund", source="push", timezone="Asia/Shanghai", address=ADDRESS_ZH)
    cases = {"c1": add_case(services, "c1", status="confirmed"),
             "c2": add_case(services, "c2", camera=cam2, kind="bike_misparked"),
             "c3": add_case(services, "c3", start_s=86400, status="rejected", reason="=HYPERLINK(\"http://x\")")}
    for f in Path(settings.evidence_dir).glob("c3*"):
        f.unlink()  # removed by retention, say: the export must say so
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, services, cases, tmp_path


def read_zip(body: bytes):
    zf = zipfile.ZipFile(io.BytesIO(body))
    raw_csv = zf.read("cases.csv")
    assert raw_csv.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.DictReader(io.StringIO(raw_csv.decode("utf-8-sig"))))
    geo = json.loads(zf.read("cases.geojson"))
    return zf, rows, geo


def ids_of(rows) -> set[int]:
    return {int(r["case_id"]) for r in rows}


@pytest.mark.parametrize("params, expected", [
    ({}, {"c1", "c2", "c3"}),
    ({"status": "confirmed"}, {"c1"}),
    ({"camera": "cam-2"}, {"c2"}),
    ({"kind": "stall_occupation"}, {"c1", "c3"}),
    ({"from": (T0 + timedelta(hours=12)).isoformat(), "to": (T0 + timedelta(days=2)).isoformat()}, {"c3"}),
    ({"to": (T0 + timedelta(hours=1)).isoformat(), "status": "pending"}, {"c2"}),
    ({"camera": "cam-9"}, set()),
])
def test_export_filters(city, params, expected):
    client, services, cases, _ = city
    response = client.get("/api/v1/export", params=params, headers=ALICE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith('attachment; filename="streetwatch-cases-')
    _, rows, geo = read_zip(response.content)
    assert ids_of(rows) == {cases[k].id for k in expected}
    # The export selects what the case list selects.
    listed = client.get("/api/v1/cases", params={"limit": 500, **{("camera_id" if k == "camera" else k): v
                                                                    for k, v in params.items()}}, headers=ALICE)
    assert ids_of(rows) == {c["id"] for c in listed.json()["data"]}
    assert {f["id"] for f in geo["features"]} == ids_of(rows) - {cases["c2"].id}  # c2 has no position


def test_export_content_csv_geojson_and_blurred_evidence(city):
    client, services, cases, tmp_path = city
    zf, rows, geo = read_zip(client.get("/api/v1/export", headers=ALICE).content)
    assert list(rows[0]) == list(CSV_COLUMNS)
    by_id = {int(r["case_id"]): r for r in rows}
    c1, c2, c3 = (by_id[cases[k].id] for k in ("c1", "c2", "c3"))
    assert c1["status"] == "confirmed" and c1["lat_deg"] == "31.2304" and c1["camera_id"] == "cam-1"
    assert c2["address"] == ADDRESS_ZH and c2["lat_deg"] == "" and c2["kind"] == "bike_misparked"
    assert c3["reject_reason"] == "'=HYPERLINK(\"http://x\")"  # a spreadsheet shows it, never runs it
    assert c3["evidence"] == "" and c3["evidence_withheld"].count("removed by the retention policy") == 2
    # Evidence: every image of c1 and c2, the blurred copy, named by case and file.
    names = sorted(n for n in zf.namelist() if n.startswith("evidence/"))
    expected = sorted(f"evidence/{cases[k].id}/{e.file}" for k in ("c1", "c2") for e in cases[k].evidence)
    assert names == expected and c1["evidence"].split(";") == [n for n in expected if f"/{cases['c1'].id}/" in n]
    for case in (cases["c1"], cases["c2"]):
        for e in case.evidence:
            served = cv2.imdecode(np.frombuffer(zf.read(f"evidence/{case.id}/{e.file}"), np.uint8), cv2.IMREAD_COLOR)
            original = cv2.imread(e.path)
            x1, y1, x2, y2 = (int(v) for v in PERSON_BOX)
            assert sharpness(served[y1:y2, x1:x2]) < 0.1 * sharpness(original[y1:y2, x1:x2])
            assert zf.read(f"evidence/{case.id}/{e.file}") != Path(e.path).read_bytes()
    # GeoJSON: RFC 7946 order [lon, lat]; properties are the CSV columns, typed.
    feature = next(f for f in geo["features"] if f["id"] == cases["c1"].id)
    assert geo["type"] == "FeatureCollection" and feature["geometry"] == {"type": "Point",
                                                                          "coordinates": [121.4737, 31.2304]}
    assert list(feature["properties"]) == list(CSV_COLUMNS) and feature["properties"]["dwell_s"] == 300.0
    # No server path anywhere: not in the table, not in the GeoJSON, not in a file name.
    for name in zf.namelist():
        assert str(tmp_path) not in name and not name.startswith("/")
        assert str(tmp_path).encode() not in zf.read(name)


def test_export_auth_bounds_and_errors(city, tmp_path):
    client, services, cases, _ = city
    assert client.get("/api/v1/export").status_code == 401
    assert client.get("/api/v1/export", headers=CAM1).status_code == 403
    assert client.get("/api/v1/export", headers=ADMIN).status_code == 200
    t = T0.isoformat()
    bad = client.get("/api/v1/export", params={"from": t, "to": t}, headers=ALICE)
    assert bad.status_code == 422 and "must be after 'from'" in bad.text
    assert client.get("/api/v1/export", params={"from": "2026-06-01T00:00"}, headers=ALICE).status_code == 422
    services.settings = services.settings.model_copy(update={"export_max_cases": 2})
    too_many = client.get("/api/v1/export", headers=ALICE)
    assert too_many.status_code == 422 and "more than 2 cases match" in too_many.text
    assert client.get("/api/v1/export", params={"status": "confirmed"}, headers=ALICE).status_code == 200


def test_the_zip_is_streamed_in_chunks(city):
    client, services, cases, _ = city
    cam3 = CameraConfig(id="cam-3", source="push", timezone="Asia/Shanghai")
    big = add_case(services, "big", camera=cam3, size=(1200, 1600))  # a JPEG of noise: a few MB
    copies = services.public_copies
    ids = select_case_ids(services.session_factory, CaseFilter(camera_id="cam-3"), max_cases=100)
    chunks = list(iter_export_zip(services.cases, ids, public_evidence_resolver(services.settings, copies)))
    largest_file = max(Path(copies.copy_path(Path(e.path))).stat().st_size for e in big.evidence)
    assert largest_file > 10 * CHUNK_BYTES
    # Never more than one read's worth (plus zip headers) at a time, except the tables written at the end.
    assert max(len(c) for c in chunks[:-1]) <= CHUNK_BYTES + 1024 and len(chunks) > 20
    zf, rows, _ = read_zip(b"".join(chunks))
    assert big.id in ids_of(rows) and zf.testzip() is None


def test_cli_export_writes_the_same_zip(city, capsys):
    client, services, cases, tmp_path = city
    data = tmp_path / "data"
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(yaml.safe_dump(settings_dict(data)))
    out = tmp_path / "out" / "cases.zip"
    argv = ["export", "--settings", str(settings_file), "--from", T0.isoformat(),
            "--to", (T0 + timedelta(hours=1)).isoformat(), "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    zf, rows, _ = read_zip(out.read_bytes())
    assert ids_of(rows) == {cases["c1"].id, cases["c2"].id} and summary["cases"] == 2
    assert main(argv) == 2 and "exists (use --force" in capsys.readouterr().err
    assert main([*argv, "--force", "--status", "confirmed"]) == 0 and ids_of(read_zip(out.read_bytes())[1]) == {
        cases["c1"].id}
    assert [p.name for p in out.parent.iterdir()] == ["cases.zip"]  # no temporary file left


@pytest.mark.parametrize("args, message", [
    (["--from", "2026-06-01"], "--from '2026-06-01': give the time zone"),
    (["--to", "yesterday"], "--to 'yesterday': not an ISO 8601 time"),
    (["--status", "open"], "--status 'open': not one of pending"),
    (["--max-cases", "1"], "more than 1 cases match"),
])
def test_cli_export_errors_are_one_line(city, capsys, args, message):
    client, services, cases, tmp_path = city
    out = tmp_path / "x.zip"
    assert main(["export", "--data-dir", str(tmp_path / "data"), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()


def test_cli_export_refuses_a_missing_database(tmp_path, capsys):
    assert main(["export", "--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.zip")]) == 2
    assert "no such case database" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()


@pytest.mark.timeout(120)
def test_the_history_views_download_button_saves_the_export(tmp_path):
    # Imported here: that module skips itself without playwright, which must not skip the tests above.
    from tests.service.test_review_page import CHROMIUM, CHROMIUM_ARGS, ServerThread, sync_api

    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (scripts/install_system_deps.sh)")
    settings = Settings.model_validate(settings_dict(tmp_path / "data"))
    app = create_app(settings, config=make_config())
    confirmed = add_case(app.state.services, "c1", status="confirmed")
    add_case(app.state.services, "c2", camera=CameraConfig(id="cam-2", source="push", timezone="UTC"))
    with ServerThread(app) as server, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(locale="zh-CN", accept_downloads=True).new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{server.url}/?key={KEYS['alice']}")
            page.click("#nav-history")
            sync_api.expect(page.locator("#hi-download")).to_have_text("下载 (zip)")
            page.select_option("#hi-status", "confirmed")
            with page.expect_download() as download:
                page.click("#hi-download")
            assert download.value.suggested_filename == "streetwatch-cases-confirmed.zip"
            zf, rows, _ = read_zip(Path(download.value.path()).read_bytes())
            assert ids_of(rows) == {confirmed.id} and len([n for n in zf.namelist() if n.startswith("evidence/")]) == 2
        finally:
            browser.close()
