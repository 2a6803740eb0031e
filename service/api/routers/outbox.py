"""``/outbox``: manual retry of a dead delivery (admin)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from service.api.deps import AdminDep, ServicesDep
from service.api.schemas import ErrorPublic, OutboxRetried
from service.db.models import OutboxMessage
from service.outbox import OutboxError

router = APIRouter(prefix="/outbox", tags=["outbox"])


@router.post("/{outbox_id}/retry", response_model=OutboxRetried, summary="Queue a dead delivery again",
             responses={401: {"model": ErrorPublic}, 403: {"model": ErrorPublic}, 404: {"model": ErrorPublic},
                        409: {"model": ErrorPublic}})
def retry_outbox(outbox_id: int, services: ServicesDep, admin: AdminDep) -> OutboxRetried:
    with services.session_factory() as session:
        if session.get(OutboxMessage, outbox_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no outbox row {outbox_id}")
    try:
        services.outbox.retry(outbox_id, actor=admin.name)
    except OutboxError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    return OutboxRetried(id=outbox_id, status="pending")
