"""Dashboard, alerts, autoscaler and probes name only what a real server exposes.

A ``python -m server`` process on loopback (conftest) is scraped over HTTP; every metric in a
PromQL expression of the Grafana dashboard, the PrometheusRule and the prometheus-adapter rule
must be one of its samples (or a name Prometheus itself makes), and every label a query matches
or groups on must be a label of those samples or one Prometheus adds to each target. The probes'
health service names are asked of the same server with ``python -m server.healthcheck``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.conftest import DEPLOY, OVERLAYS, Manifest, RealServer, only, server_container

# `up` is written by Prometheus for every scrape target, not by the server.
PROMETHEUS_SERIES = {"up"}
# Series the dashboard shows ahead of the server: the per-device inference process of issue #24.
# A query may name them only with target labels; once the server exports one, remove it here
# (test_pending_series_are_not_exported_yet says so) and its labels are checked like the rest.
# Labels Prometheus Operator attaches to every series of a ServiceMonitor target.
TARGET_LABELS = {"job", "namespace", "pod", "instance", "service", "container", "endpoint"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
FUNCTION_CALL = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\(")
SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
BARE_GENRE_NAME = re.compile(r"\bgenre_[a-z0-9_]+\b")
MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
TEMPLATE_LABEL = re.compile(r"\{\{\s*\$labels\.([a-zA-Z_]+)\s*\}\}")


def exposed(text: str) -> dict[str, set[str]]:
    """Sample name -> its label names, for every series the scrape has (or declares)."""
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.setdefault(family.name + suffix, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (DEPLOY / "base" / "dashboards" / "genre-serve.json").read_text()
    )
    return loaded


def graph_panels() -> list[dict[str, Any]]:
    """Every panel but the row headers, which only group the others."""
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def dashboard_queries() -> Iterator[str]:
    for panel in graph_panels():
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            yield target["expr"]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["definition"]


def alert_queries(objects: list[Manifest]) -> Iterator[str]:
    rule = only(objects, "PrometheusRule")
    for group in rule["spec"]["groups"]:
        for item in group["rules"]:
            yield item["expr"]


def adapter_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load((DEPLOY / "monitoring" / "prometheus-adapter-rules.yaml").read_text())
    rules: list[dict[str, Any]] = loaded["custom"]
    return rules


def check_query(query: str, series: dict[str, set[str]]) -> None:
    """Every metric name in ``query`` is exposed; every label it uses belongs to one of them."""
    query = query.replace("<<.LabelMatchers>>", "").replace("<<.GroupBy>>", "pod")
    functions = set(FUNCTION_CALL.findall(query))
    used = {name for name, _ in SELECTOR.findall(query)} | set(BARE_GENRE_NAME.findall(query))
    used -= functions | PROMQL_KEYWORDS
    assert used, f"no metric found in {query!r}"
    for name in used:
        known_name = name in series or name in PROMETHEUS_SERIES
        assert known_name, f"{name} is not exposed ({query!r})"
    known = set(TARGET_LABELS) | {"le"}
    for name in used:
        known |= series.get(name, set())
    labels = set()
    for _, matchers in SELECTOR.findall(query):
        labels |= set(MATCHER_LABEL.findall(matchers))
    for grouping in GROUPING.findall(query):
        labels |= {part.strip() for part in grouping.split(",") if part.strip()}
    if "label_values(" in query:
        labels |= {query.rsplit(",", 1)[1].strip(" )")}
    assert labels <= known, f"{sorted(labels - known)} are no labels of {sorted(used)}"


def test_the_real_server_exposes_the_documented_families(real_server: RealServer) -> None:
    series = exposed(real_server.metrics_text)
    for name in (
        "genre_requests_total",
        "genre_request_duration_seconds_bucket",
        "genre_in_flight_requests",
        "genre_queue_duration_seconds_bucket",
        "genre_compute_duration_seconds_bucket",
        "genre_inferred_rows_total",
        "genre_batch_executions_total",
        "genre_queue_rows",
        "genre_open_streams",
        "genre_window_latency_seconds_bucket",
        "genre_model_load_failures_total",
    ):
        assert name in series, name
    assert {"method", "model", "version", "status"} <= series["genre_requests_total"]
    assert "model" in series["genre_model_load_failures_total"]  # the refused version


def test_dashboard_queries_use_real_metrics(real_server: RealServer) -> None:
    series = exposed(real_server.metrics_text)
    queries = list(dashboard_queries())
    assert len(queries) >= 12
    for query in queries:
        check_query(query, series)


def test_dashboard_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        place = panel["gridPos"]
        assert place["x"] + place["w"] <= 24, panel["title"]
        covered = {
            (x, y)
            for x in range(place["x"], place["x"] + place["w"])
            for y in range(place["y"], place["y"] + place["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered


@pytest.mark.parametrize(
    ("shows", "metric", "grouped_by"),
    [
        ("workers configured", "genre_workers", "pod"),
        ("workers ready", "genre_workers_ready", "pod"),
        ("worker restarts", "genre_worker_restarts_total", "pod"),
        ("abstentions by reason", "genre_abstentions_total", "reason"),
        ("genre.v1 against v2", "genre_requests_total", "protocol"),
        ("batch sizes", "genre_batch_size_rows_bucket", "model"),
        ("queue time", "genre_queue_duration_seconds_bucket", "model"),
        ("inference processes up", "genre_inference_process_up", "pod"),
        ("inference process restarts", "genre_inference_process_restarts_total", "pod"),
    ],
)
def test_the_dashboard_shows(shows: str, metric: str, grouped_by: str) -> None:
    """What operators asked to see (issue #26), each in a panel of its own split by a label."""
    queries = [query for query in dashboard_queries() if re.search(rf"\b{metric}\b", query)]
    assert queries, f"no panel shows {shows} ({metric})"
    groupings = {
        label.strip()
        for query in queries
        for grouping in GROUPING.findall(query)
        for label in grouping.split(",")
    }
    assert grouped_by in groupings, (shows, queries)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_alerts_use_real_metrics_and_labels(
    rendered: dict[str, list[Manifest]], real_server: RealServer, overlay: str
) -> None:
    series = exposed(real_server.metrics_text)
    for query in alert_queries(rendered[overlay]):
        check_query(query, series)
    rule = only(rendered[overlay], "PrometheusRule")
    for group in rule["spec"]["groups"]:
        for item in group["rules"]:
            grouped = set()
            for grouping in GROUPING.findall(item["expr"]):
                grouped |= {part.strip() for part in grouping.split(",")}
            for label in TEMPLATE_LABEL.findall(item["annotations"]["summary"]):
                # A summary can only show a label the expression keeps.
                assert not grouped or label in grouped, (item["alert"], label)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaler_metric_is_the_adapters_and_the_servers(
    rendered: dict[str, list[Manifest]], real_server: RealServer, overlay: str
) -> None:
    series = exposed(real_server.metrics_text)
    published = {rule["name"]["as"]: rule for rule in adapter_rules()}
    hpa = only(rendered[overlay], "HorizontalPodAutoscaler")
    for metric in hpa["spec"]["metrics"]:
        if metric["type"] != "Pods":
            continue
        rule = published[metric["pods"]["metric"]["name"]]
        check_query(rule["seriesQuery"], series)
        check_query(rule["metricsQuery"], series)
        assert re.fullmatch(rule["name"]["matches"], metric["pods"]["metric"]["name"])


def test_servicemonitor_path_is_served(real_server: RealServer) -> None:
    assert real_server.metrics_text.startswith("# HELP")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probe_health_services_are_serving_on_a_real_server(
    rendered: dict[str, list[Manifest]], real_server: RealServer, overlay: str
) -> None:
    container = server_container(rendered[overlay])
    services = {container[p]["grpc"]["service"] for p in ("startupProbe", "livenessProbe")}
    services.add(container["readinessProbe"]["grpc"]["service"])
    for service in sorted(services):
        target = real_server.process.target
        result = subprocess.run(
            [sys.executable, "-m", "server.healthcheck", "--target", target, "--service", service],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert result.returncode == 0, (service, result.stdout, result.stderr)
        assert "SERVING" in result.stdout


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ('sum(rate(genre_request_total{namespace="x"}[5m]))', "is not exposed"),
        ("sum by (status) (rate(genre_batch_executions_total[5m]))", "are no labels"),
    ],
)
def test_the_name_check_rejects_a_misspelt_metric_or_label(
    real_server: RealServer, query: str, complaint: str
) -> None:
    """A control: the checks above would fail on a typo, so their passing means something."""
    with pytest.raises(AssertionError, match=complaint):
        check_query(query, exposed(real_server.metrics_text))
