"""The adapter protocol and the classification of delivery outcomes (pure).

An adapter may also implement `Reconciler` (``reconcile(message, since)``): asked after a post whose outcome is
unknown (the worker died while it was in flight, or the answer never came), it finds out from the receiver
whether that post arrived, so that the outbox posts again only when it did not (see `service.outbox`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Mapping, Protocol, runtime_checkable

from detector.errors import StreetwatchError

__all__ = ["EVENT_ADAPTERS", "MQTT_ADAPTER", "Adapter", "OutboundMessage", "OutcomeUnknownError", "PermanentSendError",
           "ReconcileError", "Reconciler", "SendError", "SendResult", "TransientSendError", "classify_http_status", "HttpOutcome"]

HttpOutcome = Literal["ok", "permanent", "transient"]

MQTT_ADAPTER = "mqtt"
# Adapters whose outbox rows are event notifications (`service.adapters.mqtt`), not deliveries to a case system:
# they never make a case posted or post_failed and never stop an undo (service.outbox, CaseStore._deliveries).
EVENT_ADAPTERS: tuple[str, ...] = (MQTT_ADAPTER,)


@dataclass(frozen=True)
class OutboundMessage:
    """One delivery attempt of an outbox row, as the adapter sees it.

    Attributes:
        outbox_id: The outbox row.
        case_id: The case.
        idempotency_key: Same on every attempt of this row; receivers dedupe by it.
        payload: The adapter-neutral case description (`service.cases.build_case_payload`).
        attempt: 1 for the first attempt.
    """

    outbox_id: int
    case_id: int
    idempotency_key: str
    payload: Mapping[str, Any]
    attempt: int


@dataclass(frozen=True)
class SendResult:
    """A delivery the receiver accepted; `remote_id` is its id for the case (request id or token)."""

    remote_id: str | None


class SendError(StreetwatchError):
    """A delivery that failed; the message is kept in the outbox row's ``last_error``."""


class PermanentSendError(SendError):
    """Resending the same request cannot succeed (bad credentials, invalid fields): give up at once."""


class TransientSendError(SendError):
    """The receiver may accept it later (5xx, 408, 429, timeout, connection refused): retry with back-off."""


class OutcomeUnknownError(TransientSendError):
    """The request may have reached the receiver (a timeout or a lost connection after it was sent): the outbox
    reconciles with the receiver before it posts again."""


class ReconcileError(StreetwatchError):
    """The receiver could not be asked whether a post arrived (query refused, failed or unreadable)."""


def classify_http_status(status_code: int) -> HttpOutcome:
    """2xx → ok; 408 and 429 and 5xx → transient; other 4xx (and anything else) → permanent."""
    if 200 <= status_code < 300:
        return "ok"
    if status_code in (408, 429) or 500 <= status_code < 600:
        return "transient"
    return "permanent"


@runtime_checkable
class Adapter(Protocol):
    """Delivers outbox rows to one external system; `name` matches the outbox row's ``adapter``."""

    name: str

    def send(self, message: OutboundMessage) -> SendResult:
        """Deliver one message; raise PermanentSendError or TransientSendError on failure."""
        ...


@runtime_checkable
class Reconciler(Protocol):
    """An adapter that can find out whether a post whose outcome is unknown reached the receiver."""

    name: str

    def reconcile(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """The receiver's record of `message` posted at or after `since`: a `SendResult` with its id, or None
        when the receiver has none (posting again is safe). Raises ReconcileError when it cannot be asked."""
        ...
