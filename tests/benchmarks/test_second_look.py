"""The second-look benchmark's pure parts: timing summaries, the keep/refuse tally, and the delay rows."""

from __future__ import annotations

import pytest

from benchmarks.false_cases import RunCounts
from benchmarks.second_look import LookTally, delay_rows, time_stats


@pytest.mark.parametrize("ms, expected", [
    ([], None),
    ([5.0], {"n": 1, "median_ms": 5.0, "p95_ms": 5.0}),
    ([1.0, 2.0, 3.0, 100.0], {"n": 4, "median_ms": 2.5, "p95_ms": 100.0}),
    ([float(k) for k in range(1, 101)], {"n": 100, "median_ms": 50.5, "p95_ms": 95.0}),
])
def test_time_stats(ms, expected):
    assert time_stats(ms) == expected


def test_look_tally_counts_kept_and_refused_by_reason_and_class():
    tally = LookTally()
    for name, agree, reason in [("bicycle", True, "agreed"), ("bicycle", False, "not_found"),
                                ("ebike", False, "other_class"), ("ebike", False, "not_found")]:
        tally.add_box(name, agree, reason, 10.0)
    s = tally.summary()
    assert (s["looked"], s["kept"], s["refused"], s["kept_share"], s["refused_share"]) == (4, 1, 3, 0.25, 0.75)
    assert s["refused_by_reason"] == {"not_found": 2, "other_class": 1}
    assert s["by_class"] == {"bicycle": {"kept": 1, "refused": 1}, "ebike": {"refused": 2}}
    assert LookTally().summary()["kept_share"] is None


def record(opened_at: str | None, look: dict | None = None, kind: str = "stall_occupation") -> dict:
    return {"kind": kind, "opened_at": opened_at, "second_look": look, "boxes": [[0, 0, 10, 10]]}


@pytest.mark.parametrize("without, with_look, delay_s, extra_ms", [
    # agreed on the frame it became due: no delay on the stream clock, only the look's compute on that frame
    ({"v": record("2026-06-01T08:05:00+00:00")},
     {"v": record("2026-06-01T08:05:00+00:00", {"reason": "agreed", "ms": 80.0, "agreed": [True]})}, 0.0, 85.0),
    # refused first, agreed at the recheck 300 s later: a delay the table must show
    ({"v": record("2026-06-01T08:05:00+00:00")},
     {"v": record("2026-06-01T08:10:00+00:00", {"reason": "agreed", "ms": 80.0})}, 300.0, 85.0),
])
def test_delay_rows(without, with_look, delay_s, extra_ms):
    rows = delay_rows(without, with_look, RunCounts({}, opening_frame_ms={"v": 100.0}),
                      RunCounts({}, opening_frame_ms={"v": 185.0}))
    assert [(r["violation_id"], r["delay_s"], r["extra_frame_ms"], r["verdict"], r["members"]) for r in rows] == [
        ("v", delay_s, extra_ms, "agreed", 1)]


def test_a_case_only_one_run_opened_has_no_delay_figure():
    rows = delay_rows({"v": record("2026-06-01T08:05:00+00:00")}, {}, RunCounts({}, opening_frame_ms={"v": 90.0}),
                      RunCounts({}))
    assert rows[0]["opened_with"] is None and rows[0]["delay_s"] is None and rows[0]["extra_frame_ms"] is None
