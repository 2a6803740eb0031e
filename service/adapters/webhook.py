"""Webhook adapter: POST the case as JSON, signed with HMAC-SHA256 over the raw body.

Headers: ``X-Streetwatch-Signature: sha256=<hex>`` (HMAC-SHA256 of the exact body bytes with the shared
secret), ``X-Streetwatch-Timestamp`` (UTC ISO 8601 of the attempt, for the receiver's logs and freshness
checks) and ``Idempotency-Key`` (the same on every attempt: receivers must dedupe by it, which makes
the outbox's at-least-once delivery effectively exactly-once).

Receivers verify with `verify_signature` (or the same three lines in their language), comparing in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import httpx

from service.adapters.base import (OutboundMessage, PermanentSendError, SendResult, TransientSendError,
                                   classify_http_status)

__all__ = ["WebhookAdapter", "WebhookSettings", "build_webhook_body", "sign_body", "verify_signature"]

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


class WebhookAdapter:
    """Sends outbox rows to a webhook. One `httpx.Client` per adapter; call `close()` when done."""

    def __init__(self, settings: WebhookSettings, client: httpx.Client | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.settings = settings
        self.name = settings.name
        self._client = client or httpx.Client(timeout=settings.timeout_s)
        self._clock = clock

    def headers(self, message: OutboundMessage, body: bytes) -> dict[str, str]:
        return {"Content-Type": "application/json; charset=utf-8",
                SIGNATURE_HEADER: sign_body(body, self.settings.secret),
                TIMESTAMP_HEADER: self._clock().isoformat(),
                "Idempotency-Key": message.idempotency_key}

    def send(self, message: OutboundMessage) -> SendResult:
        body = build_webhook_body(message)
        try:
            response = self._client.post(self.settings.url, content=body, headers=self.headers(message, body))
        except httpx.TransportError as exc:  # timeouts, refused connections, resets
            raise TransientSendError(f"webhook {self.settings.url}: {type(exc).__name__}: {exc}") from exc
        outcome = classify_http_status(response.status_code)
        if outcome == "ok":
            return SendResult(remote_id=_remote_id(response))
        error = f"webhook {self.settings.url}: HTTP {response.status_code}: {response.text[:500]}"
        raise (TransientSendError if outcome == "transient" else PermanentSendError)(error)

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
