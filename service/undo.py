"""Undo of a reviewer's decision: who may take it back, until when, and while nothing has left the service.

A reviewer who confirmed or rejected a case by mistake may undo it (the case goes back to ``pending``) when
all of these hold, checked by `undo_verdict`:

* the case is still in the status the decision left it in (``confirmed`` or ``rejected``; a merge is not undone
  here: its violations were moved to the target case);
* the decision is the reviewer's own (the latest decision in the case's audit trail names them);
* it was made at most ``window_s`` ago (``Settings.review.undo_window_s``; 0 turns undo off);
* for a confirmation, no delivery of it has started: every outbox row is still ``pending``, never claimed and
  with no post in doubt. The service holds a confirmed case's delivery for the undo window (its outbox rows are
  due only when the window ends), so within the window this normally holds.

Everything here is pure (no database): `service.cases.CaseStore` reads the rows and applies the verdict.

Example:
    >>> from datetime import datetime, timedelta, timezone
    >>> at = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)
    >>> d = Decision(audit_id=7, action="reject", actor="wang", at=at)
    >>> undo_verdict(3, "rejected", d, "wang", at + timedelta(minutes=4), 600.0, ()).allowed
    True
    >>> undo_verdict(3, "rejected", d, "li", at + timedelta(minutes=4), 600.0, ()).code
    'not_own'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Literal

__all__ = ["DECIDED_STATUSES", "DECISION_ACTIONS", "UNDOABLE", "Decision", "Delivery", "UndoCode", "UndoVerdict",
           "undo_verdict"]

# Audit actions that decide a case (`service.cases.CaseStore.confirm`, ``reject``, ``merge``).
DECISION_ACTIONS = ("confirm", "reject", "merge")
# Statuses a decided case can be in (the history view's filters).
DECIDED_STATUSES = ("confirmed", "rejected", "merged", "posted", "post_failed")
# Decision action -> the status it leaves the case in, for the decisions that can be undone.
UNDOABLE = {"confirm": "confirmed", "reject": "rejected"}

UndoCode = Literal["ok", "not_decided", "not_undoable", "not_own", "disabled", "expired", "posted", "in_flight"]


@dataclass(frozen=True)
class Decision:
    """The latest decision on a case, from its audit trail.

    Attributes:
        audit_id: The audit row's id.
        action: One of `DECISION_ACTIONS`.
        actor: The API key holder who made it.
        at: When (aware UTC).
    """

    audit_id: int
    action: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class Delivery:
    """One outbox row of a confirmed case, as far as undo cares.

    Attributes:
        outbox_id: The row's id.
        adapter: The receiver (``webhook``, ``open311``, ...).
        status: ``pending``, ``sending``, ``sent``, ``dead`` or ``needs_check``.
        attempts: Claims so far (a claim counts as an attempt).
        in_doubt: A post was started whose outcome is not known (``attempt_started_at`` is set).
    """

    outbox_id: int
    adapter: str
    status: str
    attempts: int
    in_doubt: bool = False

    @property
    def untouched(self) -> bool:
        """Nothing of this delivery has left the service, nor is about to: it can be withdrawn."""
        return self.status == "pending" and self.attempts == 0 and not self.in_doubt


@dataclass(frozen=True)
class UndoVerdict:
    """Whether a reviewer may undo a case's decision now, and why not.

    Attributes:
        allowed: True when the undo may go ahead.
        code: ``ok`` or why not (`UndoCode`; the review page words it in the reader's language).
        reason: One line in English naming the case and the reason (the 409's detail).
        until: When the undo window of the decision ends (None: no undoable decision, or undo is off).
    """

    allowed: bool
    code: UndoCode
    reason: str
    until: datetime | None = None


def undo_verdict(case_id: int, status: str, decision: Decision | None, actor: str, now: datetime, window_s: float,
                 deliveries: Iterable[Delivery]) -> UndoVerdict:
    """Decide whether `actor` may undo the latest decision on a case now.

    The checks run from the case's own state to the reviewer's and the clock's, then the deliveries, so the reason
    given is the most fundamental one (a posted case says "posted", not "too late").

    Args:
        case_id: The case (named in the reason).
        status: Its current status.
        decision: Its latest decision (`DECISION_ACTIONS` in the audit trail), or None when it has none.
        actor: Who asks to undo.
        now: The current time (aware).
        window_s: How long after a decision it may be undone (0: never).
        deliveries: The case's outbox rows (only read for a confirmation).

    Returns:
        The verdict; ``until`` is set whenever there is an own undoable decision, allowed or expired.

    Example:
        >>> from datetime import datetime, timezone
        >>> at = datetime(2026, 6, 1, 8, 0, tzinfo=timezone.utc)
        >>> d = Decision(1, "confirm", "wang", at)
        >>> undo_verdict(3, "confirmed", d, "wang", at, 600, [Delivery(5, "open311", "sending", 1)]).reason
        'case 3: its delivery to open311 has started (sending, 1 attempt): a confirmation cannot be taken back now'
    """
    if decision is None or status == "pending":
        return UndoVerdict(False, "not_decided", f"case {case_id}: is {status}, there is no decision to undo")
    if status in ("posted", "post_failed"):
        # post_failed: every attempt was made; the receiver may hold it all the same.
        return UndoVerdict(False, "posted", f"case {case_id}: its delivery to the case system was made ({status}); "
                                            f"a posted case cannot be taken back here")
    if UNDOABLE.get(decision.action) != status:
        what = ("a merge cannot be undone" if decision.action == "merge"
                else f"its status {status!r} was not set by its latest decision ({decision.action})")
        return UndoVerdict(False, "not_undoable", f"case {case_id}: {what}")
    until = decision.at + timedelta(seconds=window_s)
    verb = "confirmed" if decision.action == "confirm" else "rejected"
    if decision.actor != actor:
        return UndoVerdict(False, "not_own", f"case {case_id}: was {verb} by {decision.actor}; only they can undo "
                                             f"it", until)
    if window_s <= 0:
        return UndoVerdict(False, "disabled", f"case {case_id}: undo is turned off (review.undo_window_s is 0)")
    if now > until:
        return UndoVerdict(False, "expired", f"case {case_id}: too late to undo: {verb} at {decision.at.isoformat()}, "
                                             f"the undo window of {window_s:g} s ended at {until.isoformat()}",
                           until)
    if decision.action == "confirm":
        for d in deliveries:
            if d.status == "sent":
                return UndoVerdict(False, "posted", f"case {case_id}: already delivered to {d.adapter}; a posted case "
                                                    f"cannot be taken back here", until)
            if not d.untouched:
                tries = f"{d.attempts} attempt{'' if d.attempts == 1 else 's'}"
                doubt = ", a post in doubt" if d.in_doubt else ""
                return UndoVerdict(False, "in_flight", f"case {case_id}: its delivery to {d.adapter} has started "
                                                       f"({d.status}, {tries}{doubt}): a confirmation cannot be "
                                                       f"taken back now", until)
    return UndoVerdict(True, "ok", f"case {case_id}: the {decision.action} by {actor} can be undone until "
                                   f"{until.isoformat()}", until)
