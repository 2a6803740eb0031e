"""``/evidence/{case_id}/{file}?exp=&sig=``: evidence images through signed, expiring links, without a key.

The links go to case systems (Open311 ``media_url``, webhook payloads; see `service.evidence_links`), which
hold no streetwatch key: the signature is the permission. A bad, missing or expired signature is 403 (before
anything is looked up, so the answer says nothing about which cases exist); a valid link to a file the case
does not have (any more) is 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path as PathParam, Query, status
from fastapi.responses import FileResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from service.api.deps import ServicesDep
from service.api.schemas import MAX_DB_ID, ErrorPublic
from service.db.models import Evidence
from service.evidence_links import evidence_file_name, served_evidence_path
from service.settings import flights_dir

router = APIRouter(tags=["evidence"])



@router.get("/evidence/{case_id}/{file}", response_class=FileResponse, response_model=None,
            summary="One evidence image through a signed link (no key)",
            responses={200: {"content": {"image/jpeg": {}}, "description": "The image file."},
                       403: {"model": ErrorPublic}, 404: {"model": ErrorPublic}, 422: {"model": ErrorPublic}})
async def signed_evidence(
    services: ServicesDep,
    case_id: Annotated[int, PathParam(ge=1, le=MAX_DB_ID)],
    file: Annotated[str, PathParam(min_length=1, max_length=255, pattern=r"^[^/\\]+$")],
    exp: Annotated[int, Query(ge=0, le=MAX_DB_ID, description="Expiry, Unix seconds.")],
    sig: Annotated[str, Query(pattern=r"^[0-9a-fA-F]{64}$", description="Hex HMAC-SHA256 of case, file, expiry.")],
) -> FileResponse:
    links = services.evidence_links
    if links is None or not links.verify(case_id, file, exp, sig):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="sig: invalid or expired evidence link")
    path = await run_in_threadpool(_find, services, case_id, file)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"file: case {case_id} has no evidence {file!r}")
    media_type = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
    return FileResponse(path, media_type=media_type, filename=path.name)


def _find(services: ServicesDep, case_id: int, file: str):
    with services.session_factory() as session:
        stored = [p for p in session.scalars(select(Evidence.path).where(Evidence.case_id == case_id))
                  if evidence_file_name(p) == file]
    for path in stored:
        found = served_evidence_path(path, services.settings.evidence_dir, (flights_dir(services.settings),))
        if found is not None:
            return found
    return None
