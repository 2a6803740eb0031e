"""The chaos benchmark (benchmarks/reliability.py): its pure parts as tables, and its --quick run end to end
(``streetwatch serve`` killed with SIGKILL while a 1 s slow GeoReport receiver process creates a request, a real
RTSP and MJPEG camera cut and restored, evidence writes blocked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.reliability import (DeliveryResult, EvidenceResult, Report, RecoveryResult, delivery_outcome,
                                    quick_plan, recovery_max_s, report_from_dict, to_markdown)

REPO = Path(__file__).resolve().parents[2]


def rec(created: int, sr: str = "SR-1") -> dict:
    return {"received": created, "created": created, "service_request_id": sr}


@pytest.mark.parametrize("records, rows, expected", [
    # every case once, ids agree
    ({"streetwatch-1-open311": rec(1, "SR-1"), "streetwatch-2-open311": rec(1, "SR-2")},
     {1: ("sent", "SR-1"), 2: ("sent", "SR-2")}, (2, 0, 0, 0, 0, 0, 2)),
    # created twice at the receiver: a duplicate, however the outbox row ended
    ({"streetwatch-1-open311": rec(2, "SR-1"), "streetwatch-2-open311": rec(1, "SR-3")},
     {1: ("sent", "SR-1"), 2: ("sent", "SR-3")}, (2, 0, 1, 0, 0, 0, 3)),
    # never arrived, and the outbox believes it sent: lost and a mismatch
    ({"streetwatch-1-open311": rec(1, "SR-1")}, {1: ("sent", "SR-1"), 2: ("sent", "SR-9")}, (2, 1, 0, 0, 0, 1, 1)),
    # in doubt for a person; another one still pending (unfinished); the remote id must match the receiver's
    ({"streetwatch-1-open311": rec(1, "SR-1")}, {1: ("needs_check", None), 2: ("pending", None)},
     (0, 1, 0, 1, 1, 0, 1)),
    ({"streetwatch-1-open311": rec(1, "SR-1"), "streetwatch-2-open311": rec(1, "SR-2")},
     {1: ("sent", "SR-2"), 2: ("dead", None)}, (1, 0, 0, 0, 0, 1, 2)),
    # a case without any outbox row is unfinished, not delivered
    ({}, {}, (0, 2, 0, 0, 2, 0, 0)),
])
def test_delivery_outcome(records, rows, expected):
    r = delivery_outcome("slow", [1, 2], 3, records, rows, gets=4, elapsed_s=1.23)
    assert (r.delivered, r.lost, r.duplicated, r.needs_check, r.not_finished, r.remote_id_mismatches,
            r.receiver_posts) == expected
    assert (r.cases, r.kills, r.receiver_gets, r.elapsed_s) == (2, 3, 4, 1.2)
    assert r.lost == len(r.lost_ids) and r.duplicated == len(r.duplicated_ids)


@pytest.mark.parametrize("times, expected", [
    ([("rtsp", 2.0), ("rtsp", 3.5), ("mjpeg", 1.0)], {"rtsp": 3.5, "mjpeg": 1.0}),
    ([("rtsp", 2.0), ("rtsp", None), ("rtsp", 9.0)], {"rtsp": None}),  # one that never recovered stays None
    ([("rtsp", None), ("rtsp", 1.0)], {"rtsp": None}),
    ([], {}),
])
def test_recovery_max(times, expected):
    results = [RecoveryResult("cam", kind, i + 1, 30.0, t, "reconnecting") for i, (kind, t) in enumerate(times)]
    assert recovery_max_s(results) == expected


def test_markdown_names_every_figure_the_issue_asks_for():
    report = Report(plan=quick_plan(), command="python -m benchmarks.reliability --quick",
                    environment={"date_utc": "2026-12-03T19:00:00+00:00", "cpu_count": 2, "cpu_model": "x",
                                 "loadavg_start": "1.0 / 2.0 / 3.0", "loadavg_end": "4.0 / 5.0 / 6.0"})
    report.delivery = [delivery_outcome("slow", [1], 1, {"streetwatch-1-open311": rec(1)}, {1: ("sent", "SR-1")}, 1,
                                        5.0)]
    report.recovery = [RecoveryResult("rtsp-cam", "rtsp", 1, 3.0, 4.2, "reconnecting"),
                       RecoveryResult("mjpeg-cam", "mjpeg", 1, 3.0, None, "failed")]
    report.evidence = EvidenceResult(events=2, cases_kept=2, failures_counted=2, metric_value=2.0,
                                     health_during="degraded", ready_during=503, health_after="ok", ready_after=200,
                                     rows_without_file=0, evidence_after=3)
    report.skipped = ["nothing really"]
    text = to_markdown(report)
    assert "`python -m benchmarks.reliability --quick`" in text
    assert "| slow | 1 | 1 | 1 | 0 | 0 | 0 | 0 | 0 | 0 | 1 | 1 | 5 |" in text
    assert "| mjpeg-cam | 1 | 3 | failed | never |" in text and "rtsp 4.2 s" in text and "mjpeg never" in text
    assert "| 2 | 2 | 2 | 2 | degraded | 503 | 0 | ok | 200 | 3 |" in text
    assert "## Not covered" in text and "- nothing really" in text and "1.0 / 2.0 / 3.0 at the start" in text
    assert "`slow` creates the request" in text and "`fast`" not in text  # only the modes that ran
    again = report_from_dict(json.loads(json.dumps(report.to_dict())))  # JSON-ready, and back (--render)
    assert to_markdown(again) == text


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_quick_run_end_to_end(tmp_path):
    """About 45 s on an idle 2-core machine (three `serve` starts dominate); much longer when it is busy."""
    doc = tmp_path / "RELIABILITY.md"
    run = subprocess.run([sys.executable, "-m", "benchmarks.reliability", "--quick", "--results-dir", str(tmp_path),
                          "--doc", str(doc), "--work-dir", str(tmp_path / "work")], cwd=REPO, capture_output=True,
                         text=True, timeout=400, env={**os.environ, "YOLO_OFFLINE": "1"})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((tmp_path / "reliability.json").read_text())
    [delivery] = result["delivery"]
    assert delivery["kills"] == quick_plan().modes[0].kills
    assert (delivery["lost"], delivery["duplicated"], delivery["not_finished"], delivery["remote_id_mismatches"]) == (
        0, 0, 0, 0)
    assert delivery["delivered"] + delivery["needs_check"] == delivery["cases"]
    evidence = result["evidence"]
    assert evidence["failures_counted"] == evidence["events"] == evidence["metric_value"] == evidence["cases_kept"]
    assert (evidence["health_during"], evidence["ready_during"]) == ("degraded", 503)
    assert (evidence["health_after"], evidence["ready_after"], evidence["rows_without_file"]) == ("ok", 200, 0)
    if result["recovery"]:  # skipped (and named) where GStreamer's RTSP server or the footage is missing
        assert all(r["recovery_s"] is not None and r["recovery_s"] <= 10.0 for r in result["recovery"]), result[
            "recovery"]
    else:
        assert result["skipped"]
    assert doc.read_text() == (tmp_path / "reliability.md").read_text()
    assert DeliveryResult.__dataclass_fields__.keys() <= set(delivery)
