"""``/kinds`` (reviewer or admin): the violation kinds and zone kinds with their titles and colours.

The review page builds its kind filter, its change-kind list, its titles and the zone editor's colours from this,
so a kind added to the catalogue (`service.kinds`) appears there without touching the page.
"""

from __future__ import annotations

from fastapi import APIRouter

from detector.zones import ZoneKind
from service.api.deps import ReviewerDep, ServicesDep
from service.api.schemas import KindPublic, KindsPublic, ZoneKindPublic, error_responses
from service.evidence import zone_color
from service.kinds import kinds_public

router = APIRouter(prefix="/kinds", tags=["kinds"])


def _hex(bgr: tuple[int, int, int]) -> str:
    b, g, r = bgr
    return f"#{r:02x}{g:02x}{b:02x}"


@router.get("", response_model=KindsPublic, summary="Violation kinds (titles, category codes, colours) and zone kinds",
            responses=error_responses(401, 403, 429))
def list_kinds(services: ServicesDep, _: ReviewerDep) -> KindsPublic:
    return KindsPublic(
        data=[KindPublic(**row) for row in kinds_public(services.config.category_codes)],
        zone_kinds=[ZoneKindPublic(kind=k.value, color=_hex(zone_color(k))) for k in ZoneKind],
    )
