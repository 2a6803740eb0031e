"""Class lists of the synthetic datasets, fixed so that labels from every source line up.

Index 0 is ``bicycle`` in both lists, matching the real bicycles-2000 labels, so real and synthetic bicycle
datasets merge without remapping.
"""

from __future__ import annotations

__all__ = ["STREET_CLASSES", "AERIAL_CLASSES", "BICYCLE", "STALL", "EBIKE", "ILLEGAL_STRUCTURE", "classes_for"]

STREET_CLASSES: list[str] = ["bicycle", "stall", "ebike"]
"""Street-camera classes: 0 bicycle, 1 stall (the whole vending setup), 2 ebike (e-bikes and scooters)."""

AERIAL_CLASSES: list[str] = ["bicycle", "stall", "illegal_structure"]
"""Drone classes: 0 bicycle, 1 stall (seen from above), 2 illegal_structure (add-on sheds and new builds)."""

BICYCLE = 0
STALL = 1
EBIKE = 2  # street only
ILLEGAL_STRUCTURE = 2  # aerial only


def classes_for(kind: str) -> list[str]:
    """The class names of a dataset kind (``"street"`` or ``"aerial"``).

    Example:
        >>> classes_for("aerial")[2]
        'illegal_structure'
    """
    if kind == "street":
        return list(STREET_CLASSES)
    if kind == "aerial":
        return list(AERIAL_CLASSES)
    raise ValueError(f"unknown dataset kind {kind!r}: expected 'street' or 'aerial'")
