"""A standalone Open311 GeoReport v2 test server (stdlib only), run as its own process by the tests.

    python tests/georeport_server.py --port 8311 --api-key KEY --record requests.json \
        [--fail-first 3] [--idempotency-attribute streetwatch_id] [--dedupe] [--slow-s 1] [--query-fails 500]

``POST /requests.json`` (form-encoded) checks the field names against GeoReport v2 and the api_key, and
answers like a city would: ``[{"service_request_id": "..."}]`` on success, and the spec's error array
``[{"code": 403, "description": "Invalid api_key"}]`` (400 for bad fields). With ``--fail-first N`` the first
N POSTs get ``503``. Like a real city system (GeoReport v2 has no idempotency key) it does **not** deduplicate:
every accepted POST creates a new service request, a repeat included (``--dedupe``: a repeat with the same
idempotency attribute gets the id of the first, as a lenient receiver would). With ``--slow-s S`` the request
is created at once and the answer comes S seconds later (a worker killed meanwhile never hears of it).

``GET /requests.json`` lists the service requests as the spec's "GET Service Requests" does, filtered by
``service_code`` (comma-separated), ``start_date``/``end_date`` (on ``requested_datetime``, W3C date-times),
``service_request_id`` and ``status``: ``[{"service_request_id", "status", "service_code", "description",
"requested_datetime", ...}]``. With ``--query-fails 500`` (or 404) every GET gets that status instead.

The record file (rewritten atomically after each request) maps each streetwatch id (the idempotency
attribute) to ``{"service_request_id", "service_request_ids", "received", "created", "fields"}``:
``received`` counts accepted POSTs, ``created`` the service requests made for it (1 when it arrived exactly
once, or with ``--dedupe``), ``service_request_ids`` their ids. ``gets`` at the top level counts the GETs
answered. Prints ``listening on PORT`` once ready.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from datetime import datetime, timezone
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
        # Every service request made, in order: what GET requests.json lists.
        self.requests: list[dict] = []
        self.gets = 0
        self.next_id = 1

    def save(self) -> None:
        path = Path(self.args.record)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps({"records": self.records, "requests": self.requests, "gets": self.gets},
                                  indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)

    def load(self) -> None:
        data = json.loads(Path(self.args.record).read_text(encoding="utf-8"))
        self.records, self.requests, self.gets = data["records"], data["requests"], data["gets"]
        self.next_id = len(self.requests) + 1


def parse_w3c(text: str) -> datetime:
    """A W3C date-time (``2026-06-01T08:00:00Z`` or with an offset) as an aware datetime."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return t


def matching_requests(requests: list[dict], query: dict[str, str]) -> list[dict]:
    """The service requests a GET requests.json query selects (the spec's filters)."""
    start = parse_w3c(query["start_date"]) if query.get("start_date") else None
    end = parse_w3c(query["end_date"]) if query.get("end_date") else None
    codes = set(query["service_code"].split(",")) if query.get("service_code") else None
    ids = set(query["service_request_id"].split(",")) if query.get("service_request_id") else None
    out = []
    for r in requests:
        at = parse_w3c(r["requested_datetime"])
        if (start and at < start) or (end and at > end) or (codes and r["service_code"] not in codes) or \
                (ids and r["service_request_id"] not in ids) or \
                (query.get("status") and r["status"] != query["status"]):
            continue
        out.append(r)
    return out[-1000:]  # the spec: the last 1000 requests at most


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
    media_url = fields.get("media_url")
    if media_url is not None and not media_url.startswith(("http://", "https://")):
        problems.append("media_url must be an absolute http(s) URL")
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
            try:
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):  # the client was killed or gave up: expected here
                pass

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            path, _, query_text = self.path.partition("?")
            if not path.endswith("/requests.json"):
                return self._answer(404, [{"code": 404, "description": f"no such resource {path}"}])
            if state.args.query_fails:
                return self._answer(state.args.query_fails, [{"code": state.args.query_fails,
                                                              "description": "GET requests.json is not offered"}])
            query = {k: v[-1] for k, v in parse_qs(query_text, keep_blank_values=True).items()}
            with state.lock:
                try:
                    found = matching_requests(state.requests, query)
                except ValueError as exc:
                    return self._answer(400, [{"code": 400, "description": f"bad date: {exc}"}])
                state.gets += 1
                state.save()
            return self._answer(200, found)

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
                    record = {"service_request_id": None, "service_request_ids": [], "received": 0, "created": 0,
                              "fields": fields}
                    state.records[key] = record
                record["received"] += 1
                if record["created"] == 0 or not state.args.dedupe:
                    request_id = f"SR-{state.next_id:06d}"
                    state.next_id += 1
                    record["created"] += 1
                    record["service_request_ids"].append(request_id)
                    record["service_request_id"] = record["service_request_id"] or request_id
                    state.requests.append({
                        "service_request_id": request_id, "status": "open", "service_code": fields["service_code"],
                        "description": fields.get("description", ""), "lat": fields.get("lat"),
                        "long": fields.get("long"), "address": fields.get("address_string"),
                        "media_url": fields.get("media_url"),
                        "requested_datetime": datetime.now(timezone.utc).isoformat(timespec="seconds")})
                else:
                    request_id = record["service_request_id"]
                state.save()
            if state.args.slow_s:
                time.sleep(state.args.slow_s)  # created already: a client that dies now never hears of it
            return self._answer(200, [{"service_request_id": request_id, "service_notice": "received"}])

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--record", required=True, help="JSON file of received requests by idempotency key")
    parser.add_argument("--fail-first", type=int, default=0, help="answer 503 to the first N requests")
    parser.add_argument("--idempotency-attribute", default="streetwatch_id")
    parser.add_argument("--dedupe", action="store_true", help="a repeat of an idempotency attribute creates nothing")
    parser.add_argument("--slow-s", type=float, default=0.0, help="answer a POST this long after creating it")
    parser.add_argument("--query-fails", type=int, default=0, choices=(0, 404, 500),
                        help="answer every GET requests.json with this status")
    args = parser.parse_args(argv)
    state = State(args)
    if Path(args.record).is_file():  # a restarted server keeps what it already received
        state.load()
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
