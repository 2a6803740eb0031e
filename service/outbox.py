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
2. **Sends** each claimed row outside any transaction (no lock is held during HTTP).
3. **Records** the outcome, only if the row still carries its claim token: ``sent`` with the remote id (the
   case becomes ``posted`` once all its rows are sent); or, for a transient failure, back to ``pending`` with
   ``next_attempt_at`` after an exponential back-off with full jitter; or ``dead`` (error kept, case
   ``post_failed``) for a permanent failure or after `max_attempts` attempts.

Crash safety: a worker killed between claiming and recording (kill -9, power cut) leaves its rows in
``sending``; once their lease (`lease_s`) expires the next worker reclaims and resends them. Delivery is
therefore at least once, and a row may be sent twice when the crash came after the receiver accepted it.
That resend is harmless because every attempt of a row carries the same idempotency key
(``streetwatch-<case id>-<adapter>``, as ``Idempotency-Key`` header or Open311 attribute) and receivers
dedupe by it, answering with the id they gave the first time.

`retry(outbox_id)` puts a ``dead`` row back in the queue (the manual retry endpoint).
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
from service.adapters.base import Adapter, OutboundMessage, PermanentSendError, SendError, SendResult
from service.cases import set_case_status, utc_now
from service.db.models import AuditEntry, Case, OutboxMessage

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
    """

    def __init__(self, session_factory: sessionmaker[Session], adapters: Mapping[str, Adapter] | Iterable[Adapter],
                 clock: Clock = utc_now, max_attempts: int = 16, base_backoff_s: float = 5.0,
                 max_backoff_s: float = 3600.0, lease_s: float = 300.0, batch_size: int = 20,
                 rng: random.Random | None = None):
        if max_attempts < 1 or base_backoff_s < 0 or max_backoff_s < base_backoff_s or lease_s <= 0:
            raise ValueError("OutboxWorker: need max_attempts >= 1, 0 <= base_backoff_s <= max_backoff_s, lease_s > 0")
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
        # (adapter, outcome) -> attempts finished by this process: sent, retry, dead (for /metrics).
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self._outcomes_lock = threading.Lock()

    def run_once(self, now: datetime | None = None) -> int:
        """Claim, send and record the due rows once; returns how many rows were attempted."""
        now = now or self._clock()
        claimed = self._claim(now)
        for row in claimed:
            if row.attempts > self.max_attempts:
                # Only reachable through repeated lease expiries: a row that crashes its worker every time.
                self._finish(row, now, error=f"gave up after {row.attempts - 1} attempts (lease expired)",
                             permanent=True)
                continue
            message = OutboundMessage(outbox_id=row.id, case_id=row.case_id, idempotency_key=row.idempotency_key,
                                      payload=row.payload, attempt=row.attempts)
            try:
                result = self.adapters[row.adapter].send(message)
            except SendError as exc:
                self._finish(row, now, error=str(exc), permanent=isinstance(exc, PermanentSendError))
            except Exception as exc:  # a bug in an adapter must not wedge the queue: count it as an attempt
                log.exception("outbox row %s: adapter %s failed unexpectedly", row.id, row.adapter)
                self._finish(row, now, error=f"unexpected {type(exc).__name__}: {exc}", permanent=False)
            else:
                self._finish(row, now, result=result)
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

    # internals

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
            return [_Claimed(r.id, r.case_id, r.adapter, r.idempotency_key, dict(r.payload), r.attempts, token)
                    for r in rows]

    def _finish(self, row: _Claimed, now: datetime, result: SendResult | None = None, error: str | None = None,
                permanent: bool = False) -> None:
        with self._sessions.begin() as session:
            mine = and_(OutboxMessage.id == row.id, OutboxMessage.claim_token == row.claim_token,
                        OutboxMessage.status == "sending")
            if result is not None:
                values: dict[str, Any] = dict(status="sent", remote_id=result.remote_id, sent_at=now)
                action = "sent"
            else:
                action = failure_action(row.attempts, self.max_attempts, permanent)
                values = dict(status="dead" if action == "dead" else "pending", last_error=error)
                if action == "retry":
                    delay_s = backoff_delay_s(row.attempts, self.base_backoff_s, self.max_backoff_s, self._rng)
                    values["next_attempt_at"] = now + timedelta(seconds=delay_s)
            done = session.execute(update(OutboxMessage).where(mine)
                                   .values(**values, lease_expires_at=None, claim_token=None, updated_at=now)
                                   .execution_options(synchronize_session=False))
            if done.rowcount != 1:
                # Our lease expired and another worker took the row over: its outcome counts, not ours.
                log.warning("outbox row %s: claim lost before recording %s", row.id, action)
                return
            self._update_case(session, row, action, now, result, error)
        with self._outcomes_lock:
            self.outcomes[(row.adapter, action)] += 1
        if action != "sent":
            log.warning("outbox row %s (case %s, %s): attempt %s failed (%s): %s", row.id, row.case_id, row.adapter,
                        row.attempts, action, error)

    @staticmethod
    def _update_case(session: Session, row: _Claimed, action: str, now: datetime, result: SendResult | None,
                     error: str | None) -> None:
        case = session.get_one(Case, row.case_id)
        if action == "sent":
            unsent = session.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.case_id == row.case_id, OutboxMessage.status != "sent"))
            if unsent == 0 and case.status in ("confirmed", "post_failed"):
                set_case_status(session, row.case_id, "posted", "outbox", now, adapter=row.adapter,
                                remote_id=result.remote_id if result else None)
        elif action == "dead" and case.status == "confirmed":
            set_case_status(session, row.case_id, "post_failed", "outbox", now, adapter=row.adapter, error=error)
