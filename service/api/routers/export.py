"""``/export``: cases of a time range and filters as one zip (CSV, GeoJSON, blurred evidence), streamed.

The zip's layout is `service.export`'s. The filters mean what they mean on ``GET /cases``; more cases than
``export_max_cases`` is a 422 naming the limit, answered before anything is streamed.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime
from starlette.concurrency import run_in_threadpool

from service.api.deps import ReviewerDep, ServicesDep
from service.api.errors import problem
from service.api.schemas import error_responses
from service.cases import CaseFilter
from service.db.models import CASE_STATUSES
from service.export import TooManyCasesError, iter_export_zip, public_evidence_resolver, select_case_ids
from service.privacy import PrivacyPolicy, PrivacyUnavailableError, PublicCopies

router = APIRouter(tags=["export"])

CaseStatus = Literal[CASE_STATUSES]  # type: ignore[valid-type]


@router.get("/export", response_class=StreamingResponse, response_model=None,
            summary="Cases with their blurred evidence as a zip (cases.csv, cases.geojson, evidence/)",
            responses={200: {"content": {"application/zip": {}}, "description": "The zip, streamed."},
                       **error_responses(401, 403, 422, 429)})
async def export_cases(
    services: ServicesDep, _: ReviewerDep,
    seen_from: Annotated[AwareDatetime | None, Query(alias="from", description="Observed at or after (ISO 8601 "
                                                                                "with zone).")] = None,
    seen_to: Annotated[AwareDatetime | None, Query(alias="to", description="Observed before (ISO 8601 with "
                                                                            "zone).")] = None,
    status_: Annotated[CaseStatus | None, Query(alias="status", description="Only cases in this status.")] = None,
    kind: Annotated[str | None, Query(max_length=64, description="Only cases of this violation kind.")] = None,
    camera: Annotated[str | None, Query(max_length=64, description="Only cases of this camera.")] = None,
    flight: Annotated[str | None, Query(max_length=64, description="Only cases of this drone flight.")] = None,
) -> StreamingResponse:
    if seen_from is not None and seen_to is not None and seen_to <= seen_from:
        raise problem(422, "to", "must be after 'from'", "value_error", ["query", "to"])
    filters = CaseFilter(status=status_, camera_id=camera, flight_id=flight, kind=kind, seen_from=seen_from,
                         seen_to=seen_to)
    limit = services.settings.export_max_cases
    try:
        ids = await run_in_threadpool(select_case_ids, services.session_factory, filters, limit)
    except TooManyCasesError as exc:
        raise problem(422, "to", str(exc), "too_many_cases", ["query", "to"]) from None
    copies = services.public_copies or PublicCopies(PrivacyPolicy())
    try:
        await run_in_threadpool(lambda: copies.detectors)  # a missing cascade fails here, not in every row
    except PrivacyUnavailableError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from None
    resolve = public_evidence_resolver(services.settings, copies)
    name = f"streetwatch-cases-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.zip"
    # A sync generator: Starlette runs each step in a worker thread (database reads, blurring, file reads).
    return StreamingResponse(iter_export_zip(services.cases, ids, resolve), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})
