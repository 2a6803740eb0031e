"""The API docs (``/docs``, Swagger UI) and ``/favicon.ico``, served from this service alone.

FastAPI's default ``/docs`` loads Swagger UI's script and stylesheet from a CDN, so the page is blank on the closed
networks city bureaus often run. Here the app is made with ``docs_url=None`` and this router serves the same page
(FastAPI's ``get_swagger_ui_html``) with its assets taken from a packaged copy of Swagger UI's dist files: the
``swagger-ui-py`` package (it ships Swagger UI 5, which renders the OpenAPI 3.1 schema FastAPI writes; the
``swagger-ui-bundle`` package ships Swagger UI 4, which cannot). Only the files in `DOCS_ASSETS` are served (no
directory walking). ReDoc is turned off: no package ships it.

``/favicon.ico`` is the project's own icon (``service/web/favicon.ico``: a lens on a city-blue square, drawn with
Pillow for this project), used by the review page, the docs and any browser that asks for it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

from service.api.routers.web import WEB_DIR

__all__ = ["DOCS_ASSETS", "DOCS_ASSETS_PREFIX", "DOCS_URL", "FAVICON_URL", "router", "swagger_ui_dir"]

DOCS_URL = "/docs"
DOCS_ASSETS_PREFIX = "/docs-assets"
FAVICON_URL = "/favicon.ico"
OAUTH2_REDIRECT_URL = f"{DOCS_URL}/oauth2-redirect"
DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}
# The assets never change within one installed package version; a day of caching saves reloading 1.5 MB.
_ASSET_HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}

router = APIRouter(include_in_schema=False)


def swagger_ui_dir() -> Path:
    """The folder of Swagger UI's dist files inside the installed ``swagger-ui-py`` package.

    Raises:
        RuntimeError: the package is not installed (it is a dependency in pyproject.toml).
    """
    try:
        from swagger_ui.utils import SWAGGER_UI_PY_ROOT
    except ImportError as exc:  # a broken install, named instead of a blank page
        raise RuntimeError("the swagger-ui-py package is missing (pip install swagger-ui-py): /docs needs it") from exc
    return Path(SWAGGER_UI_PY_ROOT) / "static"


@router.get(DOCS_URL, response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    root_path = request.scope.get("root_path", "").rstrip("/")  # behind a proxy that mounts the app below /
    return get_swagger_ui_html(
        openapi_url=root_path + (request.app.openapi_url or "/openapi.json"),
        title=f"{request.app.title} API",
        swagger_js_url=f"{root_path}{DOCS_ASSETS_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{root_path}{DOCS_ASSETS_PREFIX}/swagger-ui.css",
        swagger_favicon_url=root_path + FAVICON_URL,
        oauth2_redirect_url=root_path + OAUTH2_REDIRECT_URL,
    )


@router.get(OAUTH2_REDIRECT_URL, response_class=HTMLResponse)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(DOCS_ASSETS_PREFIX + "/{name}", response_class=FileResponse)
def docs_asset(name: str) -> FileResponse:
    media_type = DOCS_ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no docs asset {name!r}")
    return FileResponse(swagger_ui_dir() / name, media_type=media_type, headers=_ASSET_HEADERS)


@router.get(FAVICON_URL, response_class=FileResponse)
def favicon() -> FileResponse:
    return FileResponse(WEB_DIR / "favicon.ico", media_type="image/vnd.microsoft.icon", headers=_ASSET_HEADERS)
