"""Exactly once at receivers that do not deduplicate: a post in doubt is reconciled before it is posted again.

Real receiver processes (tests/georeport_server.py, which creates a new service request for every POST, and
tests/webhook_server.py, which deduplicates by ``webhook-id``); crashes are simulated in process (an adapter
that dies after or before the request left) and, in the chaos test, with real ``kill -9`` of a worker process.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from service.adapters import (OutboundMessage, Open311Adapter, Open311Settings, ReconcileError, SendResult,
                              WebhookAdapter, WebhookSettings, build_open311_form, find_posted_request,
                              sign_standard, streetwatch_marker, verify_standard_signature)
from service.cases import CaseStore
from service.db import DatabaseSettings, make_engine, make_session_factory, upgrade_schema
from service.outbox import OutboxError, OutboxWorker
from tests.service.test_cases import FakeClock, session_factory  # noqa: F401
from tests.service.test_outbox import (API_KEY, MESSAGE, REPO_ROOT, WEBHOOK_SECRET, Crash, CrashAfterSend,  # noqa: F401
                                       RecordingAdapter, WebhookReceiver, confirmed_cases, georeport, open311,
                                       outbox_rows)


def real_clock() -> FakeClock:
    """A hand-moved clock that starts now: the receivers stamp requests with the real time."""
    return FakeClock(datetime.now(timezone.utc))


# --- pure parts -----------------------------------------------------------------------------------------

def request(sr_id: str, description: str) -> dict:
    return {"service_request_id": sr_id, "description": description, "status": "open"}


@pytest.mark.parametrize("answer, wanted, found", [
    ([], "streetwatch-1-open311", None),
    ([request("SR-1", "Stall [streetwatch_id: streetwatch-1-open311]")], "streetwatch-1-open311", "SR-1"),
    # the id ends at "]": case 1's marker is not found in case 12's description, nor the reverse
    ([request("SR-2", "Stall [streetwatch_id: streetwatch-12-open311]")], "streetwatch-1-open311", None),
    ([request("SR-2", "Stall [streetwatch_id: streetwatch-1-open311]")], "streetwatch-12-open311", None),
    ([request("SR-3", "someone else's stall"), request("SR-4", "x [streetwatch_id: streetwatch-7-open311]")],
     "streetwatch-7-open311", "SR-4"),
    ([{"token": "T-9", "description": "[streetwatch_id: streetwatch-7-open311]"}], "streetwatch-7-open311", "T-9"),
])
def test_find_posted_request(answer, wanted, found):
    result = find_posted_request(answer, wanted)
    assert (result.remote_id if result else None) == found


@pytest.mark.parametrize("answer", [{"code": 500}, "oops", [1, 2], None])
def test_find_posted_request_refuses_what_is_not_a_list_of_requests(answer):
    with pytest.raises(ReconcileError, match="not a list of requests"):
        find_posted_request(answer, "streetwatch-1-open311")


def test_the_marker_survives_the_description_limit():
    long = OutboundMessage(**{**MESSAGE.__dict__, "payload": {**MESSAGE.payload, "description": "x" * 5000}})
    description = build_open311_form(long, Open311Settings(endpoint="http://x", api_key="k"))["description"]
    assert len(description) == 4000 and description.endswith(streetwatch_marker("streetwatch-5-webhook"))


def test_open311_reconcile_asks_for_the_service_code_and_the_window():
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json=[request("SR-5", "… [streetwatch_id: streetwatch-5-webhook]")])

    adapter = Open311Adapter(Open311Settings(endpoint="https://city.example/v2", api_key="k",
                                             service_codes={"0504": "STALL"}, jurisdiction_id="city"),
                             client=httpx.Client(transport=httpx.MockTransport(handler)))
    since = datetime.now(timezone.utc) - timedelta(minutes=3)
    assert adapter.reconcile(MESSAGE, since) == SendResult(remote_id="SR-5")
    params = dict(seen[0].url.params)
    assert seen[0].method == "GET" and seen[0].url.path == "/v2/requests.json"
    assert (params["service_code"], params["jurisdiction_id"]) == ("STALL", "city")
    start = datetime.fromisoformat(params["start_date"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(params["end_date"].replace("Z", "+00:00"))
    assert start <= since - timedelta(minutes=9) and end >= datetime.now(timezone.utc)
    assert end - start < timedelta(days=90)  # the spec's largest range


@pytest.mark.parametrize("answer, reason", [
    (httpx.Response(500, text="boom"), "HTTP 500"), (httpx.Response(404), "HTTP 404"),
    (httpx.Response(200, text="<html>"), "not JSON"), (httpx.ConnectError("refused"), "ConnectError")])
def test_open311_reconcile_failures(answer, reason):
    def handler(req: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    adapter = Open311Adapter(Open311Settings(endpoint="https://city.example/v2", api_key="k"),
                             client=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(ReconcileError, match=reason):
        adapter.reconcile(MESSAGE, datetime.now(timezone.utc))


def test_webhook_carries_a_signed_stable_webhook_id():
    seen: list[httpx.Request] = []
    adapter = WebhookAdapter(WebhookSettings(url="https://city.example/hook", secret="s3cret-s3cret-s3cret"),
                             client=httpx.Client(transport=httpx.MockTransport(
                                 lambda r: seen.append(r) or httpx.Response(201, json={"id": "W-1"}))))
    adapter.send(MESSAGE)
    adapter.send(OutboundMessage(**{**MESSAGE.__dict__, "attempt": 2}))
    first, second = seen
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "streetwatch-5-webhook"
    stamp = int(first.headers["webhook-timestamp"])
    assert verify_standard_signature("streetwatch-5-webhook", stamp, first.content, "s3cret-s3cret-s3cret",
                                     first.headers["webhook-signature"])
    # the id is signed: another id (or body, or time) does not verify
    assert not verify_standard_signature("streetwatch-6-webhook", stamp, first.content, "s3cret-s3cret-s3cret",
                                         first.headers["webhook-signature"])
    assert not verify_standard_signature("streetwatch-5-webhook", stamp + 1, first.content, "s3cret-s3cret-s3cret",
                                         first.headers["webhook-signature"])
    # a whsec_ secret is base64, as the Standard Webhooks libraries read it
    assert sign_standard("id", 1, b"{}", "whsec_" + "czNjcmV0") == sign_standard("id", 1, b"{}", "s3cret")
    assert adapter.reconcile(MESSAGE, datetime.now(timezone.utc)) is None  # the receiver dedupes: post again


# --- a worker dies with a post in flight (real GeoReport v2 receiver, no deduplication) ---------------------

class CrashBeforeSend:
    """Stands in for kill -9 after the attempt was recorded but before the request left."""

    def __init__(self, inner: Open311Adapter):
        self.inner, self.name = inner, inner.name

    def send(self, message: OutboundMessage) -> SendResult:
        raise Crash()


def test_crash_before_the_post_left_posts_once_after_reconciling(session_factory, georeport, open311):  # noqa: F811
    clock = real_clock()
    server = georeport()
    [case_id] = confirmed_cases(session_factory, clock, 1)
    with pytest.raises(Crash):
        OutboxWorker(session_factory, [CrashBeforeSend(open311(server))], clock=clock, lease_s=30).run_once()
    clock.advance(31)
    worker = OutboxWorker(session_factory, [open311(server)], clock=clock, lease_s=30, reconcile_after_s=20)
    assert worker.run_once() == 1
    [row] = outbox_rows(session_factory)
    record = server.records()[f"streetwatch-{case_id}-open311"]
    assert (record["received"], record["created"], server.gets()) == (1, 1, 1)  # asked, not found, posted once
    assert (row.status, row.remote_id, row.attempt_started_at) == ("sent", record["service_request_id"], None)
    assert worker.outcomes[("open311", "reconciled_absent")] == 1


def test_a_reply_that_never_came_is_reconciled_after_reconcile_after_s(session_factory, georeport,  # noqa: F811
                                                                       open311):  # noqa: F811
    # The receiver creates the request at once and answers after 1.5 s; the adapter gives up after 0.5 s.
    clock = real_clock()
    server = georeport(extra=("--slow-s", "1.5"))
    [case_id] = confirmed_cases(session_factory, clock, 1)
    worker = OutboxWorker(session_factory, [open311(server, timeout_s=0.5)], clock=clock, reconcile_after_s=30,
                          rng=random.Random(1))
    assert worker.run_once() == 1
    [row] = outbox_rows(session_factory)
    assert row.status == "pending" and "ReadTimeout" in row.last_error
    assert row.attempt_started_at == clock.now and row.next_attempt_at >= clock.now + timedelta(seconds=30)
    clock.advance(10)
    assert worker.run_once() == 0  # not due before the receiver must have finished
    time.sleep(1.2)  # the receiver's slow answer ends (its request exists already)
    clock.advance(3600)
    assert worker.run_once() == 1
    [row] = outbox_rows(session_factory)
    record = server.records()[f"streetwatch-{case_id}-open311"]
    assert (record["received"], record["created"]) == (1, 1)
    assert (row.status, row.remote_id) == ("sent", record["service_request_id"])


@pytest.mark.parametrize("query_status", ["500", "404"])
def test_an_unqueryable_receiver_gets_needs_check_and_no_second_post(session_factory, georeport,  # noqa: F811
                                                                     open311, query_status):  # noqa: F811
    clock = real_clock()
    server = georeport(extra=("--query-fails", query_status))
    [case_id] = confirmed_cases(session_factory, clock, 1)
    with pytest.raises(Crash):
        OutboxWorker(session_factory, [CrashAfterSend(open311(server))], clock=clock, lease_s=30).run_once()
    worker = OutboxWorker(session_factory, [open311(server)], clock=clock, lease_s=30, reconcile_after_s=20,
                          max_reconcile_attempts=3, rng=random.Random(2))
    statuses = []
    for _ in range(8):  # simulated hours: every retry of the query is due
        clock.advance(3600)
        worker.run_once()
        statuses.append(outbox_rows(session_factory)[0].status)
    assert statuses[:3] == ["pending", "pending", "needs_check"] and set(statuses[3:]) == {"needs_check"}
    [row] = outbox_rows(session_factory)
    assert f"HTTP {query_status}" in row.last_error and row.reconcile_failures == 3
    record = server.records()[f"streetwatch-{case_id}-open311"]
    assert (record["received"], record["created"]) == (1, 1)  # never posted again
    store = CaseStore(session_factory, clock=clock)
    assert store.get(case_id).status == "confirmed"
    assert [a.action for a in store.audit_trail(case_id)][-1] == "outbox_needs_check"

    # a person finds it at the city and settles it
    with pytest.raises(OutboxError, match="needs the receiver's id"):
        worker.resolve(row.id, "sent", remote_id=" ")
    worker.resolve(row.id, "sent", remote_id=record["service_request_id"], actor="root")
    [row] = outbox_rows(session_factory)
    assert (row.status, row.remote_id, row.attempt_started_at) == ("sent", record["service_request_id"], None)
    assert store.get(case_id).status == "posted"
    with pytest.raises(OutboxError, match="only needs_check rows"):
        worker.resolve(row.id, "repost")


def test_a_receiver_down_while_reconciling_is_asked_again_then_found(session_factory, georeport,  # noqa: F811
                                                                     open311, tmp_path):  # noqa: F811
    clock = real_clock()
    server = georeport()
    [case_id] = confirmed_cases(session_factory, clock, 1)
    with pytest.raises(Crash):
        OutboxWorker(session_factory, [CrashAfterSend(open311(server))], clock=clock, lease_s=30).run_once()
    server.stop()  # down: the query is refused
    worker = OutboxWorker(session_factory, [open311(server)], clock=clock, lease_s=30, reconcile_after_s=20,
                          max_reconcile_attempts=5, rng=random.Random(3))
    for failures in (1, 2):
        clock.advance(3600)
        worker.run_once()
        [row] = outbox_rows(session_factory)
        assert (row.status, row.reconcile_failures) == ("pending", failures) and "ConnectError" in row.last_error
    server.start()  # the same record file: it still holds the first post
    clock.advance(3600)
    worker.run_once()
    [row] = outbox_rows(session_factory)
    record = server.records()[f"streetwatch-{case_id}-open311"]
    assert (row.status, row.remote_id, record["created"]) == ("sent", record["service_request_id"], 1)


def test_manual_repost_of_a_needs_check_row(session_factory):  # noqa: F811
    # An adapter that cannot be asked at all: needs_check at once; "repost" after a person checked.
    clock = FakeClock()
    [case_id] = confirmed_cases(session_factory, clock, 1)
    adapter = RecordingAdapter()
    with pytest.raises(Crash):
        OutboxWorker(session_factory, [CrashAfterSend(adapter)], clock=clock, lease_s=30).run_once()
    worker = OutboxWorker(session_factory, [adapter], clock=clock, lease_s=30, reconcile_after_s=20)
    clock.advance(31)
    worker.run_once()
    [row] = outbox_rows(session_factory)
    assert row.status == "needs_check" and "cannot be asked" in row.last_error
    clock.advance(86400)
    assert worker.run_once() == 0 and len(adapter.keys) == 1
    worker.resolve(row.id, "repost", actor="root")
    assert worker.run_once() == 1
    [row] = outbox_rows(session_factory)
    assert (row.status, len(adapter.keys)) == ("sent", 2)
    assert [a.action for a in CaseStore(session_factory, clock=clock).audit_trail(case_id)][-2:] == [
        "outbox_resolve_repost", "posted"]


def test_webhook_post_in_doubt_is_posted_again_and_the_receiver_dedupes(session_factory, tmp_path):  # noqa: F811
    clock = real_clock()
    receiver = WebhookReceiver(tmp_path).start()
    adapter = WebhookAdapter(WebhookSettings(url=receiver.url, secret=WEBHOOK_SECRET, timeout_s=5))
    try:
        [case_id] = confirmed_cases(session_factory, clock, 1, adapter="webhook")
        with pytest.raises(Crash):
            OutboxWorker(session_factory, [CrashAfterSend(adapter)], clock=clock, lease_s=30).run_once()
        clock.advance(31)
        OutboxWorker(session_factory, [adapter], clock=clock, lease_s=30, reconcile_after_s=20).run_once()
        record = receiver.records()[f"streetwatch-{case_id}-webhook"]
        assert (record["received"], record["created"]) == (2, 1)
        assert outbox_rows(session_factory)[0].remote_id == record["id"]
    finally:
        adapter.close()
        receiver.stop()


# --- chaos: kill -9 of a worker process while a 1 s slow receiver creates the requests ----------------------

@pytest.mark.slow
def test_kill9_during_delivery_to_a_slow_receiver_loses_none_and_duplicates_none(tmp_path, georeport):  # noqa: F811
    """12 cases, 6 `kill -9`s of the worker process, each right after the receiver got a POST and before its
    answer (1 s later) could be recorded: every case exactly once at a receiver that does not deduplicate."""
    n_cases, n_kills = 12, 6
    server = georeport(extra=("--slow-s", "1"))
    database = tmp_path / "cases.db"
    engine = make_engine(DatabaseSettings(path=database))
    upgrade_schema(engine)
    sessions = make_session_factory(engine)
    ids = confirmed_cases(sessions, real_clock(), n_cases)
    command = [sys.executable, str(REPO_ROOT / "tests" / "outbox_worker_process.py"), "--database", str(database),
               "--endpoint", server.endpoint, "--api-key", API_KEY, "--lease-s", "2", "--reconcile-after-s", "1.5",
               "--timeout-s", "1.2"]
    deadline = time.monotonic() + 60
    kills = 0
    try:
        while kills < n_kills and time.monotonic() < deadline:
            before = len(server.requests())
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            assert proc.stdout.readline().strip() == "ready"
            while len(server.requests()) == before and time.monotonic() < deadline:
                time.sleep(0.02)  # until the receiver holds a new request, whose answer is 1 s away
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            proc.stdout.close()
            kills += 1
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            while time.monotonic() < deadline:
                if {r.status for r in outbox_rows(sessions)} == {"sent"}:
                    break
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            proc.stdout.close()
        records = server.records()
        rows = outbox_rows(sessions)
        lost = [i for i in ids if f"streetwatch-{i}-open311" not in records]
        duplicated = [key for key, r in records.items() if r["created"] > 1]
        assert kills == n_kills
        assert (lost, duplicated) == ([], [])
        assert {r.status for r in rows} == {"sent"}
        assert [r.remote_id for r in rows] == [records[r.idempotency_key]["service_request_id"] for r in rows]
        assert server.gets() >= n_kills  # every killed post was reconciled, not simply posted again
        assert len(server.requests()) == n_cases
        print(json.dumps({"cases": n_cases, "kills": kills, "lost": 0, "duplicated": 0, "gets": server.gets()}))
    finally:
        engine.dispose()
