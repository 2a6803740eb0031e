"""A standalone Open311 GeoReport v2 test server (stdlib only), run as its own process by the tests.

    python tests/georeport_server.py --port 8311 --api-key KEY --record requests.json \
        [--fail-first 3] [--idempotency-attribute streetwatch_id]

``POST /requests.json`` (form-encoded) checks the field names against GeoReport v2 and the api_key, and
answers like a city would: ``[{"service_request_id": "..."}]`` on success, and the spec's error array
``[{"code": 403, "description": "Invalid api_key"}]`` (400 for bad fields). With ``--fail-first N`` the first
N requests get ``503``. Requests are deduplicated by the idempotency attribute: a repeat gets the id of the
first. The record file (rewritten atomically after each request) maps each idempotency key to
``{"service_request_id", "received", "created", "fields"}``; ``received`` counts deliveries, ``created``
counts service requests made (1 for a deduplicated resend). Prints ``listening on PORT`` once ready.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

KNOWN_FIELDS = {"api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id",
                "email", "device_id", "account_id", "first_name", "last_name", "phone", "description",
                "media_url"}


class State:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.lock = threading.Lock()
        self.requests_seen = 0
        self.records: dict[str, dict] = {}
        self.next_id = 1

    def save(self) -> None:
        path = Path(self.args.record)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.records, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)


def field_problems(fields: dict[str, str], attribute: str) -> list[str]:
    problems = []
    for name in fields:
        if name.startswith("attribute[") and name.endswith("]"):
            continue
        if name not in KNOWN_FIELDS:
            problems.append(f"unknown field {name!r}")
    if not fields.get("service_code"):
        problems.append("service_code is required")
    has_location = ("lat" in fields and "long" in fields) or "address_string" in fields or "address_id" in fields
    if not has_location:
        problems.append("a location is required: lat and long, address_string or address_id")
    for name in ("lat", "long"):
        if name in fields:
            try:
                float(fields[name])
            except ValueError:
                problems.append(f"{name} must be a number")
    if attribute and f"attribute[{attribute}]" not in fields:
        problems.append(f"attribute[{attribute}] is required")
    return problems


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
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
            path = self.path.split("?", 1)[0]
            if not path.endswith("/requests.json"):
                return self._answer(404, [{"code": 404, "description": f"no such resource {path}"}])
            if not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                return self._answer(400, [{"code": 400, "description": "expected a form-encoded body"}])
            length = int(self.headers.get("Content-Length") or 0)
            parsed = parse_qs(self.rfile.read(length).decode("utf-8"), keep_blank_values=True)
            fields = {k: v[-1] for k, v in parsed.items()}
            with state.lock:
                state.requests_seen += 1
                if state.requests_seen <= state.args.fail_first:
                    return self._answer(503, [{"code": 503, "description": "Service temporarily unavailable"}])
                if fields.get("api_key") != state.args.api_key:
                    return self._answer(403, [{"code": 403, "description": "Invalid api_key"}])
                problems = field_problems(fields, state.args.idempotency_attribute)
                if problems:
                    return self._answer(400, [{"code": 400, "description": p} for p in problems])
                key = fields.get(f"attribute[{state.args.idempotency_attribute}]") or f"anonymous-{state.next_id}"
                record = state.records.get(key)
                if record is None:
                    record = {"service_request_id": f"SR-{state.next_id:06d}", "received": 0, "created": 1,
                              "fields": fields}
                    state.next_id += 1
                    state.records[key] = record
                record["received"] += 1
                state.save()
                return self._answer(200, [{"service_request_id": record["service_request_id"],
                                           "service_notice": "received"}])

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--record", required=True, help="JSON file of received requests by idempotency key")
    parser.add_argument("--fail-first", type=int, default=0, help="answer 503 to the first N requests")
    parser.add_argument("--idempotency-attribute", default="streetwatch_id")
    args = parser.parse_args(argv)
    state = State(args)
    if Path(args.record).is_file():  # a restarted server keeps deduplicating what it already received
        state.records = json.loads(Path(args.record).read_text(encoding="utf-8"))
        state.next_id = len(state.records) + 1
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
