"""deploy/prometheus: promtool checks and unit tests, the metric names the rules use, and a real
Prometheus server scraping a real worker."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from streams.worker.metrics import WorkerMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
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
        ("check", "config", "prometheus-compose.yml"),  # deploy/compose.yaml
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


@needs_promtool
def test_rules_with_runbook_urls_from_a_base_setting(tmp_path):
    """``crowdsafe rules --runbook-base-url``: every rule links its runbook; promtool agrees."""
    from streams.cli import main

    out = tmp_path / "alerts.yml"
    assert (
        main(["rules", "--runbook-base-url", "https://docs.example.org/cs/", "--out", str(out)])
        == 0
    )
    text = out.read_text()
    alerts = text.count("- alert:")
    urls = re.findall(r"runbook_url: (\S+)", text)
    assert alerts >= 8 and len(urls) == alerts
    assert all(u.startswith("https://docs.example.org/cs/docs/operations.md#") for u in urls)
    result = promtool("check", "rules", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert main(["rules", "--runbook-base-url", "docs.example.org"]) == 2  # not a URL


def test_the_runbook_base_url_is_a_setting(tmp_path, monkeypatch, capsys):
    from streams.cli import main
    from streams.config.settings import get_settings

    get_settings.cache_clear()
    monkeypatch.delenv("CROWDSAFE_RUNBOOK_BASE_URL", raising=False)
    assert main(["rules"]) == 2
    assert "CROWDSAFE_RUNBOOK_BASE_URL" in capsys.readouterr().err
    monkeypatch.setenv("CROWDSAFE_RUNBOOK_BASE_URL", "https://wiki.example.org/cs")
    get_settings.cache_clear()
    out = tmp_path / "alerts.yml"
    try:
        assert main(["rules", "--out", str(out)]) == 0
    finally:
        monkeypatch.delenv("CROWDSAFE_RUNBOOK_BASE_URL")
        get_settings.cache_clear()
    urls = re.findall(r"runbook_url: (\S+)", out.read_text())
    assert urls and all(u.startswith("https://wiki.example.org/cs/docs/") for u in urls)


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
# The prometheus fixture (tests/deploy/conftest.py) runs the shipped prometheus.yml, 1 s scrape.


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
