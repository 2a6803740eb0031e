"""``/cases``: list, detail, reviewer actions (confirm, reject, class, merge, undo), history, audit trail,
evidence files."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import FileResponse
from pydantic import AwareDatetime
from starlette.concurrency import run_in_threadpool

from service.api.deps import ReviewerDep, ServicesDep
from service.api.errors import case_error_to_http, problem
from service.api.schemas import (AuditsPublic, CaseClassChange, CaseMerge, CasePublic, CaseReject, CasesPublic,
                                 DbId, DecisionPublic, HistoryEntryPublic, HistoryPublic, UndoPublic,
                                 error_responses)
from service.cases import CaseError, CaseFilter, CaseNotFoundError
from service.db.models import CASE_STATUSES
from service.evidence import evidence_media_type
from service.evidence_links import served_evidence_path
from service.api.routers.evidence import public_evidence_file
from service.settings import flights_dir
from service.undo import DECIDED_STATUSES

router = APIRouter(prefix="/cases", tags=["cases"])

CaseStatus = Literal[CASE_STATUSES]  # type: ignore[valid-type]
DecidedStatus = Literal[DECIDED_STATUSES]  # type: ignore[valid-type]
_ERRORS = error_responses(401, 403, 404, 422, 429)
_ACTION_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 429)


@router.get("", response_model=CasesPublic, summary="List cases, newest first", responses=_ERRORS)
def list_cases(
    services: ServicesDep, _: ReviewerDep,
    status_: Annotated[CaseStatus | None, Query(alias="status", description="Only cases in this status.")] = None,
    camera_id: Annotated[str | None, Query(max_length=64, description="Only cases of this camera.")] = None,
    flight_id: Annotated[str | None, Query(max_length=64, description="Only cases of this drone flight.")] = None,
    kind: Annotated[str | None, Query(max_length=64, description="Only cases of this violation kind.")] = None,
    seen_from: Annotated[AwareDatetime | None, Query(alias="from", description="Observed at or after (ISO 8601 "
                                                                                "with zone).")] = None,
    seen_to: Annotated[AwareDatetime | None, Query(alias="to", description="Observed before (ISO 8601 with "
                                                                            "zone).")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    cursor: Annotated[DbId | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> CasesPublic:
    if seen_from is not None and seen_to is not None and seen_to <= seen_from:
        raise HTTPException(422,
                            detail=[{"field": "to", "msg": "must be after 'from'", "type": "value_error",
                                     "loc": ["query", "to"]}])
    page = services.cases.list_cases(CaseFilter(status=status_, camera_id=camera_id, flight_id=flight_id, kind=kind,
                                                seen_from=seen_from, seen_to=seen_to), limit=limit, cursor=cursor)
    return CasesPublic(data=page.items, count=len(page.items), next_cursor=page.next_cursor)


# Before /{case_id}: "history" is not an id.
@router.get("/history", response_model=HistoryPublic, summary="Decided cases, the latest decision first, with undo",
            responses=_ERRORS)
def case_history(
    services: ServicesDep, reviewer: ReviewerDep,
    status_: Annotated[list[DecidedStatus] | None, Query(alias="status", description="Only cases in these statuses "
                                                         "(repeat the parameter); default: every decided status.")
                       ] = None,
    mine: Annotated[bool, Query(description="Only cases whose latest decision is the caller's.")] = False,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    cursor: Annotated[DbId | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> HistoryPublic:
    try:
        page = services.cases.history(reviewer.name, tuple(dict.fromkeys(status_ or DECIDED_STATUSES)), mine=mine,
                                      limit=limit, cursor=cursor)
    except CaseError as exc:
        raise case_error_to_http(exc, "status") from None
    data = [HistoryEntryPublic(case=e.case, decision=DecisionPublic(audit_id=e.decision.audit_id,
                                                                    action=e.decision.action,
                                                                    actor=e.decision.actor, at=e.decision.at),
                               undo=UndoPublic(allowed=e.undo.allowed, code=e.undo.code, reason=e.undo.reason,
                                               until=e.undo.until))
            for e in page.items]
    return HistoryPublic(data=data, count=len(data), next_cursor=page.next_cursor,
                         undo_window_s=services.cases.settings.undo_window_s)


@router.get("/{case_id}", response_model=CasePublic, summary="One case with its evidence", responses=_ERRORS)
def get_case(case_id: DbId, services: ServicesDep, _: ReviewerDep) -> CasePublic:
    try:
        return services.cases.get(case_id)
    except CaseError as exc:
        raise case_error_to_http(exc) from None


@router.post("/{case_id}/confirm", response_model=CasePublic, summary="Confirm a pending case (queues delivery)",
             responses=_ACTION_ERRORS)
def confirm_case(case_id: DbId, services: ServicesDep, reviewer: ReviewerDep) -> CasePublic:
    try:
        return services.cases.confirm(case_id, reviewer.name)
    except CaseError as exc:
        raise case_error_to_http(exc) from None


@router.post("/{case_id}/reject", response_model=CasePublic, summary="Reject a pending case with a reason",
             responses=_ACTION_ERRORS)
def reject_case(case_id: DbId, body: CaseReject, services: ServicesDep, reviewer: ReviewerDep) -> CasePublic:
    try:
        return services.cases.reject(case_id, reviewer.name, body.reason)
    except CaseError as exc:
        raise case_error_to_http(exc, "reason") from None


@router.post("/{case_id}/class", response_model=CasePublic, summary="Correct the violation kind of a pending case",
             responses=_ACTION_ERRORS)
def change_case_class(case_id: DbId, body: CaseClassChange, services: ServicesDep, reviewer: ReviewerDep) -> CasePublic:
    try:
        return services.cases.change_class(case_id, reviewer.name, body.kind)
    except CaseError as exc:
        raise case_error_to_http(exc, "kind") from None


@router.post("/{case_id}/merge", response_model=CasePublic, summary="Merge pending cases into this one",
             responses=_ACTION_ERRORS)
def merge_cases(case_id: DbId, body: CaseMerge, services: ServicesDep, reviewer: ReviewerDep) -> CasePublic:
    try:
        return services.cases.merge(body.case_ids, into=case_id, actor=reviewer.name)
    except CaseNotFoundError as exc:
        if exc.case_id is not None and exc.case_id != case_id and exc.case_id in body.case_ids:
            i = body.case_ids.index(exc.case_id)  # the path's case exists; one in the body does not
            raise problem(422, f"case_ids[{i}]", str(exc), "not_found", ["body", "case_ids", i]) from None
        raise case_error_to_http(exc) from None
    except CaseError as exc:
        raise case_error_to_http(exc, "case_ids") from None


@router.post("/{case_id}/undo", response_model=CasePublic,
             summary="Undo one's own confirmation or rejection (back to pending) within the undo window",
             responses=_ACTION_ERRORS)
def undo_decision(case_id: DbId, services: ServicesDep, reviewer: ReviewerDep) -> CasePublic:
    """409 naming the reason when the case is pending, merged or posted, the decision is another reviewer's, the
    window (`review.undo_window_s`) has passed, or a delivery of the confirmation has started."""
    try:
        return services.cases.undo(case_id, reviewer.name)
    except CaseError as exc:
        raise case_error_to_http(exc) from None


@router.get("/{case_id}/audit", response_model=AuditsPublic, summary="The audit trail of a case, oldest first",
            responses=_ERRORS)
def case_audit(case_id: DbId, services: ServicesDep, _: ReviewerDep) -> AuditsPublic:
    try:
        rows = services.cases.audit_trail(case_id)
    except CaseError as exc:
        raise case_error_to_http(exc) from None
    return AuditsPublic(data=rows, count=len(rows))


@router.get("/{case_id}/evidence/{evidence_id}", response_class=FileResponse, response_model=None,
            summary="Download one evidence image (or time-lapse clip) of a case",
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "video/mp4": {}},
                             "description": "The image file, or the MP4 clip of a `clip` row."}, **_ERRORS})
async def case_evidence(
    case_id: DbId, evidence_id: DbId, services: ServicesDep, caller: ReviewerDep,
    original: Annotated[bool, Query(description="Admins only: the unblurred original instead of the copy with "
                                                "people, faces and plates blurred (`privacy` settings).")] = False,
) -> FileResponse:
    try:
        case = await run_in_threadpool(services.cases.get, case_id)
    except CaseError as exc:
        raise case_error_to_http(exc) from None
    evidence = next((e for e in case.evidence if e.id == evidence_id), None)
    if evidence is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"evidence_id: case {case_id} has no evidence {evidence_id}")
    path = served_evidence_path(evidence.path, services.settings.evidence_dir, (flights_dir(services.settings),))
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"evidence {evidence_id} of case {case_id}: file missing or not under the "
                                   "evidence folder")
    if original and caller.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail="original: only admins see unblurred evidence; reviewers see the blurred copy")
    if not original:  # reviewers, and admins by default, see what leaves the service: the blurred copy
        path = await run_in_threadpool(public_evidence_file, services, path, evidence.kind, evidence.boxes)
    media_type = evidence_media_type(path)  # image/jpeg, image/png, or video/mp4 for a clip
    return FileResponse(path, media_type=media_type, filename=evidence.file)
