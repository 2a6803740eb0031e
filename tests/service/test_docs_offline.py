"""``/docs`` and ``/favicon.ico`` work on a closed network: the real app under uvicorn on loopback, and Debian's
Chromium with every request to a host other than the service aborted and recorded.

Needs /usr/bin/chromium (``scripts/install_system_deps.sh``) and the ``playwright`` Python package (the dev
extra) for the browser test; the HTTP tests need neither.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from service.api.routers.docs import DOCS_ASSETS, swagger_ui_dir
from service.app import create_app
from service.config import AppConfig
from service.settings import Settings
from tests.service.test_review_page import CHROMIUM, CHROMIUM_ARGS, ServerThread

ABSOLUTE_URL = re.compile(r"""(?:https?:)?//[^\s"'<>)]+""")


def make_app(tmp_path):
    settings = Settings(database_path=tmp_path / "cases.db", evidence_dir=tmp_path / "evidence",
                        api_keys=[{"name": "root", "role": "admin", "key": "admin-key-0123456789abcdef"}])
    return create_app(settings, AppConfig.model_validate({"config_version": 1, "cameras": []}))


@pytest.fixture
def client(tmp_path):
    with TestClient(make_app(tmp_path)) as c:
        yield c


def test_docs_html_names_no_asset_outside_the_service(client):
    html = client.get("/docs").text
    assert "SwaggerUIBundle" in html
    assert ABSOLUTE_URL.findall(html) == []
    # Every asset it does name is one this service answers.
    assets = re.findall(r"""(?:src|href)="([^"]+)\"""", html)
    assert sorted(assets) == ["/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/favicon.ico"]
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


@pytest.mark.parametrize(("path", "content_type", "starts"), [
    ("/docs-assets/swagger-ui-bundle.js", "text/javascript", None),
    ("/docs-assets/swagger-ui.css", "text/css", None),
    ("/favicon.ico", "image/vnd.microsoft.icon", b"\x00\x00\x01\x00"),  # the ICO header: reserved 0, type 1
])
def test_assets_are_served_locally(client, path, content_type, starts):
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(content_type)
    assert len(r.content) > 0
    if starts is not None:
        assert r.content.startswith(starts)


@pytest.mark.parametrize("path", [
    "/docs-assets/swagger-editor-bundle.js",  # in the package, but not an asset /docs uses
    "/docs-assets/..%2F..%2Fswagger_ui%2Futils.py",
    "/redoc",  # turned off: no local copy of ReDoc
])
def test_other_paths_are_not_served(client, path):
    assert client.get(path).status_code == 404


def test_every_listed_asset_exists_in_the_package():
    for name in DOCS_ASSETS:
        assert (swagger_ui_dir() / name).is_file(), name


def test_oauth2_redirect_page_is_local(client):
    r = client.get("/docs/oauth2-redirect")
    assert r.status_code == 200
    assert ABSOLUTE_URL.findall(r.text) == []


@pytest.mark.timeout(90)
def test_docs_render_in_chromium_with_the_network_blocked(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright Python package is missing (pip install playwright)")
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium, or scripts/install_system_deps.sh)")
    left: list[str] = []
    errors: list[str] = []

    def only_loopback(route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort()

    with ServerThread(make_app(tmp_path)) as server, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", only_loopback)
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{server.url}/docs")
            # The operations list: one block per route of the schema, e.g. the health check.
            sync_api.expect(page.locator(".opblock-summary-path[data-path='/health']")).to_be_visible()
            assert page.locator(".opblock").count() > 10
            assert page.locator(".swagger-ui .info .title").inner_text().startswith("streetwatch")
            # The icon decodes as an image in Chromium. A query string, because under page routing Chromium fails
            # a page's own request for exactly /favicon.ico (its favicon loader's URL) without reaching the server.
            size = page.evaluate("""new Promise(done => { const img = new Image();
                img.onload = () => done([img.naturalWidth, img.naturalHeight]); img.onerror = () => done(null);
                img.src = '/favicon.ico?probe=1'; })""")
            assert size in ([16, 16], [32, 32])
        finally:
            browser.close()
    assert left == []
    assert errors == []
