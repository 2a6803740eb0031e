"""A standalone webhook receiver (stdlib only), run as its own process by the tests: what a city's system does
with streetwatch's signed webhook.

    python tests/webhook_server.py --port 8312 --secret SECRET --record received.json [--fail-first 3]

``POST`` (any path) must carry ``Content-Type: application/json``, the Standard Webhooks headers
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of
"<id>.<timestamp>.<body>">``) and ``X-Streetwatch-Signature: sha256=<hex>`` (HMAC-SHA256 of the exact body
bytes), both with the shared secret and checked in constant time, as a receiver should; a bad or missing
signature gets ``401``, a missing ``webhook-id`` or a body that is not JSON ``400``. With ``--fail-first N`` the
first N requests get ``503``. A delivery is deduplicated by its ``webhook-id``, as streetwatch requires of
receivers: a repeat gets the id of the first, ``201`` ``{"id": "WH-000001"}``.
The record file (rewritten atomically after each accepted request) maps each idempotency key to
``{"id", "received", "created", "body"}``: ``received`` counts accepted deliveries, ``created`` the records made
(1 for a deduplicated resend). Prints ``listening on PORT`` once ready.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class State:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.lock = threading.Lock()
        self.requests_seen = 0
        self.records: dict[str, dict] = {}

    def save(self) -> None:
        path = Path(self.args.record)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.records, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    secret = state.args.secret.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

        def _answer(self, status: int, body: object) -> None:
            raw = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.requests_seen += 1
                if state.requests_seen <= state.args.fail_first:
                    return self._answer(503, {"error": "temporarily unavailable"})
            expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, self.headers.get("X-Streetwatch-Signature") or ""):
                return self._answer(401, {"error": "bad signature"})
            key = self.headers.get("webhook-id")
            if not key:
                return self._answer(400, {"error": "webhook-id header is required"})
            stamp = self.headers.get("webhook-timestamp") or ""
            signed = f"{key}.{stamp}.".encode("utf-8") + body
            standard = "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode("ascii")
            if not any(hmac.compare_digest(standard, v) for v in (self.headers.get("webhook-signature") or "").split()):
                return self._answer(401, {"error": "bad webhook-signature"})
            if not self.headers.get("Content-Type", "").startswith("application/json"):
                return self._answer(400, {"error": "expected application/json"})
            try:
                payload = json.loads(body)
            except ValueError:
                return self._answer(400, {"error": "body is not JSON"})
            with state.lock:
                record = state.records.get(key)
                if record is None:
                    record = {"id": f"WH-{len(state.records) + 1:06d}", "received": 0, "created": 1, "body": payload}
                    state.records[key] = record
                record["received"] += 1
                state.save()
                return self._answer(201, {"id": record["id"]})

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True, help="the shared HMAC-SHA256 secret")
    parser.add_argument("--record", required=True, help="JSON file of accepted deliveries by idempotency key")
    parser.add_argument("--fail-first", type=int, default=0, help="answer 503 to the first N requests")
    args = parser.parse_args(argv)
    state = State(args)
    if Path(args.record).is_file():  # a restarted receiver keeps deduplicating what it already accepted
        state.records = json.loads(Path(args.record).read_text(encoding="utf-8"))
    else:
        state.save()
    server = ThreadingHTTPServer((args.host, args.port), make_handler(state))
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
