"""Webhook adapter: POST the case as JSON, signed with HMAC-SHA256 over the raw body.

Headers (Standard Webhooks, https://www.standardwebhooks.com/, plus streetwatch's own):

- ``webhook-id``: the idempotency key, ``streetwatch-<case id>-<adapter>``, the same on every attempt of a
  case (also ``Idempotency-Key`` and the body's ``idempotency_key``). **The receiver must honour it**: a
  delivery whose id it has already accepted is answered with the id it gave the first time and creates
  nothing. The outbox posts again after a crash or a timeout whose outcome is unknown (`reconcile` says
  "post again"), so exactly once at the receiver rests on this.
- ``webhook-timestamp``: Unix seconds of the attempt; ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of
  "<webhook-id>.<webhook-timestamp>.<body>">`` (the id is signed, so it cannot be altered in transit). The key
  is the secret's UTF-8 bytes, or, for a ``whsec_`` secret, the base64 after the prefix (as the Standard
  Webhooks libraries do).
- ``X-Streetwatch-Signature: sha256=<hex>`` (HMAC-SHA256 of the exact body bytes, which include the
  idempotency key) and ``X-Streetwatch-Timestamp`` (UTC ISO 8601 of the attempt), as before.

Receivers verify with `verify_signature` / `verify_standard_signature` (or the same lines in their language),
comparing in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import httpx

from service.adapters.base import (OutboundMessage, OutcomeUnknownError, PermanentSendError, SendResult,
                                   TransientSendError, classify_http_status)

__all__ = ["WebhookAdapter", "WebhookSettings", "build_webhook_body", "sign_body", "sign_standard",
           "verify_signature", "verify_standard_signature"]

SIGNATURE_HEADER = "X-Streetwatch-Signature"
TIMESTAMP_HEADER = "X-Streetwatch-Timestamp"


@dataclass(frozen=True)
class WebhookSettings:
    """Attributes:
        url: Where to POST.
        secret: Shared HMAC secret.
        timeout_s: Connect/read/write timeout of one attempt.
        name: Adapter name used in outbox rows.
    """

    url: str
    secret: str
    timeout_s: float = 10.0
    name: str = "webhook"


def build_webhook_body(message: OutboundMessage) -> bytes:
    """The exact bytes sent (and signed): the payload plus the idempotency key, compact UTF-8 JSON."""
    body = {**message.payload, "idempotency_key": message.idempotency_key}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def sign_body(body: bytes, secret: str) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 of `body` keyed with `secret`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, secret: str, header_value: str) -> bool:
    """Whether `header_value` is the valid signature of `body` (constant-time comparison)."""
    return hmac.compare_digest(sign_body(body, secret), header_value or "")


def _standard_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode("utf-8")


def sign_standard(webhook_id: str, timestamp_s: int, body: bytes, secret: str) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``<id>.<timestamp>.<body>``."""
    signed = f"{webhook_id}.{timestamp_s}.".encode("utf-8") + body
    return "v1," + base64.b64encode(hmac.new(_standard_key(secret), signed, hashlib.sha256).digest()).decode("ascii")


def verify_standard_signature(webhook_id: str, timestamp_s: int, body: bytes, secret: str, header_value: str) -> bool:
    """Whether one of the space-separated signatures in `header_value` is valid (constant-time comparison)."""
    expected = sign_standard(webhook_id, timestamp_s, body, secret)
    return any(hmac.compare_digest(expected, v) for v in (header_value or "").split())


class WebhookAdapter:
    """Sends outbox rows to a webhook. One `httpx.Client` per adapter; call `close()` when done."""

    def __init__(self, settings: WebhookSettings, client: httpx.Client | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.settings = settings
        self.name = settings.name
        self._client = client or httpx.Client(timeout=settings.timeout_s)
        self._clock = clock

    def headers(self, message: OutboundMessage, body: bytes) -> dict[str, str]:
        now = self._clock()
        timestamp_s = int(now.timestamp())
        return {"Content-Type": "application/json; charset=utf-8",
                SIGNATURE_HEADER: sign_body(body, self.settings.secret),
                TIMESTAMP_HEADER: now.isoformat(),
                "Idempotency-Key": message.idempotency_key,
                "webhook-id": message.idempotency_key,
                "webhook-timestamp": str(timestamp_s),
                "webhook-signature": sign_standard(message.idempotency_key, timestamp_s, body, self.settings.secret)}

    def send(self, message: OutboundMessage) -> SendResult:
        body = build_webhook_body(message)
        try:
            response = self._client.post(self.settings.url, content=body, headers=self.headers(message, body))
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:  # nothing was sent
            raise TransientSendError(f"webhook {self.settings.url}: {type(exc).__name__}: {exc}") from exc
        except httpx.TransportError as exc:  # read timeouts, resets: perhaps received
            raise OutcomeUnknownError(f"webhook {self.settings.url}: {type(exc).__name__}: {exc}") from exc
        outcome = classify_http_status(response.status_code)
        if outcome == "ok":
            return SendResult(remote_id=_remote_id(response))
        error = f"webhook {self.settings.url}: HTTP {response.status_code}: {response.text[:500]}"
        raise (TransientSendError if outcome == "transient" else PermanentSendError)(error)

    def reconcile(self, message: OutboundMessage, since: datetime) -> SendResult | None:
        """Always "post again": the receiver deduplicates by ``webhook-id`` (required of it, see the module doc),
        so a repeated post of a delivery it already holds creates nothing and answers with its id."""
        return None

    def close(self) -> None:
        self._client.close()


def _remote_id(response: httpx.Response) -> str | None:
    try:
        data: Any = response.json()
    except ValueError:
        return None
    if isinstance(data, Mapping):
        for key in ("id", "case_id", "remote_id"):
            if data.get(key) is not None:
                return str(data[key])
    return None
