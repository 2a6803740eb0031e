"""``/evidence/{case_id}/{file}?exp=&sig=``: evidence images through signed, expiring links, without a key.

The links go to case systems (Open311 ``media_url``, webhook payloads; see `service.evidence_links`), which
hold no streetwatch key: the signature is the permission. A bad, missing or expired signature is 403 (before
anything is looked up, so the answer says nothing about which cases exist); a valid link to a file the case
does not have (any more) is 404.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path as PathParam, Query, status
from fastapi.responses import FileResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from service.api.deps import ServicesDep
from service.api.schemas import MAX_DB_ID, ErrorPublic
from service.db.models import Evidence
from service.evidence import evidence_media_type
from service.evidence_links import evidence_file_name, served_evidence_path
from service.privacy import PrivacyError, PrivacyPolicy, PrivacyUnavailableError, PublicCopies
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
    found = await run_in_threadpool(_find, services, case_id, file)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"file: case {case_id} has no evidence {file!r}")
    # Case systems get the blurred copy only (people, faces, plates; `service.privacy`), never the original.
    path = await run_in_threadpool(public_evidence_file, services, *found)
    media_type = evidence_media_type(path)  # image/jpeg, image/png, or video/mp4 for a clip
    return FileResponse(path, media_type=media_type, filename=file)


def public_evidence_file(services: ServicesDep, path: Path, kind: str, boxes: list[Any] | None) -> Path:
    """The blurred copy of an evidence file to serve instead of it (made once; `service.privacy`).

    Raises:
        HTTPException: 403 naming the file when it cannot be blurred (not a JPEG, PNG or MP4, or it does not
            decode): such a file is not served outside the service rather than served unblurred; 503 when the host lacks a
            detector the privacy settings ask for (a Haar cascade file).
    """
    copies = services.public_copies or PublicCopies(PrivacyPolicy())
    try:
        return copies.public_path(path, kind, boxes)
    except PrivacyUnavailableError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from None
    except PrivacyError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"file: {exc}") from None


def _find(services: ServicesDep, case_id: int, file: str):
    """(path, evidence kind, stored boxes) of the case's evidence file named `file`, or None."""
    with services.session_factory() as session:
        stored = [row for row in session.execute(select(Evidence.path, Evidence.kind, Evidence.boxes)
                                                 .where(Evidence.case_id == case_id))
                  if evidence_file_name(row.path) == file]
    for row in stored:
        found = served_evidence_path(row.path, services.settings.evidence_dir, (flights_dir(services.settings),))
        if found is not None:
            return found, row.kind, row.boxes
    return None
