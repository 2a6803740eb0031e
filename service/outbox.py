"""The outbox worker: delivers confirmed cases to case systems, with retries, exactly once per receiver.

Confirming a case writes an outbox row in the same transaction (see `service.cases.CaseStore.confirm`).
`OutboxWorker.run_once` then:

1. **Claims** due rows atomically, in one transaction: ``SELECT id … WHERE due … LIMIT batch_size FOR UPDATE
   SKIP LOCKED``, then ``UPDATE outbox SET status='sending', claim_token=<new> … WHERE id IN (those ids) AND
   due`` (the row lock clause is PostgreSQL's; SQLite serialises writers instead). A row is due when it is
   ``pending`` with ``next_attempt_at <= now``, or ``sending`` with an expired lease. The due condition is
   re-checked by the UPDATE itself, so two workers never claim the same row, and each worker only sees rows
   carrying its own claim token. (Not one ``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``:
   PostgreSQL may plan that as a nested loop that re-runs the subquery for every row, each run skipping the
   rows just updated, so one worker would claim every due row instead of `batch_size`.)
2. **Reconciles** a row with a post in doubt (``attempt_started_at`` set, see 3) before anything else: the
   adapter asks the receiver whether that post arrived (`service.adapters.base.Reconciler`). Found: the row is
   ``sent`` with the receiver's id, and nothing is posted. Not found: it is posted (3). The query failed: retried
   with back-off, and after `max_reconcile_attempts` failures the row goes ``needs_check`` (never posted again
   automatically; an admin settles it with `resolve`: ``sent`` with the receiver's id, or ``repost``). An
   adapter that cannot be asked sends its row to ``needs_check`` at once. The receiver is asked no earlier than
   `reconcile_after_s` after the post started, so it has finished with it.
3. **Sends** the row outside any transaction (no lock is held during HTTP), after recording the attempt in a
   transaction of its own, committed before the request leaves: ``attempt_started_at`` (kept from an earlier
   attempt still in doubt) and ``attempt_ref`` (the streetwatch id the post carries); the lease is renewed.
4. **Records** the outcome, only if the row still carries its claim token: ``sent`` with the remote id (the
   case becomes ``posted`` once all its rows are sent); for an answer that is a transient failure, back to
   ``pending`` with ``next_attempt_at`` after an exponential back-off with full jitter; ``dead`` (error kept,
   case ``post_failed``) for a permanent failure or after `max_attempts` attempts. An answer clears the attempt
   in doubt (the receiver said what it did). A timeout or lost connection after the request was sent
   (`OutcomeUnknownError`) keeps it: the row goes back to ``pending`` and is reconciled when next due.

What is guaranteed, and how:

- **Nothing is lost**: a row leaves the queue only as ``sent``, ``dead`` (kept, listed, retried by hand) or
  ``needs_check`` (kept, listed, resolved by hand). A worker killed at any point (kill -9, power cut) leaves its
  rows ``sending``; once their lease (`lease_s`) expires the next worker takes them over.
- **Exactly once at an Open311 receiver that does not deduplicate**: a post in doubt (the worker died after the
  request may have left, or the answer never came) is never simply sent again: since the attempt is committed
  before the request leaves, the next worker knows it is in doubt and reconciles first (the post carries its
  streetwatch id in its description, found by ``GET requests.json``). Limits: the receiver must list a request
  within `reconcile_after_s` of the post (one still being created when asked could be created twice), and
  must keep the description; a receiver that cannot be asked yields ``needs_check``, not a second post.
- **Webhooks**: every attempt of a row carries the same ``webhook-id`` (Standard Webhooks; also
  ``Idempotency-Key``), signed; the receiver must honour it (deduplicate), so a post in doubt is simply posted
  again.
- **MQTT case events** (`service.adapters.mqtt`): rows of the event adapters (`EVENT_ADAPTERS`) are delivered
  the same way (sent on PUBACK; consumers deduplicate by ``event_id``) but are notifications, not deliveries:
  they never make a case ``posted`` or ``post_failed``.

`retry(outbox_id)` puts a ``dead`` row back in the queue (the manual retry endpoint); a post still in doubt is
reconciled first even then.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Literal, Mapping

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from detector.errors import StreetwatchError
from service.adapters.base import (EVENT_ADAPTERS, Adapter, OutboundMessage, OutcomeUnknownError, PermanentSendError,
                                   ReconcileError, Reconciler, SendError)
from service.cases import set_case_status, utc_now
from service.db.models import AuditEntry, Case, OutboxMessage
from service.evidence_links import EvidenceLinks, with_evidence_urls

__all__ = ["OutboxError", "OutboxWorker", "backoff_cap_s", "backoff_delay_s", "failure_action"]

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


class OutboxError(StreetwatchError):
    """An outbox operation that cannot be done (unknown row: 404; row not dead: 409)."""


# --- pure logic -----------------------------------------------------------------------------------------

def backoff_cap_s(attempt: int, base_backoff_s: float, max_backoff_s: float) -> float:
    """The upper bound of the wait after failed attempt number `attempt` (1-based): base·2^(attempt−1),
    capped at `max_backoff_s`."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    return min(max_backoff_s, base_backoff_s * 2.0 ** min(attempt - 1, 62))


def backoff_delay_s(attempt: int, base_backoff_s: float, max_backoff_s: float, rng: random.Random) -> float:
    """Full jitter: a uniform wait in [0, cap]; spreads the retries of many rows after an outage."""
    return rng.uniform(0.0, backoff_cap_s(attempt, base_backoff_s, max_backoff_s))


def failure_action(attempts: int, max_attempts: int, permanent: bool) -> Literal["retry", "dead"]:
    """What to do with a row whose attempt number `attempts` failed."""
    return "dead" if permanent or attempts >= max_attempts else "retry"


@dataclass(frozen=True)
class _Claimed:
    id: int
    case_id: int
    adapter: str
    idempotency_key: str
    payload: Mapping[str, Any]
    attempts: int
    claim_token: str
    attempt_started_at: datetime | None = None  # a post in doubt since then (None: none)
    reconcile_failures: int = 0


# --- the worker -----------------------------------------------------------------------------------------

class OutboxWorker:
    """Delivers due outbox rows through adapters.

    Args:
        session_factory: From `service.db.make_session_factory`.
        adapters: The adapters by name (or an iterable of adapters, keyed by their ``name``); rows of other
            adapters are left for workers that have them.
        clock: Current UTC time, used when `run_once` is given no time.
        max_attempts: Attempts before a row goes ``dead``. 16 with the default back-off means about four hours
            of average patience (at most ~8 h): a case system down for an hour loses nothing.
        base_backoff_s: Back-off cap after the first failure; doubles per failure.
        max_backoff_s: Largest back-off cap.
        lease_s: How long a claim lasts; a row still ``sending`` after it is reclaimed (crashed worker).
            Must exceed the adapters' timeouts.
        batch_size: Rows claimed per `run_once`.
        rng: Jitter source (seed it in tests).
        reconcile_after_s: A post in doubt is reconciled no earlier than this after it started: longer than the
            adapters' timeouts, so the receiver has finished with it (a receiver still creating the request
            when asked would be posted to twice).
        max_reconcile_attempts: Failed queries of the receiver before the row goes ``needs_check``.
        evidence_links: Signs the evidence links added to each payload when it is sent (None: no links).
    """

    def __init__(self, session_factory: sessionmaker[Session], adapters: Mapping[str, Adapter] | Iterable[Adapter],
                 clock: Clock = utc_now, max_attempts: int = 16, base_backoff_s: float = 5.0,
                 max_backoff_s: float = 3600.0, lease_s: float = 300.0, batch_size: int = 20,
                 rng: random.Random | None = None, reconcile_after_s: float = 60.0, max_reconcile_attempts: int = 8,
                 evidence_links: EvidenceLinks | None = None):
        if max_attempts < 1 or base_backoff_s < 0 or max_backoff_s < base_backoff_s or lease_s <= 0:
            raise ValueError("OutboxWorker: need max_attempts >= 1, 0 <= base_backoff_s <= max_backoff_s, lease_s > 0")
        if reconcile_after_s < 0 or max_reconcile_attempts < 1:
            raise ValueError("OutboxWorker: need reconcile_after_s >= 0 and max_reconcile_attempts >= 1")
        self._sessions = session_factory
        self.adapters: dict[str, Adapter] = (dict(adapters) if isinstance(adapters, Mapping)
                                             else {a.name: a for a in adapters})
        self._clock = clock
        self.max_attempts = max_attempts
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.lease_s = lease_s
        self.batch_size = batch_size
        self._rng = rng or random.Random()
        self.reconcile_after_s = reconcile_after_s
        self.max_reconcile_attempts = max_reconcile_attempts
        self.evidence_links = evidence_links
        # (adapter, outcome) -> attempts finished by this process (for /metrics): sent, retry, dead, unknown
        # (outcome in doubt), reconciled_sent / reconciled_absent (the receiver had it / had not), query_retry,
        # needs_check.
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self._outcomes_lock = threading.Lock()

    def run_once(self, now: datetime | None = None) -> int:
        """Claim, reconcile or send, and record the due rows once; returns how many rows were claimed.

        Args:
            now: The time of this round (tests); default: the clock, read again for every row.
        """
        claimed = self._claim(now or self._clock())
        for row in claimed:
            self._deliver(row, now or self._clock())
        return len(claimed)

    def run_forever(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        """Call `run_once` until `stop` is set, sleeping `poll_s` when nothing was due."""
        while not stop.is_set():
            if self.run_once() == 0:
                stop.wait(poll_s)

    def retry(self, outbox_id: int, actor: str = "system", now: datetime | None = None) -> None:
        """Queue a ``dead`` (or waiting ``pending``) row for an immediate new series of attempts."""
        now = now or self._clock()
        with self._sessions.begin() as session:
            row = session.get(OutboxMessage, outbox_id)
            if row is None:
                raise OutboxError(f"no outbox row {outbox_id}")
            if row.status not in ("dead", "pending"):
                raise OutboxError(f"outbox row {outbox_id} is {row.status!r}: only dead or pending rows can be "
                                  "retried")
            before = {"status": row.status, "attempts": row.attempts, "last_error": row.last_error}
            row.status, row.attempts, row.next_attempt_at, row.updated_at = "pending", 0, now, now
            session.add(AuditEntry(case_id=row.case_id, actor=actor, action="outbox_retry", at=now, before=before,
                                   after={"status": "pending", "outbox_id": outbox_id, "adapter": row.adapter}))

    def resolve(self, outbox_id: int, action: Literal["sent", "repost"], remote_id: str | None = None,
                actor: str = "system", now: datetime | None = None) -> None:
        """Settle a ``needs_check`` row by hand, after a person looked at the receiver.

        Args:
            action: ``sent``: the receiver has it (give its id as `remote_id`); ``repost``: it does not, post it
                again now (the attempt in doubt is forgotten).
        """
        now = now or self._clock()
        if action not in ("sent", "repost"):
            raise ValueError(f"action: {action!r} is neither 'sent' nor 'repost'")
        if action == "sent" and not (remote_id or "").strip():
            raise OutboxError(f"outbox row {outbox_id}: 'sent' needs the receiver's id (remote_id)")
        with self._sessions.begin() as session:
            row = session.get(OutboxMessage, outbox_id)
            if row is None:
                raise OutboxError(f"no outbox row {outbox_id}")
            if row.status != "needs_check":
                raise OutboxError(f"outbox row {outbox_id} is {row.status!r}: only needs_check rows are resolved")
            before = {"status": row.status, "attempts": row.attempts, "last_error": row.last_error}
            row.attempt_started_at, row.attempt_ref, row.reconcile_failures, row.updated_at = None, None, 0, now
            if action == "sent":
                row.status, row.remote_id, row.sent_at = "sent", remote_id.strip(), now
            else:
                row.status, row.attempts, row.next_attempt_at = "pending", 0, now
            session.add(AuditEntry(case_id=row.case_id, actor=actor, action=f"outbox_resolve_{action}", at=now,
                                   before=before, after={"status": row.status, "outbox_id": outbox_id,
                                                         "adapter": row.adapter, "remote_id": row.remote_id}))
            if action == "sent":
                session.flush()
                self._update_case(session, row.case_id, row.adapter, "sent", now, row.remote_id, None)

    # internals

    def _deliver(self, row: _Claimed, now: datetime) -> None:
        adapter = self.adapters[row.adapter]
        message = OutboundMessage(outbox_id=row.id, case_id=row.case_id, idempotency_key=row.idempotency_key,
                                  payload=with_evidence_urls(row.payload, self.evidence_links),
                                  attempt=row.attempts)
        if row.attempt_started_at is not None and not self._reconcile(row, adapter, message, now):
            return
        if row.attempts > self.max_attempts:
            # Only reachable through repeated lease expiries: a row that crashes its worker every time.
            self._finish(row, now, "dead", error=f"gave up after {row.attempts - 1} attempts (lease expired)")
            return
        if not self._begin_attempt(row, now):
            return
        try:
            result = adapter.send(message)
        except OutcomeUnknownError as exc:
            self._finish(row, now, "unknown", error=str(exc))
        except SendError as exc:
            self._finish(row, now, failure_action(row.attempts, self.max_attempts,
                                                  isinstance(exc, PermanentSendError)), error=str(exc))
        except Exception as exc:  # a bug in an adapter must not wedge the queue: count it as an attempt
            log.exception("outbox row %s: adapter %s failed unexpectedly", row.id, row.adapter)
            # Whether the request left is unknown: reconcile before the next post.
            self._finish(row, now, "unknown", error=f"unexpected {type(exc).__name__}: {exc}")
        else:
            self._finish(row, now, "sent", remote_id=result.remote_id)

    def _reconcile(self, row: _Claimed, adapter: Adapter, message: OutboundMessage, now: datetime) -> bool:
        """Ask the receiver about the post in doubt; True when posting (again) is safe, else the row is settled."""
        assert row.attempt_started_at is not None
        settled_at = row.attempt_started_at + timedelta(seconds=self.reconcile_after_s)
        if now < settled_at:
            # The receiver may still be working on that post: ask once it must have answered.
            self._finish(row, now, "wait", next_attempt_at=settled_at)
            return False
        if not isinstance(adapter, Reconciler):
            self._finish(row, now, "needs_check", error=f"{row.adapter}: a post started "
                         f"{row.attempt_started_at.isoformat()} has an unknown outcome and this receiver cannot "
                         "be asked; check it and resolve the row")
            return False
        try:
            found = adapter.reconcile(message, row.attempt_started_at)
        except ReconcileError as exc:
            failures = row.reconcile_failures + 1
            if failures >= self.max_reconcile_attempts:
                self._finish(row, now, "needs_check", reconcile_failures=failures,
                             error=f"could not ask the receiver {failures} times whether the post started "
                                   f"{row.attempt_started_at.isoformat()} arrived: {exc}")
            else:
                self._finish(row, now, "query_retry", reconcile_failures=failures, error=str(exc))
            return False
        except Exception as exc:  # as in _deliver: a bug must not wedge the queue, and must not cause a repost
            log.exception("outbox row %s: adapter %s failed unexpectedly while reconciling", row.id, row.adapter)
            self._finish(row, now, "query_retry", reconcile_failures=row.reconcile_failures + 1,
                         error=f"unexpected {type(exc).__name__}: {exc}")
            return False
        if found is not None:
            self._finish(row, now, "sent", remote_id=found.remote_id, reconciled=True)
            return False
        with self._outcomes_lock:
            self.outcomes[(row.adapter, "reconciled_absent")] += 1
        return True

    def _begin_attempt(self, row: _Claimed, now: datetime) -> bool:
        """Record, in its own committed transaction, that a post is about to leave; False: the claim was lost.

        The earliest attempt in doubt is kept (an attempt found absent is followed by a post whose window must
        still cover it, should that one end in doubt too); the lease is renewed to cover this attempt.
        """
        with self._sessions.begin() as session:
            done = session.execute(
                update(OutboxMessage).where(self._mine(row))
                .values(attempt_started_at=func.coalesce(OutboxMessage.attempt_started_at, now),
                        attempt_ref=row.idempotency_key, reconcile_failures=0,
                        lease_expires_at=now + timedelta(seconds=self.lease_s), updated_at=now)
                .execution_options(synchronize_session=False))
        if done.rowcount != 1:
            log.warning("outbox row %s: claim lost before sending", row.id)
            return False
        return True

    @staticmethod
    def _mine(row: _Claimed) -> Any:
        return and_(OutboxMessage.id == row.id, OutboxMessage.claim_token == row.claim_token,
                    OutboxMessage.status == "sending")

    def _due(self, now: datetime) -> Any:
        return and_(OutboxMessage.adapter.in_(list(self.adapters)),
                    or_(and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
                        and_(OutboxMessage.status == "sending", OutboxMessage.lease_expires_at <= now)))

    def _claim(self, now: datetime) -> list[_Claimed]:
        token = uuid.uuid4().hex
        due = self._due(now)
        candidates = (select(OutboxMessage.id).where(due).order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                      .limit(self.batch_size).with_for_update(skip_locked=True))
        with self._sessions.begin() as session:
            ids = list(session.scalars(candidates))  # locked until commit (PostgreSQL)
            if not ids:
                return []
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), due)
                .values(status="sending", claim_token=token, attempts=OutboxMessage.attempts + 1,
                        lease_expires_at=now + timedelta(seconds=self.lease_s), updated_at=now)
                .execution_options(synchronize_session=False))
            rows = session.scalars(select(OutboxMessage).where(OutboxMessage.claim_token == token,
                                                               OutboxMessage.status == "sending")
                                   .order_by(OutboxMessage.id)).all()
            return [_Claimed(r.id, r.case_id, r.adapter, r.idempotency_key, dict(r.payload), r.attempts, token,
                             r.attempt_started_at, r.reconcile_failures or 0) for r in rows]

    def _finish(self, row: _Claimed, now: datetime, action: str, error: str | None = None,
                remote_id: str | None = None, reconciled: bool = False, reconcile_failures: int = 0,
                next_attempt_at: datetime | None = None) -> None:
        """Record the outcome of a claimed row, only if it still carries our claim.

        Actions: ``sent``; ``retry``/``dead`` (the receiver answered with a failure: nothing was created);
        ``unknown`` (the post may have arrived: back to pending, reconciled when next due); ``wait`` (too early
        to reconcile: pending until `next_attempt_at`, not counted as an attempt); ``query_retry`` (the receiver
        could not be asked: pending with back-off); ``needs_check`` (a person decides).
        """
        values: dict[str, Any] = {}
        if action == "sent":
            values = dict(status="sent", remote_id=remote_id, sent_at=now, attempt_started_at=None,
                          attempt_ref=None, reconcile_failures=0)
        elif action in ("retry", "dead"):
            # An answer: this attempt created nothing, and any earlier one in doubt was found absent first.
            values = dict(status="pending" if action == "retry" else "dead", last_error=error,
                          attempt_started_at=None, attempt_ref=None, reconcile_failures=0)
            if action == "retry":
                values["next_attempt_at"] = now + timedelta(seconds=self._backoff_s(row.attempts))
        elif action == "unknown":
            settle = now + timedelta(seconds=self.reconcile_after_s)
            values = dict(status="pending", last_error=error,
                          next_attempt_at=max(settle, now + timedelta(seconds=self._backoff_s(row.attempts))))
        elif action == "wait":
            values = dict(status="pending", attempts=row.attempts - 1, next_attempt_at=next_attempt_at)
        elif action == "query_retry":
            values = dict(status="pending", last_error=error, reconcile_failures=reconcile_failures,
                          next_attempt_at=now + timedelta(seconds=self._backoff_s(reconcile_failures)))
        elif action == "needs_check":
            values = dict(status="needs_check", last_error=error, reconcile_failures=reconcile_failures)
        else:
            raise ValueError(f"unknown outbox action {action!r}")
        with self._sessions.begin() as session:
            done = session.execute(update(OutboxMessage).where(self._mine(row))
                                   .values(**values, lease_expires_at=None, claim_token=None, updated_at=now)
                                   .execution_options(synchronize_session=False))
            if done.rowcount != 1:
                # Our lease expired and another worker took the row over: its outcome counts, not ours.
                log.warning("outbox row %s: claim lost before recording %s", row.id, action)
                return
            if action in ("sent", "dead"):
                self._update_case(session, row.case_id, row.adapter, action, now, remote_id, error)
            if action == "needs_check":
                session.add(AuditEntry(case_id=row.case_id, actor="outbox", action="outbox_needs_check", at=now,
                                       before=None, after={"outbox_id": row.id, "adapter": row.adapter,
                                                           "error": error}))
        if action != "wait":
            with self._outcomes_lock:
                self.outcomes[(row.adapter, "reconciled_sent" if reconciled else action)] += 1
        if action in ("sent", "wait"):
            return
        (log.error if action == "needs_check" else log.warning)(
            "outbox row %s (case %s, %s): attempt %s: %s: %s", row.id, row.case_id, row.adapter, row.attempts,
            action, error)

    def _backoff_s(self, failures: int) -> float:
        return backoff_delay_s(max(1, failures), self.base_backoff_s, self.max_backoff_s, self._rng)

    @staticmethod
    def _update_case(session: Session, case_id: int, adapter: str, action: str, now: datetime,
                     remote_id: str | None, error: str | None) -> None:
        if adapter in EVENT_ADAPTERS:
            return  # an event notification (MQTT), not a delivery to a case system: it never moves the case
        case = session.get_one(Case, case_id)
        if action == "sent":
            unsent = session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.case_id == case_id, OutboxMessage.status != "sent",
                OutboxMessage.adapter.not_in(EVENT_ADAPTERS)))
            if unsent == 0 and case.status in ("confirmed", "post_failed"):
                set_case_status(session, case_id, "posted", "outbox", now, adapter=adapter, remote_id=remote_id)
        elif action == "dead" and case.status == "confirmed":
            set_case_status(session, case_id, "post_failed", "outbox", now, adapter=adapter, error=error)
