"""deploy/grafana: the dashboard parses, is laid out sanely and queries only what the worker and
the command centre export (names taken from live ``WorkerMetrics`` and ``CentreMetrics``
registries, not a list kept here)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.centre.metrics import CentreMetrics
from streams.worker.metrics import WorkerMetrics

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARD = GRAFANA / "crowdsafe-dashboard.json"


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(dash: dict) -> Iterator[dict]:
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])  # collapsed rows keep their panels inside


def expressions(dash: dict) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every query: panel targets, variables and annotations."""
    for p in panels(dash):
        for t in p.get("targets", []):
            yield p["title"], t["expr"]
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            yield f"variable {v['name']}", v["query"]["query"]
    for a in dash["annotations"]["list"]:
        if "expr" in a:
            yield f"annotation {a['name']}", a["expr"]


def series_names(promql: str) -> set[str]:
    """Names read by a PromQL expression: identifiers followed by a selector, range or end of a
    function argument, minus functions, keywords and label names."""
    promql = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)  # label values and regexes
    promql = re.sub(r"\{[^}]*\}", "{}", promql)  # label matchers
    promql = re.sub(r"label_values\((.*),\s*\w+\)", r"(\1)", promql)  # Grafana's: (metric, label)
    promql = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", promql)
    names = set(re.findall(r"(?<![\w:$])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()", promql))
    keywords = {"and", "or", "unless", "bool", "offset", "le"}
    return {n for n in names if n not in keywords and not re.fullmatch(r"\d\w*", n)}


def test_series_names_of_promql():
    expr = (
        'sum by (kind) (rate(crowdsafe_readings_total{job=~"$job", le="x"}[$__rate_interval]))'
        " / on (zone) crowdsafe_x > 0 unless time() - up"
    )
    assert series_names(expr) == {"crowdsafe_readings_total", "crowdsafe_x", "up"}
    assert series_names('label_values(crowdsafe_y{job=~"$job"}, zone)') == {"crowdsafe_y"}


def centre_series() -> set[str]:
    """The command centre's series (its open incidents: the whole site, not a worker's zones)."""
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",)}
    return {
        family.name + suffix
        for family in CentreMetrics().registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


def test_every_query_reads_only_series_the_worker_or_the_centre_exports(dashboard):
    # up: Prometheus's own, per target
    exported = WorkerMetrics().sample_names() | centre_series() | {"up"}
    queries = list(expressions(dashboard))

    assert len(queries) >= 15
    for where, expr in queries:
        names = series_names(expr)
        assert names, (where, expr)
        assert names <= exported, (where, names - exported)


def test_dashboard_covers_what_operators_watch(dashboard):
    used = set().union(*(series_names(e) for _, e in expressions(dashboard)))
    for needed in (
        "crowdsafe_zone_density_persons_per_square_metre",
        "crowdsafe_zone_density_critical_persons_per_square_metre",
        "crowdsafe_zone_occupancy_persons",
        "crowdsafe_alerts_total",
        "crowdsafe_readings_rejected_total",
        "crowdsafe_event_lag_seconds_bucket",
        "crowdsafe_zone_sources_unavailable",
        # what operators looked for and did not find (issue 13)
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "crowdsafe_consumer_lag_messages",
        "crowdsafe_incidents_open",
        "crowdsafe_alerts_open",
        "crowdsafe_zone_anomaly_score",
        "crowdsafe_zone_time_to_critical_seconds",
    ):
        assert needed in used, needed


def test_panels_have_unique_ids_datasource_and_fit_the_grid(dashboard):
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in panels(dashboard):
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        here = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & here, f"{p['title']} overlaps another panel"
        cells |= here
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
            assert p["targets"] and p.get("description"), p["title"]


def test_provisioning_points_the_dashboard_at_the_provisioned_datasource(dashboard):
    datasource = (GRAFANA / "provisioning" / "datasources" / "crowdsafe.yml").read_text()
    provider = (GRAFANA / "provisioning" / "dashboards" / "crowdsafe.yml").read_text()

    (uid,) = re.findall(r"^\s*uid:\s*([\w-]+)", datasource, re.M)
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
    assert variable["current"]["value"] == uid
    assert re.search(r"^\s*type:\s*prometheus\b", datasource, re.M)
    assert re.search(r"^\s*path:\s*/\S+", provider, re.M)
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40  # Grafana's limit
