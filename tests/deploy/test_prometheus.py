"""deploy/prometheus: promtool checks and unit tests, the metric names the rules use, and a real
Prometheus server scraping a real worker."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.ops import procs
from streams.worker.metrics import WorkerMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
SURGE_ZONE = "entrance-east"

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=60)


@needs_promtool
@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
    ids=" ".join,
)
def test_promtool_accepts(args):
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def metric_names(promql: str) -> set[str]:
    """The ``crowdsafe_*`` series names a PromQL expression reads (label values left out)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)
    return set(re.findall(r"(?<![\w:])crowdsafe_\w+", without_strings))


def rule_exprs(text: str) -> list[str]:
    """The ``expr`` of every rule in a rules file (folded ``>`` blocks included)."""
    exprs, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"(\s*)expr:\s*(.*)$", line)
        if not m:
            continue
        indent, rest = len(m.group(1)), m.group(2)
        if rest.startswith(">"):
            block = []
            for follow in lines[i + 1 :]:
                if follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                    break
                block.append(follow.strip())
            rest = " ".join(block)
        exprs.append(rest)
    return exprs


def test_rules_read_only_metrics_the_worker_exports():
    exported = WorkerMetrics().sample_names()
    exprs = rule_exprs((DEPLOY / "alerts.yml").read_text())

    assert len(exprs) >= 10
    used = set().union(*map(metric_names, exprs))
    assert "crowdsafe_zone_density_persons_per_square_metre" in used
    assert used <= exported, used - exported


def test_metric_names_ignore_label_values_and_recording_rule_names():
    expr = 'sum(rate(crowdsafe_readings_total{job="crowdsafe_x"}[1m])) + zone:crowdsafe_a:ratio'
    assert metric_names(expr) == {"crowdsafe_readings_total"}


# --- a real Prometheus scraping a real worker --------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: str) -> dict:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as r:
            return json.load(r)

    def query(self, promql: str) -> list[dict]:
        return self.get("/api/v1/query", query=promql)["data"]["result"]

    def wait_for(self, promql: str, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if result := self.query(promql):
                return result
            time.sleep(0.5)
        raise TimeoutError(
            f"{promql} empty after {timeout}s; targets: {self.get('/api/v1/targets')}"
        )


@pytest.fixture
def prometheus(pipeline, tmp_path) -> Iterator[Prometheus]:
    if PROMETHEUS is None:
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    port = _free_port()
    # JSON is YAML: the test's config is ours with a 1 s scrape of this test's worker.
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(DEPLOY / "alerts.yml")],
        "scrape_configs": [
            {
                "job_name": "crowdsafe",
                "static_configs": [{"targets": [f"127.0.0.1:{pipeline.web_port}"]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))
    log = open(tmp_path / "prometheus.log", "w")  # noqa: SIM115 (lives with the process)
    proc = procs.spawn(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ],
        log=log,
    )
    server = Prometheus(port)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"{server.url}/-/ready", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield server
    finally:
        procs.stop(proc)
        log.close()


@pytest.mark.kafka
def test_prometheus_scrapes_the_worker_and_sees_the_surge(pipeline, prometheus):
    pipeline.start_worker()
    up = prometheus.wait_for('up{job="crowdsafe"} == 1', timeout=30)
    assert len(up) == 1

    pipeline.simulate_surge_until_now()

    readings = prometheus.wait_for("sum(crowdsafe_readings_total) > 1000")
    assert float(readings[0]["value"][1]) > 1000
    density = prometheus.wait_for(
        f'crowdsafe_zone_density_persons_per_square_metre{{zone="{SURGE_ZONE}"}} > 4.7'
    )
    assert density[0]["metric"]["job"] == "crowdsafe"

    # The recording rule divides by the zone's own threshold; only the surge zone is past 1.
    over = prometheus.wait_for("zone:crowdsafe_zone_density:ratio_critical >= 1")
    assert {r["metric"]["zone"] for r in over} == {SURGE_ZONE}
    from streams.config.settings import Settings
    from streams.config.site import load_site

    every_zone = {
        r["metric"]["zone"] for r in prometheus.query("zone:crowdsafe_zone_density:ratio_critical")
    }
    assert every_zone == set(load_site(Settings().site).zone_by_id)

    # And the backstop alert rule picks it up (pending: its 30 s "for" need not run out here).
    alerts = prometheus.wait_for('ALERTS{alertname="CrowdsafeZoneDensityCritical"}')
    assert {a["metric"]["zone"] for a in alerts} == {SURGE_ZONE}

    # Every dashboard query is valid PromQL to a real server (Grafana's variables filled in),
    # and the density and occupancy panels have data for every zone.
    dashboard = json.loads((DEPLOY.parent / "grafana" / "crowdsafe-dashboard.json").read_text())
    fill = {"$__rate_interval": "15s", "$job": ".*", "$zone": ".*"}
    for p in dashboard["panels"]:
        for target in p.get("targets", []):
            expr = target["expr"]
            for var, value in fill.items():
                expr = expr.replace(var, value)
            answer = prometheus.get("/api/v1/query", query=expr)  # HTTP 400 on a syntax error
            assert answer["status"] == "success", (p["title"], expr)
            if p["title"].startswith(("Density per zone", "Occupancy")) and target["refId"] == "A":
                assert len(answer["data"]["result"]) >= len(every_zone), p["title"]
