"""The review page end to end: the real app under uvicorn on loopback, a real SQLite file, real evidence JPEGs,
and Debian's Chromium driven by Playwright. A reviewer signs in with their key, confirms the newest case with
``c`` and rejects the next with ``r`` + a reason + Enter; the API then shows both decisions under their name.

Needs /usr/bin/chromium (``scripts/install_system_deps.sh``) and the ``playwright`` Python package (the dev
extra); never ``playwright install``: the system Chromium is launched by path. Screenshots go to
``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from service.app import create_app
from service.config import AppConfig
from service.settings import Settings
from tests.service.test_cases import make_camera, make_violation

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
REVIEWER_KEY = "reviewer-key-wang-0123456789"
ADMIN_KEY = "admin-key-0123456789abcdef"
REVIEWER = {"Authorization": f"Bearer {REVIEWER_KEY}"}

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the playwright Python package is missing (pip install playwright)")
pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install chromium, "
                                                     "or scripts/install_system_deps.sh)"),
    pytest.mark.timeout(90),
]


def write_jpeg(path: Path, size: tuple[int, int], seed: int) -> str:
    h, w = size
    image = np.full((h, w, 3), (90 + 20 * seed, 110, 130), np.uint8)
    cv2.rectangle(image, (100, 200), (200, 300), (0, 0, 255), 3)  # the "annotation" drawn by the detector
    cv2.putText(image, f"case {seed}", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return str(path)


class ServerThread:
    """uvicorn serving `app` on a free loopback port, in a thread of the test process."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture
def served(tmp_path):
    evidence = tmp_path / "evidence"
    settings = Settings(database_path=tmp_path / "cases.db", evidence_dir=evidence, api_keys=[
        {"name": "reviewer-wang", "role": "reviewer", "key": REVIEWER_KEY},
        {"name": "root", "role": "admin", "key": ADMIN_KEY},
    ])
    camera = make_camera("cam-1").model_dump()
    camera["zones"] = [{"id": "z1", "kind": "no_vending", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}]
    app = create_app(settings, AppConfig.model_validate({"config_version": 1, "cameras": [camera]}))
    store = app.state.services.cases
    ids = []
    for i, (kind, zone) in enumerate([("stall_occupation", "z1"), ("bike_misparked", "z2")], start=1):
        paths = {"annotated": write_jpeg(evidence / f"v{i}.annotated.jpg", (360, 640), i),
                 "crop": write_jpeg(evidence / f"v{i}.crop.jpg", (120, 120), i)}
        violation = make_violation(f"cam-1/{kind}/{zone}/{i}", kind=kind, zone_id=zone, first_s=i * 100,
                                   last_s=i * 100 + 330)
        ids.append(store.ingest(violation, paths, camera=make_camera("cam-1")).id)
    with ServerThread(app) as server:
        yield server.url, ids


def test_reviewer_confirms_and_rejects_with_the_keyboard(served):
    url, (older_id, newer_id) = served
    first_id, second_id = newer_id, older_id  # the queue is newest first
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai",
                                          viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(10_000)
            console_errors: list[str] = []
            page.on("pageerror", lambda exc: console_errors.append(str(exc)))
            page.goto(f"{url}/review")
            expect = sync_api.expect

            # sign in: a wrong key is refused inline, the right one opens the queue
            page.fill("#api-key", "not-a-real-key-00000000")
            page.press("#api-key", "Enter")
            expect(page.locator("#login-error")).to_contain_text("unknown API key")
            page.fill("#api-key", REVIEWER_KEY)
            page.press("#api-key", "Enter")
            expect(page.locator("#queue-list li")).to_have_count(2)
            expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
            expect(page.locator(".queue h2")).to_contain_text("待审核案件")
            expect(page.locator("#queue-list li").first).to_contain_text("非机动车乱停放 (0506)")
            expect(page.locator("#case-body")).to_have_attribute("data-case-id", str(first_id))
            expect(page.locator("#case-fields")).to_contain_text("2026/6/1 16:03:20")  # last seen, Shanghai time
            expect(page.locator("#case-fields")).to_contain_text("5 分 30 秒")
            expect(page.locator("#evidence-img")).to_have_attribute("data-loaded", str(first_id))
            expect(page.locator("#overlay")).to_have_attribute("data-boxes", "1")
            expect(page.locator("#crop-figure")).to_be_visible()
            assert page.evaluate("document.getElementById('evidence-img').naturalWidth") == 640
            page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)

            # help, then confirm the first case with `c`
            page.keyboard.press("?")
            expect(page.locator("#help")).to_be_visible()
            page.keyboard.press("Escape")
            expect(page.locator("#help")).to_be_hidden()
            page.keyboard.press("c")
            expect(page.locator("#notice")).to_contain_text(f"案件 #{first_id} 已确认")
            expect(page.locator("#queue-list li")).to_have_count(1)
            expect(page.locator("#case-body")).to_have_attribute("data-case-id", str(second_id))
            expect(page.locator("#evidence-img")).to_have_attribute("data-loaded", str(second_id))
            page.screenshot(path=str(ARTIFACTS / "review-after-confirm.png"), full_page=True)

            # reject the second: `r`, an empty reason is refused inline, then a reason and Enter
            page.keyboard.press("r")
            expect(page.locator("#reject-reason")).to_be_focused()
            page.keyboard.press("Enter")
            expect(page.locator("#reject-error")).to_have_text("请填写驳回理由。")
            page.keyboard.type("商户自有物品，未占道")
            page.keyboard.press("Enter")
            expect(page.locator("#notice")).to_contain_text(f"案件 #{second_id} 已驳回")
            expect(page.locator("#queue-empty")).to_be_visible()

            # English, remembered across a reload (the key stays for this tab)
            page.click("#lang-toggle")
            expect(page.locator(".queue h2")).to_contain_text("Pending cases")
            page.reload()
            expect(page.locator("#queue-empty")).to_have_text("No pending cases.")
            expect(page.locator("html")).to_have_attribute("lang", "en")
            page.screenshot(path=str(ARTIFACTS / "review-english.png"), full_page=True)

            assert console_errors == []
        finally:
            browser.close()

    with httpx.Client(base_url=url, headers=REVIEWER, timeout=10) as api:
        first = api.get(f"/api/v1/cases/{first_id}").json()
        second = api.get(f"/api/v1/cases/{second_id}").json()
        assert first["status"] == "confirmed"
        assert (second["status"], second["reject_reason"]) == ("rejected", "商户自有物品，未占道")
        for case_id, action in ((first_id, "confirm"), (second_id, "reject")):
            trail = api.get(f"/api/v1/cases/{case_id}/audit").json()["data"]
            assert [(a["actor"], a["action"]) for a in trail] == [("system", "created"), ("reviewer-wang", action)]
        assert "streetwatch" in api.get("/review").text and api.get("/static/nope.js").status_code == 404


def test_api_errors_show_inline_and_class_change(served):
    url, (older_id, newer_id) = served
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai").new_page()
            page.set_default_timeout(10_000)
            page.goto(url + "/")
            page.fill("#api-key", REVIEWER_KEY)
            page.press("#api-key", "Enter")
            expect = sync_api.expect
            expect(page.locator("#case-body")).to_have_attribute("data-case-id", str(newer_id))
            # change class from the select: the category code follows the new kind
            page.select_option("#class-select", "mobile_vendor")
            page.click("#btn-class")
            expect(page.locator("#case-fields")).to_contain_text("无照经营游商 (0501)")
            # someone else decides the case meanwhile: the page's confirm gets a 409, shown inline, no alert
            with httpx.Client(base_url=url, headers=REVIEWER, timeout=10) as api:
                assert api.post(f"/api/v1/cases/{newer_id}/reject", json={"reason": "dup"}).status_code == 200
            page.on("dialog", lambda d: pytest.fail(f"unexpected dialog: {d.message}"))
            page.keyboard.press("c")
            expect(page.locator("#case-error")).to_contain_text("409")
            expect(page.locator("#case-fields")).to_contain_text("已驳回")
            page.keyboard.press("j")
            expect(page.locator("#case-body")).to_have_attribute("data-case-id", str(older_id))
            expect(page.locator("#case-error")).to_have_text("")
        finally:
            browser.close()
