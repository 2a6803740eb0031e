"""Undo of a reviewer's own decision and the history of decided cases: the pure verdict as a table, then the
store on a real database (SQLite, and PostgreSQL where `db_settings` has one), then the two routes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from service.app import create_app
from service.cases import CaseSettings, CaseStore, UndoRefusedError
from service.db.models import OutboxMessage
from service.settings import Settings
from service.undo import Decision, Delivery, undo_verdict
from service.outbox import OutboxWorker
from tests.service.test_cases import T0, FakeClock, make_origin, make_violation

WINDOW_S = 600.0
AT = T0 + timedelta(hours=1)
UNTOUCHED = Delivery(1, "open311", "pending", 0)


def decision(action: str = "confirm", actor: str = "wang") -> Decision:
    return Decision(audit_id=9, action=action, actor=actor, at=AT)


# --- the verdict ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, made, actor, after_s, window_s, deliveries, code", [
    ("confirmed", decision(), "wang", 0, WINDOW_S, [UNTOUCHED], "ok"),
    ("confirmed", decision(), "wang", WINDOW_S, WINDOW_S, [UNTOUCHED], "ok"),             # the window's last moment
    ("confirmed", decision(), "wang", WINDOW_S + 1, WINDOW_S, [UNTOUCHED], "expired"),
    ("rejected", decision("reject"), "wang", 30, WINDOW_S, [], "ok"),
    ("rejected", decision("reject"), "li", 30, WINDOW_S, [], "not_own"),
    ("rejected", decision("reject"), "wang", 30, 0.0, [], "disabled"),
    ("confirmed", decision(), "wang", 30, WINDOW_S, [Delivery(1, "open311", "sending", 1)], "in_flight"),
    ("confirmed", decision(), "wang", 30, WINDOW_S, [Delivery(1, "open311", "pending", 1)], "in_flight"),  # retry due
    ("confirmed", decision(), "wang", 30, WINDOW_S, [Delivery(1, "open311", "needs_check", 1, True)], "in_flight"),
    ("confirmed", decision(), "wang", 30, WINDOW_S, [UNTOUCHED, Delivery(2, "webhook", "sent", 1)], "posted"),
    ("posted", decision(), "wang", 30, WINDOW_S, [], "posted"),
    ("post_failed", decision(), "wang", 30, WINDOW_S, [], "posted"),
    ("merged", decision("merge"), "wang", 30, WINDOW_S, [], "not_undoable"),
    ("pending", None, "wang", 30, WINDOW_S, [], "not_decided"),
    ("pending", decision(), "wang", 30, WINDOW_S, [], "not_decided"),                    # undone already
    ("rejected", decision("confirm"), "wang", 30, WINDOW_S, [], "not_undoable"),         # status set otherwise
    ("confirmed", decision(), "li", WINDOW_S + 1, WINDOW_S, [UNTOUCHED], "not_own"),     # whose first, then when
])
def test_undo_verdict(status, made, actor, after_s, window_s, deliveries, code):
    verdict = undo_verdict(4, status, made, actor, AT + timedelta(seconds=after_s), window_s, deliveries)
    assert (verdict.allowed, verdict.code) == (code == "ok", code)
    assert verdict.reason.startswith("case 4: ")
    if code in ("ok", "expired", "not_own", "in_flight"):
        assert verdict.until == AT + timedelta(seconds=window_s)


@pytest.mark.parametrize("delivery, untouched", [
    (Delivery(1, "a", "pending", 0), True),
    (Delivery(1, "a", "pending", 0, in_doubt=True), False),
    (Delivery(1, "a", "pending", 2), False),
    (Delivery(1, "a", "sending", 1), False),
    (Delivery(1, "a", "dead", 16), False),
])
def test_delivery_untouched(delivery, untouched):
    assert delivery.untouched is untouched


# --- the store ------------------------------------------------------------------------------------------------

@pytest.fixture
def session_factory(db_settings):
    from service.db import make_engine, make_session_factory, upgrade_schema

    engine = make_engine(db_settings)
    upgrade_schema(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def clock():
    return FakeClock(AT)


@pytest.fixture
def store(session_factory, clock):
    return CaseStore(session_factory, CaseSettings(adapters=("open311",), undo_window_s=WINDOW_S), clock=clock)


def new_case(store: CaseStore, n: int) -> int:
    return store.ingest(make_violation(f"cam-1/stall_occupation/z{n}/{n}", zone_id=f"z{n}"), origin=make_origin()).id


def outbox_rows(session_factory, case_id: int) -> list[OutboxMessage]:
    with session_factory() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.case_id == case_id)))


def test_a_confirmation_is_held_for_the_window_and_its_undo_withdraws_the_delivery(store, session_factory, clock):
    case_id = new_case(store, 1)
    store.confirm(case_id, "wang")
    [row] = outbox_rows(session_factory, case_id)
    assert row.next_attempt_at == AT + timedelta(seconds=WINDOW_S)  # nothing leaves before the window ends
    assert OutboxWorker(session_factory, {}, clock=clock).run_once() == 0
    clock.advance(300)
    undone = store.undo(case_id, "wang")
    assert (undone.status, outbox_rows(session_factory, case_id)) == ("pending", [])
    last = store.audit_trail(case_id)[-1]
    assert (last.actor, last.action, last.before, last.after["status"]) == ("wang", "undo", {
        "status": "confirmed", "reject_reason": None}, "pending")
    assert (last.after["undone"], last.after["outbox_withdrawn"]) == ("confirm", [row.id])
    store.confirm(case_id, "wang")  # confirmed again: a fresh row under the same idempotency key
    assert [r.status for r in outbox_rows(session_factory, case_id)] == ["pending"]


def test_a_rejection_is_undone_with_its_reason(store, clock):
    case_id = new_case(store, 1)
    store.reject(case_id, "wang", "awning, not a stall")
    clock.advance(WINDOW_S)
    undone = store.undo(case_id, "wang")
    assert (undone.status, undone.reject_reason) == ("pending", None)
    assert [a.action for a in store.audit_trail(case_id)] == ["created", "reject", "undo"]
    with pytest.raises(UndoRefusedError) as refused:  # nothing left to undo
        store.undo(case_id, "wang")
    assert refused.value.verdict.code == "not_decided"


@pytest.mark.parametrize("setup, who, code", [
    ("reject", "li", "not_own"),
    ("late", "wang", "expired"),
    ("claimed", "wang", "in_flight"),
    ("posted", "wang", "posted"),
    ("merged", "wang", "not_undoable"),
])
def test_refused_undo_changes_nothing(store, session_factory, clock, setup, who, code):
    case_id = new_case(store, 1)
    if setup == "reject":
        store.reject(case_id, "wang", "no")
    elif setup == "merged":
        store.merge([case_id], into=new_case(store, 2), actor="wang")
    else:
        store.confirm(case_id, "wang")
    if setup == "late":
        clock.advance(WINDOW_S + 1)
    if setup in ("claimed", "posted"):
        with session_factory.begin() as s:  # the worker claimed it (and, for posted, it went through)
            s.execute(update(OutboxMessage).where(OutboxMessage.case_id == case_id).values(
                status="sending" if setup == "claimed" else "sent", attempts=1))
    before = store.get(case_id)
    with pytest.raises(UndoRefusedError) as refused:
        store.undo(case_id, who)
    assert refused.value.verdict.code == code
    assert str(refused.value).startswith(f"case {case_id}: ")
    assert store.get(case_id).status == before.status and store.audit_trail(case_id)[-1].action != "undo"
    assert len(outbox_rows(session_factory, case_id)) == (0 if setup in ("reject", "merged") else 1)


def test_history_latest_decision_first_with_filters_paging_and_verdicts(store, clock):
    a, b, c, d = (new_case(store, n) for n in range(1, 5))
    store.confirm(a, "wang")
    clock.advance(10)
    store.reject(b, "li", "shadow")
    clock.advance(10)
    store.merge([c], into=a, actor="wang")
    clock.advance(10)
    store.reject(d, "wang", "no")
    store.undo(d, "wang")  # pending again: not in the history
    page = store.history("wang")
    assert [(e.case.id, e.decision.action, e.decision.actor, e.undo.code) for e in page.items] == [
        (c, "merge", "wang", "not_undoable"), (b, "reject", "li", "not_own"), (a, "confirm", "wang", "ok")]
    assert page.items[2].undo.until == AT + timedelta(seconds=WINDOW_S)
    assert [e.case.id for e in store.history("wang", mine=True).items] == [c, a]
    assert [e.case.id for e in store.history("li", statuses=("rejected", "confirmed")).items] == [b, a]
    first = store.history("wang", limit=2)
    assert [e.case.id for e in first.items] == [c, b] and first.next_cursor is not None
    rest = store.history("wang", limit=2, cursor=first.next_cursor)
    assert ([e.case.id for e in rest.items], rest.next_cursor) == ([a], None)
    clock.advance(WINDOW_S)
    assert store.history("wang", statuses=("confirmed",)).items[0].undo.code == "expired"


# --- the routes -----------------------------------------------------------------------------------------------

KEYS = {"wang": "reviewer-key-wang-0123456789", "li": "reviewer-key-li-01234567890"}
WANG, LI = ({"Authorization": f"Bearer {KEYS[k]}"} for k in ("wang", "li"))


@pytest.fixture
def client(tmp_path):
    settings = Settings(database_path=tmp_path / "cases.db", evidence_dir=tmp_path / "evidence", adapters=("open311",),
                        run_cameras=False, run_flights=False, outbox={"deliver": False}, review={"undo_window_s": 120},
                        api_keys=[{"name": name, "role": "reviewer", "key": key} for name, key in KEYS.items()])
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as c:
        c.case_ids = [new_case(app.state.services.cases, n) for n in (1, 2)]
        yield c


def test_undo_and_history_routes(client):
    first, second = client.case_ids
    assert client.post(f"/api/v1/cases/{first}/confirm", headers=WANG).status_code == 200
    assert client.post(f"/api/v1/cases/{second}/reject", json={"reason": "no"}, headers=LI).status_code == 200
    history = client.get("/api/v1/cases/history", headers=WANG).json()
    assert (history["count"], history["undo_window_s"], history["next_cursor"]) == (2, 120, None)
    assert [(e["case"]["id"], e["decision"]["actor"], e["undo"]["allowed"], e["undo"]["code"])
            for e in history["data"]] == [(second, "li", False, "not_own"), (first, "wang", True, "ok")]
    only = client.get("/api/v1/cases/history", params=[("status", "rejected"), ("status", "merged")], headers=WANG)
    assert [e["case"]["id"] for e in only.json()["data"]] == [second]
    bad = client.get("/api/v1/cases/history", params={"status": "pending"}, headers=WANG)
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"].startswith("status")

    refused = client.post(f"/api/v1/cases/{second}/undo", headers=WANG)
    assert refused.status_code == 409
    assert refused.json()["detail"] == f"case {second}: was rejected by li; only they can undo it"
    undone = client.post(f"/api/v1/cases/{first}/undo", headers=WANG)
    assert (undone.status_code, undone.json()["status"]) == (200, "pending")
    again = client.post(f"/api/v1/cases/{first}/undo", headers=WANG)
    assert again.status_code == 409 and "no decision to undo" in again.json()["detail"]
    assert client.post("/api/v1/cases/999/undo", headers=WANG).status_code == 404
    trail = client.get(f"/api/v1/cases/{first}/audit", headers=WANG).json()["data"]
    assert [(a["actor"], a["action"]) for a in trail] == [("system", "created"), ("wang", "confirm"), ("wang", "undo")]


def test_undo_window_is_a_bounded_setting(tmp_path):
    base = dict(database_path=tmp_path / "c.db", evidence_dir=tmp_path)
    assert Settings(**base).review.undo_window_s == 600
    for bad in (-1, 3601):
        with pytest.raises(ValueError, match="undo_window_s"):
            Settings(**base, review={"undo_window_s": bad})
