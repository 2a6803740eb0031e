"""Evidence retention: images of reviewed cases are deleted by policy, so a year of running does not fill the disk.

The policy (`service.settings.RetentionSettings`): the evidence of a **rejected** case goes ``rejected_days``
after the case last changed; that of a **confirmed, posted or merged** case ``confirmed_days`` after, and only
once none of its deliveries is still pending, sending or waiting for a person (the case system may still fetch
the images). Pending cases and cases whose delivery failed keep theirs. The case rows and their audit trails
stay; each case whose evidence went gets an ``evidence_expired`` audit entry listing the files.

Only files under the evidence folder are deleted (with their rows); evidence of drone flights lives in the
flight's output folder beside its report and is left alone. `RetentionWorker` runs `sweep_evidence` every
``sweep_interval_s`` in a thread of the service.

Example:
    >>> report = sweep_evidence(session_factory, policy, Path("var/evidence"), now=utc_now())  # doctest: +SKIP
    >>> report.files_deleted, report.cases  # doctest: +SKIP
    (12, 4)
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import AuditEntry, Case, Evidence, OutboxMessage
from service.privacy import remove_public_copies
from service.settings import RetentionSettings

__all__ = ["RetentionWorker", "SweepReport", "sweep_evidence"]

log = logging.getLogger("streetwatch.retention")

ACTOR = "retention"
# Deliveries that may still need the images (needs_check: a person decides whether to send again).
_OPEN_DELIVERY = ("pending", "sending", "needs_check")
_CONFIRMED_LIKE = ("confirmed", "posted", "merged")


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did.

    Attributes:
        cases: Cases whose evidence was removed.
        files_deleted: Files deleted from disk.
        rows_deleted: Evidence rows deleted (a row whose file was already gone counts here, not above).
        errors: Files that could not be deleted (kept with their rows, tried again next sweep), one line each.
    """

    cases: int
    files_deleted: int
    rows_deleted: int
    errors: tuple[str, ...] = ()


def _expired_query(policy: RetentionSettings, now: datetime):
    conditions = []
    if policy.rejected_days is not None:
        conditions.append(and_(Case.status == "rejected",
                               Case.updated_at < now - timedelta(days=policy.rejected_days)))
    if policy.confirmed_days is not None:
        open_delivery = exists().where(OutboxMessage.case_id == Case.id, OutboxMessage.status.in_(_OPEN_DELIVERY))
        conditions.append(and_(Case.status.in_(_CONFIRMED_LIKE),
                               Case.updated_at < now - timedelta(days=policy.confirmed_days), ~open_delivery))
    if not conditions:
        return None
    return (select(Evidence).join(Case, Evidence.case_id == Case.id).where(or_(*conditions))
            .order_by(Evidence.case_id, Evidence.id))


def sweep_evidence(session_factory: sessionmaker[Session], policy: RetentionSettings, evidence_root: Path,
                   now: datetime, batch: int = 1000) -> SweepReport:
    """Delete the evidence the policy lets go (files under `evidence_root` and their rows), as of `now`.

    Args:
        session_factory: The database.
        policy: Days per case status (None: keep).
        evidence_root: The evidence folder; files elsewhere are never deleted.
        now: The current time (aware UTC; tests pass a fixed one).
        batch: At most this many evidence rows per sweep (the rest go in the next one).
    """
    query = _expired_query(policy, now)
    if query is None:
        return SweepReport(0, 0, 0)
    root = Path(evidence_root).resolve()
    files = rows = 0
    errors: list[str] = []
    gone_by_case: dict[int, list[str]] = {}
    with session_factory.begin() as session:
        for evidence in session.scalars(query.limit(batch)):
            path = Path(evidence.path)
            path = (path if path.is_absolute() else root / path).resolve()
            if not path.is_relative_to(root):
                continue  # a drone flight's evidence: it belongs to the flight's report
            try:
                if path.is_file():
                    path.unlink()
                    files += 1
                remove_public_copies(path)  # its blurred copies (service.privacy) go with it
            except OSError as exc:
                errors.append(f"{path}: {exc.strerror or exc}")
                continue
            session.delete(evidence)
            rows += 1
            gone_by_case.setdefault(evidence.case_id, []).append(path.name)
        for case_id, names in gone_by_case.items():
            session.add(AuditEntry(case_id=case_id, actor=ACTOR, action="evidence_expired", at=now,
                                   before={"evidence": names}, after={"evidence": []}))
    return SweepReport(len(gone_by_case), files, rows, tuple(errors))


class RetentionWorker:
    """Runs `sweep_evidence` every ``policy.sweep_interval_s`` in a daemon thread until stopped.

    Args:
        session_factory: The database.
        policy: The retention policy.
        evidence_root: The evidence folder.
        clock: Returns the current aware UTC time.
    """

    def __init__(self, session_factory: sessionmaker[Session], policy: RetentionSettings, evidence_root: Path,
                 clock: Callable[[], datetime]) -> None:
        self.session_factory = session_factory
        self.policy = policy
        self.evidence_root = Path(evidence_root)
        self.clock = clock
        self.last_report: SweepReport | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "RetentionWorker":
        self._thread = threading.Thread(target=self._main, name="retention", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _main(self) -> None:
        while not self._stop.is_set():
            try:
                report = sweep_evidence(self.session_factory, self.policy, self.evidence_root, self.clock())
                self.last_report = report
                if report.rows_deleted or report.errors:
                    log.info("retention: evidence of %d cases removed (%d files); %d files not deletable%s",
                             report.cases, report.files_deleted, len(report.errors),
                             f": {report.errors[0]}" if report.errors else "")
            except Exception:  # the database went away for a moment: try again next time
                log.exception("retention sweep failed")
            self._stop.wait(self.policy.sweep_interval_s)
