"""The flights view of the review page in Debian's Chromium (Playwright), against the real app under uvicorn.

A reviewer sees the flights with their status and a progress bar that follows the running flight (polled while it
runs), opens a finished flight's report in a new tab (a short-lived link: a tab cannot send the key), and the
report's "open the case" link opens that case in the review page (``/review?case=<id>``). An admin cancels a
queued flight. A pilot sees only the flights view with its own flights and uploads a video with its SRT.

The flight rows are made directly in the database (no flight worker runs here: ``run_flights`` is off), and the
finished flight's output folder is the report test's synthetic folder (`tests.service.test_flight_report`)
with its report written by `service.report.write_report`, as the flight job does.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from detector.rules import Violation
from service.app import create_app
from service.config import AppConfig
from service.drone import FlightProgress
from service.flights import FlightSource
from service.origin import CaseOrigin
from service.report import write_report
from service.settings import Settings, flights_dir
from tests.service.test_flight_report import SPECS, write_flight
from tests.service.test_review_page import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ServerThread

KEYS = {"admin": "admin-key-0123456789abcdef", "reviewer": "reviewer-key-wang-0123456789",
        "pilot": "pilot-key-li-0123456789abc", "pilot2": "pilot-key-zhao-0123456789a"}

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the playwright Python package is missing (pip install playwright)")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install chromium, "
                                                     "or scripts/install_system_deps.sh)"),
    pytest.mark.timeout(120),
]
T0 = datetime(2026, 6, 1, 2, 0, tzinfo=timezone.utc)


def flight_case(store, flight_id: str) -> int:
    """A candidate case from a flight (a new structure on a roof), as `ingest_flight` makes one."""
    import numpy as np

    violation = Violation(violation_id=f"{flight_id}:illegal_structure:1", kind="illegal_structure", event="opened",
                          status="open", camera_id=flight_id, zone_id="baseline-2025", track_ids=(1,),
                          first_seen=T0, last_seen=T0, dwell_s=0.0, xyxy=np.array([[10, 10, 50, 50]], np.float32),
                          score=0.91, class_names=("illegal_structure",))
    origin = CaseOrigin.flight(flight_id, name="南京路巡查 patrol").at(31.2305, 121.4738, grid_code="310101001001")
    return store.ingest(violation, None, origin).id


@pytest.fixture
def served(tmp_path):
    settings = Settings(database_path=tmp_path / "cases.db", evidence_dir=tmp_path / "evidence", run_cameras=False,
                        run_flights=False, outbox={"deliver": False}, api_keys=[
                            {"name": "root", "role": "admin", "key": KEYS["admin"]},
                            {"name": "wang", "role": "reviewer", "key": KEYS["reviewer"]},
                            {"name": "pilot-li", "role": "pilot", "key": KEYS["pilot"]},
                            {"name": "pilot-zhao", "role": "pilot", "key": KEYS["pilot2"]}])
    app = create_app(settings, AppConfig(config_version=1))
    services = app.state.services
    flights = services.flights
    video = FlightSource(video=str(tmp_path / "f.mp4"))
    flights.create("flight-done", input=video, name="南京路巡查 patrol", created_by="pilot-li")
    flights.create("flight-run", input=video, name="Rooftops, Xuhui", created_by="pilot-li")
    flights.create("flight-queued", input=video, name="Riverside", created_by="pilot-zhao")
    flights.claim_next()
    case_id = flight_case(services.cases, "flight-done")
    flights.finish("flight-done", "done", notes=["SRT covers 0–42 s of 60 s"], findings=4, case_ids=[case_id])
    out = flights_dir(settings) / "flight-done" / "out"
    write_flight(out, [replace(SPECS[0], case_id=case_id), *SPECS[1:]])
    write_report(out, case_url="/review?case={case_id}")
    flights.claim_next()
    flights.write_progress("flight-run", FlightProgress("detect", 40, 10, 3, 12.0, 30.0))
    flight_case(services.cases, "flight-run")  # a newer pending case: the one named in the address is not first
    with ServerThread(app) as server:
        yield server.url, flights, case_id


def new_page(browser, errors: list[str]):
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page


def row(page, flight_id: str):
    return page.locator(f'#fl-list tr[data-flight-id="{flight_id}"]')


def test_flights_view_progress_report_and_case_link(served):
    url, flights, case_id = served
    expect = sync_api.expect
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            # a reviewer: every flight, progress of the running one, no cancel, no upload
            context, page = new_page(browser, errors)
            page.goto(f"{url}/review?key={KEYS['reviewer']}#flights")
            expect(page.locator("#flights-view")).to_be_visible()
            expect(page.locator("#nav-flights")).to_have_class(re.compile(r"\bactive\b"))
            expect(page.locator("#fl-list tr")).to_have_count(3)
            running = row(page, "flight-run")
            expect(running.locator(".badge")).to_have_text("处理中")
            expect(running.locator(".fl-progress-text")).to_have_text(
                "24% · 检测 · 10 / 40 帧 · 剩余约 30 秒 · 3 个发现")
            expect(running.locator(".bar")).to_have_attribute("aria-valuenow", "23.8")
            expect(page.locator(".fl-cancel")).to_have_count(0)
            expect(page.locator("#fl-upload-panel")).to_be_hidden()
            done = row(page, "flight-done")
            expect(done.locator(".fl-progress-text")).to_have_text("100% · 4 个发现 · 1 件案件")
            expect(done.locator(".fl-note")).to_have_text("SRT covers 0–42 s of 60 s")

            # the running flight moves on: the list follows without a reload (polled every 2 s)
            flights.write_progress("flight-run", FlightProgress("detect", 40, 30, 7, 30.0, 8.0))
            expect(running.locator(".fl-progress-text")).to_contain_text("30 / 40 帧", timeout=6_000)
            expect(running.locator(".fl-progress-text")).to_contain_text("剩余约 8 秒")
            page.screenshot(path=str(ARTIFACTS / "flights-view.png"), full_page=True)

            # the report opens in a new tab through a short-lived link, images and all
            with context.expect_page() as opened:
                done.locator(".fl-report").click()
            report = opened.value
            report.set_default_timeout(10_000)
            report.on("pageerror", lambda exc: errors.append(str(exc)))
            report.wait_for_url(re.compile(r"/api/v1/flights/flight-done/shared/[0-9]+\.[0-9a-f]+/report\.html$"))
            report.wait_for_selector("body[data-ready='1']")
            expect(report.locator("#markers circle")).to_have_count(len(SPECS))
            report.locator(f'#markers circle[data-finding-id="{SPECS[0].finding_id}"]').click()
            report.wait_for_function("() => { const i = document.getElementById('panel-crop');"
                                     " return i.complete && i.naturalWidth > 0; }")
            assert report.evaluate("document.getElementById('mosaic').getBBox().width") > 0
            expect(report.locator("#panel-link")).to_have_attribute("href", f"/review?case={case_id}")

            # "open the case": the review page opens that case (the tab has the key of the tab that opened it)
            report.locator("#panel-link").click()
            report.wait_for_url(re.compile(r"/review"))
            if report.locator("#login").is_visible():
                report.fill("#api-key", KEYS["reviewer"])
                report.press("#api-key", "Enter")
            expect(report.locator("#case-body")).to_have_attribute("data-case-id", str(case_id))
            expect(report.locator("#case-fields")).to_contain_text("flight-done")
            assert "case=" not in report.url
            # the hash form too, on a fresh load and while the page is open (the key is in this tab by now)
            report.goto(f"{url}/review")
            expect(report.locator("#case-body")).not_to_have_attribute("data-case-id", str(case_id))  # newest
            report.goto("about:blank")
            report.goto(f"{url}/review#case={case_id}")
            expect(report.locator("#case-body")).to_have_attribute("data-case-id", str(case_id))
            report.wait_for_function("() => location.hash === ''")
            report.locator("#btn-prev").click()  # the queue is newest first: case 1 comes after the other
            expect(report.locator("#case-body")).not_to_have_attribute("data-case-id", str(case_id))
            report.evaluate(f"location.hash = '#case={case_id}'")
            expect(report.locator("#case-body")).to_have_attribute("data-case-id", str(case_id))
            context.close()

            # an admin cancels the queued flight
            context, page = new_page(browser, errors)
            page.goto(f"{url}/review?key={KEYS['admin']}#flights")
            expect(page.locator("#fl-upload-panel")).to_be_visible()
            queued = row(page, "flight-queued")
            expect(queued.locator(".badge")).to_have_text("排队中")
            queued.locator(".fl-cancel").click()
            expect(queued.locator(".badge")).to_have_text("已取消")
            expect(page.locator("#fl-notice")).to_have_text("任务 flight-queued 已取消。")
            assert flights.get("flight-queued").status == "cancelled"
            context.close()
        finally:
            browser.close()
    assert errors == []


def test_a_pilot_sees_only_its_flights_and_uploads_one(served, tmp_path):
    url, flights, _ = served
    expect = sync_api.expect
    errors: list[str] = []
    video, srt = tmp_path / "DJI_0042.MP4", tmp_path / "DJI_0042.SRT"
    video.write_bytes(b"\0" * 20_000)
    srt.write_bytes(b"1\n00:00:00,000 --> 00:00:00,100\n[latitude: 22.5431] [longitude: 114.0579] [rel_alt: 35.0]\n")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context, page = new_page(browser, errors)
            page.goto(f"{url}/review?key={KEYS['pilot']}")
            expect(page.locator("#flights-view")).to_be_visible()
            expect(page.locator("#review")).to_be_hidden()
            expect(page.locator("#nav-review")).to_be_hidden()
            expect(page.locator("#nav-zones")).to_be_hidden()
            expect(page.locator("#fl-list tr")).to_have_count(2)  # not pilot-zhao's flight
            expect(page.locator(".fl-report")).to_have_count(0)
            expect(page.locator(".fl-cancel")).to_have_count(0)

            page.click("#fl-submit")
            expect(page.locator("#fl-upload-error")).to_have_text("请选择视频和 SRT 文件，或照片 zip。")
            page.fill("#fl-name", "Patrol 42")
            page.set_input_files("#fl-video", str(video))
            page.set_input_files("#fl-srt", str(srt))
            page.click("#fl-submit")
            expect(page.locator("#fl-notice")).to_contain_text("已上传")
            expect(page.locator("#fl-list tr")).to_have_count(3)
            new = page.locator("#fl-list tr").first
            expect(new.locator(".fl-name")).to_contain_text("Patrol 42")
            expect(new.locator(".badge")).to_have_text("排队中")
            job = flights.get(new.get_attribute("data-flight-id"))
            assert (job.created_by, job.status, job.name) == ("pilot-li", "queued", "Patrol 42")

            # a wrong file type is refused with the server's reason
            page.set_input_files("#fl-video", str(srt))
            page.set_input_files("#fl-srt", str(srt))
            page.click("#fl-submit")
            expect(page.locator("#fl-upload-error")).to_contain_text("video: 'DJI_0042.SRT' is not a video")
            page.screenshot(path=str(ARTIFACTS / "flights-pilot.png"), full_page=True)
            context.close()
        finally:
            browser.close()
    assert errors == []
