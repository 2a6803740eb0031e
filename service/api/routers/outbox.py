"""``/outbox`` (admin): the deliveries to case systems, dead and needs_check ones with their error, manual retry
and resolve."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select

from service.api.deps import AdminDep, ServicesDep
from service.api.schemas import DbId, OutboxesPublic, OutboxPublic, OutboxResolve, OutboxRetried, error_responses
from service.db.models import OUTBOX_STATUSES, OutboxMessage
from service.outbox import OutboxError

router = APIRouter(prefix="/outbox", tags=["outbox"])

OutboxStatus = Literal[OUTBOX_STATUSES]  # type: ignore[valid-type]
_ERRORS = error_responses(401, 403, 429)


@router.get("", response_model=OutboxesPublic, summary="List deliveries to case systems, newest first",
            responses={**_ERRORS, **error_responses(422)})
def list_outbox(
    services: ServicesDep, _: AdminDep,
    status_: Annotated[OutboxStatus | None, Query(alias="status", description="Only rows in this status "
                                                                             "(dead: gave up).")] = None,
    case_id: Annotated[DbId | None, Query(description="Only the deliveries of this case.")] = None,
    adapter: Annotated[str | None, Query(max_length=64, description="Only this case system.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    cursor: Annotated[DbId | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> OutboxesPublic:
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit + 1)
    if status_ is not None:
        query = query.where(OutboxMessage.status == status_)
    if case_id is not None:
        query = query.where(OutboxMessage.case_id == case_id)
    if adapter is not None:
        query = query.where(OutboxMessage.adapter == adapter)
    if cursor is not None:
        query = query.where(OutboxMessage.id < cursor)
    with services.session_factory() as session:
        rows = [OutboxPublic.model_validate(row) for row in session.scalars(query)]
    page = rows[:limit]
    return OutboxesPublic(data=page, count=len(page), next_cursor=page[-1].id if len(rows) > limit else None)


@router.post("/{outbox_id}/retry", response_model=OutboxRetried, summary="Queue a dead delivery again",
             responses={**_ERRORS, **error_responses(404, 409, 422)})
def retry_outbox(outbox_id: DbId, services: ServicesDep, admin: AdminDep) -> OutboxRetried:
    with services.session_factory() as session:
        if session.get(OutboxMessage, outbox_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"outbox_id: no outbox row {outbox_id}")
    try:
        services.outbox.retry(outbox_id, actor=admin.name)
    except OutboxError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"outbox_id: {exc}") from None
    return OutboxRetried(id=outbox_id, status="pending")


@router.post("/{outbox_id}/resolve", response_model=OutboxRetried,
             summary="Settle a needs_check delivery by hand (sent with the receiver's id, or repost)",
             responses={**_ERRORS, **error_responses(400, 404, 409, 413, 422)})
def resolve_outbox(outbox_id: DbId, body: OutboxResolve, services: ServicesDep, admin: AdminDep) -> OutboxRetried:
    """A person looked at the receiver: the case is there (``sent`` + its id) or is not (``repost``)."""
    with services.session_factory() as session:
        if session.get(OutboxMessage, outbox_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"outbox_id: no outbox row {outbox_id}")
    try:
        services.outbox.resolve(outbox_id, body.action, remote_id=body.remote_id, actor=admin.name)
    except OutboxError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"outbox_id: {exc}") from None
    return OutboxRetried(id=outbox_id, status="sent" if body.action == "sent" else "pending")
