"""The reviewers' web page: ``/`` and ``/review`` serve ``service/web/index.html``, ``/static/<name>`` its files.

The page has four views: the review queue (app.js; ``/review?case=<id>`` opens one case), the history of
decisions with undo (history.js, ``/#history``), the zone editor (zones.js, ``/#zones``) and the drone flights
(flights.js, ``/#flights``: progress, upload, reports).

Plain HTML, CSS and JavaScript with no build step; the page itself is public (it holds no data) and calls the
API with the key the reviewer pastes. Only the files of `STATIC_FILES` are served (no directory walking), with a
Content-Security-Policy that admits this origin's scripts and styles and blob: images and clips (evidence fetched
with the key). The routes stay out of the OpenAPI schema.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

__all__ = ["STATIC_FILES", "WEB_DIR", "router"]

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
STATIC_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "flights.js": "text/javascript; charset=utf-8",
    "history.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "zones.js": "text/javascript; charset=utf-8",
}
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
                               "script-src 'self'; "
                               "style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(tags=["web"], include_in_schema=False)


@router.get("/", response_class=FileResponse)
@router.get("/review", response_class=FileResponse)
def review_page() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/static/{name}", response_class=FileResponse)
def static_file(name: str) -> FileResponse:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no static file {name!r}")
    return FileResponse(WEB_DIR / name, media_type=media_type, headers=_HEADERS)
