"""`streetwatch demo` headless, as the README's first command runs it: its own process, a temporary data folder,
the ``stall_2min`` scenario rendered and played as a looping file camera, the shipped street model, SQLite.

While it runs, the review page and the API answer over HTTP with the reviewer key the demo printed; it exits 0
after the first case, and the SQLite file holds a pending stall case with its evidence.
"""

from __future__ import annotations

import os
import queue
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _value_after(lines: list[str], label: str) -> str | None:
    for line in lines:
        if line.strip().startswith(label):
            return line.split(label, 1)[1].split()[0]
    return None


@pytest.mark.timeout(450)
def test_demo_serves_the_review_page_and_exits_after_the_first_case(tmp_path):
    port = free_port()
    data_dir = tmp_path / "demo"
    args = [sys.executable, "-m", "service.cli", "demo", "--data-dir", str(data_dir), "--port", str(port),
            "--scenario", "stall_2min", "--exit-after-cases", "1", "--timeout-s", "240"]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "YOLO_OFFLINE": "1"})
    lines: list[str] = []
    arrived: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            arrived.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    output = lambda: "\n".join(lines[-60:])  # noqa: E731 - shown when an assertion fails
    try:
        # 1. The banner: the review page's address and the reviewer key (rendering the clip comes first).
        started = time.monotonic()
        deadline = started + 200
        key = None
        while key is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                arrived.get(timeout=1.0)
            except queue.Empty:
                pass
            key = _value_after(lines, "reviewer key:")
        assert key, f"no reviewer key printed\n{output()}"
        page_url = _value_after(lines, "review page:")
        assert page_url == f"http://127.0.0.1:{port}/", output()
        assert _value_after(lines, "signed in:") == f"{page_url}#key={key}", output()  # the page signs in with it

        # 2. While it runs: the page, and the API with the printed key (and not without it).
        page = httpx.get(page_url, timeout=10)
        assert page.status_code == 200 and "streetwatch" in page.text and "app.js" in page.text
        cases = httpx.get(f"{page_url}api/v1/cases", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert cases.status_code == 200, cases.text
        assert httpx.get(f"{page_url}api/v1/cases", timeout=10).status_code == 401

        # 3. It exits 0 once the stall (due 40 s into the clip) became a case.
        rc = proc.wait(timeout=max(1.0, started + 400 - time.monotonic()))
        reader.join(5)
        assert rc == 0, output()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert any(line.startswith("case 1: stall_occupation in zone no_vending_1") for line in lines), output()

    # 4. The SQLite file holds the pending stall case with its evidence images.
    with sqlite3.connect(data_dir / "cases.sqlite3") as db:
        rows = db.execute("SELECT id, kind, zone_id, status FROM cases").fetchall()
        assert rows == [(1, "stall_occupation", "no_vending_1", "pending")], rows
        evidence = db.execute("SELECT kind, path FROM evidence WHERE case_id = 1").fetchall()
    assert {"annotated", "original", "crop"} <= {kind for kind, _ in evidence}
    for _, path in evidence:
        assert Path(path).is_file() and Path(path).is_relative_to(data_dir / "evidence")
    assert (data_dir / "settings.yaml").is_file() and (data_dir / "config.yaml").is_file()
    assert (data_dir / "keys.json").stat().st_mode & 0o077 == 0  # the plain keys: owner only


def _demo(data_dir: Path, *extra: str, limit_s: float = 200) -> tuple[int, list[str]]:
    """One headless `streetwatch demo` run to its end: (exit status, output lines)."""
    args = [sys.executable, "-m", "service.cli", "demo", "--data-dir", str(data_dir), "--port", str(free_port()),
            "--scenario", "stall_2min", "--exit-after-cases", "1", "--timeout-s", str(limit_s), *extra]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=limit_s + 120,
                          env={**os.environ, "YOLO_OFFLINE": "1"})
    return done.returncode, (done.stdout + done.stderr).splitlines()


def _cases(data_dir: Path) -> list[tuple]:
    with sqlite3.connect(data_dir / "cases.sqlite3") as db:
        return db.execute("SELECT id, status, first_seen, last_seen, dwell_s FROM cases ORDER BY id").fetchall()


@pytest.mark.timeout(600)
def test_each_run_makes_a_fresh_case_and_keep_joins_the_earlier_one_without_the_stopped_time(tmp_path):
    """Issue 18: a second `scripts/demo.sh --exit-after-cases 1` never succeeded (the stall joined the open case
    of the first run), and that case's dwell counted the minutes the demo was stopped."""
    data_dir = tmp_path / "demo"
    rc, lines = _demo(data_dir)
    assert rc == 0, "\n".join(lines[-40:])
    (case_id, _, first_seen, last_seen, dwell_s), = _cases(data_dir)

    # --keep: the stall found again joins case 1 and counts as this run's case; the stopped time is no dwell.
    stopped_at = time.time()
    time.sleep(3.0)
    rc, lines = _demo(data_dir, "--keep")
    assert rc == 0, "\n".join(lines[-40:])
    assert any(line.startswith(f"case {case_id} (from an earlier run): stall_occupation in zone no_vending_1")
               for line in lines), "\n".join(lines[-40:])
    assert any("0 case(s) created and 1 found again in this run" in line for line in lines), "\n".join(lines[-40:])
    (kept_id, _, kept_first, kept_last, kept_dwell_s), = _cases(data_dir)
    assert (kept_id, kept_first) == (case_id, first_seen) and kept_last > last_seen
    span_s = (datetime.fromisoformat(kept_last) - datetime.fromisoformat(kept_first)).total_seconds()
    restarted_s = 3.0  # at least the sleep above; the new run's violation began later still (startup, min dwell)
    assert dwell_s <= kept_dwell_s <= span_s - restarted_s, (dwell_s, kept_dwell_s, span_s, time.time() - stopped_at)

    # A plain second run starts without cases, makes its own case 1 and exits 0.
    rc, lines = _demo(data_dir)
    assert rc == 0, "\n".join(lines[-40:])
    assert any(line.startswith("demo: starting without cases") for line in lines), "\n".join(lines[-40:])
    assert any(line.startswith("case 1: stall_occupation in zone no_vending_1") for line in lines)
    assert [(c[0], c[1]) for c in _cases(data_dir)] == [(1, "pending")]


def test_fresh_and_keep_exclude_each_other(tmp_path):
    rc, lines = _demo(tmp_path / "demo", "--fresh", "--keep", limit_s=30)
    assert rc == 2 and any("--fresh and --keep exclude each other" in line for line in lines), lines
