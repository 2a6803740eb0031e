"""Delivery of confirmed cases to external case systems (used by `service.outbox.OutboxWorker`).

An adapter turns the adapter-neutral payload of an outbox row into one HTTP request and classifies the
answer: it returns a `SendResult` on success, raises `PermanentSendError` when resending cannot help (the
row goes ``dead`` at once) and `TransientSendError` when it may (the row is retried with back-off).
"""

from service.adapters.base import (Adapter, OutboundMessage, OutcomeUnknownError, PermanentSendError, ReconcileError,
                                   Reconciler, SendError, SendResult, TransientSendError, classify_http_status)
from service.adapters.open311 import (Open311Adapter, Open311Settings, build_open311_form, find_posted_request,
                                      parse_open311_response, streetwatch_marker)
from service.adapters.webhook import (WebhookAdapter, WebhookSettings, build_webhook_body, sign_body, sign_standard,
                                      verify_signature, verify_standard_signature)

__all__ = ["Adapter", "OutboundMessage", "Open311Adapter", "Open311Settings", "OutcomeUnknownError",
           "PermanentSendError", "ReconcileError", "Reconciler", "SendError", "SendResult", "TransientSendError",
           "WebhookAdapter", "WebhookSettings", "build_open311_form", "build_webhook_body", "classify_http_status",
           "find_posted_request", "parse_open311_response", "sign_body", "sign_standard", "streetwatch_marker",
           "verify_signature", "verify_standard_signature"]
