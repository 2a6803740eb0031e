"""``deploy/grafana/streetwatch.json``: every PromQL query of the dashboard names only metrics the service
exports (scraped from ``/metrics`` of an app started on a test configuration), and the dashboard covers what
operators watch (cameras, inference, cases, outbox, evidence, second looks, flights)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import AppConfig
from service.settings import Settings

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "streetwatch.json"

# PromQL words that are not metric names: aggregation operators and their modifiers, binary operators and
# vector matching, offset/@, and the number literals.
_KEYWORDS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
             "quantile", "limitk", "limit_ratio", "by", "without", "on", "ignoring", "group_left", "group_right",
             "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects.

    Strings, label matchers (``{...}``), ranges and subqueries (``[...]``) and grouping label lists
    (``by (...)``, ``on (...)``, ...) are removed first; an identifier then names a function when a ``(``
    follows it, a keyword when listed in `_KEYWORDS`, part of a number when a digit precedes it; any other
    identifier is a metric name.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", r" \1 ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name = match.group()
        before = text[match.start() - 1] if match.start() else " "
        if before.isdigit() or before in ".$":
            continue  # 1e9, 5m, a Grafana variable
        if text[match.end():].lstrip().startswith("(") or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


@pytest.mark.parametrize("expr, expected", [
    ('histogram_quantile(0.95, sum by (le, camera_id) (rate(a_seconds_bucket{camera_id=~"$camera"}[5m])))',
     {"a_seconds_bucket"}),
    ("sum(rate(x_sum[$__rate_interval])) / sum(rate(x_count[$__rate_interval]))", {"x_sum", "x_count"}),
    ('streetwatch_outbox_messages{status=~"dead|needs_check"}', {"streetwatch_outbox_messages"}),
    ("process_resident_memory_bytes / 1e9", {"process_resident_memory_bytes"}),
    ("a and on (job) b offset 5m", {"a", "b"}),
    ('sum by (kind) (c) > bool 3 unless d{x="sum(y)"}', {"c", "d"}),
])
def test_promql_metric_names(expr, expected):
    assert promql_metric_names(expr) == expected


def dashboard_queries(dashboard: dict) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target (rows' nested panels too) and every query variable."""
    def panels(items: list) -> Iterator[dict]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            yield f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            found = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*", query)
            assert found, f"variable {variable['name']}: not a label_values(metric, label) query: {query!r}"
            yield f"variable {variable['name']}", found.group(1)


def exported_names(exposition: str) -> set[str]:
    """Every series name a scrape can hold: each family's ``# TYPE`` name with its ``_bucket``/``_sum``/
    ``_count`` forms for histograms and summaries (counters carry ``_total`` in the text format already), plus
    every sample's name."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            elif kind == "summary":
                names |= {f"{name}_sum", f"{name}_count"}
        elif line and not line.startswith("#"):
            names.add(_IDENT.match(line).group())
    return names


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> set[str]:
    tmp = tmp_path_factory.mktemp("dashboard")
    settings = Settings(database_path=tmp / "cases.db", evidence_dir=tmp / "evidence", run_cameras=False,
                        run_flights=False, outbox={"deliver": False})
    with TestClient(create_app(settings, config=AppConfig(config_version=1))) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    return exported_names(response.text)


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_every_query_names_exported_metrics(dashboard, exported):
    queries = list(dashboard_queries(dashboard))
    assert len(queries) >= 20
    unknown = {}
    for where, expr in queries:
        names = promql_metric_names(expr)
        assert names, f"{where}: no metric found in {expr!r}"
        if names - exported:
            unknown[where] = sorted(names - exported)
    assert not unknown, f"metrics the service does not export: {unknown}"


def test_the_dashboard_covers_what_operators_watch(dashboard):
    used = set().union(*(promql_metric_names(expr) for _, expr in dashboard_queries(dashboard)))
    required = {"streetwatch_camera_fps_in", "streetwatch_camera_lag_seconds", "streetwatch_camera_frames_dropped_total",
                "streetwatch_camera_inference_seconds_bucket", "streetwatch_cases_by_kind",
                "streetwatch_outbox_backlog", "streetwatch_outbox_messages",
                "streetwatch_evidence_write_failures_total", "streetwatch_second_look_total", "streetwatch_flights",
                "streetwatch_build_info", "process_cpu_seconds_total"}
    assert not required - used, f"not on the dashboard: {sorted(required - used)}"
    assert dashboard["uid"] == "streetwatch" and dashboard["title"] == "streetwatch"
    quantiles = [expr for _, expr in dashboard_queries(dashboard) if expr.startswith("histogram_quantile(")]
    assert {q.split(",")[0] for q in quantiles} == {"histogram_quantile(0.5", "histogram_quantile(0.95"}
