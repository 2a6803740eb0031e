"""Reviewed cases of the case store as plain records, for training data.

The one door from the case database to `datasets/`: `read_reviewed_cases` opens the database read-only and
returns each reviewed case as a `datasets.from_reviews.ReviewedCase` (a frozen record, detached from the
session); `datasets.from_reviews.export_reviewed_cases` turns them into a YOLO dataset and never imports
`service`. ``streetwatch dataset from-reviews`` wires the two.

Example:
    >>> from datasets.from_reviews import ExportOptions, export_reviewed_cases  # doctest: +SKIP
    >>> from service.kinds import kind_classes  # doctest: +SKIP
    >>> found = read_reviewed_cases("sqlite:///var/streetwatch.sqlite3")  # doctest: +SKIP
    >>> summary = export_reviewed_cases(
    ...     found.cases, Path("var/reviews-ds"),
    ...     ExportOptions(class_names=("bicycle", "stall", "ebike"), kind_classes=kind_classes()),
    ...     not_reviewed=found.not_reviewed, source=found.source)  # doctest: +SKIP
    >>> summary["images"]  # doctest: +SKIP
    {'train': 41, 'val': 9}
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Mapping

import numpy as np

from datasets.from_reviews import NEGATIVE_STATUSES, POSITIVE_STATUSES, EvidenceFrame, ReviewedCase
from datasets.yolo import DatasetError

__all__ = ["ReviewedCases", "open_case_database", "read_reviewed_cases"]


@dataclass(frozen=True)
class ReviewedCases:
    """The reviewed cases of a case database, and what else it holds.

    Attributes:
        cases: Cases with a positive or negative status (`datasets.from_reviews.POSITIVE_STATUSES`,
            ``NEGATIVE_STATUSES``), oldest case first.
        not_reviewed: The other cases counted by status (``pending``, ``merged``).
        source: The database as a URL with any password hidden (for messages and the export's summary).
    """

    cases: tuple[ReviewedCase, ...]
    not_reviewed: Mapping[str, int]
    source: str


def read_reviewed_cases(db: str, since: datetime | None = None) -> ReviewedCases:
    """Read the reviewed cases of the case database `db` (a SQLAlchemy URL or a SQLite file), read-only.

    Args:
        db: ``sqlite:///cases.db``, ``postgresql+psycopg://...`` or a SQLite file path.
        since: Only cases decided at or after this time (the confirm/reject audit entry; the case's last update
            when there is none).

    Raises:
        DatasetError: The database is missing, cannot be opened, is not a case database or cannot be read
            (e.g. an older schema); the message names it without its password.
    """
    from sqlalchemy.exc import SQLAlchemyError

    engine = open_case_database(db)
    try:
        cases, others = _load_reviewed_cases(engine, since)
    except SQLAlchemyError as exc:  # e.g. a database of an older schema: name it, no stack trace
        raise DatasetError(f"{_safe_url(str(engine.url))}: cannot read the cases: {str(exc).splitlines()[0]}") \
            from None
    finally:
        engine.dispose()
    return ReviewedCases(tuple(cases), others, _safe_url(db if "://" in db else f"sqlite:///{db}"))


def _sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise DatasetError(f"{url}: name a SQLite database file")
    return Path(parsed.database)


def open_case_database(db: str):
    """A read-only engine on the case database: a SQLAlchemy URL or a SQLite file path.

    A SQLite file must exist (it is opened read-only, so a wrong path cannot create an empty database), and
    the database must hold streetwatch's ``cases`` table.

    Raises:
        DatasetError: The file is missing, the database cannot be opened, or it is not a case database.
    """
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.exc import SQLAlchemyError

    url = db if "://" in db else f"sqlite:///{db}"
    try:
        path = _sqlite_path(url)
    except Exception as exc:  # make_url raises ArgumentError for anything unparsable
        raise DatasetError(f"{db}: not a database URL or SQLite file: {exc}") from None
    if path is not None:
        if not path.is_file():
            raise DatasetError(f"{path}: no such case database")
        engine = create_engine(f"sqlite+pysqlite:///file:{path.resolve()}?mode=ro&uri=true")
    else:
        engine = create_engine(url, pool_pre_ping=True)
    try:
        has_cases = inspect(engine).has_table("cases")
    except SQLAlchemyError as exc:
        engine.dispose()
        raise DatasetError(f"{_safe_url(url)}: cannot open the case database: {str(exc).splitlines()[0]}") from None
    if not has_cases:
        engine.dispose()
        raise DatasetError(f"{_safe_url(url)}: not a streetwatch case database (no cases table)")
    return engine


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database>"


def _load_reviewed_cases(engine, since: datetime | None = None) -> tuple[list[ReviewedCase], dict[str, int]]:
    """Reviewed cases (positive and negative statuses), oldest case first, and counts of the others by status.

    `since` selects by the time of the reviewer's decision (the confirm/reject audit entry; the case's last
    update when there is none). A database whose schema predates ``evidence.boxes`` (migration 0002) is read
    as if no frame had boxes of its own; one without flights (before migration 0003) as cameras' cases only.
    Only the columns the export needs are selected, so a database of an older schema can be read.
    """
    from sqlalchemy import inspect, select
    from sqlalchemy.orm import Session

    from service.db.models import AuditEntry, Case, Evidence

    reviewed_statuses = POSITIVE_STATUSES + NEGATIVE_STATUSES
    inspector = inspect(engine)
    has_boxes = "boxes" in {c["name"] for c in inspector.get_columns("evidence")}
    has_flights = "flight_id" in {c["name"] for c in inspector.get_columns("cases")}
    evidence_columns = [Evidence.case_id, Evidence.path, Evidence.ts, Evidence.sha256] + (
        [Evidence.boxes] if has_boxes else [])
    case_columns = [Case.id, Case.status, Case.kind, Case.corrected_kind, Case.class_name, Case.camera_id, Case.boxes,
                    Case.last_seen, Case.reject_reason, Case.updated_at] + ([Case.flight_id] if has_flights else [])
    with Session(engine) as session:
        others = Counter(s for (s,) in session.execute(select(Case.status).where(
            Case.status.not_in(reviewed_statuses))))
        cases = list(session.execute(select(*case_columns).where(Case.status.in_(reviewed_statuses))
                                     .order_by(Case.id)))
        ids = [c.id for c in cases]
        decisions: dict[int, AuditEntry] = {}
        originals: dict[int, list[EvidenceFrame]] = {i: [] for i in ids}
        for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
            for entry in session.scalars(select(AuditEntry).where(
                    AuditEntry.case_id.in_(chunk), AuditEntry.action.in_(("confirm", "reject")))
                    .order_by(AuditEntry.id)):
                decisions[entry.case_id] = entry  # the latest decision wins
            for ev in session.execute(select(*evidence_columns).where(Evidence.case_id.in_(chunk),
                                                                      Evidence.kind == "original")
                                      .order_by(Evidence.ts, Evidence.id)):
                originals[ev.case_id].append(EvidenceFrame(ev.path, ev.ts, ev.sha256,
                                                           ev.boxes if has_boxes else None))
        out = []
        for c in cases:
            decision = decisions.get(c.id)
            decided_at = decision.at if decision is not None else c.updated_at
            if since is not None and decided_at < since:
                continue
            # A flight's case has no camera: its flight stands in (so a camera-day split keeps a flight together).
            origin = c.camera_id if c.camera_id is not None else f"flight:{c.flight_id}"
            out.append(ReviewedCase(
                case_id=c.id, status=c.status, kind=c.kind, corrected_kind=c.corrected_kind, class_name=c.class_name,
                camera_id=origin, boxes=np.asarray(c.boxes or [], np.float64).reshape(-1, 4), last_seen=c.last_seen,
                reject_reason=c.reject_reason, decided_at=decided_at,
                decided_by=decision.actor if decision is not None else None, originals=tuple(originals[c.id])))
    return out, dict(sorted(others.items()))
