"""Class lists of the synthetic datasets, fixed so that labels from every source line up.

Index 0 is ``bicycle`` in both lists, matching the real bicycles-2000 labels, so real and synthetic bicycle
datasets merge without remapping.
"""

from __future__ import annotations

__all__ = ["STREET_CLASSES", "STREET_CLASSES_WITH_DISTRACTORS", "AERIAL_CLASSES", "AERIAL_VIOLATION_CLASSES", "DISTRACTOR_CLASSES", "BICYCLE", "STALL",
           "EBIKE", "ILLEGAL_STRUCTURE", "PERSON", "MOTORCYCLE", "CAR", "classes_for"]

STREET_CLASSES: list[str] = ["bicycle", "stall", "ebike"]
"""Street-camera classes: 0 bicycle, 1 stall (the whole vending setup), 2 ebike (e-bikes and scooters)."""

AERIAL_VIOLATION_CLASSES: list[str] = ["bicycle", "stall", "illegal_structure"]
"""The drone classes that a violation rule can use: bicycle, stall (seen from above), illegal_structure (add-on
sheds and new builds)."""

DISTRACTOR_CLASSES: list[str] = ["person", "motorcycle", "car"]
"""Classes a model learns so that it can say "not a bike, not a stall": the things real imagery showed it confusing
with them (people, motorbikes and e-scooters, cars from above). No rule takes them, so they never open a case;
`person` boxes are also what privacy blurring needs."""

AERIAL_CLASSES: list[str] = AERIAL_VIOLATION_CLASSES + DISTRACTOR_CLASSES
"""Drone classes: 0 bicycle, 1 stall, 2 illegal_structure, then the distractors 3 person, 4 motorcycle (motorbikes,
e-bikes and e-scooters: from above they cannot be told apart), 5 car. Appended after the violation classes so that
a model trained before them keeps its class ids."""

STREET_CLASSES_WITH_DISTRACTORS: list[str] = STREET_CLASSES + DISTRACTOR_CLASSES
"""Street classes of a model that also learns the look-alikes (street v4 on): 3 person, 4 motorcycle (motorbikes:
the street camera tells them from the `ebike` class, which keeps e-bikes and kick-scooters), 5 car. The same ids
as the aerial list's distractors, so `PERSON`, `MOTORCYCLE` and `CAR` hold for both."""

BICYCLE = 0
STALL = 1
EBIKE = 2  # street only
ILLEGAL_STRUCTURE = 2  # aerial only
PERSON = AERIAL_CLASSES.index("person")  # aerial, and street with distractors
MOTORCYCLE = AERIAL_CLASSES.index("motorcycle")
CAR = AERIAL_CLASSES.index("car")
assert [STREET_CLASSES_WITH_DISTRACTORS.index(n) for n in DISTRACTOR_CLASSES] == [PERSON, MOTORCYCLE, CAR]


def classes_for(kind: str, distractors: bool = False) -> list[str]:
    """The class names of a dataset kind (``"street"`` or ``"aerial"``).

    Args:
        kind: ``"street"`` or ``"aerial"``.
        distractors: Street only: add the distractor classes (aerial datasets always have them).

    Example:
        >>> classes_for("aerial")[2]
        'illegal_structure'
        >>> classes_for("street", distractors=True)[3:]
        ['person', 'motorcycle', 'car']
    """
    if kind == "street":
        return list(STREET_CLASSES_WITH_DISTRACTORS if distractors else STREET_CLASSES)
    if kind == "aerial":
        return list(AERIAL_CLASSES)
    raise ValueError(f"unknown dataset kind {kind!r}: expected 'street' or 'aerial'")
