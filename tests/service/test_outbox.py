"""The outbox: back-off, signing, adapters' answers, claiming, and delivery to a real GeoReport v2 server process."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event, select, text

from service.adapters import (OutboundMessage, Open311Adapter, Open311Settings, PermanentSendError, SendResult,
                              TransientSendError, WebhookAdapter, WebhookSettings, build_open311_form,
                              classify_http_status, parse_open311_response, sign_body, verify_signature)
from service.cases import CaseSettings, CaseStore
from service.db import DatabaseSettings, make_engine, make_session_factory, upgrade_schema
from service.db.models import OutboxMessage
from service.outbox import OutboxError, OutboxWorker, backoff_cap_s, backoff_delay_s, failure_action
from tests.service.test_cases import FakeClock, make_origin, make_violation, session_factory  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[2]
API_KEY = "key-123"


# --- pure logic -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("attempt, cap_s", [(1, 5), (2, 10), (3, 20), (8, 640), (10, 2560), (11, 3600), (500, 3600)])
def test_backoff_schedule(attempt, cap_s):
    assert backoff_cap_s(attempt, base_backoff_s=5, max_backoff_s=3600) == cap_s
    rng = random.Random(attempt)
    delays = [backoff_delay_s(attempt, 5, 3600, rng) for _ in range(200)]
    assert all(0 <= d <= cap_s for d in delays)
    assert max(delays) > 0.8 * cap_s and min(delays) < 0.2 * cap_s  # full jitter spans the whole range


@pytest.mark.parametrize("attempts, permanent, action", [
    (1, False, "retry"), (7, False, "retry"), (8, False, "dead"), (1, True, "dead")])
def test_failure_action(attempts, permanent, action):
    assert failure_action(attempts, max_attempts=8, permanent=permanent) == action


@pytest.mark.parametrize("status, outcome", [
    (200, "ok"), (201, "ok"), (204, "ok"), (400, "permanent"), (401, "permanent"), (403, "permanent"),
    (404, "permanent"), (408, "transient"), (409, "permanent"), (422, "permanent"), (429, "transient"),
    (500, "transient"), (502, "transient"), (503, "transient"), (302, "permanent")])
def test_classify_http_status(status, outcome):
    assert classify_http_status(status) == outcome


MESSAGE = OutboundMessage(outbox_id=1, case_id=5, idempotency_key="streetwatch-5-webhook", attempt=1, payload={
    "case_id": 5, "category_code": "0504", "description": "Stall at 88 Nanjing Rd", "kind": "stall_occupation",
    "location": {"lat_deg": 31.2304, "lon_deg": 121.4737, "address": "88 Nanjing Rd", "grid_code": "g1"},
    "evidence": [{"kind": "original", "url": "https://sw.example/cases/5/evidence/2", "sha256": None},
                 {"kind": "annotated", "url": "https://sw.example/cases/5/evidence/1", "sha256": None}]})


def test_webhook_signs_the_raw_body():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "R-9"})

    adapter = WebhookAdapter(WebhookSettings(url="https://city.example/hook", secret="s3cret"),
                             client=httpx.Client(transport=httpx.MockTransport(handler)))
    assert adapter.send(MESSAGE) == SendResult(remote_id="R-9")
    request = seen[0]
    import hashlib
    import hmac
    expected = "sha256=" + hmac.new(b"s3cret", request.content, hashlib.sha256).hexdigest()
    assert request.headers["X-Streetwatch-Signature"] == expected == sign_body(request.content, "s3cret")
    assert verify_signature(request.content, "s3cret", request.headers["X-Streetwatch-Signature"])
    assert not verify_signature(request.content + b" ", "s3cret", expected)
    assert not verify_signature(request.content, "other", expected)
    assert request.headers["Idempotency-Key"] == "streetwatch-5-webhook"
    assert request.headers["X-Streetwatch-Timestamp"]
    body = json.loads(request.content)
    assert body["category_code"] == "0504" and body["idempotency_key"] == "streetwatch-5-webhook"
    assert body["evidence"][1]["url"] == "https://sw.example/cases/5/evidence/1"


@pytest.mark.parametrize("answer, error", [
    (httpx.Response(400, text="bad field"), PermanentSendError),
    (httpx.Response(408), TransientSendError),
    (httpx.Response(429), TransientSendError),
    (httpx.Response(503), TransientSendError),
    (httpx.ConnectError("refused"), TransientSendError),
    (httpx.ReadTimeout("slow"), TransientSendError),
])
def test_webhook_failures(answer, error):
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    adapter = WebhookAdapter(WebhookSettings(url="https://city.example/hook", secret="s"),
                             client=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(error, match="webhook https://city.example/hook"):
        adapter.send(MESSAGE)


def test_open311_form():
    form = build_open311_form(MESSAGE, Open311Settings(endpoint="http://x", api_key="k",
                                                       service_codes={"0504": "STALL"}))
    assert form == {"api_key": "k", "service_code": "STALL",
                    "description": "Stall at 88 Nanjing Rd [streetwatch_id: streetwatch-5-webhook]",
                    "lat": "31.2304000", "long": "121.4737000", "address_string": "88 Nanjing Rd",
                    "media_url": "https://sw.example/cases/5/evidence/1",
                    "attribute[streetwatch_id]": "streetwatch-5-webhook"}


@pytest.mark.parametrize("status, data, result", [
    (200, [{"service_request_id": "293944", "service_notice": "x"}], "293944"),
    (201, [{"token": "12345"}], "12345"),
    (403, [{"code": 403, "description": "Invalid api_key"}], PermanentSendError("403 Invalid api_key")),
    (400, [{"code": 400, "description": "service_code missing"}], PermanentSendError("service_code missing")),
    (503, None, TransientSendError("HTTP 503")),
    (200, [], PermanentSendError("without service_request_id")),
])
def test_parse_open311_response(status, data, result):
    if isinstance(result, Exception):
        with pytest.raises(type(result), match=str(result)):
            parse_open311_response(status, data)
    else:
        assert parse_open311_response(status, data).remote_id == result


# --- the worker with an in-process adapter --------------------------------------------------------------

class RecordingAdapter:
    """Accepts (or fails) deliveries in process and counts them by idempotency key."""

    name = "open311"

    def __init__(self, fail_with: Exception | None = None):
        self.fail_with = fail_with
        self.keys: list[str] = []
        self.lock = threading.Lock()

    def send(self, message: OutboundMessage) -> SendResult:
        with self.lock:
            self.keys.append(message.idempotency_key)
        if self.fail_with is not None:
            raise self.fail_with
        return SendResult(remote_id=f"R-{message.case_id}")


def confirmed_cases(session_factory, clock, n: int,  # noqa: F811
                    adapter: str = "open311", first: int = 0) -> list[int]:
    store = CaseStore(session_factory, CaseSettings(adapters=(adapter,)), clock=clock)
    ids = []
    for i in range(first, first + n):
        case = store.ingest(make_violation(f"v{i}", zone_id=f"z{i}"), origin=make_origin())
        ids.append(store.confirm(case.id, "alice").id)
    return ids


def outbox_rows(session_factory) -> list[OutboxMessage]:  # noqa: F811
    with session_factory() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_claimed_rows_are_not_claimed_again(session_factory):  # noqa: F811
    clock = FakeClock()
    confirmed_cases(session_factory, clock, 3)
    first, second = RecordingAdapter(), RecordingAdapter()
    worker_a = OutboxWorker(session_factory, [first], clock=clock)
    claimed = worker_a._claim(clock.now)  # worker A has claimed but not sent yet
    assert len(claimed) == 3
    assert OutboxWorker(session_factory, [second], clock=clock).run_once() == 0
    assert second.keys == []


def test_a_claim_takes_at_most_batch_size_rows(session_factory):  # noqa: F811
    # On PostgreSQL a single UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED) took every due row.
    clock = FakeClock()
    confirmed_cases(session_factory, clock, 7)
    worker = OutboxWorker(session_factory, [RecordingAdapter()], clock=clock, batch_size=3)
    batches = [[row.id for row in worker._claim(clock.now)] for _ in range(4)]
    assert [len(b) for b in batches] == [3, 3, 1, 0]
    assert sorted(sum(batches, [])) == [r.id for r in outbox_rows(session_factory)]


def test_two_concurrent_workers_send_each_row_once(session_factory):  # noqa: F811
    clock = FakeClock()
    confirmed_cases(session_factory, clock, 30)
    adapter = RecordingAdapter()
    workers = [OutboxWorker(session_factory, [adapter], clock=clock, batch_size=3) for _ in range(2)]

    def drain(worker: OutboxWorker) -> None:
        while worker.run_once():
            pass

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(adapter.keys) == sorted(set(adapter.keys)) and len(adapter.keys) == 30
    assert {r.status for r in outbox_rows(session_factory)} == {"sent"}


def test_a_claim_in_flight_never_hands_its_rows_to_another_worker(db_settings):
    # Two workers with connection pools of their own on the same database. Worker A stops inside its claim
    # transaction right after its UPDATE (rows changed and locked, not committed) while worker B claims.
    # PostgreSQL: B skips A's locked rows (FOR UPDATE SKIP LOCKED) and claims the others without waiting.
    # SQLite: B waits for A's write transaction (one writer at a time), then claims the others.
    postgresql = db_settings.url.startswith("postgresql")
    engines = [make_engine(db_settings) for _ in range(2)]
    try:
        upgrade_schema(engines[0])
        factories = [make_session_factory(e) for e in engines]
        clock = FakeClock()
        confirmed_cases(factories[0], clock, 6)
        a_updated, release_a = threading.Event(), threading.Event()

        @event.listens_for(engines[0], "after_cursor_execute")
        def pause_after_claim_update(conn, cursor, statement, *args):
            if statement.lstrip().upper().startswith("UPDATE OUTBOX") and not a_updated.is_set():
                a_updated.set()
                release_a.wait(30)

        workers = {name: OutboxWorker(f, [RecordingAdapter()], clock=clock, batch_size=3)
                   for name, f in zip("ab", factories)}
        claimed: dict[str, set[int]] = {}

        def claim(name: str) -> None:
            claimed[name] = {row.id for row in workers[name]._claim(clock.now)}

        thread_a = threading.Thread(target=claim, args=("a",))
        thread_a.start()
        assert a_updated.wait(10), "worker A never ran its claim UPDATE"
        thread_b = threading.Thread(target=claim, args=("b",))
        thread_b.start()
        thread_b.join(timeout=10 if postgresql else 0.5)
        b_waited = thread_b.is_alive()
        release_a.set()
        thread_a.join(timeout=30)
        thread_b.join(timeout=30)
        assert not thread_a.is_alive() and not thread_b.is_alive()
        if postgresql:
            assert not b_waited, "worker B waited for the rows worker A had locked"
        else:
            assert b_waited, "SQLite let a second writer in during worker A's claim"
        assert len(claimed["a"]) == len(claimed["b"]) == 3 and not claimed["a"] & claimed["b"]
        assert {r.status for r in outbox_rows(factories[1])} == {"sending"}
    finally:
        for engine in engines:
            engine.dispose()


def test_claim_skips_rows_another_transaction_holds(pg_schema_url):
    # PostgreSQL only: a row locked by any other transaction is skipped, not waited for, and is claimed once
    # the lock is gone.
    engine = make_engine(DatabaseSettings(url=pg_schema_url))
    try:
        upgrade_schema(engine)
        sessions = make_session_factory(engine)
        clock = FakeClock()
        confirmed_cases(sessions, clock, 4)
        worker = OutboxWorker(sessions, [RecordingAdapter()], clock=clock)
        result: list[set[int]] = []
        with engine.connect() as locker:
            locker.execute(text("SET lock_timeout = '20s'"))
            held = set(locker.execute(text("SELECT id FROM outbox ORDER BY id LIMIT 2 FOR UPDATE")).scalars())
            thread = threading.Thread(target=lambda: result.append({r.id for r in worker._claim(clock.now)}))
            thread.start()
            thread.join(timeout=10)
            assert not thread.is_alive(), "the claim waited for rows locked by another transaction"
            locker.rollback()
        assert len(held) == 2 and len(result[0]) == 2 and not held & result[0]
        assert {r.id for r in worker._claim(clock.now)} == held
    finally:
        engine.dispose()


def test_retries_then_dead_then_manual_retry(session_factory):  # noqa: F811
    clock = FakeClock()
    [case_id] = confirmed_cases(session_factory, clock, 1)
    adapter = RecordingAdapter(fail_with=TransientSendError("HTTP 503"))
    worker = OutboxWorker(session_factory, [adapter], clock=clock, max_attempts=3, rng=random.Random(1))
    store = CaseStore(session_factory, clock=clock)
    for attempt in (1, 2):
        assert worker.run_once() == 1
        [row] = outbox_rows(session_factory)
        assert (row.status, row.attempts, row.last_error) == ("pending", attempt, "HTTP 503")
        wait_s = (row.next_attempt_at - clock.now).total_seconds()
        assert 0 <= wait_s <= backoff_cap_s(attempt, 5, 3600)
        assert worker.run_once(clock.now - timedelta(seconds=1)) == 0  # not due before its time
        clock.now = row.next_attempt_at
    assert worker.run_once() == 1
    [row] = outbox_rows(session_factory)
    assert (row.status, row.attempts, row.last_error) == ("dead", 3, "HTTP 503")
    assert store.get(case_id).status == "post_failed"
    clock.advance(10_000)
    assert worker.run_once() == 0  # dead rows stay dead

    adapter.fail_with = None
    worker.retry(row.id, actor="alice")
    assert worker.run_once() == 1
    [row] = outbox_rows(session_factory)
    assert (row.status, row.remote_id, row.sent_at) == ("sent", f"R-{case_id}", clock.now)
    assert store.get(case_id).status == "posted"
    assert [a.action for a in store.audit_trail(case_id)][-3:] == ["post_failed", "outbox_retry", "posted"]
    with pytest.raises(OutboxError, match="only dead or pending"):
        worker.retry(row.id)


def test_permanent_failure_is_dead_at_once(session_factory):  # noqa: F811
    clock = FakeClock()
    [case_id] = confirmed_cases(session_factory, clock, 1)
    worker = OutboxWorker(session_factory, [RecordingAdapter(fail_with=PermanentSendError("HTTP 422: bad"))],
                          clock=clock)
    worker.run_once()
    [row] = outbox_rows(session_factory)
    assert (row.status, row.attempts, row.last_error) == ("dead", 1, "HTTP 422: bad")


# --- against a real GeoReport v2 server process ---------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GeoReportServer:
    """tests/georeport_server.py as a subprocess."""

    def __init__(self, tmp_path: Path, port: int, fail_first: int = 0, *extra: str):
        self.port, self.fail_first, self.extra = port, fail_first, extra
        self.record = tmp_path / f"georeport-{port}.json"
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/open311/v2"

    def start(self) -> "GeoReportServer":
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / "georeport_server.py"), "--port", str(self.port),
             "--api-key", API_KEY, "--record", str(self.record), "--fail-first", str(self.fail_first), *self.extra],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening"), line
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
            self.proc.stdout.close()
            self.proc = None

    def records(self) -> dict[str, dict]:
        """Streetwatch id -> what arrived for it (received posts, created service requests, their ids)."""
        return self._data().get("records", {})

    def requests(self) -> list[dict]:
        """Every service request the receiver made, in order."""
        return self._data().get("requests", [])

    def gets(self) -> int:
        return self._data().get("gets", 0)

    def _data(self) -> dict:
        return json.loads(self.record.read_text(encoding="utf-8")) if self.record.is_file() else {}


@pytest.fixture
def georeport(tmp_path):
    servers: list[GeoReportServer] = []

    def make(fail_first: int = 0, start: bool = True, extra: tuple[str, ...] = ()) -> GeoReportServer:
        server = GeoReportServer(tmp_path, free_port(), fail_first, *extra)
        servers.append(server)
        return server.start() if start else server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def open311():
    adapters: list[Open311Adapter] = []

    def make(server: GeoReportServer, api_key: str = API_KEY, timeout_s: float = 5) -> Open311Adapter:
        adapters.append(Open311Adapter(Open311Settings(endpoint=server.endpoint, api_key=api_key, timeout_s=timeout_s,
                                                       service_codes={"0504": "street-vending"})))
        return adapters[-1]

    yield make
    for adapter in adapters:
        adapter.close()


def test_confirmed_cases_arrive_exactly_once(session_factory, georeport, open311):  # noqa: F811
    clock = FakeClock()
    server = georeport()
    ids = confirmed_cases(session_factory, clock, 3)
    worker = OutboxWorker(session_factory, [open311(server)], clock=clock)
    assert worker.run_once() == 3
    assert worker.run_once() == 0
    records = server.records()
    assert sorted(records) == sorted(f"streetwatch-{i}-open311" for i in ids)
    assert all(r["received"] == 1 and r["created"] == 1 for r in records.values())
    fields = records[f"streetwatch-{ids[0]}-open311"]["fields"]
    assert fields["service_code"] == "street-vending" and fields["lat"] == "31.2304000"
    assert fields["address_string"] == "88 Nanjing Rd"
    rows = outbox_rows(session_factory)
    assert [r.remote_id for r in rows] == [records[r.idempotency_key]["service_request_id"] for r in rows]
    store = CaseStore(session_factory, clock=clock)
    assert {store.get(i).status for i in ids} == {"posted"}


def test_server_down_at_first_nothing_lost_nothing_twice(session_factory, georeport, open311):  # noqa: F811
    clock = FakeClock()
    server = georeport(fail_first=2, start=False)  # not listening yet; then two 503s once it is
    ids = confirmed_cases(session_factory, clock, 4)
    # With the default 8 attempts, full jitter from 5 s gives up after ~5 min of outage on average (the waits
    # before attempt 8 have caps summing to 635 s): a city system down for minutes needs more attempts.
    worker = OutboxWorker(session_factory, [open311(server)], clock=clock, max_attempts=12, rng=random.Random(7))
    outage_end = clock.now + timedelta(minutes=5)
    while clock.now < outage_end:  # five simulated minutes of refused connections
        worker.run_once()
        clock.advance(20)
    rows = outbox_rows(session_factory)
    assert {r.status for r in rows} == {"pending"} and all("ConnectError" in r.last_error for r in rows)
    assert all(r.attempts < 12 for r in rows)
    server.start()
    for _ in range(40):  # simulated time only: each step jumps past the longest possible wait
        worker.run_once()
        if all(r.status == "sent" for r in outbox_rows(session_factory)):
            break
        clock.advance(3600)
    rows = outbox_rows(session_factory)
    assert {r.status for r in rows} == {"sent"}
    records = server.records()
    assert sorted(records) == sorted(f"streetwatch-{i}-open311" for i in ids)
    assert all(r["received"] == 1 and r["created"] == 1 for r in records.values())


def test_wrong_api_key_is_dead_with_the_spec_error(session_factory, georeport, open311):  # noqa: F811
    clock = FakeClock()
    server = georeport()
    [case_id] = confirmed_cases(session_factory, clock, 1)
    OutboxWorker(session_factory, [open311(server, api_key="wrong")], clock=clock).run_once()
    [row] = outbox_rows(session_factory)
    assert (row.status, row.attempts) == ("dead", 1)
    assert row.last_error == "open311: HTTP 403: 403 Invalid api_key"
    assert CaseStore(session_factory, clock=clock).get(case_id).status == "post_failed"
    assert server.records() == {}


class Crash(BaseException):
    """Stands in for kill -9 right after the receiver accepted the request."""


class CrashAfterSend:
    def __init__(self, inner: Open311Adapter):
        self.inner, self.name = inner, inner.name

    def send(self, message: OutboundMessage) -> SendResult:
        self.inner.send(message)
        raise Crash()


def test_crash_after_send_is_reconciled_not_posted_again(session_factory, georeport, open311):  # noqa: F811
    # The receiver does not deduplicate: a blind resend after the crash would create the case twice.
    clock = FakeClock(datetime.now(timezone.utc))  # the receiver stamps requests with the real time
    server = georeport()
    [case_id] = confirmed_cases(session_factory, clock, 1)
    with pytest.raises(Crash):
        OutboxWorker(session_factory, [CrashAfterSend(open311(server))], clock=clock, lease_s=300).run_once()
    [row] = outbox_rows(session_factory)
    assert (row.status, row.attempt_ref) == ("sending", f"streetwatch-{case_id}-open311")
    assert row.attempt_started_at == clock.now  # committed before the request left
    fresh = OutboxWorker(session_factory, [open311(server)], clock=clock, lease_s=300)
    assert fresh.run_once() == 0  # the lease still holds
    clock.advance(301)
    assert fresh.run_once() == 1
    [row] = outbox_rows(session_factory)
    record = server.records()[f"streetwatch-{case_id}-open311"]
    assert (record["received"], record["created"], server.gets()) == (1, 1, 1)
    assert (row.status, row.attempts, row.remote_id) == ("sent", 2, record["service_request_id"])
    assert (row.attempt_started_at, row.attempt_ref) == (None, None)
    assert CaseStore(session_factory, clock=clock).get(case_id).status == "posted"
    assert fresh.outcomes[("open311", "reconciled_sent")] == 1


# --- against a real webhook receiver process ---------------------------------------------------------------

WEBHOOK_SECRET = "webhook-secret-0123456789"


class WebhookReceiver:
    """tests/webhook_server.py as a subprocess: checks the HMAC signatures, dedupes by webhook-id."""

    def __init__(self, tmp_path: Path, fail_first: int = 0):
        self.port, self.fail_first = free_port(), fail_first
        self.record = tmp_path / "webhook.json"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/city/cases"

    def start(self) -> "WebhookReceiver":
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "tests" / "webhook_server.py"), "--port", str(self.port),
             "--secret", WEBHOOK_SECRET, "--record", str(self.record), "--fail-first", str(self.fail_first)],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening"), line
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
            self.proc.stdout.close()
            self.proc = None

    def records(self) -> dict[str, dict]:
        return json.loads(self.record.read_text(encoding="utf-8")) if self.record.is_file() else {}


def test_webhook_receiver_down_then_503_then_every_case_once_signed(session_factory, tmp_path):  # noqa: F811
    clock = FakeClock()
    receiver = WebhookReceiver(tmp_path, fail_first=2)  # not listening yet; then two 503s once it is
    adapter = WebhookAdapter(WebhookSettings(url=receiver.url, secret=WEBHOOK_SECRET, timeout_s=5))
    wrong = WebhookAdapter(WebhookSettings(url=receiver.url, secret="not-the-city-secret-000", timeout_s=5))
    try:
        ids = confirmed_cases(session_factory, clock, 3, adapter="webhook")
        worker = OutboxWorker(session_factory, [adapter], clock=clock, max_attempts=12, rng=random.Random(3))
        for _ in range(5):  # refused connections: retried with back-off, nothing lost
            worker.run_once()
            clock.advance(20)
        rows = outbox_rows(session_factory)
        assert {r.status for r in rows} == {"pending"} and all("ConnectError" in r.last_error for r in rows)
        receiver.start()
        for _ in range(40):  # simulated time only: each step jumps past the longest possible wait
            worker.run_once()
            if all(r.status == "sent" for r in outbox_rows(session_factory)):
                break
            clock.advance(3600)
        rows = outbox_rows(session_factory)
        assert {r.status for r in rows} == {"sent"}
        records = receiver.records()
        assert sorted(records) == sorted(f"streetwatch-{i}-webhook" for i in ids)
        assert all((r["received"], r["created"]) == (1, 1) for r in records.values())
        assert [r.remote_id for r in rows] == [records[r.idempotency_key]["id"] for r in rows]
        body = records[f"streetwatch-{ids[0]}-webhook"]["body"]
        assert (body["case_id"], body["category_code"], body["idempotency_key"]) == (
            ids[0], "0504", f"streetwatch-{ids[0]}-webhook")
        assert {c for c in (CaseStore(session_factory, clock=clock).get(i).status for i in ids)} == {"posted"}

        # a wrong secret: the receiver refuses the signature (401), a permanent error kept on the dead row; once
        # the secret is right, the manual retry delivers it
        [late] = confirmed_cases(session_factory, clock, 1, adapter="webhook", first=3)
        OutboxWorker(session_factory, [wrong], clock=clock).run_once()
        dead = outbox_rows(session_factory)[-1]
        assert (dead.case_id, dead.status, dead.attempts) == (late, "dead", 1)
        assert dead.last_error == f"webhook {receiver.url}: HTTP 401: " + '{"error": "bad signature"}'
        assert f"streetwatch-{late}-webhook" not in receiver.records()
        worker.retry(dead.id, actor="root")
        assert worker.run_once() == 1
        assert outbox_rows(session_factory)[-1].status == "sent"
        assert receiver.records()[f"streetwatch-{late}-webhook"]["received"] == 1
    finally:
        adapter.close()
        wrong.close()
        receiver.stop()
