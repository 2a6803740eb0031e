"""``/me``: who the presented key belongs to (name and role), so the review page shows the views of its role."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import PageUserDep
from service.api.schemas import MePublic, error_responses

router = APIRouter(prefix="/me", tags=["auth"])


@router.get("", response_model=MePublic, summary="The key's holder and role (admin, reviewer or pilot keys)",
            responses=error_responses(401, 403, 429))
def whoami(principal: PageUserDep) -> MePublic:
    return MePublic(name=principal.name, role=principal.role)
