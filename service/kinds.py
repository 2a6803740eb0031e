"""The kind catalogue: what the service adds to each violation kind (category code, titles, colour).

A violation kind has two homes and no more:

* its **rule module** in `detector.rules` (camera rules) or `detector.geo.maprules` (drone map rules) declares the
  kind, the zone kinds it reads, its default classes and its bounded parameter model;
* one **row here** gives it the national default category code (大类+小类, cities override it in the
  configuration's ``category_codes``), its zh-CN and English titles and its colour.

Everything else is derived from these two: the configuration's ``rules`` section and category-code defaults
(`service.config`), the classes a camera tracks (`service.pipeline`), the review page's titles and colours
(``GET /api/v1/kinds``), the case descriptions sent to case systems, the CLI's choices and the defaults of
``dataset from-reviews``. `check_catalogue` (run by the tests) says when a rule has no row or a row no rule.

Example:
    >>> KINDS["bike_misparked"].category_code, KINDS["bike_misparked"].title_en
    ('0506', 'Misparked bicycles')
    >>> kind_classes()["bike_misparked"]
    ('bicycle', 'ebike')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from detector.rules import RULES

__all__ = ["CATALOGUE", "KINDS", "KindRow", "check_catalogue", "default_category_codes", "kind_classes",
           "kind_title", "kinds_public"]

_HEX = re.compile(r"^#[0-9a-f]{6}$")


@dataclass(frozen=True)
class KindRow:
    """What the service adds to one violation kind.

    Attributes:
        kind: The kind's name (a rule's ``kind``).
        category_code: National default case category code (大类+小类); the configuration may override it.
        title_zh: Title shown to reviewers in zh-CN (数字城管 wording).
        title_en: Title in English (review page, Open311 descriptions).
        color_hex: ``#rrggbb`` of the kind's boxes in evidence images and on the review page.
        classes: Detector classes of a kind that has no rule module (reviewers may move a case to it); None
            for kinds with a rule, whose rule module declares them.
    """

    kind: str
    category_code: str
    title_zh: str
    title_en: str
    color_hex: str
    classes: tuple[str, ...] | None = None

    @property
    def color_bgr(self) -> tuple[int, int, int]:
        """The colour as OpenCV's (blue, green, red)."""
        r, g, b = (int(self.color_hex[i:i + 2], 16) for i in (1, 3, 5))
        return (b, g, r)


CATALOGUE: list[KindRow] = [
    KindRow("stall_occupation", "0504", "占道经营/店外经营", "Stall occupying the street", "#e53935"),
    KindRow("bike_misparked", "0506", "非机动车乱停放", "Misparked bicycles", "#fb8c00"),
    KindRow("illegal_structure", "0101", "私搭乱建", "Illegal structure", "#8e24aa"),
    # No rule finds a moving vendor yet; reviewers re-class a stall case to it (so it keeps the stall class).
    KindRow("mobile_vendor", "0501", "无照经营游商", "Unlicensed mobile vendor", "#3949ab", classes=("stall",)),
]
"""One row per violation kind. Add a kind: a rule module plus one row here."""


class _Kinds(Mapping[str, KindRow]):
    """A live view of `CATALOGUE` by kind (rows appended later are seen)."""

    def __getitem__(self, kind: str) -> KindRow:
        for row in CATALOGUE:
            if row.kind == kind:
                return row
        raise KeyError(kind)

    def __iter__(self):
        return iter([row.kind for row in CATALOGUE])

    def __len__(self) -> int:
        return len(CATALOGUE)


KINDS: Mapping[str, KindRow] = _Kinds()


def _rule_classes(kind: str) -> tuple[str, ...] | None:
    rule = RULES.get(kind)
    if rule is not None:
        return tuple(rule.default_classes)
    try:  # drone map rules (illegal structures seen from the air) declare theirs in their own module
        from detector.geo.maprules import MAP_RULE_CLASSES
    except ImportError:
        return None
    classes = MAP_RULE_CLASSES.get(kind)
    return None if classes is None else tuple(classes)


def kind_classes() -> dict[str, tuple[str, ...]]:
    """Violation kind → its detector classes, the kind's own class first (for ``dataset from-reviews``)."""
    out = {}
    for row in CATALOGUE:
        classes = row.classes if row.classes is not None else _rule_classes(row.kind)
        if classes:
            out[row.kind] = classes
    return out


def default_category_codes() -> dict[str, str]:
    """Violation kind → the national default category code."""
    return {row.kind: row.category_code for row in CATALOGUE}


def kind_title(kind: str, lang: str = "en") -> str:
    """The kind's title in ``en`` or ``zh``; an unknown kind reads as its name with spaces."""
    row = KINDS.get(kind)
    if row is None:
        return kind.replace("_", " ").capitalize()
    return row.title_zh if lang == "zh" else row.title_en


def kinds_public(category_codes: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The catalogue as the review page reads it (``GET /api/v1/kinds``), with the city's category codes."""
    codes = {**default_category_codes(), **(category_codes or {})}
    return [{"kind": row.kind, "category_code": codes.get(row.kind, row.category_code), "title_zh": row.title_zh,
             "title_en": row.title_en, "color": row.color_hex, "classes": list(kind_classes().get(row.kind, ()))}
            for row in CATALOGUE]


def check_catalogue() -> list[str]:
    """Problems of the catalogue against the rule registry (empty when consistent)."""
    problems = []
    kinds = [row.kind for row in CATALOGUE]
    problems += [f"kind {k!r} has two rows" for k in sorted({k for k in kinds if kinds.count(k) > 1})]
    problems += [f"rule kind {k!r} has no catalogue row" for k in sorted(set(RULES) - set(kinds))]
    for row in CATALOGUE:
        if not _HEX.match(row.color_hex):
            problems.append(f"kind {row.kind!r}: colour {row.color_hex!r} is not #rrggbb (lower case)")
        if row.classes is None and _rule_classes(row.kind) is None:
            problems.append(f"kind {row.kind!r}: no rule declares its classes and the row names none")
        if row.classes is not None and row.kind in RULES:
            problems.append(f"kind {row.kind!r}: classes are declared by its rule; the row must not repeat them")
    return problems
