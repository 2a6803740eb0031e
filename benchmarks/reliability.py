"""Chaos benchmark (issue 17): exactly-once delivery under kill -9, camera recovery, evidence-write failures.

Everything that matters runs as a real process, as in production:

* **Delivery**: ``streetwatch serve`` (``python -m service.cli serve --settings …``, the service itself with
  its API and outbox worker, not a test double) delivers confirmed cases to ``tests/georeport_server.py``, a
  strict Open311 GeoReport v2 receiver process that does **not** deduplicate (every accepted POST creates a
  service request, as a city's system does). Per receiver mode, N pending cases are put in the database first
  (with an evidence image each, so every post carries a signed ``media_url`` the strict receiver checks);
  then in cycles the service is started, a reviewer confirms the next share of the cases through the live
  API, and the service is killed with SIGKILL as soon as the receiver has created a new request (with the
  1 s slow receiver that is inside the window where the issue found duplicates: the receiver has the
  request, the service has not heard back) or, when nothing arrives, after a short timeout. After the last
  kill the service runs until every case's outbox row has left the queue. Modes: ``fast``; ``slow`` (each
  answer 1 s after the request was created); ``failing`` (the first 20 POSTs answered 503); ``down``
  (the receiver is stopped for 30 s during the kills). Counted: delivered (outbox row ``sent`` with the
  receiver's id), lost (a confirmed case the receiver never got), duplicated (a case the receiver created
  twice or more), ``needs_check`` and ``dead`` rows, the receiver's POSTs and reconciling GETs.
* **Stream recovery**: one ``streetwatch serve`` with two cameras: real RTSP (GStreamer's RTSP server process,
  tests/rtsp_server.py, serving ../shared/footage/people-walking.mp4) and HTTP MJPEG (a server process of this
  module, ``--serve-mjpeg``, streaming frames of the same footage at 5 fps). Both camera servers are
  SIGKILLed (a power cut), kept off for the outage (30 s), and started again on the same port; the recovery
  time is from the moment the server accepts connections again until the service has analysed a new frame
  of that camera (polled every 0.2 s through ``GET /api/v1/cameras/{id}``), so it includes connecting, the
  first keyframe and one inference.
* **Evidence-write failures**: in process (a violation needs a detection, which no camera here produces on
  demand): the real app (``create_app``) and the real camera-worker code path that writes evidence, with the
  camera's evidence folder made unusable (a file where the folder must be: a read-only folder does not stop
  root). Counted: events, cases kept, failures in ``streetwatch_evidence_write_failures_total``, ``/health``
  and ``/ready`` during the failures and after the folder is usable again, rows pointing at missing files.

Run (the full benchmark; its 36 ``serve`` starts dominate: 12 minutes on 2 cores shared with a load average
of 15-18, less on an idle machine):
    python -m benchmarks.reliability
writes benchmarks/results/reliability.{json,md} and docs/RELIABILITY.md; ``--render FILE.json`` writes the
markdown again from a results file. Smoke run (45-90 s, used by tests/benchmarks/test_reliability.py; writes
elsewhere so it is not mistaken for a result):
    python -m benchmarks.reliability --quick --results-dir /tmp/rel --doc /tmp/rel/RELIABILITY.md
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS_DIR, environment, md_table, shared_dir  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DOC_PATH = REPO / "docs" / "RELIABILITY.md"
RECEIVER_API_KEY = "bench-city-key"
SERVICE_CODE = "street-vending"
TERMINAL_STATUSES = ("sent", "needs_check", "dead")
#: The issue's own measurements, for the comparison in the report.
MODE_TEXT = {"fast": "`fast` answers at once",
             "slow": "`slow` creates the request, then answers 1 s later (a kill in that second is the issue's "
                     "duplicate)",
             "failing": "`failing` answers 503 to the first 20 POSTs",
             "down": "`down` is stopped for {down_s:.0f} s after the first kill (kills go on meanwhile)"}
ISSUE_FIGURES = {"duplicated_slow": "8 of 60 (13 kills, 1 s slow receiver)", "rtsp_recovery_s": [16.8, 2.5, 2.8],
                 "mjpeg_recovery_s": "1.8-4.1"}


# --- plans and results (pure) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModeSpec:
    """One receiver mode of the delivery chaos run.

    Attributes:
        name: "fast", "slow", "failing" or "down".
        receiver_args: Extra arguments of tests/georeport_server.py.
        kills: SIGKILLs of the service during delivery.
        down_s: The receiver is stopped this long after the first kill (0: never).
        trigger_timeout_s: A cycle kills the service when the receiver created a new request, or after this long.
    """

    name: str
    receiver_args: tuple[str, ...]
    kills: int
    down_s: float = 0.0
    trigger_timeout_s: float = 2.0


@dataclass(frozen=True)
class Plan:
    """What one run does; `full_plan` and `quick_plan` make the two sizes."""

    cases: int
    modes: tuple[ModeSpec, ...]
    outages: int
    outage_s: float
    evidence_events: int
    settle_timeout_s: float
    #: Outbox timings of the service (seconds): Open311 timeout, lease, reconcile-after (the last two must
    #: exceed the first, as the settings check), shortened from the defaults (minutes) so a run takes minutes.
    open311_timeout_s: float = 3.0
    lease_s: float = 5.0
    reconcile_after_s: float = 4.0


def full_plan() -> Plan:
    """The benchmark: 60 cases per mode, 20 kills with the slow receiver (the issue's duplicates), 32 in all."""
    return Plan(cases=60, modes=(
        ModeSpec("fast", (), kills=4),
        ModeSpec("slow", ("--slow-s", "1"), kills=20, trigger_timeout_s=4.0),
        ModeSpec("failing", ("--fail-first", "20"), kills=4),
        ModeSpec("down", (), kills=4, down_s=30.0),
    ), outages=3, outage_s=30.0, evidence_events=5, settle_timeout_s=240.0)


def quick_plan() -> Plan:
    """A smoke run (45-90 s): the slow receiver with 1 kill, one 3 s stream outage, shorter outbox timings."""
    return Plan(cases=4, modes=(ModeSpec("slow", ("--slow-s", "1"), kills=1, trigger_timeout_s=4.0),),
                outages=1, outage_s=3.0, evidence_events=2, settle_timeout_s=40.0, open311_timeout_s=1.5,
                lease_s=2.5, reconcile_after_s=2.0)


@dataclass(frozen=True)
class DeliveryResult:
    """One receiver mode's outcome (see the module docstring for the meaning of each count)."""

    mode: str
    cases: int
    kills: int
    delivered: int
    lost: int
    duplicated: int
    needs_check: int
    dead: int
    not_finished: int
    remote_id_mismatches: int
    receiver_posts: int
    receiver_gets: int
    elapsed_s: float
    lost_ids: tuple[int, ...] = ()
    duplicated_ids: tuple[int, ...] = ()


def idempotency_key(case_id: int) -> str:
    """The streetwatch id a post carries (`service.cases.idempotency_key` for the Open311 adapter)."""
    return f"streetwatch-{case_id}-open311"


def delivery_outcome(mode: str, case_ids: Sequence[int], kills: int, records: Mapping[str, Mapping[str, Any]],
                     rows: Mapping[int, tuple[str, str | None]], gets: int, elapsed_s: float) -> DeliveryResult:
    """Compare what the receiver holds with what the outbox says.

    Args:
        mode: The receiver mode's name.
        case_ids: The confirmed cases.
        kills: SIGKILLs done.
        records: The receiver's record file's ``records``: streetwatch id -> ``{"received", "created",
            "service_request_id", ...}``.
        rows: Case id -> (outbox status, remote id) of its Open311 row.
        gets: GET requests.json the receiver answered (reconciles).
        elapsed_s: Wall time of the mode.

    Example:
        >>> r = delivery_outcome("fast", [1, 2], 1, {"streetwatch-1-open311": {"received": 1, "created": 1,
        ...                      "service_request_id": "SR-1"}}, {1: ("sent", "SR-1"), 2: ("pending", None)}, 0, 1.0)
        >>> (r.delivered, r.lost, r.duplicated, r.not_finished)
        (1, 1, 0, 1)
    """
    lost = tuple(i for i in case_ids if idempotency_key(i) not in records)
    duplicated = tuple(i for i in case_ids if records.get(idempotency_key(i), {}).get("created", 0) > 1)
    statuses = [rows.get(i, ("missing", None))[0] for i in case_ids]
    mismatches = sum(1 for i in case_ids if rows.get(i, ("", None))[0] == "sent"
                     and rows[i][1] != records.get(idempotency_key(i), {}).get("service_request_id"))
    return DeliveryResult(
        mode=mode, cases=len(case_ids), kills=kills, delivered=statuses.count("sent"), lost=len(lost),
        duplicated=len(duplicated), needs_check=statuses.count("needs_check"), dead=statuses.count("dead"),
        not_finished=sum(1 for s in statuses if s not in TERMINAL_STATUSES), remote_id_mismatches=mismatches,
        receiver_posts=sum(int(r.get("received", 0)) for r in records.values()), receiver_gets=gets,
        elapsed_s=round(elapsed_s, 1), lost_ids=lost, duplicated_ids=duplicated)


@dataclass(frozen=True)
class RecoveryResult:
    """One outage of one camera: how long after the stream returned a new frame was analysed (None: never)."""

    camera: str
    kind: str
    outage: int
    outage_s: float
    recovery_s: float | None
    state_during_outage: str | None


@dataclass(frozen=True)
class EvidenceResult:
    """The evidence-write check (see the module docstring)."""

    events: int
    cases_kept: int
    failures_counted: int
    metric_value: float | None
    health_during: str
    ready_during: int
    health_after: str
    ready_after: int
    rows_without_file: int
    evidence_after: int


@dataclass
class Report:
    """Everything one run measured (JSON-ready through `to_dict`)."""

    plan: Plan
    delivery: list[DeliveryResult] = field(default_factory=list)
    recovery: list[RecoveryResult] = field(default_factory=list)
    evidence: EvidenceResult | None = None
    skipped: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    command: str = ""
    environment: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"command": self.command, "elapsed_s": round(self.elapsed_s, 1), "environment": self.environment,
                "plan": asdict(self.plan), "delivery": [asdict(d) for d in self.delivery],
                "recovery": [asdict(r) for r in self.recovery], "recovery_max_s": recovery_max_s(self.recovery),
                "evidence": None if self.evidence is None else asdict(self.evidence), "skipped": self.skipped,
                "issue_figures": ISSUE_FIGURES}


def recovery_max_s(results: Iterable[RecoveryResult]) -> dict[str, float | None]:
    """The slowest recovery per camera kind (None when one never recovered: that is worse than any figure).

    Example:
        >>> recovery_max_s([RecoveryResult("a", "rtsp", 1, 30, 2.0, None),
        ...                 RecoveryResult("a", "rtsp", 2, 30, 3.5, None)])
        {'rtsp': 3.5}
    """
    out: dict[str, float | None] = {}
    for r in results:
        if r.kind not in out:
            out[r.kind] = r.recovery_s
        elif out[r.kind] is not None:
            out[r.kind] = None if r.recovery_s is None else max(out[r.kind], r.recovery_s)
    return out


def _fmt_s(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"


def to_markdown(report: Report) -> str:
    """The results as markdown: tables of delivery, recovery and evidence, and what is not covered."""
    plan = report.plan
    lines = ["# Reliability under chaos (issue 17)", "",
             f"Generated by `{report.command}` on {report.environment.get('date_utc', '?')} "
             f"({report.environment.get('cpu_count', '?')} cores, {report.environment.get('cpu_model', '?')}); "
             f"the run took {report.elapsed_s / 60:.1f} min. The method is in the docstring of "
             "`benchmarks/reliability.py`; the raw figures are in `benchmarks/results/reliability.json`.", ""]
    if report.delivery:
        kills = sum(d.kills for d in report.delivery)
        lines += ["## Exactly once at a receiver that does not deduplicate", "",
                  f"`streetwatch serve` as a process, SIGKILLed {kills} times in all while delivering to a strict "
                  "Open311 GeoReport v2 receiver process (`tests/georeport_server.py`, no deduplication). "
                  f"{plan.cases} cases per mode, confirmed through the live API between the kills.", "",
                  md_table(["receiver mode", "cases", "kill -9", "delivered", "lost", "duplicated", "needs_check",
                            "dead", "unfinished", "remote id ≠ receiver's", "POSTs at receiver",
                            "reconcile GETs", "time s"],
                           [[d.mode, d.cases, d.kills, d.delivered, d.lost, d.duplicated, d.needs_check, d.dead,
                             d.not_finished, d.remote_id_mismatches, d.receiver_posts, d.receiver_gets,
                             f"{d.elapsed_s:.0f}"] for d in report.delivery]), "",
                  "Modes: " + "; ".join(MODE_TEXT[m.name].format(down_s=m.down_s) for m in plan.modes
                                        if m.name in MODE_TEXT) + ". "
                  "A kill comes as soon as the receiver has created a new request (or after "
                  f"{min(m.trigger_timeout_s for m in plan.modes):.0f}-{max(m.trigger_timeout_s for m in plan.modes):.0f}"
                  " s without one). POSTs at the receiver count accepted posts only (503s are not recorded). "
                  f"Outbox timings of the run: Open311 timeout {plan.open311_timeout_s:g} s, lease {plan.lease_s:g} s, "
                  f"reconcile after {plan.reconcile_after_s:g} s, back-off 0.5-4 s (the defaults are minutes). The "
                  f"issue measured, before the outbox reconciled posts in doubt: {ISSUE_FIGURES['duplicated_slow']} "
                  "created twice.", ""]
    if report.recovery:
        worst = recovery_max_s(report.recovery)
        lines += ["## Camera recovery after an outage", "",
                  f"Each camera server SIGKILLed, kept off {plan.outage_s:.0f} s, started again on the same port "
                  f"({plan.outages} outages); recovery: from the server accepting connections to the service having "
                  "analysed a new frame of that camera (connect, first keyframe, one inference; polled every "
                  "0.2 s).", "",
                  md_table(["camera", "outage", "outage s", "state during the outage", "recovery s"],
                           [[r.camera, r.outage, f"{r.outage_s:.0f}", r.state_during_outage or "?",
                             _fmt_s(r.recovery_s)] for r in sorted(report.recovery, key=lambda r: (r.camera, r.outage))
                            ]), "",
                  "Slowest recovery: " + ", ".join(f"{k} {'never' if v is None else f'{v:.1f} s'}"
                                                    for k, v in sorted(worst.items())) +
                  f" (the requirement: ≤ 10 s every time; the issue measured RTSP "
                  f"{', '.join(map(str, ISSUE_FIGURES['rtsp_recovery_s']))} s and MJPEG "
                  f"{ISSUE_FIGURES['mjpeg_recovery_s']} s with the old reconnect ladder 1, 2, 4, 8, 15 s ±20 %, "
                  "whose 15 s rung was reached after about 16 s of outage).", ""]
    if report.evidence is not None:
        e = report.evidence
        lines += ["## Evidence-write failures", "",
                  "In process: the real app and the camera worker's evidence path, the camera's evidence folder "
                  "unusable (a file in its place).", "",
                  md_table(["violation events", "cases kept", "failures counted", "metric "
                            "streetwatch_evidence_write_failures_total", "/health during", "/ready during",
                            "rows pointing at missing files", "/health after the fix", "/ready after",
                            "evidence files written after"],
                           [[e.events, e.cases_kept, e.failures_counted,
                             "absent" if e.metric_value is None else f"{e.metric_value:g}", e.health_during,
                             e.ready_during, e.rows_without_file, e.health_after, e.ready_after,
                             e.evidence_after]]), ""]
    lines += ["## Not covered", "",
              "- One machine, loopback only: no real network loss, latency or half-open TCP connections across "
              "routers (a silent camera is covered by the sources' read timeout, tested in "
              "tests/detector/test_sources_rtsp.py, not here).",
              "- Open311 only: the webhook adapter relies on the receiver deduplicating by `webhook-id` "
              "(tests/service/test_exactly_once.py), not measured here.",
              "- The receiver lists a request at once; a city system that shows a new request only after "
              "`reconcile_after_s` could still get a post in doubt twice (documented limit of the outbox).",
              "- SQLite only (the outbox on PostgreSQL is covered by tests/service/test_outbox.py, not by "
              "this chaos run); the database itself is never corrupted or lost here (see `streetwatch backup`).",
              "- Evidence failures are injected in process (a blocked folder), not through a full disk under "
              "a running `serve`; the disk watermark is tested in tests/service/test_evidence_guard.py.",
              "- Outbox timings are shortened for the run (above); the defaults are minutes, which change how "
              "long delivery takes, not what is delivered.",
              "- The machine is shared: the load average (2 cores) was "
              f"{report.environment.get('loadavg_start', '?')} at the start and "
              f"{report.environment.get('loadavg_end', '?')} at the end of the run, so times (service start, "
              "recovery) are those of a busy machine."]
    if report.skipped:
        lines += ["", "## Skipped in this run", ""] + [f"- {s}" for s in report.skipped]
    return "\n".join(lines) + "\n"


# --- processes ----------------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_accepts(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _tail(path: Path, n: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


class Receiver:
    """tests/georeport_server.py as a process; keeps its record file across restarts."""

    def __init__(self, work_dir: Path, extra: Sequence[str] = ()):
        self.port = free_port()
        self.record = work_dir / "georeport.json"
        self.extra = tuple(extra)
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/open311/v2"

    def start(self) -> "Receiver":
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "georeport_server.py"), "--port", str(self.port), "--api-key",
             RECEIVER_API_KEY, "--record", str(self.record), *self.extra], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("listening"):
            raise RuntimeError(f"the GeoReport receiver did not start: {line!r}")
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
            if proc.stdout:
                proc.stdout.close()

    def data(self) -> dict:
        try:
            return json.loads(self.record.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # not written yet
            return {}


class Service:
    """``streetwatch serve --settings FILE`` as a process: start, wait for /health, SIGKILL, stop."""

    def __init__(self, settings_path: Path, port: int, log_path: Path):
        self.settings_path, self.port, self.log_path = settings_path, port, log_path
        self.proc: subprocess.Popen | None = None
        self.base_url = f"http://127.0.0.1:{port}"

    def start(self, ready_timeout_s: float = 90.0) -> "Service":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "serve", "--settings", str(self.settings_path), "--host",
                 "127.0.0.1", "--port", str(self.port)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "YOLO_OFFLINE": "1"})
        import httpx

        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}:\n{_tail(self.log_path)}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code in (200, 503):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill9()
        raise RuntimeError(f"serve did not answer /health within {ready_timeout_s:.0f} s:\n{_tail(self.log_path)}")

    def kill9(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def write_settings(path: Path, *, work_dir: Path, port: int, reviewer_key: str, endpoint: str | None = None,
                   config_path: Path | None = None, plan: Plan | None = None) -> Path:
    """A settings file for one serve: outbox timings shortened so a run takes minutes (see "Not covered")."""
    import yaml

    settings: dict[str, Any] = {
        "database_path": str(work_dir / "cases.sqlite3"), "evidence_dir": str(work_dir / "evidence"),
        "api_keys": [{"name": "reviewer-bench", "role": "reviewer", "key": reviewer_key}],
        "review": {"undo_window_s": 0}, "run_flights": False, "evidence_min_free_bytes": 0,
        "public_base_url": f"http://127.0.0.1:{port}", "evidence_link_secret": secrets.token_urlsafe(32),
        "log": {"level": "warning"},
    }
    if config_path is not None:
        settings["config_path"] = str(config_path)
    if endpoint is None or plan is None:
        settings["outbox"] = {"deliver": False}
    else:
        settings["outbox"] = {
            "open311": {"endpoint": endpoint, "api_key": RECEIVER_API_KEY, "timeout_s": plan.open311_timeout_s,
                        "service_codes": {"0504": SERVICE_CODE}},
            "lease_s": plan.lease_s, "reconcile_after_s": plan.reconcile_after_s, "base_backoff_s": 0.5, "max_backoff_s": 4, "poll_s": 0.2,
            "max_attempts": 200, "max_reconcile_attempts": 20}
    path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path


# --- delivery chaos -----------------------------------------------------------------------------------------


def _camera_config():
    from service.config import CameraConfig

    return CameraConfig(id="bench-cam", name="Benchmark street", source="push", timezone="UTC",
                        position={"lat_deg": 31.2304, "lon_deg": 121.4737}, address="88 Nanjing Rd",
                        zones=[{"id": "z1", "kind": "no_vending", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}])


def _violation(i: int, t0: datetime):
    import numpy as np

    from detector.rules import Violation

    return Violation(violation_id=f"bench-cam/stall_occupation/z{i}/1", kind="stall_occupation", event="opened",
                     status="open", camera_id="bench-cam", zone_id=f"z{i}", track_ids=(1,), first_seen=t0,
                     last_seen=t0 + timedelta(seconds=300), dwell_s=300.0,
                     xyxy=np.array([[100, 200, 200, 300]], np.float32), score=0.8, class_names=("stall",))


def prepare_cases(work_dir: Path, n: int) -> list[int]:
    """N pending cases in a new database (as the camera workers would have made them), an evidence image each."""
    import cv2
    import numpy as np

    from service.cases import CaseSettings, CaseStore
    from service.config import camera_origin
    from service.db import DatabaseSettings, make_engine, make_session_factory, upgrade_schema

    engine = make_engine(DatabaseSettings(path=work_dir / "cases.sqlite3"))
    upgrade_schema(engine)
    store = CaseStore(make_session_factory(engine), CaseSettings(adapters=("open311",)))
    origin = camera_origin(_camera_config())
    evidence_dir = work_dir / "evidence" / "bench-cam" / "bench"
    evidence_dir.mkdir(parents=True)
    rng = np.random.default_rng(17)
    t0 = datetime.now(timezone.utc) - timedelta(hours=1)
    ids = []
    for i in range(n):
        path = evidence_dir / f"case-{i}.jpg"
        cv2.imwrite(str(path), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
        ids.append(store.ingest(_violation(i, t0), {"annotated": str(path)}, origin).id)
    engine.dispose()
    return ids


def outbox_rows(database: Path) -> dict[int, tuple[str, str | None]]:
    """Case id -> (status, remote id) of its Open311 outbox row, read beside the running service."""
    uri = f"file:{database}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=10) as con:
        rows = con.execute("SELECT case_id, status, remote_id FROM outbox WHERE adapter = 'open311'").fetchall()
    return {int(case_id): (status, remote_id) for case_id, status, remote_id in rows}


def confirm_cases(base_url: str, reviewer_key: str, case_ids: Sequence[int], timeout_s: float = 60.0) -> None:
    """Confirm through the live API as a reviewer would; an already confirmed case (409) counts as done."""
    import httpx

    headers = {"Authorization": f"Bearer {reviewer_key}"}
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=base_url, timeout=10, headers=headers) as client:
        for case_id in case_ids:
            while True:
                try:
                    answer = client.post(f"/api/v1/cases/{case_id}/confirm")
                    if answer.status_code in (200, 409):
                        break
                    problem = f"HTTP {answer.status_code} {answer.text[:200]}"
                except httpx.TransportError as exc:
                    problem = repr(exc)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"case {case_id} could not be confirmed: {problem}")
                time.sleep(0.2)


def run_delivery_mode(spec: ModeSpec, plan: Plan, work_dir: Path, say: Callable[[str], None]) -> DeliveryResult:
    """One receiver mode: prepare, confirm in cycles with a SIGKILL each, let it finish, count (see the module
    docstring)."""
    work_dir.mkdir(parents=True)
    t_start = time.monotonic()
    receiver = Receiver(work_dir, spec.receiver_args).start()
    ids = prepare_cases(work_dir, plan.cases)
    reviewer_key = secrets.token_urlsafe(24)
    port = free_port()
    settings_path = write_settings(work_dir / "settings.yaml", work_dir=work_dir, port=port,
                                   reviewer_key=reviewer_key, endpoint=receiver.endpoint, plan=plan)
    service = Service(settings_path, port, work_dir / "serve.log")
    per_cycle = math.ceil(len(ids) / (spec.kills + 1))
    to_confirm = list(ids)
    comeback: threading.Timer | None = None
    kills = 0
    try:
        while kills < spec.kills:
            service.start()
            created_before = len(receiver.data().get("requests", []))
            confirm_cases(service.base_url, reviewer_key, to_confirm[:per_cycle])
            to_confirm = to_confirm[per_cycle:]
            deadline = time.monotonic() + spec.trigger_timeout_s
            while time.monotonic() < deadline and len(receiver.data().get("requests", [])) == created_before:
                time.sleep(0.02)
            service.kill9()
            kills += 1
            if spec.down_s and kills == 1:
                receiver.stop()
                comeback = threading.Timer(spec.down_s, receiver.start)
                comeback.start()
                say(f"  {spec.name}: receiver down for {spec.down_s:.0f} s")
        say(f"  {spec.name}: {kills} kills done; delivering the rest")
        service.start()
        confirm_cases(service.base_url, reviewer_key, to_confirm)
        if comeback is not None:
            comeback.join()
        deadline = time.monotonic() + plan.settle_timeout_s
        while time.monotonic() < deadline:
            rows = outbox_rows(work_dir / "cases.sqlite3")
            if len(rows) == len(ids) and all(status in TERMINAL_STATUSES for status, _ in rows.values()):
                break
            time.sleep(0.5)
        time.sleep(1.0)  # a last answer in flight reaches the record file
    finally:
        service.stop()
        if comeback is not None:
            comeback.cancel()
            comeback.join()
        data = receiver.data()
        receiver.stop()
    return delivery_outcome(spec.name, ids, kills, data.get("records", {}), outbox_rows(work_dir / "cases.sqlite3"),
                            int(data.get("gets", 0)), time.monotonic() - t_start)


# --- camera recovery ----------------------------------------------------------------------------------------


def _mjpeg_frames(footage: Path, count: int = 40, width_px: int = 640) -> list[bytes]:
    """`count` JPEG frames from the footage, 0.2 s apart (a moving scene: the frozen-frame guard stays quiet)."""
    import cv2

    capture = cv2.VideoCapture(str(footage))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    step = max(1, round(fps / 5))
    frames: list[bytes] = []
    index = 0
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        if index % step == 0:
            height_px = round(image.shape[0] * width_px / image.shape[1])
            frames.append(cv2.imencode(".jpg", cv2.resize(image, (width_px, height_px)))[1].tobytes())
        index += 1
    capture.release()
    if not frames:
        raise RuntimeError(f"{footage}: no frames")
    return frames


def serve_mjpeg(port: int, footage: Path, fps: float = 5.0) -> None:
    """An HTTP MJPEG camera (``multipart/x-mixed-replace``) on 127.0.0.1:`port`, looping frames of `footage`."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    frames = _mjpeg_frames(footage)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            k = 0
            try:
                while True:
                    body = frames[k % len(frames)]
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     + str(len(body)).encode() + b"\r\n\r\n" + body + b"\r\n")
                    self.wfile.flush()
                    k += 1
                    time.sleep(1.0 / fps)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"listening on {port}", flush=True)
    server.serve_forever()


class MjpegServer:
    """`serve_mjpeg` as a process that can be SIGKILLed and started again on the same port."""

    def __init__(self, footage: Path):
        self.footage, self.port = footage, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def start(self) -> "MjpegServer":
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.reliability", "--serve-mjpeg", str(self.port),
                                      "--footage", str(self.footage)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("listening"):
            raise RuntimeError(f"the MJPEG server did not start: {line!r}")
        return self

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)
            if proc.stdout:
                proc.stdout.close()


def run_recovery(plan: Plan, work_dir: Path, footage: Path, say: Callable[[str], None]) -> list[RecoveryResult]:
    """Both cameras' servers off for `plan.outage_s`, `plan.outages` times; recovery as in the module docstring."""
    import httpx
    import yaml

    from tests.rtsp_server import RtspServer

    work_dir.mkdir(parents=True)
    rtsp = RtspServer(footage).start()
    mjpeg = MjpegServer(footage).start()
    zone = {"id": "z1", "kind": "no_vending", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}
    cameras = {"rtsp-cam": ("rtsp", rtsp.url), "mjpeg-cam": ("mjpeg", mjpeg.url)}
    config_path = work_dir / "config.yaml"
    config_path.write_text(yaml.safe_dump({"config_version": 1, "model": {"name": "street"}, "cameras": [
        {"id": cid, "source": url, "sample_fps": 1, "timezone": "UTC", "zones": [zone]}
        for cid, (_, url) in cameras.items()]}), encoding="utf-8")
    reviewer_key = secrets.token_urlsafe(24)
    port = free_port()
    settings_path = write_settings(work_dir / "settings.yaml", work_dir=work_dir, port=port,
                                   reviewer_key=reviewer_key, config_path=config_path)
    service = Service(settings_path, port, work_dir / "serve.log")
    results: list[RecoveryResult] = []
    client = httpx.Client(base_url=service.base_url, timeout=30, headers={"Authorization": f"Bearer {reviewer_key}"})

    def health(camera_id: str) -> dict:
        return client.get(f"/api/v1/cameras/{camera_id}").json()["health"]

    try:
        service.start()
        deadline = time.monotonic() + 120
        while not all(health(cid)["frames_processed"] > 0 for cid in cameras):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cameras never streamed: { {cid: health(cid) for cid in cameras} }")
            time.sleep(0.5)
        for outage in range(plan.outages):
            rtsp.kill()
            mjpeg.kill()
            time.sleep(plan.outage_s)
            during = {cid: health(cid).get("state") for cid in cameras}
            rtsp.start()
            back = {"rtsp-cam": time.monotonic()}
            mjpeg.start()
            back["mjpeg-cam"] = time.monotonic()
            processed = {cid: health(cid)["frames_processed"] for cid in cameras}
            recovered: dict[str, float] = {}
            deadline = time.monotonic() + 30
            while len(recovered) < len(cameras) and time.monotonic() < deadline:
                for cid in cameras:
                    if cid not in recovered and health(cid)["frames_processed"] > processed[cid]:
                        recovered[cid] = time.monotonic() - back[cid]
                time.sleep(0.2)
            for cid, (kind, _) in cameras.items():
                results.append(RecoveryResult(cid, kind, outage + 1, plan.outage_s, None if cid not in recovered else
                                              round(recovered[cid], 2), during[cid]))
            say(f"  outage {outage + 1}: " + ", ".join(f"{cid} {_fmt_s(recovered.get(cid))} s" for cid in cameras))
            time.sleep(3.0)  # streaming for a while before the next cut
    finally:
        client.close()
        service.stop()
        rtsp.stop()
        mjpeg.kill()
    return results


# --- evidence-write failures --------------------------------------------------------------------------------


def run_evidence(plan: Plan, work_dir: Path) -> EvidenceResult:
    """Evidence folder unusable for `plan.evidence_events` violations, then usable again (module docstring)."""
    import numpy as np
    from fastapi.testclient import TestClient

    from detector.types import Detections, Frame
    from service.app import create_app
    from service.config import AppConfig
    from service.settings import Settings
    from service.workers import CameraRuntime, CameraWorker, DetectorPool, LatestFrames, WorkerContext

    work_dir.mkdir(parents=True)
    key = secrets.token_urlsafe(24)
    camera = _camera_config()
    config = AppConfig.model_validate({"config_version": 1, "cameras": [camera.model_dump()]})
    settings = Settings(database_path=work_dir / "cases.sqlite3", evidence_dir=work_dir / "evidence",
                        run_cameras=False, run_flights=False, outbox={"deliver": False}, evidence_min_free_bytes=0,
                        api_keys=[{"name": "reviewer-bench", "role": "reviewer", "key": key}])
    app = create_app(settings, config=config)
    services = app.state.services
    blocker = work_dir / "evidence" / camera.id
    rng = np.random.default_rng(3)
    t0 = datetime.now(timezone.utc)
    detections = Detections(xyxy=np.array([[100, 200, 200, 300]], np.float32),
                            confidence=np.array([0.9], np.float32), class_id=np.array([0]))

    def frame(i: int) -> Frame:
        return Frame(source_id=camera.id, index=i, ts=t0 + timedelta(seconds=i),
                     image=rng.integers(0, 255, (360, 480, 3), dtype=np.uint8))

    def metric(text: str) -> float | None:
        for line in text.splitlines():
            if line.startswith("streetwatch_evidence_write_failures_total "):
                return float(line.split()[-1])
        return None

    with TestClient(app) as client:
        ctx = WorkerContext(config=lambda: services.config, cases=services.cases,
                            evidence_dir=Path(settings.evidence_dir).resolve(), latest_frames=LatestFrames(),
                            push_sources={}, detectors=DetectorPool(), stop=threading.Event(),
                            evidence_guard=services.evidence_guard)
        worker = CameraWorker(camera.id, ctx, CameraRuntime(camera.id))
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_text("a file where the camera's evidence folder must be")
        for i in range(plan.evidence_events):
            # The camera worker's own path from violation events to evidence and cases (`_step` calls it after
            # the detector; a violation needs a detection no camera here makes on demand).
            worker._handle([_violation(i, t0)], camera, frame(i), detections)
        health_during = client.get("/health").json()["status"]
        ready_during = client.get("/ready").status_code
        metric_value = metric(client.get("/metrics").text)
        failures = services.evidence_guard.state().write_failures_total
        cases = services.cases.list_cases(limit=500).items
        blocker.unlink()
        after = plan.evidence_events
        worker._handle([_violation(after, t0)], camera, frame(after), detections)
        health_after = client.get("/health").json()["status"]
        ready_after = client.get("/ready").status_code
        cases_after = services.cases.list_cases(limit=500).items
    paths = [Path(e.path) for c in cases_after for e in c.evidence]
    return EvidenceResult(events=plan.evidence_events, cases_kept=len(cases), failures_counted=failures,
                          metric_value=metric_value, health_during=health_during, ready_during=ready_during,
                          health_after=health_after, ready_after=ready_after,
                          rows_without_file=sum(1 for p in paths if not p.is_file()), evidence_after=len(paths))


# --- main ---------------------------------------------------------------------------------------------------


def _timed_print(text: str, _t0: list[float] = []) -> None:  # noqa: B006 - the first call's time, kept
    if not _t0:
        _t0.append(time.monotonic())
    print(f"[{time.monotonic() - _t0[0]:6.1f} s] {text}", flush=True)


def run(plan: Plan, work_dir: Path, say: Callable[[str], None] = _timed_print) -> Report:
    """Every part of the benchmark; a part that cannot run here (no GStreamer, no footage) is named in
    `Report.skipped`."""
    from tests.rtsp_server import rtsp_server_unavailable_reason

    report = Report(plan=plan, environment={**environment(), "loadavg_start": _loadavg()})
    t0 = time.monotonic()
    shared = shared_dir()
    footage = None if shared is None else shared / "footage" / "people-walking.mp4"
    reason = rtsp_server_unavailable_reason()
    recovery: concurrent.futures.Future | None = None
    # The camera outages run beside the delivery chaos (independent processes; the run stays within about
    # 10 minutes on 2 cores), so recovery is measured under that load: harsher than an idle machine.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        if footage is None or not footage.is_file():
            report.skipped.append("camera recovery: ../shared/footage/people-walking.mp4 is absent")
        elif reason:
            report.skipped.append(f"camera recovery: {reason}")
        else:
            say(f"camera recovery: {plan.outages} outages of {plan.outage_s:.0f} s")
            recovery = pool.submit(run_recovery, plan, work_dir / "recovery", footage, say)
        for spec in plan.modes:
            say(f"delivery, receiver {spec.name}: {plan.cases} cases, {spec.kills} kills")
            result = run_delivery_mode(spec, plan, work_dir / f"delivery-{spec.name}", say)
            say(f"  {result}")
            report.delivery.append(result)
        if recovery is not None:
            report.recovery = recovery.result()
    say("evidence-write failures")
    report.evidence = run_evidence(plan, work_dir / "evidence")
    say(f"  {report.evidence}")
    report.elapsed_s = time.monotonic() - t0
    report.environment["loadavg_end"] = _loadavg()
    return report


def _loadavg() -> str:
    """The 1, 5 and 15 minute load averages (how busy the shared machine was)."""
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def report_from_dict(data: Mapping[str, Any]) -> Report:
    """A `Report` back from its JSON (to render the markdown again without running anything)."""
    plan_data = dict(data["plan"])
    plan_data["modes"] = tuple(ModeSpec(**{**m, "receiver_args": tuple(m["receiver_args"])})
                               for m in plan_data["modes"])
    return Report(plan=Plan(**plan_data),
                  delivery=[DeliveryResult(**{**d, "lost_ids": tuple(d["lost_ids"]),
                                              "duplicated_ids": tuple(d["duplicated_ids"])})
                            for d in data["delivery"]],
                  recovery=[RecoveryResult(**r) for r in data["recovery"]],
                  evidence=None if data["evidence"] is None else EvidenceResult(**data["evidence"]),
                  skipped=list(data["skipped"]), elapsed_s=float(data["elapsed_s"]), command=data["command"],
                  environment=dict(data["environment"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (45-90 s)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--doc", type=Path, default=DOC_PATH, help="where the markdown report goes")
    parser.add_argument("--work-dir", type=Path, default=None, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="only write the markdown again from a results JSON (no run)")
    parser.add_argument("--serve-mjpeg", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--footage", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_mjpeg:
        serve_mjpeg(args.serve_mjpeg, args.footage)
        return 0
    if args.render:
        report = report_from_dict(json.loads(args.render.read_text(encoding="utf-8")))
    else:
        import tempfile

        plan = quick_plan() if args.quick else full_plan()
        with tempfile.TemporaryDirectory(prefix="streetwatch-reliability-") as tmp:
            report = run(plan, args.work_dir or Path(tmp))
        report.command = "python -m benchmarks.reliability" + (" --quick" if args.quick else "")
        args.results_dir.mkdir(parents=True, exist_ok=True)
        (args.results_dir / "reliability.json").write_text(
            json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    markdown = to_markdown(report)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "reliability.md").write_text(markdown, encoding="utf-8")
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(markdown, encoding="utf-8")
    print(f"wrote {args.results_dir / 'reliability.json'}, {args.results_dir / 'reliability.md'} and {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
